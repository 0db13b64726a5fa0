// torch-ctc's C++ API: a drop-in for torch::nn::functional::ctc_loss and
// torch::nn::CTCLoss, backed by the torch_ctc operators.
//
//   #include <torch_ctc/ctc_loss.h>
//   auto loss = ctc::ctc_loss(log_probs, targets, input_lengths, target_lengths);
//   ctc::CTCLoss criterion(ctc::CTCLossOptions().blank(0).from_logits(true));
//
// log_probs: (T, N, C), or (N, T, C) with batch_first, or (T, C) unbatched;
// float32, float64, float16 or bfloat16. targets: concatenated 1-D or padded
// (N, S), int32 or int64. Lengths: int32/int64 tensors or integer lists.
// The gradient w.r.t. log_probs is the exact derivative (see docs/semantics.md).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/options/loss.h>
#include <torch/nn/pimpl.h>

namespace ctc {

struct CTCLossOptions {
  using reduction_t = torch::nn::CTCLossOptions::reduction_t;

  CTCLossOptions() = default;
  // Accepts torch's own options, so code written for torch::nn::CTCLoss keeps working.
  CTCLossOptions(const torch::nn::CTCLossOptions& torch_options)  // NOLINT(google-explicit-constructor)
      : blank_(torch_options.blank()),
        reduction_(torch_options.reduction()),
        zero_infinity_(torch_options.zero_infinity()) {}

  TORCH_ARG(int64_t, blank) = 0;
  TORCH_ARG(reduction_t, reduction) = torch::kMean;
  TORCH_ARG(bool, zero_infinity) = false;
  // (N, T, C) input instead of (T, N, C).
  TORCH_ARG(bool, batch_first) = false;
  // Raw logits in; log_softmax over C is fused into the loss and its gradient.
  TORCH_ARG(bool, from_logits) = false;
  // Check labels against [0, C) and blank. On CUDA this needs a host sync;
  // turn it off for CUDA-graph capture. The CPU always checks.
  TORCH_ARG(bool, validate) = true;
};

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                    const at::Tensor& target_lengths, const CTCLossOptions& options = {});

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, at::IntArrayRef input_lengths,
                    at::IntArrayRef target_lengths, const CTCLossOptions& options = {});

// Per-sample losses (reduction 'none' without the unbatched squeeze).
at::Tensor ctc_nll(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                   const at::Tensor& target_lengths, const CTCLossOptions& options = {});

class CTCLossImpl : public torch::nn::Cloneable<CTCLossImpl> {
 public:
  explicit CTCLossImpl(CTCLossOptions options = {});

  void reset() override {}
  void pretty_print(std::ostream& stream) const override;

  at::Tensor forward(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                     const at::Tensor& target_lengths);

  CTCLossOptions options;
};

TORCH_MODULE(CTCLoss);

}  // namespace ctc
