#!/usr/bin/env bash
# The benchmark command: builds torch_ctc with the Google Benchmark suite, runs
#   1. ctc_bench, the C++ engine benchmarks (CPU; CUDA too when built with the
#      kernels and a GPU is present)  -> build/bench/ctc_bench.json
#   2. benchmarks/compare.py, torch_ctc against torch side by side on the CPU
#      at 1 and 2 threads (and on the GPU when there is one)
#   3. benchmarks/compare_align.py and compare_decode.py: forced alignment against
#      torchaudio, beam search against pyctcdecode, fast-ctc-decode and torchaudio's
#      ctc_decoder (their benchmark-only requirements: requirements-bench.txt)
# and regenerates the measured sections of docs/benchmarks.md and its charts.
#   scripts/bench.sh                   full run (a few minutes)
#   BENCH_QUICK=1 scripts/bench.sh     smoke run: few repetitions, results under build/bench/quick only
#   BENCH_SKIP_SETUP=1 scripts/bench.sh   reuse the installed build (no setup.sh)
#   CTC_BENCH_ARGS="--benchmark_filter=htr" scripts/bench.sh   extra ctc_bench flags
#   BENCH_REPS=15 scripts/bench.sh     more side-by-side repetitions (default 7) on a noisy machine
# Timings on a shared machine are noisy: rerun when the load average is high.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BENCH_SKIP_SETUP:-}" ]; then
  CTC_BUILD_BENCHMARKS=ON scripts/setup.sh
fi
PY=.venv/bin/python
BENCH=build/python/benchmarks/ctc_bench
OUT=build/bench

if [ -n "${BENCH_QUICK:-}" ]; then
  OUT=build/bench/quick
  DOCS=$OUT  # a smoke run must not overwrite the published numbers
  GBENCH_FLAGS=(--benchmark_min_time=0.01)
  COMPARE_FLAGS=(--quick)
else
  DOCS=docs
  # Medians of 3 repetitions: one slow repetition (a neighbour's build) does not skew them.
  GBENCH_FLAGS=(--benchmark_repetitions=3 --benchmark_report_aggregates_only=true)
  COMPARE_FLAGS=(--reps "${BENCH_REPS:-7}")
fi
mkdir -p "$OUT"
DOC=$DOCS/benchmarks.md
[ "$DOCS" = docs ] || cp docs/benchmarks.md "$DOC"

echo "== ctc_bench (C++ engine) -> $OUT/ctc_bench.json"
# shellcheck disable=SC2086  # CTC_BENCH_ARGS is a list of flags
"$BENCH" --benchmark_out="$OUT/ctc_bench.json" --benchmark_out_format=json "${GBENCH_FLAGS[@]}" ${CTC_BENCH_ARGS:-}
$PY benchmarks/gbench_report.py "$OUT/ctc_bench.json" --update-doc "$DOC" >/dev/null

echo "== compare.py --device cpu (torch_ctc vs torch, 1 and 2 threads)"
$PY benchmarks/compare.py --device cpu --threads 1 2 "${COMPARE_FLAGS[@]}" \
  --out-png "$DOCS/benchmarks_cpu.png" --out-json "$OUT/compare_cpu.json" --update-doc "$DOC"

echo "== compare_align.py (torch_ctc.forced_align vs torchaudio's per-sample loop, CPU)"
$PY benchmarks/compare_align.py --threads 1 2 ${BENCH_QUICK:+--quick} --out-json "$OUT/compare_align.json" \
  --update-doc "$DOC"

echo "== compare_decode.py (torch_ctc.beam_search vs pyctcdecode, fast-ctc-decode, torchaudio; CPU)"
$PY -m pip install -q -r requirements-bench.txt  # the benchmark-only peers
$PY benchmarks/compare_decode.py ${BENCH_QUICK:+--quick} --out-json "$OUT/compare_decode.json" --update-doc "$DOC"

if $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "== compare_align.py --device cuda"
  $PY benchmarks/compare_align.py --device cuda ${BENCH_QUICK:+--quick} --out-json "$OUT/compare_align_cuda.json" \
    --update-doc "$DOC"
  echo "== compare.py --device cuda (torch_ctc vs torch native vs cuDNN)"
  $PY benchmarks/compare.py --device cuda "${COMPARE_FLAGS[@]}" \
    --out-png "$DOCS/benchmarks_cuda.png" --out-json "$OUT/compare_cuda.json" --update-doc "$DOC"
fi
echo "== updated $DOC"
