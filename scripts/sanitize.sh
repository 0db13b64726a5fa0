#!/usr/bin/env bash
# The sanitizer builds. Any finding stops the program and fails this script.
#  - AddressSanitizer + UndefinedBehaviorSanitizer (build/asan): the C++ test
#    suites (core_test, op_test, simd_test), the CUDA simulator suite
#    (ctest -L cuda_sim) and the Python extension, then a subset of the pytest
#    suite against the sanitized extension (libasan preloaded into Python).
#  - ThreadSanitizer (build/tsan, no LibTorch): the CUDA simulator suite.
# Needs .venv (scripts/setup.sh); scripts/test.sh runs it.
#   scripts/sanitize.sh            build and run everything
#   scripts/sanitize.sh -k stride  extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/asan

# ctest -L cuda_sim in a build folder; fails if it runs nothing.
run_cuda_sim_suite() {
  ctest --test-dir "$1" -L cuda_sim --output-on-failure -j "$(nproc)" 2>&1 | tee "$1/cuda_sim.log"
  if grep -q "No tests were found" "$1/cuda_sim.log"; then
    echo "ctest -L cuda_sim found no tests in $1" >&2
    return 1
  fi
}
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
torch_prefix=$(.venv/bin/python -c 'import torch; print(torch.utils.cmake_prefix_path)')
pybind11_dir=$(.venv/bin/python -m pybind11 --cmakedir)

echo "== configuring the ASan + UBSan build in $BUILD"
# CUDA is off: host code only (the CUDA kernels are built and tested elsewhere).
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTC_CUDA=OFF -DCTC_BUILD_TESTS=ON \
  -DCTC_BUILD_PYTHON=ON -DCTC_SANITIZER=address,undefined -DCMAKE_CXX_FLAGS="$SAN" -DCMAKE_EXE_LINKER_FLAGS="$SAN" \
  -DCMAKE_SHARED_LINKER_FLAGS="$SAN" -DCMAKE_MODULE_LINKER_FLAGS="$SAN" \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$pybind11_dir" -DPython_EXECUTABLE="$PWD/.venv/bin/python" >/dev/null
echo "== building core_test, op_test, simd_test, the simulator suite and torch_ctc._C with -fsanitize=address,undefined"
cmake --build "$BUILD" -j "$(nproc)" --target core_test op_test simd_test _C sim_runtime_test cuda_engine_sim_test \
  op_sim_test sim_probe index_kernels_sim_test align_sim_test

# halt_on_error / abort: a finding ends the process with a non-zero status.
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1

echo "== C++ suites under ASan + UBSan"
for suite in core_test op_test simd_test; do
  echo "-- $suite"
  "$BUILD/tests/$suite" --gtest_color=no --gtest_brief=1
done
echo "== the CUDA simulator suite under ASan + UBSan"
run_cuda_sim_suite "$BUILD"

echo "== pytest subset under ASan + UBSan"
# A package directory holding the Python sources and the sanitized extension.
pkg="$BUILD/python-package/torch_ctc"
rm -rf "$pkg" && mkdir -p "$pkg"
cp bindings/python/torch_ctc/*.py "$pkg/"
cp "$BUILD"/bindings/_C*.so "$pkg/"
# The ASan runtime must be loaded first; libstdc++ with it, or ASan's __cxa_throw
# interceptor finds no real __cxa_throw (python does not link libstdc++) and the
# first C++ exception aborts.
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
# Python and torch keep memory until exit by design: no leak checking there.
run_python() {
  LD_PRELOAD="$preload" ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" PYTHONPATH="$BUILD/python-package" \
    TORCH_CTC_HYPOTHESIS_EXAMPLES="${TORCH_CTC_HYPOTHESIS_EXAMPLES:-300}" .venv/bin/python "$@"
}
run_python -c "import torch_ctc, sys; f = torch_ctc._C.__file__; print('extension:', f); sys.exit('$BUILD' not in f)"
# Everything that runs the C++ engine and binding on the CPU: the strided, kernel and
# property tests (every dtype, kernel, layout and stride), the errors (validation paths),
# the ported torch suite, the references, gradcheck, the host cache, the ops, alignment,
# greedy decoding and the beam search with its ARPA reader.
run_python -m pytest -q -p no:cacheprovider \
  tests/python/test_vs_torch.py tests/python/test_properties.py tests/python/test_cpu_kernels.py \
  tests/python/test_errors.py tests/python/test_torch_suite.py tests/python/test_reference.py \
  tests/python/test_gradcheck.py tests/python/test_host_cache.py tests/python/test_op.py tests/python/test_alignment.py \
  tests/python/test_greedy.py tests/python/test_beam_search.py -m "not slow" "$@"

echo "== the CUDA simulator suite under ThreadSanitizer (build/tsan)"
TSAN=build/tsan
cmake -S . -B "$TSAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTC_TORCH=OFF -DCTC_CUDA=OFF -DCTC_BUILD_CUDA_SIM=ON \
  -DCTC_SANITIZER=thread -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build "$TSAN" -j "$(nproc)"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_cuda_sim_suite "$TSAN"
