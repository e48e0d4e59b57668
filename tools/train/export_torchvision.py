#!/usr/bin/python3
"""Export standard torchvision CNNs to ONNX for cvopt's peer comparisons.

The weights are random (weights=None, torch.manual_seed(0)): the point is to
check that cvopt imports and runs the graphs real teams use and gives the
same numbers as PyTorch and ONNX Runtime, not to classify anything, and
there is no network to fetch pretrained weights. BatchNorm running
statistics are made non-trivial (see randomize_batchnorm), as in a trained
network.

The graphs are what torch 1.13 emits with constant folding: resnet18 has
Conv/Relu/MaxPool/Add/GlobalAveragePool/Flatten/Gemm; mobilenet_v2 adds Clip
(ReLU6, min/max as Constant inputs); squeezenet1_1 has Concat and Identity
nodes (the exporter links equal initializers through Identity);
shufflenet_v2_x1_0 has the channel-shuffle and split ops
(Shape/Gather/Div/Mul/Slice/Reshape/Transpose, ReduceMean for the pooling).

For each model NAME this writes, into the output directory:
    NAME.onnx               opset 13, input "input" 1x3x224x224, output "logits" 1x1000
    NAME.input.bin          the fixed random input, raw float32 little-endian, NCHW
    NAME.logits-torch.bin   PyTorch's logits for it, raw float32 (1000 values)

Usage: /usr/bin/python3 tools/train/export_torchvision.py [OUT_DIR] [--models a,b]
(default OUT_DIR: build/models; these files are large and never committed).
"""

import argparse
import os
import sys

import numpy as np
import torch
import torchvision

MODELS = ["resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x1_0"]


def randomize_batchnorm(model, generator):
        """Give every BatchNorm layer non-default running statistics and affine
        parameters.

        A freshly constructed BN layer has mean 0, variance 1, weight 1 and
        bias 0 (torchvision even zero-initialises some of them), which makes
        it almost an identity; trained networks never look like that. The
        eval-mode export folds BN into the convolutions, so these values end
        up as per-channel scales and biases of the Conv weights, which is
        what an importer sees in ONNX files exported this usual way."""
        for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                        c = module.num_features
                        module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                        module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
                        module.weight.data.copy_(0.5 + torch.rand(c, generator=generator))
                        module.bias.data.copy_(0.1 * torch.randn(c, generator=generator))


def model_export(name, out_dir):
        torch.manual_seed(0)
        generator = torch.Generator().manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None)
        with torch.no_grad():
                randomize_batchnorm(model, generator)
        model.eval()

        # Input drawn like a normalised ImageNet image: roughly zero mean,
        # unit variance per channel.
        x = torch.randn(1, 3, 224, 224, generator=generator)
        with torch.no_grad():
                logits = model(x)

        onnx_path = os.path.join(out_dir, name + ".onnx")
        torch.onnx.export(model, x, onnx_path, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)
        import onnx
        onnx.checker.check_model(onnx.load(onnx_path), full_check=True)

        x.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".input.bin"))
        logits.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".logits-torch.bin"))
        size = os.path.getsize(onnx_path)
        top = int(logits.argmax())
        print(f"{name}: {onnx_path} {size} bytes, logits max |v| "
              f"{float(logits.abs().max()):.4g}, argmax {top}", flush=True)


def main():
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("out_dir", nargs="?", default="build/models")
        parser.add_argument("--models", default=",".join(MODELS),
                            help="comma-separated torchvision model names")
        parser.add_argument("--threads", type=int, default=2)
        args = parser.parse_args()

        torch.set_num_threads(args.threads)
        os.makedirs(args.out_dir, exist_ok=True)
        for name in args.models.split(","):
                if not hasattr(torchvision.models, name):
                        print(f"unknown torchvision model: {name}", file=sys.stderr)
                        return 1
                model_export(name, args.out_dir)
        return 0


if __name__ == "__main__":
        sys.exit(main())
