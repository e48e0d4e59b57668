#!/usr/bin/python3
"""PyTorch fp32 and int8 peers of models/fmnist-ref.onnx, for bench/peers.sh.

The network is re-created from tools/train/train_fmnist.py's FashionNet and
its weights are loaded from the ONNX initializers (their names are the
state_dict keys), so PyTorch runs exactly the weights cvopt and ONNX Runtime
run. int8 is FX graph mode post-training static quantization (the flow the
PyTorch docs recommend for CNNs): prepare_fx (which fuses Conv+BN+ReLU),
calibration on training images, convert_fx.

    torch_int8.py check --onnx M [--ref-logits ORT.bin] [--engines onednn,qnnpack]
        fp32 and int8 top-1/top-5 on the 10k test set; with --ref-logits
        (10k x 10 raw float32, e.g. from bench/ort_run.js) the fp32 logits
        are compared with it first, and the script exits 1 when they differ
        by more than 1e-4 of the logit scale (a wrong weight import).
    torch_int8.py time --onnx M --variant fp32|int8 [--engine E] [--threads N]
                       [--runs N] [--warmup N]
        latency of one batch-1 inference: median, p90, min, and the peak RSS
        of the process from the moment the model is ready (the PyTorch
        runtime and the model, without the calibration images).
    torch_int8.py export-qdq --onnx M -o OUT.onnx [--engine E]
        the int8 model as an ONNX QDQ model for ONNX Runtime (see qdq_export).

All print one JSON object on stdout. Run with Debian's interpreter: the first
python3 on PATH may not see python3-torch.

The quantized engine: Debian's torch 1.13 is built without FBGEMM (see
torch.backends.quantized.supported_engines); "onednn" (x86, uses VNNI where
the CPU has it) and "qnnpack" are what it offers. The default is every
available engine for `check` and onednn for `time`.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "train"))
import train_fmnist  # noqa: E402  (FashionNet, the IDX reader and the preprocessing)

# Calibration images: the same count cvopt optimize uses by default
# (--calib-count 512), drawn from the training split with a fixed seed.
CALIB_COUNT = 512
CALIB_SEED = 1

# Agreement of two float32 runtimes is ~1e-6 of the logit scale (bench/README.md);
# 1e-4 leaves headroom for another summation order and still catches a bad import.
FLOAT_TOLERANCE = 1e-4


def model_load(onnx_path):
        """FashionNet with the weights of ONNX_PATH, in eval mode."""
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(onnx_path)
        weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
                   for t in proto.graph.initializer}
        model = train_fmnist.FashionNet()
        state = model.state_dict()
        missing = [k for k in state if k not in weights and not k.endswith("num_batches_tracked")]
        if missing:
                raise ValueError(f"{onnx_path}: no initializer for {', '.join(missing)}")
        for k in state:
                if k in weights:
                        if weights[k].shape != state[k].shape:
                                raise ValueError(f"{onnx_path}: {k} is {list(weights[k].shape)}, "
                                                 f"FashionNet expects {list(state[k].shape)}")
                        state[k] = weights[k]
        model.load_state_dict(state)
        return model.eval()


def model_quantize(model, engine):
        """FX static int8 quantization of MODEL for ENGINE, calibrated on
        CALIB_COUNT training images."""
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = engine
        x, _ = train_fmnist.dataset_load("train")
        generator = torch.Generator().manual_seed(CALIB_SEED)
        calib = x[torch.randperm(x.shape[0], generator=generator)[:CALIB_COUNT]]
        example = (torch.zeros(1, 1, 28, 28),)
        prepared = prepare_fx(model, get_default_qconfig_mapping(engine), example)
        with torch.no_grad():
                for i in range(0, calib.shape[0], 64):
                        prepared(calib[i:i + 64])
        return convert_fx(prepared).eval()


def model_logits(model, x, batch_size=500):
        with torch.no_grad():
                return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def topk_score(logits, y):
        best5 = logits.topk(5, dim=1).indices
        n = y.shape[0]
        return (round(100.0 * (best5[:, 0] == y).sum().item() / n, 2),
                round(100.0 * (best5 == y[:, None]).any(dim=1).sum().item() / n, 2))


def qdq_export(qmodel, path):
        """Write QMODEL (a convert_fx result of FashionNet) as an ONNX QDQ model.

        ONNX Runtime's own quantizer is a Python package that is not on this
        machine (only onnxruntime-node is), so the ONNX Runtime int8 peer gets
        the same int8 numbers PyTorch computed: the BN-folded per-channel
        int8 weights, the int32 biases, and the activation scales and zero
        points from PyTorch's calibration, as QuantizeLinear/DequantizeLinear
        pairs around each float op. That is the "QDQ" format ORT's graph
        optimizer fuses into its int8 kernels (QLinearConv, QGemm, int8
        MaxPool), the same form its own quantizer writes."""
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        nodes, inits = [], []

        def const(name, array):
                inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
                return name

        def qdq(x, scale, zero_point, tag):
                """x (float) -> Q -> DQ; returns the dequantized name."""
                s = const(f"{tag}.scale", np.array(scale, dtype=np.float32))
                z = const(f"{tag}.zero_point", np.array(zero_point, dtype=np.uint8))
                nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [f"{tag}.q"]))
                nodes.append(helper.make_node("DequantizeLinear", [f"{tag}.q", s, z], [f"{tag}.dq"]))
                return f"{tag}.dq"

        def weights(tag, module, in_scale):
                w = module.weight()
                w_scale = w.q_per_channel_scales().numpy().astype(np.float32)
                if w.qscheme() != torch.per_channel_affine or w.q_per_channel_zero_points().abs().max() != 0:
                        raise ValueError(f"{tag}: expected symmetric per-channel int8 weights")
                wq = const(f"{tag}.w.q", w.int_repr().numpy().astype(np.int8))
                ws = const(f"{tag}.w.scale", w_scale)
                wz = const(f"{tag}.w.zero_point", np.zeros_like(w_scale, dtype=np.int8))
                nodes.append(helper.make_node("DequantizeLinear", [wq, ws, wz], [f"{tag}.w"], axis=0))
                b_scale = (in_scale * w_scale.astype(np.float64)).astype(np.float32)
                b = module.bias().detach().numpy().astype(np.float64)
                bq = const(f"{tag}.b.q", np.round(b / b_scale).astype(np.int32))
                bs = const(f"{tag}.b.scale", b_scale)
                bz = const(f"{tag}.b.zero_point", np.zeros_like(b_scale, dtype=np.int32))
                nodes.append(helper.make_node("DequantizeLinear", [bq, bs, bz], [f"{tag}.b"], axis=0))
                return f"{tag}.w", f"{tag}.b"

        features = dict(qmodel.features.named_children())
        classifier = dict(qmodel.classifier.named_children())
        scale = float(qmodel.features_0_input_scale_0)
        zero_point = int(qmodel.features_0_input_zero_point_0)
        x = qdq("input", scale, zero_point, "input")
        for i in ("0", "3", "4", "7", "8"):
                m = features[i]
                if i in ("3", "7"):
                        # MaxPool keeps its input's scale: Q/DQ around it are exact.
                        nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
                        x = qdq(f"pool{i}", scale, zero_point, f"pool{i}")
                        continue
                w, b = weights(f"conv{i}", m, scale)
                nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
                nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
                scale, zero_point = float(m.scale), int(m.zero_point)
                x = qdq(f"relu{i}", scale, zero_point, f"relu{i}")
        nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
        scale, zero_point = float(qmodel.classifier_0_scale_0), int(qmodel.classifier_0_zero_point_0)
        x = qdq("flat", scale, zero_point, "flat")
        for i, relu in (("2", True), ("5", False)):
                m = classifier[i]
                w, b = weights(f"fc{i}", m, scale)
                out = f"fc{i}" if relu else "logits.float"
                nodes.append(helper.make_node("Gemm", [x, w, b], [out], transB=1))
                if relu:
                        nodes.append(helper.make_node("Relu", [out], [f"relu_fc{i}"]))
                        out = f"relu_fc{i}"
                scale, zero_point = float(m.scale), int(m.zero_point)
                x = qdq(out, scale, zero_point, f"q_fc{i}")
        # PyTorch's int8 model ends with a dequantize: so does this one.
        nodes.append(helper.make_node("Identity", [x], ["logits"]))
        graph = helper.make_graph(nodes, "fmnist-int8-qdq",
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 28, 28])],
                                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="bench/torch_int8.py")
        proto.ir_version = 7
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, path)


def cmd_export_qdq(args):
        model = model_load(args.onnx)
        qmodel = model_quantize(model, args.engine)
        qdq_export(qmodel, args.output)
        print(json.dumps({"output": args.output, "engine": args.engine, "calib_count": CALIB_COUNT,
                          "size_bytes": os.path.getsize(args.output)}))
        return 0


def cmd_check(args):
        engines = args.engines.split(",") if args.engines else \
                [e for e in ("onednn", "fbgemm", "x86", "qnnpack") if e in torch.backends.quantized.supported_engines]
        model = model_load(args.onnx)
        x, y = train_fmnist.dataset_load("test")
        logits = model_logits(model, x)
        top1, top5 = topk_score(logits, y)
        report = {"torch": torch.__version__, "model": args.onnx, "n": int(y.shape[0]),
                  "supported_engines": torch.backends.quantized.supported_engines,
                  "fp32": {"top1": top1, "top5": top5}, "int8": {}}
        status = 0
        if args.ref_logits:
                ref = torch.from_numpy(np.fromfile(args.ref_logits, dtype="<f4").copy())
                if ref.numel() != logits.numel():
                        raise ValueError(f"{args.ref_logits}: {ref.numel()} values, expected {logits.numel()}")
                ref = ref.reshape(logits.shape)
                max_abs = (logits - ref).abs().max().item()
                rel = max_abs / ref.abs().max().item()
                same = (logits.argmax(1) == ref.argmax(1)).float().mean().item()
                report["fp32_vs_ref"] = {"ref": args.ref_logits, "max_abs_err": max_abs, "max_rel_err": rel,
                                         "same_top1_fraction": same}
                if rel > FLOAT_TOLERANCE:
                        status = 1
        for engine in engines:
                qmodel = model_quantize(model, engine)
                qtop1, qtop5 = topk_score(model_logits(qmodel, x), y)
                report["int8"][engine] = {"top1": qtop1, "top5": qtop5, "calib_count": CALIB_COUNT}
        print(json.dumps(report))
        return status


def rss_peak_reset():
        try:
                with open("/proc/self/clear_refs", "w") as f:
                        f.write("5")
                return True
        except OSError:
                return False


def rss_peak_bytes():
        try:
                with open("/proc/self/status") as f:
                        for line in f:
                                if line.startswith("VmHWM:"):
                                        return int(line.split()[1]) * 1024
        except OSError:
                pass
        # ru_maxrss is in KiB on Linux.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cmd_time(args):
        default_threads = torch.get_num_threads()
        if args.threads > 0:
                torch.set_num_threads(args.threads)
        model = model_load(args.onnx)
        engine = None
        if args.variant == "int8":
                engine = args.engine
                model = model_quantize(model, engine)
        # A fixed test image: batch 1, as the other engines are timed.
        x, _ = train_fmnist.dataset_load("test")
        image = x[:1].contiguous()
        del x
        # Reset the peak RSS (Linux: "5" to clear_refs) so that it measures
        # inference, not the training images read for calibration; what is
        # left is the PyTorch runtime, the model and its working memory.
        peak_reset = rss_peak_reset()
        times = []
        with torch.inference_mode():
                for _ in range(args.warmup):
                        model(image)
                for _ in range(args.runs):
                        start = time.perf_counter_ns()
                        model(image)
                        times.append((time.perf_counter_ns() - start) / 1e6)
        times.sort()

        def quantile(f):
                # Nearest rank, as cvopt bench computes it.
                return times[min(int(f * (len(times) - 1) + 0.5), len(times) - 1)]

        print(json.dumps({"torch": torch.__version__, "variant": args.variant, "engine": engine,
                          "threads": torch.get_num_threads(), "default_threads": default_threads,
                          "runs": args.runs, "warmup": args.warmup,
                          "median_ms": quantile(0.5), "p90_ms": quantile(0.9), "min_ms": times[0],
                          "peak_rss_bytes": rss_peak_bytes(), "peak_rss_since": "model ready" if peak_reset
                          else "process start"}))
        return 0


def main():
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        sub = parser.add_subparsers(dest="cmd", required=True)
        check = sub.add_parser("check")
        check.add_argument("--onnx", required=True)
        check.add_argument("--ref-logits")
        check.add_argument("--engines", help="comma-separated quantized engines (default: all available)")
        timing = sub.add_parser("time")
        timing.add_argument("--onnx", required=True)
        timing.add_argument("--variant", choices=("fp32", "int8"), required=True)
        timing.add_argument("--engine", default="onednn")
        timing.add_argument("--threads", type=int, default=1, help="intra-op threads (0: leave PyTorch's default)")
        timing.add_argument("--runs", type=int, default=200)
        timing.add_argument("--warmup", type=int, default=20)
        export = sub.add_parser("export-qdq")
        export.add_argument("--onnx", required=True)
        export.add_argument("--engine", default="onednn")
        export.add_argument("-o", "--output", required=True)
        args = parser.parse_args()
        if getattr(args, "engine", None) and args.engine not in torch.backends.quantized.supported_engines:
                parser.error(f"engine {args.engine} not in {torch.backends.quantized.supported_engines}")
        if args.cmd == "time" and (args.runs < 1 or args.warmup < 0):
                parser.error("--runs must be >= 1, --warmup >= 0")
        return {"check": cmd_check, "time": cmd_time, "export-qdq": cmd_export_qdq}[args.cmd](args)


if __name__ == "__main__":
        sys.exit(main())
