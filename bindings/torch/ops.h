// Typed entry points to the torch_ctc operators. They call through the
// dispatcher, so autograd, the device kernels and fake tensors all apply.
//
// Operator layering (as in torchvision's csrc/ops):
//   ctc_loss      CompositeImplicitAutograd: unbatched input, reduction.
//   ctc_nll       per-sample losses; its Autograd kernel is a C++
//                 torch::autograd::Function around the two ops below.
//   _ctc_forward  device kernels (CPU, Meta, later CUDA): losses + workspace.
//   _ctc_backward device kernels: the gradient w.r.t. the input.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace torch_ctc {

// torch's reduction codes (at::Reduction): 0 none, 1 mean, 2 sum.
enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2 };

std::tuple<at::Tensor, at::Tensor> ctc_forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                               const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                               int64_t blank, bool batch_first, bool from_logits, bool validate);

at::Tensor ctc_backward(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                        const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                        const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                        bool from_logits);

at::Tensor ctc_nll(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                   const at::Tensor& target_lengths, int64_t blank, bool zero_infinity, bool batch_first,
                   bool from_logits, bool validate);

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                    const at::Tensor& target_lengths, int64_t blank, int64_t reduction, bool zero_infinity,
                    bool batch_first, bool from_logits, bool validate);

// Forced alignment: (alignments, scores); memory 0 auto, 1 full, 2 checkpointed.
std::tuple<at::Tensor, at::Tensor> forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                int64_t blank, bool batch_first, int64_t memory, bool validate);

// Greedy decoding: (tokens, lengths, first frames).
std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode(const at::Tensor& log_probs,
                                                             const at::Tensor& input_lengths, int64_t blank,
                                                             bool batch_first);

// Replaces +inf losses by 0 when zero_infinity is set (shared by the
// autograd and non-autograd paths of ctc_nll).
at::Tensor apply_zero_infinity(const at::Tensor& nll, bool zero_infinity);

}  // namespace torch_ctc
