#!/bin/sh
# Runs every libFuzzer target over its committed corpus for SECONDS each
# (default 60): configures a clang build in build-fuzz (-Dfuzz=true),
# builds, fuzzes, and fails on the first crash, leak or sanitizer report.
# New inputs found go to a scratch corpus, not the committed one; crashes are
# left as build-fuzz/fuzz-out/NAME/crash-* to reproduce with
#   build-fuzz/tests/fuzz/fuzz-NAME CRASHFILE
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}

if [ ! -f build-fuzz/build.ninja ]; then
	# fuzzer-no-link instruments the libraries for coverage; the targets
	# themselves link libFuzzer (tests/fuzz/meson.build). clang's
	# -Wformat=2 also flags vsnprintf(format) in error.c, which gcc accepts.
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false \
		-Db_sanitize=address,undefined \
		"-Dc_args=-fsanitize=fuzzer-no-link -Wno-format-nonliteral" >/dev/null
fi
ninja -C build-fuzz

status=0
for corpus in tests/fuzz/corpus/*/; do
	name=$(basename "$corpus")
	exe=build-fuzz/tests/fuzz/fuzz-$name
	if [ ! -x "$exe" ]; then
		echo "fuzz.sh: no target for corpus $corpus ($exe)" >&2
		status=1
		continue
	fi
	out=build-fuzz/fuzz-out/$name
	rm -rf "$out"
	mkdir -p "$out/corpus"
	echo "== fuzz-$name for ${seconds}s"
	if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" "$corpus" \
		>"$out/log" 2>&1; then
		tail -n 60 "$out/log" >&2
		echo "fuzz.sh: fuzz-$name FAILED (artifacts in $out/)" >&2
		status=1
		continue
	fi
	grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/log" || true
done
exit $status
