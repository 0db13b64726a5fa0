// Registers the CUDA op's call sequence (bindings/torch/cuda_op.cpp), built
// against the CUDA simulator, as the CPU kernels of _ctc_forward and
// _ctc_backward, for op_sim_test only: CPU tensors play the device tensors.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "cuda_op.h"

namespace {

std::tuple<at::Tensor, at::Tensor> forward_in_simulator(const at::Tensor& log_probs, const at::Tensor& targets,
                                                        const at::Tensor& input_lengths,
                                                        const at::Tensor& target_lengths, int64_t blank,
                                                        bool batch_first, bool from_logits, bool validate) {
  return torch_ctc::cuda_op_forward(log_probs, targets, input_lengths, target_lengths, blank, batch_first,
                                    from_logits, validate, nullptr);
}

at::Tensor backward_in_simulator(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                                 const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                 const at::Tensor& nll, const at::Tensor& workspace, int64_t blank, bool zero_infinity,
                                 bool batch_first, bool from_logits) {
  return torch_ctc::cuda_op_backward(grad_nll, log_probs, targets, input_lengths, target_lengths, nll, workspace,
                                     blank, zero_infinity, batch_first, from_logits, nullptr);
}

std::tuple<at::Tensor, at::Tensor> forced_align_in_simulator(const at::Tensor& log_probs, const at::Tensor& targets,
                                                             const at::Tensor& input_lengths,
                                                             const at::Tensor& target_lengths, int64_t blank,
                                                             bool batch_first, int64_t memory, bool validate) {
  return torch_ctc::cuda_op_forced_align(log_probs, targets, input_lengths, target_lengths, blank, batch_first, memory,
                                         validate, nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode_in_simulator(const at::Tensor& log_probs,
                                                                          const at::Tensor& input_lengths,
                                                                          int64_t blank, bool batch_first) {
  return torch_ctc::cuda_op_greedy_decode(log_probs, input_lengths, blank, batch_first, nullptr);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, CPU, m) {
  m.impl("_ctc_forward", &forward_in_simulator);
  m.impl("_ctc_backward", &backward_in_simulator);
  m.impl("_forced_align", &forced_align_in_simulator);
  m.impl("_greedy_decode", &greedy_decode_in_simulator);
}
