#!/usr/bin/env bash
# The test command: sets everything up on a fresh machine, builds the library,
# the Python package and the GoogleTest suites, then runs ctest and pytest,
# the ptxas spill check of the CUDA kernels where nvcc is installed
# (scripts/ptxas_report.py), the ASan + UBSan builds (scripts/sanitize.sh) and
# the fuzzers (scripts/fuzz.sh). Fails if any of them fails or a runner runs no test.
# Prints the time each step took at the end.
#   scripts/test.sh            everything
#   scripts/test.sh -k stride  extra arguments go to the main pytest run
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
timed() {  # timed NAME COMMAND...: runs it, records its wall time
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  timings+=("$(printf '%-11s %4d s' "$name" $((SECONDS - start)))")
}

run_ctest() {
  ctest --test-dir build/python --output-on-failure -j "$(nproc)" 2>&1 | tee build/ctest.log
  if grep -q "No tests were found" build/ctest.log; then
    echo "ctest found no tests" >&2
    return 1
  fi
}

# Benchmarks are built too, so CI compiles them (they are not run here).
timed setup env CTC_BUILD_TESTS=ON CTC_BUILD_BENCHMARKS=ON scripts/setup.sh
timed ctest run_ctest
# pytest exits 5 when it collects nothing; with `set -e` that (and any failure) fails this script.
timed pytest .venv/bin/python -m pytest tests/python -q -p no:cacheprovider "$@"
# Registers and spills of the CUDA kernels (docs/cuda-kernels.md): fails on a spill in a hot kernel.
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  timed ptxas .venv/bin/python scripts/ptxas_report.py --check
fi
timed sanitizers scripts/sanitize.sh
timed fuzzer scripts/fuzz.sh "${CTC_FUZZ_SECONDS:-60}"

echo "== all passed in $SECONDS s"
printf '  %s\n' "${timings[@]}"
