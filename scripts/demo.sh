#!/bin/sh
# The main job, end to end on one machine with no camera and no GPU:
#   1. install dependencies, build a release;
#   2. optimize the reference float model (models/fmnist-ref.onnx) for the
#      user's original task — at least 50% smaller, 30% faster, at most
#      2 points of top-1 lost — and print the before/after table;
#   3. serve the optimized model with cvoptd on the replay camera (the
#      Fashion-MNIST test set as 640x480 YUYV frames), and show live
#      results and telemetry with cvoptctl;
#   4. stop the daemon.
#
# Environment: BUILD_DIR (default build-release), FRAMES (results to show,
# default 20), MODEL (default models/fmnist-ref.onnx).
set -eu
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-release}
frames=${FRAMES:-20}
model=${MODEL:-models/fmnist-ref.onnx}

./scripts/deps.sh

echo "== build ($build, release)"
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" tools/cvopt/cvopt daemon/cvoptd tools/cvoptctl/cvoptctl >/dev/null
cvopt="$build/tools/cvopt/cvopt"
cvoptd="$build/daemon/cvoptd"
cvoptctl="$build/tools/cvoptctl/cvoptctl"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cvopt-demo.XXXXXX")
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "== optimize $model: >= 50% smaller, >= 30% faster, <= 2 points of top-1"
"$cvopt" optimize "$model" -o "$tmp/model.cvm" --mean 0.2860 --std 0.3530 \
	--calib fashion-mnist:train --val fashion-mnist:test \
	--min-size-reduction 50 --min-speedup 30 --max-drop 2 --report "$tmp/report.md"

echo
echo "== serve it: cvoptd on the replay camera (Fashion-MNIST test set, 640x480 YUYV, 30 fps)"
cat >"$tmp/cvoptd.conf" <<CONF
[camera]
device = replay:fashion-mnist:test,fps=30,loop
[model]
path = $tmp/model.cvm
[server]
socket = $tmp/cvoptd.sock
CONF
"$cvoptd" --config "$tmp/cvoptd.conf" 2>"$tmp/cvoptd.log" &
daemon_pid=$!
for _ in $(seq 50); do
	[ -S "$tmp/cvoptd.sock" ] && break
	sleep 0.1
done
export CVOPTD_SOCKET="$tmp/cvoptd.sock"

echo "-- $frames live results (cvoptctl subscribe)"
"$cvoptctl" subscribe -n "$frames"
echo
echo "-- status (cvoptctl status)"
"$cvoptctl" status
echo
echo "-- the serving model (cvoptctl model)"
"$cvoptctl" model
echo
echo "== stop"
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=
echo "daemon log:"
sed 's/^/  /' "$tmp/cvoptd.log" | tail -5
