#!/bin/bash
# Run the same models on the same input in PyTorch, ONNX Runtime and cvopt,
# and compare their logits (bench/compare_logits.py).
#
# Usage: bench/compare_ort.sh [MODELS_DIR]      (default: build/models)
#
# Environment:
#   CVOPT=path     the cvopt CLI (default: build/tools/cvopt/cvopt); when it is
#                  missing the cvopt column is skipped, and the script says so.
#   MODELS=a,b     which torchvision models (default: all four the exporter makes)
#   PYTHON=path    a python3 that sees Debian's torch (default: /usr/bin/python3)
#
# Steps:
#   1. onnxruntime-node is installed into bench/node_modules if missing
#      (npm install --ignore-scripts: the package carries its CPU binary;
#      the skipped postinstall script would only fetch CUDA/TensorRT parts).
#   2. The torchvision models are exported with random weights if missing
#      (tools/train/export_torchvision.py), each with NAME.input.bin and
#      NAME.logits-torch.bin.
#   3. ORT runs each model: NAME.logits-ort.bin.
#   4. cvopt converts and runs each model:
#          cvopt convert NAME.onnx -o NAME.cvm
#          cvopt run NAME.cvm --input-raw NAME.input.bin --logits-out NAME.logits-cvopt.bin
#   5. compare_logits.py compares PyTorch and cvopt against ORT.
#   6. The reference model models/fmnist-ref.onnx runs in ORT and cvopt on the
#      whole 10k Fashion-MNIST test set (one raw file, 10000 inputs back to
#      back), both are scored (top-1/top-5) and their logits compared.
# Exit status: 0 when every comparison is within tolerance, 1 otherwise.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$BENCH_DIR")
MODELS_DIR=${1:-$ROOT_DIR/build/models}
CVOPT=${CVOPT:-$ROOT_DIR/build/tools/cvopt/cvopt}
PYTHON=${PYTHON:-/usr/bin/python3}
MODELS=${MODELS:-resnet18,mobilenet_v2,squeezenet1_1,shufflenet_v2_x1_0}

ort_ensure() {
        if node -e "require('$BENCH_DIR/node_modules/onnxruntime-node')" 2>/dev/null; then
                return 0
        fi
        echo "installing onnxruntime-node into $BENCH_DIR/node_modules" >&2
        (cd "$BENCH_DIR" && npm install --ignore-scripts --no-audit --no-fund >&2)
        node -e "require('$BENCH_DIR/node_modules/onnxruntime-node')"
}

ort_ensure

missing=
for name in ${MODELS//,/ }; do
        for suffix in .onnx .input.bin .logits-torch.bin; do
                [[ -f $MODELS_DIR/$name$suffix ]] || missing="$missing,$name"
        done
done
if [[ -n $missing ]]; then
        "$PYTHON" "$ROOT_DIR/tools/train/export_torchvision.py" "$MODELS_DIR" --models "$MODELS"
fi

have_cvopt=1
if [[ ! -x $CVOPT ]]; then
        echo "note: $CVOPT not found: comparing PyTorch and ORT only" >&2
        have_cvopt=0
fi

status=0
for name in ${MODELS//,/ }; do
        base=$MODELS_DIR/$name
        node "$BENCH_DIR/ort_run.js" "$base.onnx" "$base.input.bin" "$base.logits-ort.bin" >/dev/null
        # ORT first: the reference every other engine is compared against.
        files=("ort=$base.logits-ort.bin" "torch=$base.logits-torch.bin")
        if (( have_cvopt )); then
                rm -f "$base.logits-cvopt.bin"
                if "$CVOPT" convert "$base.onnx" -o "$base.cvm" &&
                   "$CVOPT" run "$base.cvm" --input-raw "$base.input.bin" \
                                --logits-out "$base.logits-cvopt.bin" >/dev/null; then
                        files+=("cvopt=$base.logits-cvopt.bin")
                else
                        echo "$name: cvopt failed" >&2
                        status=1
                fi
        fi
        echo "== $name"
        "$PYTHON" "$BENCH_DIR/compare_logits.py" "${files[@]}" || status=1
done
FMNIST=$ROOT_DIR/models/fmnist-ref.onnx
if [[ -f $FMNIST ]]; then
        fm=$MODELS_DIR/fmnist-test
        [[ -f $fm.input.bin ]] || "$PYTHON" "$BENCH_DIR/fmnist_eval.py" write-inputs "$fm.input.bin"
        node "$BENCH_DIR/ort_run.js" "$FMNIST" "$fm.input.bin" "$fm.logits-ort.bin" --shape 1,1,28,28 >/dev/null
        echo "== fmnist-ref (10000 test images)"
        echo "ort: $("$PYTHON" "$BENCH_DIR/fmnist_eval.py" score "$fm.logits-ort.bin")"
        if (( have_cvopt )); then
                rm -f "$fm.logits-cvopt.bin"
                if "$CVOPT" convert "$FMNIST" -o "$MODELS_DIR/fmnist-ref.cvm" &&
                   "$CVOPT" run "$MODELS_DIR/fmnist-ref.cvm" --input-raw "$fm.input.bin" \
                                --logits-out "$fm.logits-cvopt.bin" >/dev/null; then
                        echo "cvopt: $("$PYTHON" "$BENCH_DIR/fmnist_eval.py" score "$fm.logits-cvopt.bin")"
                        "$PYTHON" "$BENCH_DIR/compare_logits.py" --classes 10 \
                                "ort=$fm.logits-ort.bin" "cvopt=$fm.logits-cvopt.bin" || status=1
                else
                        echo "fmnist-ref: cvopt failed" >&2
                        status=1
                fi
        fi
fi
exit $status
