#!/usr/bin/env bash
# The one prepared check for the lent GPU machine (see docs/gpu-check.md).
# On the dev machine, once:   scripts/prepare-gpu-carry.sh
# Then through the device tool:
#   run(command="bash scripts/gpu-check.sh", carry=[".gpu-carry"], timeout_s=590)
# It builds the project there for sm_90 against that machine's own torch,
# runs the C++ and Python CUDA tests, compute-sanitizer memcheck and racecheck
# on small cases, and the CUDA benchmarks and the side-by-side with torch
# native and cuDNN. Logs and results land in $OUT (at most 8 files come back).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
PY=${PYTHON:-python3}
RESULTS=$OUT/results.txt
: > "$RESULTS"
failures=0
step() { echo; echo "== $1 ($(date -u +%T))"; }
record() {  # record NAME STATUS
  echo "$1: $([ "$2" -eq 0 ] && echo PASS || echo "FAIL (exit $2)")" | tee -a "$RESULTS"
  [ "$2" -eq 0 ] || failures=$((failures + 1))
}

step "machine"
{
  echo "date: $(date -u +%F)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  $PY -c "import torch; print('torch:', torch.__version__, 'cuda', torch.version.cuda)"
  echo "nvcc: $(nvcc --version | tail -1)"
  echo "command: bash scripts/gpu-check.sh"
} | tee -a "$RESULTS"

DEPS=$PWD/build/gpu/deps
step "GoogleTest from .gpu-carry"
cmake -S .gpu-carry/googletest -B build/gpu/gtest -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
  -DCMAKE_INSTALL_PREFIX="$DEPS" >/dev/null && cmake --build build/gpu/gtest >/dev/null && cmake --install build/gpu/gtest >/dev/null
record "googletest build" $?
export LD_LIBRARY_PATH=$PWD/.gpu-carry/benchmark/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}

step "build torch_ctc (sm_90, CUDA on)"
TORCH_PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build/gpu/ctc -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTC_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCTC_BUILD_TESTS=ON -DCTC_BUILD_BENCHMARKS=ON -DCTC_BUILD_PYTHON=ON \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS;$PWD/.gpu-carry/benchmark" \
  -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v $PY)" \
  -DPython3_EXECUTABLE="$(command -v $PY)" && cmake --build build/gpu/ctc -j "$(nproc)"
build_status=$?
record "build" $build_status
if [ $build_status -ne 0 ]; then
  echo "build failed; nothing else can run"
  exit 1
fi
# Stage the Python package: the installed tree plus the pure-Python sources.
STAGE=$PWD/build/gpu/stage
rm -rf "$STAGE" && cmake --install build/gpu/ctc --prefix "$STAGE/torch_ctc" >/dev/null
cp bindings/python/torch_ctc/*.py "$STAGE/torch_ctc/"
export PYTHONPATH=$STAGE${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import torch_ctc; assert torch_ctc._C.built_with_cuda(); print('torch_ctc', torch_ctc.__version__, 'from', torch_ctc.__file__)"

step "ctest (C++ tests, CUDA ones included)"
ctest --test-dir build/gpu/ctc --output-on-failure -j 8
record "ctest" $?

step "pytest: CUDA tests"
PYTHONUNBUFFERED=1 $PY -m pytest tests/python/test_cuda.py -q -rs -p no:cacheprovider
record "pytest test_cuda.py" $?

step "pytest: the whole suite on this machine"
PYTHONUNBUFFERED=1 timeout 240 $PY -m pytest tests/python -q -x -p no:cacheprovider --ignore=tests/python/test_cuda.py
record "pytest (all, CPU side)" $?

for tool in memcheck racecheck; do
  step "compute-sanitizer $tool"
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 180 compute-sanitizer --tool $tool --error-exitcode 99 \
    $PY scripts/gpu_sanitizer_cases.py
  record "compute-sanitizer $tool" $?
done

step "C++ CUDA benchmarks"
if [ -x build/gpu/ctc/benchmarks/ctc_bench ]; then
  timeout 120 build/gpu/ctc/benchmarks/ctc_bench --benchmark_filter='^cuda_' \
    --benchmark_out="$OUT/ctc_bench_cuda.json" --benchmark_out_format=json
  record "ctc_bench CUDA" $?
fi

# torch_ctc (the path auto picks), its block and warp recurrence kernels forced
# (docs/cuda-kernels.md), torch native and cuDNN: CUDA events, 50 repetitions after 5 warm-ups.
step "side by side: torch_ctc (auto, block, warp kernels) vs torch native CUDA vs cuDNN"
timeout 180 $PY benchmarks/compare.py --device cuda --reps 50 --warmup 5 --out-md "$OUT/compare_cuda.md" \
  --out-json "$OUT/compare_cuda.json" --out-png "$OUT/compare_cuda.png"
record "compare.py --device cuda" $?

step "side by side: torch_ctc.forced_align vs torchaudio's per-sample loop on CUDA"
if $PY -c "import torchaudio" 2>/dev/null; then
  timeout 180 $PY benchmarks/compare_align.py --device cuda --reps 3 --out-json "$OUT/compare_align_cuda.json" \
    --update-doc "$OUT/compare_align_cuda.md"
  record "compare_align.py --device cuda" $?
else
  echo "torchaudio is not installed here: skipped" | tee -a "$RESULTS"
fi

step "summary"
cat "$RESULTS"
exit $((failures > 0))
