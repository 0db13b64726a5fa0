// One CTC problem, described by pointers and element strides only, so the same
// description drives the CPU engine and the CUDA kernels, whatever the layout
// of the caller's tensors (time-major, batch-first, or any strided view).
#pragma once

#include <cstdint>

#include "ctc/dtype.h"

namespace ctc {

struct Problem {
  // Sizes: T frames (the longest input), N samples, C classes.
  int64_t max_time = 0;
  int64_t batch = 0;
  int64_t num_classes = 0;

  // Input element (t, n, c) is at input[t * stride_t + n * stride_n + c * stride_c].
  const void* input = nullptr;
  DType dtype = DType::kFloat32;
  int64_t stride_t = 0, stride_n = 0, stride_c = 0;
  // false: the input holds log-probabilities; true: raw logits, and the
  // engine fuses log_softmax over the class dimension.
  bool from_logits = false;

  int64_t blank = 0;

  // Labels of sample n are targets[target_offsets[n] + i] for i < target_lengths[n].
  // `target_slots` is the total number of label slots the offsets index into:
  // sum(target_lengths) for concatenated targets, N * S for padded (N, S)
  // targets. Workspace sizes depend only on it, never on label values.
  const int64_t* targets = nullptr;
  const int64_t* target_offsets = nullptr;
  int64_t target_slots = 0;
  const int64_t* input_lengths = nullptr;
  const int64_t* target_lengths = nullptr;
};

// Where the backward pass writes d loss / d input, same (t, n, c) indexing.
struct GradientOutput {
  void* data = nullptr;  // same dtype as Problem::input
  int64_t stride_t = 0, stride_n = 0, stride_c = 0;
};

}  // namespace ctc
