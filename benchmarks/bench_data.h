// The named shapes of issue 4 and their seeded host inputs, shared by the CPU
// and CUDA benchmarks. compare.py defines the same shapes on the Python side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctc/dtype.h"
#include "ctc/problem.h"

namespace ctc_bench {

// N samples of T frames, C classes, target lengths drawn in [L/2, L].
struct Shape {
  std::string name;
  int64_t batch, max_time, max_target, num_classes;
};

const std::vector<Shape>& named_shapes();

// One shape's inputs, time-major (T, N, C) and contiguous, as torch lays out
// log_probs: log_softmax of standard-normal logits, every input length = T
// (which also keeps cuDNN's path eligible in compare.py), labels in [1, C)
// with blank = 0, concatenated targets.
struct BenchData {
  Shape shape;
  std::vector<float> log_probs;              // T * N * C
  std::vector<ctc::bfloat16_t> log_probs_bf16;  // the same values rounded to bfloat16
  std::vector<int64_t> targets, target_offsets, input_lengths, target_lengths;
  int64_t max_target_length = 0;  // the longest drawn target

  // sum_n T_n * S'_n: the cells of one alpha (or beta) table over the batch.
  int64_t dp_cells() const;
  // A problem over the host arrays, reading float32 or bfloat16 input.
  ctc::Problem problem(ctc::DType dtype) const;
};

// Built on first use and cached for the process: asr-bpe alone is 16M floats,
// and Google Benchmark calls each benchmark function several times.
const BenchData& bench_data(const Shape& shape);

// Bytes of one dense (T, N, C) tensor in `dtype`: the input read, or the gradient written.
int64_t dense_bytes(const Shape& shape, ctc::DType dtype);

}  // namespace ctc_bench
