// Argument handling shared by the CPU and CUDA kernels of _forced_align and
// _greedy_decode: the checks beyond ctc_loss's, with the same messages on
// both backends.
#pragma once

#include <ATen/core/Tensor.h>

#include "ctc/align.h"
#include "tensor_problem.h"

namespace torch_ctc {

// The op's `memory` code: 0 auto, 1 full, 2 checkpointed.
ctc::AlignMemory align_memory(int64_t code);

// Raises ValueError naming the samples with too few frames for their targets.
void check_alignable(const HostProblem& host);

// Raises ValueError naming the samples the aligner found no path of finite
// score for (every path meets a -inf or NaN log-prob). `alignments` (N, T)
// and `input_lengths` on the CPU.
void check_aligned(const at::Tensor& alignments, const at::Tensor& input_lengths);

// Shape, dtype and device checks of greedy decoding (symbolic-aware, for Meta too).
void check_decode_arguments(const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t blank,
                            bool batch_first);

// A decoding problem with host lengths (validated: each in [0, T]).
struct HostDecodeProblem {
  ctc::Problem problem;
  at::Tensor input_lengths;
};
HostDecodeProblem make_host_decode_problem(const at::Tensor& log_probs, const at::Tensor& input_lengths,
                                           int64_t blank, bool batch_first);

}  // namespace torch_ctc
