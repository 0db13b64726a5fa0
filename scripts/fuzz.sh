#!/usr/bin/env bash
# The libFuzzer target over the core (tests/fuzz/ctc_fuzz.cpp), built with
# clang -fsanitize=fuzzer,address,undefined in build/fuzz and run from the
# committed seed corpus (tests/fuzz/corpus) for a bounded time. A finding
# (crash, sanitizer report, kernel disagreement, validation mistake) fails
# this script and leaves the input in build/fuzz/crash-*.
#   scripts/fuzz.sh             60 s (scripts/test.sh runs this)
#   scripts/fuzz.sh 3600        an hour; or FUZZ_JOBS=2 scripts/fuzz.sh 3600 for two processes
#   build/fuzz/ctc_fuzz build/fuzz/crash-...   replays one input
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN=${1:-60}
BUILD=build/fuzz
echo "== building the fuzzer (clang, -fsanitize=fuzzer,address,undefined) in $BUILD"
cmake -S tests/fuzz -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

# New inputs go to build/fuzz/corpus; the committed seeds are only read.
mkdir -p "$BUILD/corpus"
echo "== fuzzing for ${SECONDS_TO_RUN} s"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
parallel=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi  # logs in fuzz-*.log
status=0
"$BUILD/ctc_fuzz" "$BUILD/corpus" tests/fuzz/corpus -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
  -artifact_prefix="$BUILD/" -print_final_stats=1 "${parallel[@]}" >"$BUILD/fuzz.log" 2>&1 || status=$?
grep -E "^#[0-9]+ +DONE|^stat::" "$BUILD/fuzz.log" || true
if [ "$status" -ne 0 ]; then
  tail -n 60 "$BUILD/fuzz.log"
  echo "ctc_fuzz found a problem (exit $status); the input is in $BUILD/crash-* (replay: $BUILD/ctc_fuzz <file>)" >&2
  exit "$status"
fi
