#!/usr/bin/env bash
# Fills .gpu-carry/ (git-ignored) with what scripts/gpu-check.sh needs on the
# lent GPU machine, which has torch, CMake, ninja and pybind11 but neither
# GoogleTest nor Google Benchmark and no network:
#   googletest/  the sources Debian's libgtest-dev ships (built there)
#   benchmark/   Debian's Google Benchmark headers, shared library and CMake package
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu-carry
mkdir -p .gpu-carry/benchmark/include .gpu-carry/benchmark/lib/x86_64-linux-gnu/cmake
cp -r /usr/src/googletest .gpu-carry/googletest
cp -r /usr/include/benchmark .gpu-carry/benchmark/include/
cp -a /usr/lib/x86_64-linux-gnu/libbenchmark*.so* /usr/lib/x86_64-linux-gnu/libbenchmark_main.a \
  .gpu-carry/benchmark/lib/x86_64-linux-gnu/
cp -r /usr/lib/x86_64-linux-gnu/cmake/benchmark .gpu-carry/benchmark/lib/x86_64-linux-gnu/cmake/
du -sh .gpu-carry
