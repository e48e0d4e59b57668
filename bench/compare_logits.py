#!/usr/bin/python3
"""Compare raw float32 logit files from different runtimes.

Usage: compare_logits.py [--tolerance T] [--classes C] [--json] NAME=FILE NAME=FILE [NAME=FILE ...]

The first file is the reference b (normally PyTorch). For every other file a
the script prints

    max_rel_err = max_i |a_i - b_i| / max_i |b_i|

(the error relative to the logits' own scale, so it means the same for a
model whose logits are around 1 and one whose logits are around 100), plus
whether the top-1 class agrees and how many of the top-5 classes agree.
With --classes C the files hold several outputs of C logits each (one per
input, e.g. a whole test set); max_rel_err is then taken over all of them and
top-1 agreement is the fraction of inputs whose best class is the same.
Exit status: 0 when every file is within the tolerance and has the same
top-1 class, 1 otherwise, 2 on unusable input (missing file, wrong size).
"""

import argparse
import json
import os
import sys

import numpy as np


def logits_load(path):
        size = os.path.getsize(path)
        if size == 0 or size % 4 != 0:
                raise ValueError(f"{path}: {size} bytes is not a non-empty float32 array")
        values = np.fromfile(path, dtype="<f4").astype(np.float64)
        if not np.all(np.isfinite(values)):
                raise ValueError(f"{path}: contains NaN or infinity")
        return values


def logits_compare(a, b, classes):
        scale = float(np.max(np.abs(b)))
        max_abs = float(np.max(np.abs(a - b)))
        result = {
                "max_abs_err": max_abs,
                "max_rel_err": max_abs / scale if scale > 0 else float("inf"),
        }
        if classes:
                a = a.reshape(-1, classes)
                b = b.reshape(-1, classes)
                agree = float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))
                result["inputs"] = int(a.shape[0])
                result["top1_agreement"] = agree
                result["top1_same"] = agree == 1.0
                return result
        top5_a = np.argsort(-a, kind="stable")[:5]
        top5_b = np.argsort(-b, kind="stable")[:5]
        result["top1_same"] = bool(top5_a[0] == top5_b[0])
        result["top5_overlap"] = int(len(set(top5_a.tolist()) & set(top5_b.tolist())))
        return result


def main():
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("--tolerance", type=float, default=1e-4,
                            help="largest acceptable max_rel_err (default 1e-4, "
                                 "float32 summation-order noise on 224x224 CNNs is ~1e-6)")
        parser.add_argument("--classes", type=int, default=0,
                            help="logits per input when a file holds several inputs")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("files", nargs="+", metavar="NAME=FILE")
        args = parser.parse_args()

        named = []
        for item in args.files:
                name, sep, path = item.partition("=")
                if not sep or not name or not path:
                        print(f"expected NAME=FILE, got {item!r}", file=sys.stderr)
                        return 2
                named.append((name, path))
        if len(named) < 2:
                print("need a reference and at least one file to compare", file=sys.stderr)
                return 2

        try:
                arrays = [(name, logits_load(path)) for name, path in named]
        except (OSError, ValueError) as e:
                print(e, file=sys.stderr)
                return 2
        ref_name, ref = arrays[0]
        results = {}
        ok = True
        for name, values in arrays[1:]:
                if values.shape != ref.shape:
                        print(f"{name}: {values.size} values, {ref_name} has {ref.size}",
                              file=sys.stderr)
                        return 2
                if args.classes < 0 or (args.classes and ref.size % args.classes):
                        print(f"{ref.size} values are not a whole number of "
                              f"{args.classes}-class outputs", file=sys.stderr)
                        return 2
                r = logits_compare(values, ref, args.classes)
                r["ok"] = r["max_rel_err"] <= args.tolerance and r["top1_same"]
                ok = ok and r["ok"]
                results[name] = r

        if args.json:
                print(json.dumps({"reference": ref_name, "n": int(ref.size),
                                  "tolerance": args.tolerance, "results": results}))
        else:
                for name, r in results.items():
                        if args.classes:
                                agreement = (f"top1 agreement {100 * r['top1_agreement']:.2f} % "
                                             f"of {r['inputs']} inputs")
                        else:
                                agreement = (f"top1 {'same' if r['top1_same'] else 'DIFFERENT'}, "
                                             f"top5 overlap {r['top5_overlap']}/5")
                        print(f"{name} vs {ref_name}: max_rel_err {r['max_rel_err']:.3e} "
                              f"(max_abs {r['max_abs_err']:.3e}), {agreement}"
                              f"{'' if r['ok'] else '  FAIL'}")
        return 0 if ok else 1


if __name__ == "__main__":
        sys.exit(main())
