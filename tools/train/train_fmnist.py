#!/usr/bin/python3
"""Train cvopt's reference float model on Fashion-MNIST and export it to ONNX.

The result, models/fmnist-ref.onnx, is the "pretrained model" a team would hand
to cvopt: a conventional conv/BN/ReLU network with a Linear classifier head.
It is only a fixture for the optimizer; nothing in the build or the tests runs
this script.

Run with Debian's torch (the first python3 on PATH may not see it):

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/train/train_fmnist.py --epochs 4 --out-dir models

(OMP_WAIT_POLICY=PASSIVE: on a machine shared with other jobs, OpenMP
threads that spin at barriers burn the CPU time the other thread needs.)

Determinism: fixed seeds, deterministic algorithms, 2 CPU threads, no
DataLoader workers. The same machine and torch build reproduce the same
weights; a different CPU (another oneDNN code path) may differ in the last
bits, which is why the model file, not this script, is the reference.
"""

import argparse
import gzip
import hashlib
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Fashion-MNIST training-set pixel mean and standard deviation (pixels in
# [0, 1]); the engine's input spec applies the same (x/255 - mean) / std.
MEAN = 0.2860
STD = 0.3530

PREPROCESSING = {"color": "gray", "mean": [MEAN], "std": [STD],
                 "width": 28, "height": 28}


def idx_read(path):
        """Read an IDX file (optionally gzip-compressed) into a numpy array.

        The header is checked against the file size, so a truncated or
        corrupt download fails here instead of training on garbage."""
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
                data = f.read()
        if len(data) < 4:
                raise ValueError(f"{path}: too short for an IDX header")
        zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype_code != 0x08:
                raise ValueError(f"{path}: not an unsigned-byte IDX file")
        if ndim < 1 or ndim > 4:
                raise ValueError(f"{path}: {ndim} dimensions, expected 1..4")
        header_size = 4 + 4 * ndim
        if len(data) < header_size:
                raise ValueError(f"{path}: truncated header")
        shape = struct.unpack(">" + "I" * ndim, data[4:header_size])
        count = int(np.prod(shape, dtype=np.int64))
        if len(data) != header_size + count:
                raise ValueError(f"{path}: {len(data) - header_size} data bytes, "
                                 f"header says {count}")
        return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def dataset_load(split):
        """Return (images float32 N x 1 x 28 x 28 normalised, labels int64 N)."""
        prefix = "train" if split == "train" else "t10k"
        images = idx_read(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
        labels = idx_read(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
                raise ValueError(f"{split}: unexpected shapes {images.shape} {labels.shape}")
        if labels.max() >= len(LABELS):
                raise ValueError(f"{split}: label {labels.max()} out of range")
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
        x = ((x - MEAN) / STD).unsqueeze(1)
        y = torch.from_numpy(labels.astype(np.int64))
        return x, y


class FashionNet(nn.Module):
        """Three conv/BN/ReLU blocks and a two-layer classifier head.

        The shape is what teams typically ship for small-image classifiers:
        most of the parameters sit in the first Linear layer (6272 x 160),
        most of the compute in the two 3x3 convolutions at 14x14 and 7x7.
        That mix gives the optimizer both kinds of work: weight-size
        reduction (the Linear layer) and MAC reduction (the convolutions),
        while one image stays under ~10M MACs so the fp32 reference path
        can evaluate the whole test set in CI."""

        def __init__(self, hidden=160, dropout=0.3):
                super().__init__()
                self.features = nn.Sequential(
                        nn.Conv2d(1, 32, 3, padding=1, bias=False),
                        nn.BatchNorm2d(32),
                        nn.ReLU(inplace=True),
                        nn.MaxPool2d(2),                  # 28 -> 14
                        nn.Conv2d(32, 64, 3, padding=1, bias=False),
                        nn.BatchNorm2d(64),
                        nn.ReLU(inplace=True),
                        nn.MaxPool2d(2),                  # 14 -> 7
                        nn.Conv2d(64, 128, 3, padding=1, bias=False),
                        nn.BatchNorm2d(128),
                        nn.ReLU(inplace=True),
                )
                self.classifier = nn.Sequential(
                        nn.Flatten(),
                        nn.Dropout(dropout),
                        nn.Linear(128 * 7 * 7, hidden),
                        nn.ReLU(inplace=True),
                        nn.Dropout(dropout),
                        nn.Linear(hidden, len(LABELS)),
                )

        def forward(self, x):
                return self.classifier(self.features(x))


def model_count_macs(model):
        """Multiply-accumulates for one 1x1x28x28 image (conv and linear only)."""
        macs = 0

        def hook(module, inputs, output):
                nonlocal macs
                if isinstance(module, nn.Conv2d):
                        k = module.kernel_size[0] * module.kernel_size[1]
                        macs += output.numel() * (module.in_channels // module.groups) * k
                elif isinstance(module, nn.Linear):
                        macs += module.in_features * module.out_features

        handles = [m.register_forward_hook(hook) for m in model.modules()
                   if isinstance(m, (nn.Conv2d, nn.Linear))]
        model.eval()
        with torch.no_grad():
                model(torch.zeros(1, 1, 28, 28))
        for h in handles:
                h.remove()
        return macs


def batch_augment(x, generator, shift):
        """Random horizontal flip and, with shift, a random shift of up to 2 pixels.

        Both keep a garment a garment (left/right flips are label-preserving
        for every Fashion-MNIST class). The shift helps only for long runs
        (it slows convergence), so short runs use the flip alone."""
        n = x.shape[0]
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if not shift:
                return x
        background = -MEAN / STD
        padded = F.pad(x, (2, 2, 2, 2), value=background)
        shifts = torch.randint(0, 5, (n, 2), generator=generator).tolist()
        out = torch.empty_like(x)
        for i, (dy, dx) in enumerate(shifts):
                out[i] = padded[i, :, dy:dy + 28, dx:dx + 28]
        return out


def model_evaluate(model, x, y, batch_size=1000):
        """Return (top1 %, top5 %) of the model in eval mode."""
        model.eval()
        top1 = top5 = 0
        with torch.no_grad():
                for start in range(0, x.shape[0], batch_size):
                        logits = model(x[start:start + batch_size])
                        target = y[start:start + batch_size]
                        best5 = logits.topk(5, dim=1).indices
                        top1 += (best5[:, 0] == target).sum().item()
                        top5 += (best5 == target[:, None]).any(dim=1).sum().item()
        n = x.shape[0]
        return 100.0 * top1 / n, 100.0 * top5 / n


def identity_inline(proto):
        """Replace Identity nodes whose input is an initializer by a copy of it.

        The exporter de-duplicates equal tensors (e.g. a BatchNorm weight
        and running_var that are both still all ones) and links them with
        Identity nodes; a plain initializer is what hand-written and other
        exporters' models look like."""
        from onnx import numpy_helper

        initializers = {t.name: t for t in proto.graph.initializer}
        keep = []
        for node in proto.graph.node:
                if node.op_type == "Identity" and node.input[0] in initializers:
                        array = numpy_helper.to_array(initializers[node.input[0]])
                        proto.graph.initializer.append(
                                numpy_helper.from_array(array.copy(), node.output[0]))
                else:
                        keep.append(node)
        del proto.graph.node[:]
        proto.graph.node.extend(keep)


def model_export(model, path):
        """Export to ONNX (opset 13, batch fixed at 1) and add metadata.

        Constant folding is off so that BatchNormalization stays a node of
        its own, as in most ONNX files teams hand over: folding BN into the
        preceding convolution is the optimizer's job, and the reference
        model should exercise it. Dropout vanishes in eval mode."""
        import onnx

        model.eval()
        dummy = torch.zeros(1, 1, 28, 28)
        torch.onnx.export(model, dummy, path, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False)
        proto = onnx.load(path)
        identity_inline(proto)
        del proto.metadata_props[:]
        for key, value in (("labels", json.dumps(LABELS)),
                           ("preprocessing", json.dumps(PREPROCESSING))):
                entry = proto.metadata_props.add()
                entry.key = key
                entry.value = value
        proto.doc_string = ("cvopt reference float model: Fashion-MNIST classifier, "
                            "made by tools/train/train_fmnist.py")
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, path)
        onnx.checker.check_model(onnx.load(path), full_check=True)


def file_sha256(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
        return h.hexdigest()


def main():
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--epochs", type=int, default=4)
        parser.add_argument("--shift", action="store_true",
                            help="also shift training images by up to 2 pixels")
        parser.add_argument("--batch-size", type=int, default=128)
        parser.add_argument("--lr", type=float, default=3e-3,
                            help="peak learning rate of the one-cycle schedule")
        parser.add_argument("--weight-decay", type=float, default=5e-4)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--out-dir", default="models")
        parser.add_argument("--name", default="fmnist-ref")
        parser.add_argument("--smoke", action="store_true",
                            help="train on 2 batches only, to check the whole script runs")
        args = parser.parse_args()

        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
        torch.use_deterministic_algorithms(True)
        generator = torch.Generator().manual_seed(args.seed)

        t0 = time.monotonic()
        x_train, y_train = dataset_load("train")
        x_test, y_test = dataset_load("test")
        print(f"data: train {tuple(x_train.shape)} test {tuple(x_test.shape)} "
              f"train mean {x_train.mean().item() * STD + MEAN:.4f} "
              f"std {x_train.std().item() * STD:.4f}", flush=True)

        model = FashionNet()
        params = sum(p.numel() for p in model.parameters())
        macs = model_count_macs(model)
        print(f"model: {params} parameters, {macs} MACs per image", flush=True)

        steps_per_epoch = (x_train.shape[0] + args.batch_size - 1) // args.batch_size
        if args.smoke:
                steps_per_epoch = 2
                args.epochs = 1
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr,
                                      weight_decay=args.weight_decay)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=args.lr, epochs=args.epochs,
                steps_per_epoch=steps_per_epoch)
        # Label smoothing keeps the logits moderate, which also makes the
        # float model friendlier to int8 quantization of the last layer.
        criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

        for epoch in range(args.epochs):
                model.train()
                t_epoch = time.monotonic()
                order = torch.randperm(x_train.shape[0], generator=generator)
                loss_sum = 0.0
                correct = seen = 0
                for step in range(steps_per_epoch):
                        index = order[step * args.batch_size:(step + 1) * args.batch_size]
                        xb = batch_augment(x_train[index], generator, args.shift)
                        yb = y_train[index]
                        optimizer.zero_grad(set_to_none=True)
                        logits = model(xb)
                        loss = criterion(logits, yb)
                        correct += (logits.argmax(1) == yb).sum().item()
                        seen += yb.shape[0]
                        loss.backward()
                        optimizer.step()
                        scheduler.step()
                        loss_sum += loss.item()
                # The test set is scored once, after training: scoring it
                # every epoch would cost ~6% more time and could tempt one
                # to pick the epoch on the test set.
                print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum / steps_per_epoch:.4f} "
                      f"train top1 {100.0 * correct / seen:.2f} "
                      f"({time.monotonic() - t_epoch:.0f} s)", flush=True)

        os.makedirs(args.out_dir, exist_ok=True)
        onnx_path = os.path.join(args.out_dir, args.name + ".onnx")
        model_export(model, onnx_path)
        top1, top5 = model_evaluate(model, x_test, y_test)
        train_seconds = time.monotonic() - t0
        info = {
                "top1": round(top1, 2),
                "top5": round(top5, 2),
                "n": int(x_test.shape[0]),
                "sha256": file_sha256(onnx_path),
                "params": params,
                "macs": macs,
                "size_bytes": os.path.getsize(onnx_path),
                "epochs": args.epochs,
                "shift": args.shift,
                "train_seconds": round(train_seconds),
                "torch": torch.__version__,
        }
        with open(os.path.join(args.out_dir, args.name + ".json"), "w") as f:
                json.dump(info, f, indent=2)
                f.write("\n")
        print(json.dumps(info), flush=True)
        return 0


if __name__ == "__main__":
        sys.exit(main())
