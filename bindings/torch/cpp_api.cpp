// The C++ API of include/torch_ctc/ctc_loss.h, on top of the operators.
#include <ATen/ATen.h>

#include <ostream>
#include <type_traits>
#include <variant>

#include "ops.h"
#include "torch_ctc/ctc_loss.h"

namespace ctc {
namespace {

int64_t reduction_code(const CTCLossOptions::reduction_t& reduction) {
  return std::visit(
      [](const auto& r) -> int64_t {
        using R = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<R, torch::enumtype::kNone>) return torch_ctc::kNone;
        else if constexpr (std::is_same_v<R, torch::enumtype::kSum>) return torch_ctc::kSum;
        else return torch_ctc::kMean;
      },
      reduction);
}

}  // namespace

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                    const at::Tensor& target_lengths, const CTCLossOptions& options) {
  return torch_ctc::ctc_loss(log_probs, targets, input_lengths, target_lengths, options.blank(),
                             reduction_code(options.reduction()), options.zero_infinity(), options.batch_first(),
                             options.from_logits(), options.validate());
}

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, at::IntArrayRef input_lengths,
                    at::IntArrayRef target_lengths, const CTCLossOptions& options) {
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);
  return ctc_loss(log_probs, targets, at::tensor(input_lengths, cpu_long), at::tensor(target_lengths, cpu_long),
                  options);
}

at::Tensor ctc_nll(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                   const at::Tensor& target_lengths, const CTCLossOptions& options) {
  return torch_ctc::ctc_nll(log_probs, targets, input_lengths, target_lengths, options.blank(),
                            options.zero_infinity(), options.batch_first(), options.from_logits(), options.validate());
}

CTCLossImpl::CTCLossImpl(CTCLossOptions options_) : options(std::move(options_)) {}

void CTCLossImpl::pretty_print(std::ostream& stream) const {
  stream << "ctc::CTCLoss(blank=" << options.blank() << ", zero_infinity=" << std::boolalpha
         << options.zero_infinity() << ", batch_first=" << options.batch_first()
         << ", from_logits=" << options.from_logits() << ")";
}

at::Tensor CTCLossImpl::forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                const at::Tensor& input_lengths, const at::Tensor& target_lengths) {
  return ctc_loss(log_probs, targets, input_lengths, target_lengths, options);
}

}  // namespace ctc
