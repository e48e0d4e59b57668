#!/bin/sh
# The main job, end to end on one machine: install dependencies, build a
# release, convert the reference Fashion-MNIST model to .cvm, and classify a
# few Fashion-MNIST test images with it, next to their true labels.
# (Later: optimize the model, then serve it with the daemon.)
#
# Environment: BUILD_DIR (default build-release), N_IMAGES (default 8),
# MODEL (default models/fmnist-ref.onnx).
set -eu
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-release}
n_images=${N_IMAGES:-8}
model=${MODEL:-models/fmnist-ref.onnx}

./scripts/deps.sh

echo "== build ($build, release)"
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" tools/cvopt/cvopt tests/integration/write-fmnist-images >/dev/null
cvopt="$build/tools/cvopt/cvopt"

if [ ! -f "$model" ]; then
	echo "demo: $model not found (tools/train/train_fmnist.py produces it)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cvopt-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "== convert $model"
"$cvopt" convert "$model" -o "$tmp/model.cvm"
"$cvopt" info "$tmp/model.cvm" | sed -n '1,9p'

echo "== classify $n_images Fashion-MNIST test images"
"$build/tests/integration/write-fmnist-images" "$tmp" "$n_images" png >"$tmp/truth.tsv"
cut -f1 "$tmp/truth.tsv" | xargs "$cvopt" run --top 1 "$tmp/model.cvm" >"$tmp/predicted.txt"

# predicted.txt lines: "PATH: LABEL SCORE"; truth.tsv: "PATH<TAB>INDEX<TAB>LABEL".
printf '%-16s %-14s %-14s %s\n' IMAGE PREDICTED TRUE SCORE
correct=0
total=0
while IFS='	' read -r path index truth; do
	line=$(grep -F "$path: " "$tmp/predicted.txt")
	rest=${line#"$path: "}
	score=${rest##* }
	label=${rest% *}
	mark=" "
	if [ "$label" = "$truth" ]; then
		correct=$((correct + 1))
	else
		mark="x"
	fi
	total=$((total + 1))
	printf '%-16s %-14s %-14s %s %s\n' "$(basename "$path")" "$label" "$truth" "$score" "$mark"
done <"$tmp/truth.tsv"
echo "== $correct of $total correct"
