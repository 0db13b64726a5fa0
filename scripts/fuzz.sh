#!/usr/bin/env bash
# The libFuzzer targets over the core, built with clang
# -fsanitize=fuzzer,address,undefined in build/fuzz and run from their committed
# seed corpora for a bounded time: ctc_fuzz (tests/fuzz/ctc_fuzz.cpp, the loss
# engine; seeds in tests/fuzz/corpus), then arpa_fuzz (tests/fuzz/arpa_fuzz.cpp,
# the ARPA reader and the beam search's LM scorer; seeds in tests/fuzz/arpa_corpus).
# A finding (crash, sanitizer report, kernel disagreement, validation mistake)
# fails this script and leaves the input in build/fuzz/<target>-crash-*.
#   scripts/fuzz.sh             60 s of ctc_fuzz, then 30 s of arpa_fuzz (scripts/test.sh runs this)
#   scripts/fuzz.sh 3600 600    an hour and ten minutes; FUZZ_JOBS=2 for two processes each
#   build/fuzz/ctc_fuzz build/fuzz/ctc_fuzz-crash-...   replays one input
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_TO_RUN=${1:-60}
ARPA_SECONDS=${2:-30}
BUILD=build/fuzz
echo "== building the fuzzer (clang, -fsanitize=fuzzer,address,undefined) in $BUILD"
cmake -S tests/fuzz -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

# New inputs go to build/fuzz/<target>-corpus; the committed seeds are only read.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
parallel=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then parallel=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi  # logs in fuzz-*.log

# fuzz TARGET SEEDS SECONDS MAX_LEN
fuzz() {
  local target=$1 seeds=$2 seconds=$3 max_len=$4 status=0
  mkdir -p "$BUILD/$target-corpus"
  echo "== fuzzing $target for $seconds s"
  "$BUILD/$target" "$BUILD/$target-corpus" "$seeds" -max_total_time="$seconds" -max_len="$max_len" \
    -artifact_prefix="$BUILD/$target-" -print_final_stats=1 "${parallel[@]}" >"$BUILD/$target.log" 2>&1 || status=$?
  grep -E "^#[0-9]+ +DONE|^stat::" "$BUILD/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$BUILD/$target.log"
    echo "$target found a problem (exit $status); the input is in $BUILD/$target-crash-*" \
      "(replay: $BUILD/$target <file>)" >&2
    exit "$status"
  fi
}
fuzz ctc_fuzz tests/fuzz/corpus "$SECONDS_TO_RUN" 4096
fuzz arpa_fuzz tests/fuzz/arpa_corpus "$ARPA_SECONDS" 8192
