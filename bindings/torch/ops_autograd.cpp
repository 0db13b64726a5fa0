// Autograd for ctc_nll, written in C++: forward runs _ctc_forward and keeps
// its workspace (the alpha table); backward runs _ctc_backward, which computes
// beta and the gradient in one sweep. Double backward is not supported.
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops.h"

namespace torch_ctc {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CtcNllFunction : public torch::autograd::Function<CtcNllFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& log_probs, const at::Tensor& targets,
                            const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank,
                            bool zero_infinity, bool batch_first, bool from_logits, bool validate) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [nll, workspace] =
        ctc_forward(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits, validate);
    ctx->save_for_backward({log_probs, targets, input_lengths, target_lengths, nll, workspace});
    ctx->saved_data["blank"] = blank;
    ctx->saved_data["zero_infinity"] = zero_infinity;
    ctx->saved_data["batch_first"] = batch_first;
    ctx->saved_data["from_logits"] = from_logits;
    return apply_zero_infinity(nll, zero_infinity);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    at::Tensor grad = ctc_backward(grad_outputs[0], saved[0], saved[1], saved[2], saved[3], saved[4], saved[5],
                                   ctx->saved_data["blank"].toInt(), ctx->saved_data["zero_infinity"].toBool(),
                                   ctx->saved_data["batch_first"].toBool(), ctx->saved_data["from_logits"].toBool());
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor ctc_nll_autograd(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                            const at::Tensor& target_lengths, int64_t blank, bool zero_infinity, bool batch_first,
                            bool from_logits, bool validate) {
  return CtcNllFunction::apply(log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, batch_first,
                               from_logits, validate);
}

// The gradient of the gradient is not implemented: say so clearly instead of
// returning a result that autograd cannot differentiate.
at::Tensor ctc_backward_autograd(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                                 const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                 const at::Tensor& nll, const at::Tensor& workspace, int64_t blank, bool zero_infinity,
                                 bool batch_first, bool from_logits) {
  TORCH_CHECK(!(at::GradMode::is_enabled() && (grad_nll.requires_grad() || log_probs.requires_grad())),
              "torch_ctc: double backward (the gradient of the CTC gradient, e.g. create_graph=True) is not "
              "supported");
  at::AutoDispatchBelowADInplaceOrView guard;
  return ctc_backward(grad_nll, log_probs, targets, input_lengths, target_lengths, nll, workspace, blank,
                      zero_infinity, batch_first, from_logits);
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, Autograd, m) {
  m.impl("ctc_nll", &ctc_nll_autograd);
  m.impl("_ctc_backward", &ctc_backward_autograd);
}

}  // namespace torch_ctc
