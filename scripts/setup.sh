#!/usr/bin/env bash
# Sets up a fresh machine: Debian build packages, .venv at the repo root with
# the pinned Python packages, then builds and installs torch_ctc into .venv.
# Idempotent: re-running only rebuilds what changed.
#   scripts/setup.sh            build the Python package
#   CTC_BUILD_TESTS=ON scripts/setup.sh        also build the GoogleTest suites
#   CTC_BUILD_BENCHMARKS=ON scripts/setup.sh   also build the Google Benchmark suites
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t APT_PACKAGES < <(grep -v -E '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "== apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "== pip install -r requirements.txt"
.venv/bin/python -m pip install -q -r requirements.txt
# Test-only peers whose metadata would downgrade our pins (see the file).
.venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt

echo "== building and installing torch_ctc into .venv (tests ${CTC_BUILD_TESTS:-OFF}, benchmarks ${CTC_BUILD_BENCHMARKS:-OFF})"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
.venv/bin/python -m pip install -q --no-build-isolation --no-deps . \
  -Ccmake.define.CTC_BUILD_TESTS="${CTC_BUILD_TESTS:-OFF}" \
  -Ccmake.define.CTC_BUILD_BENCHMARKS="${CTC_BUILD_BENCHMARKS:-OFF}"
.venv/bin/python -c "import torch_ctc; print('torch_ctc', torch_ctc.__version__, 'installed; CUDA kernels built:', torch_ctc._C.built_with_cuda())"
