// The CUDA op's call sequence, without the CUDA parts of torch: argument
// checks, the index upload and sanitising, buffer sizing from torch's
// allocator (through the tensors' own options), and the engine calls on the
// given stream. ops_cuda.cpp wraps these with the device guard and torch's
// current stream; the CUDA simulator suite registers them for CPU tensors
// instead (tests/cuda_sim/op_sim_test.cpp), so all of this runs in CI.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "ctc/error.h"

#include "ctc/problem.h"
#include "device.h"
#include "tensor_problem.h"

namespace torch_ctc {

// A problem whose pointers are on the device, with lengths made safe for the
// kernels (ctc::cuda::sanitize_indices) and a bound on the states per sample.
// With validation, `host` holds the validated host copy (a device-to-host
// copy and a sync); without, none is made.
struct DeviceProblem {
  ctc::Problem problem;
  int64_t max_states = 1;
  bool validated = false;
  HostProblem host;
  at::Tensor targets, raw_input_lengths, raw_target_lengths, safe_indices;
};

DeviceProblem make_device_problem(const at::Tensor& log_probs, const at::Tensor& targets,
                                  const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank,
                                  bool batch_first, bool from_logits, bool validate, cudaStream_t stream);

// Runs fn, turning a ctc::Error from the engine into the matching c10 error.
template <typename Fn>
auto rethrowing_core_errors(Fn&& fn) {
  try {
    return fn();
  } catch (const ctc::Error& e) {
    rethrow_core_error(e);
  }
}

std::tuple<at::Tensor, at::Tensor> cuda_op_forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                                   const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                   int64_t blank, bool batch_first, bool from_logits, bool validate,
                                                   cudaStream_t stream);

at::Tensor cuda_op_backward(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                            const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                            const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                            bool from_logits, cudaStream_t stream);

std::tuple<at::Tensor, at::Tensor> cuda_op_forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                        const at::Tensor& input_lengths,
                                                        const at::Tensor& target_lengths, int64_t blank,
                                                        bool batch_first, int64_t memory, bool validate,
                                                        cudaStream_t stream);

std::tuple<at::Tensor, at::Tensor, at::Tensor> cuda_op_greedy_decode(const at::Tensor& log_probs,
                                                                     const at::Tensor& input_lengths, int64_t blank,
                                                                     bool batch_first, cudaStream_t stream);

}  // namespace torch_ctc
