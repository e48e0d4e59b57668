#!/usr/bin/python3
"""Turn the raw measurements of bench/peers.sh into RESULTS/cpu-DATE.{md,json}.

Not meant to be run alone: peers.sh passes everything through the
environment (ROOT, MODEL, CVM, QDQ, TMP, RESULTS, STAMP, ROUNDS, RUNS, WARMUP,
LOAD_BEFORE, LOAD_AFTER, COMMIT, DIRTY, ARGS) and the files it wrote in TMP.
"""

import json
import os
import platform
import re
import statistics
import subprocess

E = os.environ
TMP = E["TMP"]

# What each engine label in peers.sh means, for the tables.
ENGINES = {
        "cvopt-fp32": ("cvopt", "fp32", "cpu-ref (scalar reference)", 1),
        "cvopt-int8": ("cvopt", "int8", "cpu-simd, best ISA (AVX-512 VNNI here)", 1),
        "cvopt-int8-t2": ("cvopt", "int8", "cpu-simd, best ISA, --threads 2", 2),
        "cvopt-int8-avx2": ("cvopt", "int8", "cpu-simd, CVOPT_CPU_ISA=avx2", 1),
        "ort-fp32-t1": ("ONNX Runtime", "fp32", "CPU EP, intraOpNumThreads=1", 1),
        "ort-fp32-t2": ("ONNX Runtime", "fp32", "CPU EP, intraOpNumThreads=2", 2),
        "ort-int8-t1": ("ONNX Runtime", "int8", "CPU EP, QDQ model, intraOpNumThreads=1", 1),
        "ort-int8-t2": ("ONNX Runtime", "int8", "CPU EP, QDQ model, intraOpNumThreads=2", 2),
        "torch-fp32-t1": ("PyTorch", "fp32", "eager, set_num_threads(1)", 1),
        "torch-fp32-t2": ("PyTorch", "fp32", "eager, set_num_threads(2)", 2),
        "torch-int8-onednn-t1": ("PyTorch", "int8", "FX static, onednn, set_num_threads(1)", 1),
        "torch-int8-onednn-t2": ("PyTorch", "int8", "FX static, onednn, set_num_threads(2)", 2),
        "torch-int8-qnnpack-t1": ("PyTorch", "int8", "FX static, qnnpack, set_num_threads(1)", 1),
}
PEER_INT8 = [k for k, v in ENGINES.items() if v[0] != "cvopt" and v[1] == "int8"]


def jsonl(path):
        with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]


def jload(path):
        with open(path) as f:
                return json.load(f)


def run(*cmd):
        try:
                return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        except OSError:
                return ""


def machine():
        lscpu = run("lscpu")
        field = lambda name: (re.search(rf"^{name}:\s*(.*)$", lscpu, re.M) or [None, "?"])[1].strip()  # noqa: E731
        flags = field("Flags").split()
        mhz = None
        with open("/proc/cpuinfo") as f:
                m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)
                if m:
                        mhz = float(m.group(1))
        return {"model_name": field("Model name"), "cpus": field("CPU\\(s\\)"), "hypervisor": field("Hypervisor vendor"),
                "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")},
                "cpuinfo_mhz": mhz, "kernel": platform.release(),
                "cc": run("cc", "--version").splitlines()[0] if run("cc", "--version") else "?"}


def model_macs(path):
        """MACs per image of every Conv and Gemm node of the ONNX model, by node name."""
        import onnx
        from onnx import shape_inference

        proto = shape_inference.infer_shapes(onnx.load(path))
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in list(proto.graph.value_info) + list(proto.graph.output) + list(proto.graph.input)}
        inits = {t.name: list(t.dims) for t in proto.graph.initializer}
        macs = {}
        for n in proto.graph.node:
                if n.op_type == "Conv":
                        w = inits[n.input[1]]
                        out = shapes[n.output[0]]
                        macs[n.name] = out[1] * out[2] * out[3] * w[1] * w[2] * w[3]
                elif n.op_type == "Gemm":
                        w = inits[n.input[1]]
                        macs[n.name] = w[0] * w[1]
        return macs


def main():
        rounds = jsonl(os.path.join(TMP, "timings.jsonl"))
        accuracy = {a["engine"]: a["result"] for a in jsonl(os.path.join(TMP, "accuracy.jsonl"))}
        per = {}
        for r in rounds:
                per.setdefault(r["engine"], []).append(r)
        summary = {}
        for engine, rs in per.items():
                med = [r["result"]["median_ms"] for r in rs]
                p90 = [r["result"].get("p90_ms") for r in rs]
                rss = [r["result"].get("peak_rss_bytes") for r in rs]
                summary[engine] = {
                        "runtime": ENGINES[engine][0], "precision": ENGINES[engine][1],
                        "config": ENGINES[engine][2], "threads": ENGINES[engine][3],
                        "median_ms": statistics.median(med),
                        "p90_ms": statistics.median(p90) if None not in p90 else None,
                        "round_medians_ms": med, "peak_rss_bytes": max(rss) if None not in rss else None,
                        "load1_per_round": [r["load1"] for r in rs],
                }
                first = rs[0]["result"]
                for k in ("ort", "torch", "default_threads", "backend", "peak_rss_since"):
                        if k in first:
                                summary[engine][k] = first[k]

        # Top-1 where it was measured.
        top1 = {}
        if "cvopt-fp32" in accuracy:
                top1["cvopt-fp32"] = accuracy["cvopt-fp32"]["top1"]
        if "cvopt-int8" in accuracy:
                # Threads split work, not results: --threads 2 gives the same bytes.
                top1["cvopt-int8"] = top1["cvopt-int8-t2"] = top1["cvopt-int8-avx2"] = accuracy["cvopt-int8"]["top1"]
        if "ort-fp32" in accuracy:
                top1["ort-fp32-t1"] = top1["ort-fp32-t2"] = accuracy["ort-fp32"]["top1"]
        if "ort-int8" in accuracy:
                top1["ort-int8-t1"] = top1["ort-int8-t2"] = accuracy["ort-int8"]["top1"]
        if "torch" in accuracy:
                t = accuracy["torch"]
                top1["torch-fp32-t1"] = top1["torch-fp32-t2"] = t["fp32"]["top1"]
                for eng, v in t["int8"].items():
                        for k in summary:
                                if k.startswith(f"torch-int8-{eng}-"):
                                        top1[k] = v["top1"]

        def ratio(a, b):
                return summary[b]["median_ms"] / summary[a]["median_ms"]

        peers_t1 = [k for k in PEER_INT8 if summary[k]["threads"] == 1]
        best_t1 = min(peers_t1, key=lambda k: summary[k]["median_ms"])
        best_any = min(PEER_INT8, key=lambda k: summary[k]["median_ms"])
        ratios = {
                "int8_vs_own_fp32": ratio("cvopt-int8", "cvopt-fp32"),
                "int8_vs_best_peer_int8_1thread": ratio("cvopt-int8", best_t1), "best_peer_int8_1thread": best_t1,
                "int8_vs_best_peer_int8_any": ratio("cvopt-int8", best_any), "best_peer_int8_any": best_any,
                "int8_vs_ort_fp32_1thread": ratio("cvopt-int8", "ort-fp32-t1"),
                "int8_avx512_vs_avx2": ratio("cvopt-int8", "cvopt-int8-avx2"),
                "int8_2threads_vs_1thread": ratio("cvopt-int8-t2", "cvopt-int8"),
                "int8_2threads_vs_ort_int8_2threads": ratio("cvopt-int8-t2", "ort-int8-t2"),
        }
        targets = {
                "int8_vs_own_fp32": {"target": 3.0, "measured": ratios["int8_vs_own_fp32"]},
                "int8_vs_best_peer_int8": {"target": 2.0, "measured": ratios["int8_vs_best_peer_int8_1thread"],
                                           "peer": best_t1},
        }
        for t in targets.values():
                t["met"] = t["measured"] >= t["target"]
                t["shortfall_factor"] = t["target"] / t["measured"]

        # Per-layer: achieved int8 GOPS (2 ops per MAC) against the VNNI peak.
        mach = machine()
        macs = model_macs(E["MODEL"])
        ghz = (mach["cpuinfo_mhz"] or 0) / 1000
        # AVX-512 VNNI: one VPDPBUSD does 16 lanes x 4 u8*s8 products = 64 MACs;
        # server cores with two 512-bit FMA ports issue two per cycle.
        vnni_macs_per_cycle = 2 * 64
        peak_gops = 2 * vnni_macs_per_cycle * ghz if ghz else None
        layers = {}
        for tag, fname in (("int8", "layers-int8.json"), ("int8_avx2", "layers-int8-avx2.json"),
                           ("fp32", "layers-fp32.json")):
                layers[tag] = jload(os.path.join(TMP, fname))
        layer_rows = []
        for i, l in enumerate(layers["int8"]["layers"]):
                row = {"name": l["name"], "op": l["op"], "int8_ms": l["median_ms"],
                       "int8_avx2_ms": layers["int8_avx2"]["layers"][i]["median_ms"]}
                fp = [f for f in layers["fp32"]["layers"] if f["name"] == l["name"]]
                row["fp32_ms"] = fp[0]["median_ms"] if fp else None
                if l["name"] in macs:
                        row["macs"] = macs[l["name"]]
                        row["int8_gops"] = 2 * macs[l["name"]] / (l["median_ms"] * 1e6) if l["median_ms"] > 0 else None
                        row["int8_avx2_gops"] = (2 * macs[l["name"]] / (row["int8_avx2_ms"] * 1e6)
                                                 if row["int8_avx2_ms"] > 0 else None)
                        if peak_gops and row["int8_gops"]:
                                row["fraction_of_vnni_peak"] = row["int8_gops"] / peak_gops
                layer_rows.append(row)

        sizes = {"onnx_fp32": os.path.getsize(E["MODEL"]), "cvm_int8": os.path.getsize(E["CVM"]),
                 "onnx_int8_qdq": os.path.getsize(E["QDQ"])}
        # cvopt optimize --report X.md --json writes X.json beside the report.
        optimize = jload(os.path.join(TMP, "optimize.json"))
        rel = lambda p: os.path.relpath(p, E["ROOT"])  # noqa: E731
        commands = {
                "all": "bench/peers.sh" + (f" {E['ARGS']}" if E.get("ARGS") else ""),
                "cvopt-int8-model": f"build-bench/tools/cvopt/cvopt optimize {rel(E['MODEL'])} -o {rel(E['CVM'])} "
                                    "--calib fashion-mnist:train --val fashion-mnist:test --mean 0.2860 --std 0.3530",
                "cvopt-fp32": f"build-bench/tools/cvopt/cvopt bench {rel(E['MODEL'])} --backend cpu-ref "
                              f"--mean 0.2860 --std 0.3530 --runs {E['RUNS']} --warmup {E['WARMUP']} --json",
                "cvopt-int8": f"build-bench/tools/cvopt/cvopt bench {rel(E['CVM'])} --backend cpu --runs {E['RUNS']} "
                              f"--warmup {E['WARMUP']} --json   (and with --threads 2, and with CVOPT_CPU_ISA=avx2)",
                "ort": f"node bench/ort_run.js MODEL {rel(TMP)}/image0.bin OUT.bin --shape 1,1,28,28 --threads T "
                       f"--repeat {E['RUNS']}   (MODEL: the .onnx, or the QDQ int8 export)",
                "ort-int8-model": f"/usr/bin/python3 bench/torch_int8.py export-qdq --onnx {rel(E['MODEL'])} "
                                  f"-o {rel(E['QDQ'])}",
                "torch": f"/usr/bin/python3 bench/torch_int8.py time --onnx {rel(E['MODEL'])} --variant fp32|int8 "
                         f"[--engine onednn|qnnpack] --threads T --runs {E['RUNS']} --warmup {E['WARMUP']}",
                "layers": f"build-bench/tools/cvopt/cvopt bench {rel(E['CVM'])} --layers --json",
                "accuracy": "cvopt eval MODEL --data fashion-mnist:test; bench/fmnist_eval.py score (ORT); "
                            "bench/torch_int8.py check --ref-logits (PyTorch)",
        }
        report = {"date": E["STAMP"], "commit": E["COMMIT"] + ("-dirty" if E.get("DIRTY") else ""),
                  "machine": mach, "model": rel(E["MODEL"]), "rounds": int(E["ROUNDS"]), "runs": int(E["RUNS"]),
                  "warmup": int(E["WARMUP"]), "loadavg_before": E["LOAD_BEFORE"], "loadavg_after": E["LOAD_AFTER"],
                  "engines": summary, "top1": top1, "accuracy_raw": accuracy, "ratios": ratios, "targets": targets,
                  "sizes_bytes": sizes, "optimize": {k: optimize.get(k) for k in ("before", "after")
                                                     if k in optimize},
                  "vnni_peak": {"macs_per_cycle": vnni_macs_per_cycle, "ghz_assumed": ghz, "gops": peak_gops},
                  "layers": layer_rows, "commands": commands}
        base = os.path.join(E["RESULTS"], f"cpu-{E['STAMP']}")
        with open(base + ".json", "w") as f:
                json.dump(report, f, indent=1)
                f.write("\n")
        with open(base + ".md", "w") as f:
                f.write(markdown(report))
        print(base + ".md")


def fmt(v, digits=3):
        return "—" if v is None else f"{v:.{digits}f}"


def markdown(r):
        m = r["machine"]
        s = r["engines"]
        out = [f"# CPU benchmark, {r['date']}: `{r['model']}` in cvopt and its peers", "",
               "Written by `bench/peers.sh` (do not edit by hand; re-run it).", "",
               "## Machine and run", "",
               f"- CPU: {m['model_name']}, {m['cpus']} CPUs ({m['hypervisor'] or 'bare metal'} guest), "
               f"/proc/cpuinfo clock {m['cpuinfo_mhz']} MHz; flags: "
               + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items()),
               f"- kernel {m['kernel']}; {m['cc']}; cvopt commit {r['commit']} (release build, `build-bench/`)",
               f"- load average before timing: `{r['loadavg_before']}`; after: `{r['loadavg_after']}` "
               "(the machine is shared; 2 cores)",
               f"- batch 1; every engine: {r['warmup']} warm-up runs (ORT: 1), then {r['runs']} timed runs in one "
               f"process; {r['rounds']} rounds, engines interleaved within each round; median and p90 below are "
               "the medians over the rounds of each round's median and p90", ""]
        out += ["## Latency, memory, accuracy", "",
                "| engine | precision | configuration | threads | median ms | p90 ms | round medians (min–max) "
                "| peak RSS MiB | top-1 % |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        for k, v in s.items():
                rm = v["round_medians_ms"]
                rss = v["peak_rss_bytes"]
                out.append(f"| {v['runtime']} | {v['precision']} | {v['config']} | {v['threads']} | "
                           f"{fmt(v['median_ms'])} | {fmt(v['p90_ms'])} | {min(rm):.3f}–{max(rm):.3f} | "
                           f"{fmt(rss / 1048576 if rss else None, 1)} | {fmt(r['top1'].get(k), 2)} |")
        t = r["targets"]
        rt = r["ratios"]
        out += ["", "Peak RSS: cvopt's is the whole `cvopt bench` process (getrusage); ORT's the whole `node` "
                "process (`/usr/bin/time`); PyTorch's is measured from the moment the model is ready "
                "(peak reset through /proc/self/clear_refs after loading and calibrating), so it holds the "
                "PyTorch runtime, the model and the inference, not the calibration images.", "",
                "## Ratios and the DESIGN targets", "",
                "| comparison | measured | target | verdict |", "|---|---:|---:|---|",
                f"| cvopt int8 vs cvopt fp32 (cpu-ref) | {rt['int8_vs_own_fp32']:.2f}x faster | ≥ 3x | "
                + verdict(t["int8_vs_own_fp32"]) + " |",
                f"| cvopt int8 vs best peer int8 at 1 thread ({s[rt['best_peer_int8_1thread']]['runtime']} "
                f"{s[rt['best_peer_int8_1thread']]['config']}) | {speed(rt['int8_vs_best_peer_int8_1thread'])} "
                "| ≥ 2x faster | " + verdict(t["int8_vs_best_peer_int8"]) + " |",
                f"| cvopt int8 vs best peer int8, any thread count ({s[rt['best_peer_int8_any']]['config']}) | "
                f"{speed(rt['int8_vs_best_peer_int8_any'])} | — | — |",
                f"| cvopt int8 vs ONNX Runtime fp32, 1 thread | {speed(rt['int8_vs_ort_fp32_1thread'])} | — | — |",
                f"| cvopt int8, AVX-512 VNNI path vs AVX2 path | {speed(rt['int8_avx512_vs_avx2'])} | — | — |",
                f"| cvopt int8, 2 threads vs 1 thread | {speed(rt['int8_2threads_vs_1thread'])} | — | — |",
                f"| cvopt int8 vs ONNX Runtime int8, both on 2 threads | "
                f"{speed(rt['int8_2threads_vs_ort_int8_2threads'])} | — | — |", ""]
        z = r["sizes_bytes"]
        out += ["## Model sizes", "", "| file | bytes |", "|---|---:|",
                f"| float ONNX (`{r['model']}`) | {z['onnx_fp32']:,} |",
                f"| cvopt int8 `.cvm` | {z['cvm_int8']:,} ({z['onnx_fp32'] / z['cvm_int8']:.2f}x smaller) |",
                f"| ONNX QDQ int8 (ORT peer, exported by `torch_int8.py export-qdq`) | {z['onnx_int8_qdq']:,} |", ""]
        p = r["vnni_peak"]
        out += ["## cvopt per layer (int8, one thread)", "",
                f"Peak assumed: AVX-512 VNNI, VPDPBUSD = 16 lanes x 4 u8·s8 products = 64 MACs per instruction, "
                f"{p['macs_per_cycle'] // 64} per cycle (two 512-bit FMA ports, as on Xeon server cores), "
                f"= {p['macs_per_cycle']} MACs = {2 * p['macs_per_cycle']} int8 ops per cycle per core, at "
                f"{p['ghz_assumed']:.2f} GHz (the clock /proc/cpuinfo shows; the real clock of this KVM guest, "
                f"turbo included, is unknown) = **{fmt(p['gops'], 0)} GOPS per core**. If this core has only one "
                "512-bit FMA port the peak is half that. The CPU also has AMX-INT8, which peers may use and "
                "whose peak is far higher; the target is stated against VNNI.", "",
                "| layer | op | MACs | int8 ms | int8 GOPS | % of VNNI peak | AVX2 path ms | AVX2 GOPS | fp32 ms |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for row in r["layers"]:
                frac = row.get("fraction_of_vnni_peak")
                out.append(f"| `{row['name']}` | {row['op']} | {row.get('macs', 0):,} | {row['int8_ms']:.4f} | "
                           f"{fmt(row.get('int8_gops'), 1)} | {fmt(frac * 100 if frac else None, 1)} | "
                           f"{row['int8_avx2_ms']:.4f} | {fmt(row.get('int8_avx2_gops'), 1)} | "
                           f"{fmt(row.get('fp32_ms'), 4)} |")
        torch_default = next((v.get("default_threads") for k, v in s.items() if k.startswith("torch-")), None)
        engines = r["accuracy_raw"].get("torch", {}).get("supported_engines")
        out += ["", "## Notes", "",
                "- cvopt int8 runs one inference on one thread unless asked (`--threads`), so the like-for-like "
                "comparisons are with the 1-thread peers; the 2-thread rows (cvopt's included: cpu-simd splits "
                "its large layers, here only the 6272x160 Gemm, over a pool of threads) show what each engine "
                "gains from the second core (on this shared machine, OpenMP threads that spin at barriers make "
                "PyTorch's 2-thread numbers erratic: see the round medians).",
                "- ONNX Runtime int8: ORT's own quantizer is a Python package that is not installed here (only "
                "onnxruntime-node is), so `torch_int8.py export-qdq` writes the PyTorch-calibrated int8 model "
                "(BN-folded per-channel int8 weights, int32 biases, PyTorch's activation scales) as an ONNX "
                "QDQ model, the form ORT's quantizer writes; ORT fuses it into int8 kernels.",
                f"- PyTorch {s.get('torch-int8-onednn-t1', {}).get('torch', '?')} (Debian): quantized engines "
                f"available {engines}; FBGEMM is not built in, so int8 runs on onednn and qnnpack. Its default "
                f"intra-op thread count here is {torch_default}.",
                "- cvopt's int8 model: `cvopt optimize` defaults (per-channel int8 weights, uint8 activations, "
                "mse calibration on 512 training images, bias correction)."]
        out += ["", "## Commands", ""] + [f"- {k}: `{v}`" for k, v in r["commands"].items()] + [""]
        return "\n".join(out)


def speed(x):
        return f"{x:.2f}x faster" if x >= 1 else f"{1 / x:.2f}x slower"


def verdict(t):
        if t["met"]:
                return f"met ({t['measured']:.2f}x)"
        return f"**missed**: needs {t['shortfall_factor']:.2f}x more speed"


if __name__ == "__main__":
        main()
