// Turns the op's tensor arguments into a ctc::Problem: checks shapes and
// dtypes (naming the argument), normalises targets and lengths to int64 host
// arrays, and computes the per-sample target offsets.
#pragma once

#include <ATen/core/Tensor.h>

#include "ctc/problem.h"

namespace torch_ctc {

// Shape, dtype and device checks that need no data. They work on symbolic
// sizes too, so the meta kernels share them.
void check_arguments(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                     const at::Tensor& target_lengths, int64_t blank, bool batch_first);

ctc::DType to_ctc_dtype(at::ScalarType type);
at::ScalarType accumulate_scalar_type(at::ScalarType input_type);

// Sizes, input pointer, dtype and strides of `log_probs` in (t, n, c) terms,
// for time-major or batch-first layouts; the index arrays are left to the caller.
ctc::Problem problem_for_input(const at::Tensor& log_probs, int64_t blank, bool batch_first, bool from_logits);

// Where the backward pass writes: `grad` has the layout of log_probs.
ctc::GradientOutput gradient_output(const at::Tensor& grad, bool batch_first);

// A problem whose index arrays live on the host. The tensors keep the arrays
// alive for as long as `problem` is used.
struct HostProblem {
  ctc::Problem problem;
  int64_t padded_width = -1;  // S for padded (N, S) targets, -1 for concatenated
  at::Tensor targets, target_offsets, input_lengths, target_lengths;
};

// Builds the problem (after check_arguments) and validates lengths and labels.
HostProblem make_host_problem(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                              const at::Tensor& target_lengths, int64_t blank, bool batch_first, bool from_logits);

// Rethrows a ctc::Error from the core as the matching c10 error type
// (ValueError / TypeError / RuntimeError in Python).
[[noreturn]] void rethrow_core_error(const std::exception& error);

// Refuses allocations larger than the host's physical memory with a clear
// message instead of letting the allocation succeed lazily and the machine
// swap or the OOM killer strike.
void check_host_allocation(int64_t elems, int64_t elem_size, const char* what);

}  // namespace torch_ctc
