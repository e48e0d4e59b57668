#!/bin/sh
# Runs every test suite: a normal build, then the same suites under
# AddressSanitizer + UndefinedBehaviorSanitizer, then the fuzz targets briefly.
# This is the README's test command; .ci/run calls exactly this.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh

jobs=$(nproc)

echo "== build (debugoptimized)"
[ -f build-test/build.ninja ] || meson setup build-test --buildtype=debugoptimized >/dev/null
ninja -C build-test
echo "== tests (suites unit, kernels, conformance, integration, slow)"
meson test -C build-test --print-errorlogs --num-processes "$jobs"

echo "== build (ASan+UBSan)"
[ -f build-asan/build.ninja ] || meson setup build-asan --buildtype=debug \
	-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-asan
echo "== tests under ASan+UBSan (all but 'slow', the same code on the full dataset, and 'timing', which asserts frame rates)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --print-errorlogs --num-processes "$jobs" --timeout-multiplier 4 --no-suite slow --no-suite timing

if [ -x scripts/fuzz.sh ]; then
	echo "== fuzz (brief)"
	./scripts/fuzz.sh 20
fi
echo "== all tests passed"
