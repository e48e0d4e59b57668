#!/usr/bin/python3
"""Fashion-MNIST test set as raw tensors, and top-1/top-5 of a logits file.

    fmnist_eval.py write-inputs OUT.bin     the 10k test images, preprocessed
                                            exactly as models/fmnist-ref.onnx
                                            expects, raw float32 1x1x28x28 each
    fmnist_eval.py score LOGITS.bin         top-1/top-5 (percent) of 10k x 10
                                            raw float32 logits, as JSON

With bench/ort_run.js this evaluates the exported ONNX file itself, outside
PyTorch, on the same 10k images:

    bench/fmnist_eval.py write-inputs /tmp/fm.bin
    node bench/ort_run.js models/fmnist-ref.onnx /tmp/fm.bin /tmp/fm-ort.bin --shape 1,1,28,28
    bench/fmnist_eval.py score /tmp/fm-ort.bin
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "train"))
import train_fmnist  # noqa: E402  (the one IDX reader and preprocessing)


def main():
        if len(sys.argv) != 3 or sys.argv[1] not in ("write-inputs", "score"):
                print(__doc__, file=sys.stderr)
                return 2
        x, y = train_fmnist.dataset_load("test")
        if sys.argv[1] == "write-inputs":
                x.numpy().astype("<f4").tofile(sys.argv[2])
                return 0
        logits = np.fromfile(sys.argv[2], dtype="<f4")
        n = y.shape[0]
        if logits.size != n * len(train_fmnist.LABELS):
                print(f"{sys.argv[2]}: {logits.size} values, expected {n} x 10", file=sys.stderr)
                return 2
        logits = logits.reshape(n, -1)
        labels = y.numpy()
        best5 = np.argsort(-logits, axis=1, kind="stable")[:, :5]
        top1 = float(np.mean(best5[:, 0] == labels)) * 100
        top5 = float(np.mean((best5 == labels[:, None]).any(axis=1))) * 100
        print(json.dumps({"top1": round(top1, 2), "top5": round(top5, 2), "n": int(n)}))
        return 0


if __name__ == "__main__":
        sys.exit(main())
