// CUDA kernels of _ctc_forward and _ctc_backward: the thin binding. Each runs
// the op's call sequence (cuda_op.cpp) on torch's current stream under a
// device guard.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_op.h"

namespace torch_ctc {
namespace {

std::tuple<at::Tensor, at::Tensor> ctc_forward_cuda(const at::Tensor& log_probs, const at::Tensor& targets,
                                                    const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                    int64_t blank, bool batch_first, bool from_logits, bool validate) {
  const c10::cuda::CUDAGuard guard(log_probs.device());
  return cuda_op_forward(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits, validate,
                         at::cuda::getCurrentCUDAStream());
}

at::Tensor ctc_backward_cuda(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                             const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                             const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                             bool from_logits) {
  const c10::cuda::CUDAGuard guard(log_probs.device());
  return cuda_op_backward(grad_nll, log_probs, targets, input_lengths, target_lengths, nll, workspace, blank,
                          zero_infinity, batch_first, from_logits, at::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor> forced_align_cuda(const at::Tensor& log_probs, const at::Tensor& targets,
                                                     const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                     int64_t blank, bool batch_first, int64_t memory, bool validate) {
  const c10::cuda::CUDAGuard guard(log_probs.device());
  return cuda_op_forced_align(log_probs, targets, input_lengths, target_lengths, blank, batch_first, memory, validate,
                              at::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode_cuda(const at::Tensor& log_probs,
                                                                  const at::Tensor& input_lengths, int64_t blank,
                                                                  bool batch_first) {
  const c10::cuda::CUDAGuard guard(log_probs.device());
  return cuda_op_greedy_decode(log_probs, input_lengths, blank, batch_first, at::cuda::getCurrentCUDAStream());
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, CUDA, m) {
  m.impl("_ctc_forward", &ctc_forward_cuda);
  m.impl("_ctc_backward", &ctc_backward_cuda);
  m.impl("_forced_align", &forced_align_cuda);
  m.impl("_greedy_decode", &greedy_decode_cuda);
}

}  // namespace torch_ctc
