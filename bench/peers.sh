#!/bin/bash
# SPDX-License-Identifier: MIT
#
# cvopt on the CPU side by side with its peers, in one run (CONVENTIONS.md §12):
# the reference model in cvopt fp32 (cpu-ref), cvopt int8 (cpu-simd, best ISA
# on 1 and 2 threads, and forced AVX2), ONNX Runtime fp32 and int8, PyTorch fp32 and int8, batch 1,
# after warm-up; median and p90 latency, peak RSS, model sizes, top-1 on the
# 10k Fashion-MNIST test set, and cvopt's per-layer times with achieved GOPS.
#
# Usage: bench/peers.sh [MODEL.onnx]        (default models/fmnist-ref.onnx)
# Environment:
#   ROUNDS=5        rounds; each round runs every engine once, in turn
#                   (a,b,c,a,b,c...), so drift in the machine's load hits all
#                   engines alike; the reported numbers are medians over rounds
#   RUNS=200        timed inferences per engine and round (after WARMUP=20)
#   MAX_LOAD=2.5    wait until the 1-minute load average is below this before
#   LOAD_WAIT_SEC=0   timing, for at most LOAD_WAIT_SEC seconds (0: don't wait)
#   ACCURACY=1      0 skips the 10k test-set accuracies (about a minute), and
#                   with them the check of PyTorch's weight import against ORT
#   RESULTS=bench/results   where cpu-DATE.md and cpu-DATE.json go
#
# Writes RESULTS/cpu-YYYY-MM-DD.{md,json}; scratch files go to RESULTS/tmp
# (ignored by git). The PyTorch and ORT-int8 peers re-create FashionNet
# (tools/train/train_fmnist.py), so they work for that architecture only.
set -euo pipefail
shopt -s inherit_errexit # a failing engine inside $(...) stops the run too

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODEL=$(realpath "${1:-$ROOT/models/fmnist-ref.onnx}")
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
MAX_LOAD=${MAX_LOAD:-2.5}
LOAD_WAIT_SEC=${LOAD_WAIT_SEC:-0}
ACCURACY=${ACCURACY:-1}
RESULTS=$(realpath -m "${RESULTS:-$ROOT/bench/results}")
TMP=$RESULTS/tmp
PY=/usr/bin/python3 # Debian's: the python3 first on PATH may not see python3-torch
# The reference model's preprocessing (models/README.md).
PREPROCESS=(--mean 0.2860 --std 0.3530)
STAMP=$(date -u +%Y-%m-%d)

cd "$ROOT"
mkdir -p "$TMP"
log() { printf 'peers: %s\n' "$*" >&2; }

# --- build -------------------------------------------------------------------
if [ ! -f build-bench/build.ninja ]; then
        log "meson setup build-bench --buildtype=release"
        meson setup build-bench --buildtype=release >"$TMP/meson-setup.log"
fi
ninja -C build-bench -j2 >"$TMP/ninja.log"
CVOPT=$ROOT/build-bench/tools/cvopt/cvopt

if ! node -e "require('$ROOT/bench/node_modules/onnxruntime-node')" 2>/dev/null; then
        log "npm ci --ignore-scripts (onnxruntime-node; see bench/README.md)"
        (cd bench && npm ci --ignore-scripts --no-audit --no-fund >"$TMP/npm.log" 2>&1)
fi

# --- models --------------------------------------------------------------------
CVM=$TMP/model-int8.cvm
QDQ=$TMP/model-int8-qdq.onnx
log "cvopt optimize -> $CVM"
"$CVOPT" optimize "$MODEL" -o "$CVM" --calib fashion-mnist:train --val fashion-mnist:test \
        "${PREPROCESS[@]}" --report "$TMP/optimize.md" --json >"$TMP/optimize-stdout.json" 2>"$TMP/optimize.log"
log "torch_int8.py export-qdq -> $QDQ"
$PY bench/torch_int8.py export-qdq --onnx "$MODEL" -o "$QDQ" >"$TMP/export-qdq.json"

# One test image (the first of the set, preprocessed), for ORT's timing input.
$PY bench/fmnist_eval.py write-inputs "$TMP/test-inputs.bin"
head -c 3136 "$TMP/test-inputs.bin" >"$TMP/image0.bin"

# --- accuracy on the 10k test set ---------------------------------------------------
: >"$TMP/accuracy.jsonl"
if [ "$ACCURACY" = 1 ]; then
        log "accuracy: cvopt eval, ORT + fmnist_eval.py, torch_int8.py check"
        acc() { printf '{"engine":"%s","result":%s}\n' "$1" "$2" >>"$TMP/accuracy.jsonl"; }
        # Each result goes through a variable: set -e then stops the script
        # when a command fails (it ignores a failing $(...) inside arguments).
        result=$("$CVOPT" eval "$MODEL" --data fashion-mnist:test --backend cpu-ref "${PREPROCESS[@]}" --json 2>/dev/null)
        acc cvopt-fp32 "$result"
        result=$("$CVOPT" eval "$CVM" --data fashion-mnist:test --json 2>/dev/null)
        acc cvopt-int8 "$result"
        node bench/ort_run.js "$MODEL" "$TMP/test-inputs.bin" "$TMP/logits-ort.bin" --shape 1,1,28,28 >/dev/null
        result=$($PY bench/fmnist_eval.py score "$TMP/logits-ort.bin")
        acc ort-fp32 "$result"
        node bench/ort_run.js "$QDQ" "$TMP/test-inputs.bin" "$TMP/logits-ort-int8.bin" --shape 1,1,28,28 >/dev/null
        result=$($PY bench/fmnist_eval.py score "$TMP/logits-ort-int8.bin")
        acc ort-int8 "$result"
        # check also verifies the PyTorch import against ORT's fp32 logits
        # (exit 1 beyond 1e-4 of the logit scale): no timing of a wrong model.
        result=$($PY bench/torch_int8.py check --onnx "$MODEL" --ref-logits "$TMP/logits-ort.bin")
        acc torch "$result"
fi

# --- timing ------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
if [ "$LOAD_WAIT_SEC" -gt 0 ]; then
        waited=0
        while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l >= m) }'; do
                [ "$waited" -ge "$LOAD_WAIT_SEC" ] && { log "load $(load1) still >= $MAX_LOAD; timing anyway"; break; }
                sleep 15
                waited=$((waited + 15))
        done
fi

# Each engine prints one JSON object with median_ms, p90_ms, peak_rss_bytes.
bench_cvopt() { "$CVOPT" bench "$@" --runs "$RUNS" --warmup "$WARMUP" --json; }
bench_ort() { # MODEL THREADS
        # ort_run.js runs the input once (warm-up), then RUNS timed runs;
        # the peak RSS is the whole node process's, from /usr/bin/time.
        local out
        out=$(/usr/bin/time -f '%M' -o "$TMP/ort-rss" node bench/ort_run.js "$1" "$TMP/image0.bin" \
                "$TMP/ort-out.bin" --shape 1,1,28,28 --threads "$2" --repeat "$RUNS")
        printf '%s' "$out" | sed "s/}\$/,\"peak_rss_bytes\":$(($(cat "$TMP/ort-rss") * 1024))}/"
}
bench_torch() { $PY bench/torch_int8.py time --onnx "$MODEL" --runs "$RUNS" --warmup "$WARMUP" "$@"; }

ENGINES=(cvopt-fp32 cvopt-int8 cvopt-int8-t2 cvopt-int8-avx2 ort-fp32-t1 ort-fp32-t2 ort-int8-t1 ort-int8-t2
         torch-fp32-t1 torch-fp32-t2 torch-int8-onednn-t1 torch-int8-onednn-t2 torch-int8-qnnpack-t1)
engine_run() {
        case "$1" in
        cvopt-fp32) bench_cvopt "$MODEL" --backend cpu-ref "${PREPROCESS[@]}" ;;
        cvopt-int8) bench_cvopt "$CVM" --backend cpu ;;
        cvopt-int8-t2) bench_cvopt "$CVM" --backend cpu --threads 2 ;;
        cvopt-int8-avx2) CVOPT_CPU_ISA=avx2 bench_cvopt "$CVM" --backend cpu ;;
        ort-fp32-t1) bench_ort "$MODEL" 1 ;;
        ort-fp32-t2) bench_ort "$MODEL" 2 ;;
        ort-int8-t1) bench_ort "$QDQ" 1 ;;
        ort-int8-t2) bench_ort "$QDQ" 2 ;;
        torch-fp32-t1) bench_torch --variant fp32 --threads 1 ;;
        torch-fp32-t2) bench_torch --variant fp32 --threads 2 ;;
        torch-int8-onednn-t1) bench_torch --variant int8 --engine onednn --threads 1 ;;
        torch-int8-onednn-t2) bench_torch --variant int8 --engine onednn --threads 2 ;;
        torch-int8-qnnpack-t1) bench_torch --variant int8 --engine qnnpack --threads 1 ;;
        esac
}

: >"$TMP/timings.jsonl"
LOAD_BEFORE=$(cat /proc/loadavg)
log "timing: $ROUNDS rounds x ${#ENGINES[@]} engines, $RUNS runs each (load: $LOAD_BEFORE)"
for round in $(seq 1 "$ROUNDS"); do
        for engine in "${ENGINES[@]}"; do
                result=$(engine_run "$engine")
                printf '{"engine":"%s","round":%d,"load1":%s,"result":%s}\n' \
                        "$engine" "$round" "$(load1)" "$result" >>"$TMP/timings.jsonl"
        done
        log "round $round done (load $(load1))"
done
LOAD_AFTER=$(cat /proc/loadavg)

# Per-layer medians of the int8 model (VNNI and AVX2 paths) and of fp32.
bench_cvopt "$CVM" --layers >"$TMP/layers-int8.json"
CVOPT_CPU_ISA=avx2 bench_cvopt "$CVM" --layers >"$TMP/layers-int8-avx2.json"
bench_cvopt "$MODEL" --backend cpu-ref --layers "${PREPROCESS[@]}" >"$TMP/layers-fp32.json"

# --- report --------------------------------------------------------------------------
export ROOT MODEL CVM QDQ TMP RESULTS STAMP ROUNDS RUNS WARMUP LOAD_BEFORE LOAD_AFTER
export COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
export DIRTY=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -c1)
export ARGS="$*"
$PY bench/peers_report.py
