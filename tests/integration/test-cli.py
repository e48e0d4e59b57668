#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Integration test of the cvopt CLI (convert, info, run) on the reference
Fashion-MNIST model: what a user sees, exit codes, labels against the
dataset's, .onnx and .cvm agreeing, and errors that name the file.

Usage: test-cli.py CVOPT WRITE_FMNIST_IMAGES MODEL.onnx
Exits 77 (meson's "skipped") when MODEL.onnx does not exist yet."""

import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

CVOPT, WRITER, MODEL = sys.argv[1:4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def cvopt(*args):
    p = subprocess.run([CVOPT, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def expect(rc_want, args, stderr_has=None):
    rc, out, err = cvopt(*args)
    check(rc == rc_want, f"cvopt {' '.join(args)}: exit {rc}, expected {rc_want} (stderr: {err.strip()})")
    if stderr_has is not None:
        check(stderr_has in err, f"cvopt {' '.join(args)}: stderr does not name {stderr_has!r}: {err.strip()}")
    if rc_want == 1:
        lines = [l for l in err.splitlines() if l.startswith("cvopt: ")]
        check(len(lines) >= 1, f"cvopt {' '.join(args)}: no 'cvopt: ' error line: {err.strip()}")
    return out, err


def usage_checks(tmp):
    """Usage errors exit 2 and need no model."""
    out, _ = expect(0, ["--help"])
    check("convert" in out and "info" in out and "run" in out, "--help lists the commands")
    out, _ = expect(0, ["--version"])
    check(out.startswith("cvopt "), "--version prints 'cvopt VERSION'")
    for cmd in ("convert", "info", "run"):
        out, _ = expect(0, [cmd, "--help"])
        check(out.startswith("Usage: cvopt " + cmd), f"cvopt {cmd} --help prints its usage")
    expect(2, [])
    expect(2, ["frobnicate"])
    expect(2, ["run", "--bogus", "m.onnx", "x.png"])
    expect(2, ["run", "--top", "0", "m.onnx", "x.png"])
    expect(2, ["run", "--top", "abc", "m.onnx", "x.png"])
    expect(2, ["run", "m.onnx"])
    expect(2, ["run", "--color", "purple", "m.onnx", "x.png"])
    expect(2, ["run", "--mean", "0.1,0.2", "m.onnx", "x.png"])
    expect(2, ["run", "--std", "0", "m.onnx", "x.png"])
    expect(2, ["run", "--resize", "squash", "m.onnx", "x.png"])
    expect(2, ["convert", "m.onnx"])
    expect(2, ["convert", "-o", "x.cvm"])
    expect(2, ["info"])
    expect(2, ["info", "a", "b"])

    # Missing and corrupt models fail with exit 1 and the file named.
    missing = os.path.join(tmp, "no-such-model.onnx")
    expect(1, ["info", missing], stderr_has=missing)
    expect(1, ["run", missing, "x.png"], stderr_has=missing)
    garbage = os.path.join(tmp, "garbage.onnx")
    with open(garbage, "wb") as f:
        f.write(b"\xff\xfe this is not a protobuf message" * 10)
    expect(1, ["info", garbage], stderr_has=garbage)
    expect(1, ["convert", garbage, "-o", os.path.join(tmp, "g.cvm")], stderr_has=garbage)
    check(not os.path.exists(os.path.join(tmp, "g.cvm")), "a failed convert writes no .cvm")


def read_images(tmp, count, fmt):
    d = os.path.join(tmp, fmt)
    os.mkdir(d)
    p = subprocess.run([WRITER, d, str(count), fmt], capture_output=True, text=True, check=True)
    items = []
    for line in p.stdout.splitlines():
        path, label, name = line.split("\t")
        items.append((path, int(label), name))
    check(len(items) == count, f"write-fmnist-images wrote {len(items)} of {count} {fmt} images")
    return items


def run_json(model, paths, extra=()):
    rc, out, err = cvopt("run", "--json", "--top", "3", *extra, model, *paths)
    check(rc == 0, f"cvopt run --json {model}: exit {rc}: {err.strip()}")
    return [json.loads(l) for l in out.splitlines()]


def model_checks(tmp):
    cvm = os.path.join(tmp, "fmnist.cvm")
    out, _ = expect(0, ["convert", MODEL, "-o", cvm])
    check(os.path.getsize(cvm) > 0, "convert writes the .cvm")
    check(out.startswith(cvm + ": ") and " nodes, " in out and " params, " in out and " bytes" in out,
          f"convert prints a one-line summary: {out.strip()}")

    # info --json on both forms.
    with open(MODEL, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    for path in (cvm, MODEL):
        out, _ = expect(0, ["info", "--json", path])
        info = json.loads(out)
        check(info["inputs"][0]["shape"] == [1, 1, 28, 28], f"info {path}: input shape {info['inputs'][0]}")
        check(info["outputs"][0]["shape"] == [1, 10], f"info {path}: output shape {info['outputs'][0]}")
        spec = info["input_spec"]
        check(spec["width"] == 28 and spec["height"] == 28 and spec["color"] == "gray",
              f"info {path}: input spec {spec}")
        check(abs(spec["mean"][0] - 0.286) < 1e-6 and abs(spec["std"][0] - 0.353) < 1e-6,
              f"info {path}: mean/std from the model's preprocessing metadata: {spec}")
        check(len(info["labels"]) == 10 and info["labels"][9] == "Ankle boot", f"info {path}: labels {info['labels']}")
        check(info["n_params"] > 100000 and info["params_bytes"] >= 4 * info["n_params"] - 1024,
              f"info {path}: params {info['n_params']} bytes {info['params_bytes']}")
        check(info["op_counts"].get("Conv", 0) >= 1 and "BatchNormalization" not in info["op_counts"],
              f"info {path}: BN folded into Conv: {info['op_counts']}")
        check(sum(l["params"] for l in info["layers"]) == info["n_params"],
              f"info {path}: per-layer params add up to the total")
        check(len(info["layers"]) == info["n_nodes"], f"info {path}: one layer row per node")
    info = json.loads(expect(0, ["info", "--json", cvm])[0])
    check(len(info["id"]) == 16, f"info: .cvm model id {info['id']!r}")
    prov = info["provenance"]
    check(isinstance(prov, dict) and prov["source"]["sha256"] == sha and prov["source"]["file"] == os.path.basename(MODEL),
          f"info: provenance records the source name and sha256: {prov}")
    out, _ = expect(0, ["info", cvm])
    check("Ankle boot" in out and "Conv" in out and "28x28 gray" in out, "info text shows labels, ops, spec")

    # Spec flags are recorded and checked against the input shape.
    cvm2 = os.path.join(tmp, "flags.cvm")
    expect(0, ["convert", MODEL, "-o", cvm2, "--mean", "0.5", "--std", "0.25", "--resize", "center-crop"])
    info2 = json.loads(expect(0, ["info", "--json", cvm2])[0])
    check(info2["input_spec"]["resize"] == "center-crop" and abs(info2["input_spec"]["std"][0] - 0.25) < 1e-6,
          f"convert flags set the spec: {info2['input_spec']}")
    check(info2["provenance"]["input_spec_flags"].get("resize") == "center-crop", "provenance records the flags")
    expect(1, ["convert", MODEL, "-o", os.path.join(tmp, "rgb.cvm"), "--color", "rgb"], stderr_has=MODEL)

    # Without metadata the spec comes from the input shape and the labels
    # are "class N" (needs Debian's python3-onnx to strip the metadata).
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        bare_model = onnx.load(MODEL)
        del bare_model.metadata_props[:]
        bare = os.path.join(tmp, "bare.onnx")
        onnx.save(bare_model, bare)
        info3 = json.loads(expect(0, ["info", "--json", bare])[0])
        spec3 = info3["input_spec"]
        check(spec3["color"] == "gray" and spec3["width"] == 28 and spec3["mean"] == [0] and spec3["std"] == [1]
              and info3["labels"] == [], f"spec derived from the input shape without metadata: {info3['input_spec']}")
        info4 = json.loads(expect(0, ["info", "--json", bare, "--mean", "0.286", "--std", "0.353"])[0])
        check(abs(info4["input_spec"]["std"][0] - 0.353) < 1e-6, "flags apply to a model without metadata")
    else:
        print("note: python3-onnx missing, metadata-free model not checked")

    # Classification against the dataset's labels.
    images = read_images(tmp, 5, "png")
    pgms = read_images(tmp, 2, "pgm")
    res_cvm = run_json(cvm, [p for p, _, _ in images + pgms])
    res_onnx = run_json(MODEL, [p for p, _, _ in images + pgms])
    check(len(res_cvm) == 7 and len(res_onnx) == 7, "one JSON line per image")
    correct = 0
    for (path, label, name), rc, ro in zip(images + pgms, res_cvm, res_onnx):
        check(rc["image"] == path, f"run: image field {rc['image']} for {path}")
        check(rc["class"] == ro["class"], f"{path}: .cvm top-1 {rc['class']} differs from .onnx {ro['class']}")
        check(abs(rc["score"] - ro["score"]) < 1e-4, f"{path}: .cvm score {rc['score']} vs .onnx {ro['score']}")
        check(0 < rc["score"] <= 1 and len(rc["top"]) == 3 and rc["top"][0]["class"] == rc["class"],
              f"{path}: score is a probability and top[0] is the answer: {rc}")
        check(sum(t["score"] for t in rc["top"]) <= 1.0001, f"{path}: top scores sum to at most 1")
        check(rc["top"][0]["score"] >= rc["top"][1]["score"] >= rc["top"][2]["score"], f"{path}: top is sorted")
        if rc["class"] == label:
            correct += 1 if path.endswith(".png") else 0
            check(rc["label"] == name, f"{path}: label {rc['label']!r} for class {label}, dataset says {name!r}")
    check(correct >= 4, f"{correct} of 5 test images classified as the dataset labels them (want >= 4)")

    if onnx is not None:
        res_bare = run_json(bare, [images[0][0]], ["--mean", "0.286", "--std", "0.353"])
        check(res_bare[0]["label"] == f"class {res_bare[0]['class']}" and res_bare[0]["class"] == res_cvm[0]["class"],
              f"a model without labels says 'class N', same answer with the same spec: {res_bare[0]}")

    out, _ = expect(0, ["run", cvm, images[0][0]])
    check(out.startswith(images[0][0] + ": " + res_cvm[0]["label"]), f"run text output: {out.strip()}")

    # --input-raw / --logits-out: the same pixels as the first PGM, normalized
    # by hand, must give the same class and logits whose softmax is the score.
    with open(pgms[0][0], "rb") as f:
        data = f.read()
    pixels = data[-784:]
    raw = os.path.join(tmp, "input.bin")
    with open(raw, "wb") as f:
        f.write(struct.pack("<784f", *[((p / 255.0) - 0.286) / 0.353 for p in pixels]))
    logits = os.path.join(tmp, "logits.bin")
    res_raw = run_json(cvm, [], ["--input-raw", raw, "--logits-out", logits])
    check(len(res_raw) == 1 and res_raw[0]["class"] == res_cvm[5]["class"],
          f"--input-raw gives the image's class: {res_raw} vs {res_cvm[5]}")
    check(os.path.getsize(logits) == 40, f"--logits-out writes 10 float32: {os.path.getsize(logits)} bytes")
    with open(logits, "rb") as f:
        values = struct.unpack("<10f", f.read())
    check(max(range(10), key=lambda i: values[i]) == res_raw[0]["class"], "argmax of the logits is the class")
    # Several inputs back to back: one run each, outputs concatenated in order.
    raw2 = os.path.join(tmp, "input2.bin")
    with open(raw, "rb") as f:
        one = f.read()
    with open(raw2, "wb") as f:
        f.write(one + bytes(len(one)) + one)
    logits2 = os.path.join(tmp, "logits2.bin")
    res_raw2 = run_json(cvm, [], ["--input-raw", raw2, "--logits-out", logits2])
    check([r["image"] for r in res_raw2] == [raw2 + "[0]", raw2 + "[1]", raw2 + "[2]"],
          f"a batch file gives one result per input, named FILE[i]: {[r['image'] for r in res_raw2]}")
    with open(logits2, "rb") as f:
        values2 = struct.unpack("<30f", f.read())
    check(values2[:10] == values and values2[20:] == values and values2[10:20] != values,
          "batch outputs are concatenated in input order")
    short = os.path.join(tmp, "short.bin")
    with open(short, "wb") as f:
        f.write(b"\0" * 100)
    expect(1, ["run", cvm, "--input-raw", short], stderr_has=short)
    expect(2, ["run", cvm, "--input-raw", raw, images[0][0]])

    # Bad images: named, the good ones still classified, exit 1.
    notimg = os.path.join(tmp, "not-an-image.png")
    with open(notimg, "w") as f:
        f.write("hello\n")
    out, _ = expect(1, ["run", cvm, notimg, images[0][0]], stderr_has=notimg)
    check(images[0][0] in out, "the good image after a bad one is still classified")
    expect(1, ["run", cvm, os.path.join(tmp, "missing.png")], stderr_has=os.path.join(tmp, "missing.png"))

    # A truncated .cvm and a .cvm with a flipped byte fail to load, named.
    with open(cvm, "rb") as f:
        blob = bytearray(f.read())
    trunc = os.path.join(tmp, "trunc.cvm")
    with open(trunc, "wb") as f:
        f.write(blob[:len(blob) // 2])
    expect(1, ["info", trunc], stderr_has=trunc)
    flipped = os.path.join(tmp, "flipped.cvm")
    blob[len(blob) // 2] ^= 0x40
    with open(flipped, "wb") as f:
        f.write(blob)
    expect(1, ["run", flipped, images[0][0]], stderr_has=flipped)


def main():
    with tempfile.TemporaryDirectory(prefix="cvopt-test-cli-") as tmp:
        usage_checks(tmp)
        if not os.path.exists(MODEL):
            print(f"SKIP: {MODEL} not found (the reference model lands with tools/train)")
            return 77 if not failures else 1
        model_checks(tmp)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
