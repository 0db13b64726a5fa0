// Schemas of the torch_ctc operators, the dispatcher-calling wrappers of
// ops.h, and the backend-independent kernels (ctc_loss, ctc_nll).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "ops.h"

namespace torch_ctc {

TORCH_LIBRARY(torch_ctc, m) {
  m.def(
      "ctc_loss(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, "
      "int reduction=1, bool zero_infinity=False, bool batch_first=False, bool from_logits=False, "
      "bool validate=True) -> Tensor");
  m.def(
      "ctc_nll(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, "
      "bool zero_infinity=False, bool batch_first=False, bool from_logits=False, bool validate=True) -> Tensor");
  m.def(
      "_ctc_forward(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank, "
      "bool batch_first, bool from_logits, bool validate) -> (Tensor, Tensor)");
  m.def(
      "_ctc_backward(Tensor grad_nll, Tensor log_probs, Tensor targets, Tensor input_lengths, "
      "Tensor target_lengths, Tensor nll, Tensor workspace, int blank, bool zero_infinity, bool batch_first, "
      "bool from_logits) -> Tensor");
  // Forced alignment and greedy decoding: the public ops handle unbatched
  // input (CompositeImplicitAutograd); the _ ops are the device kernels.
  m.def(
      "forced_align(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0, "
      "bool batch_first=False, int memory=0, bool validate=True) -> (Tensor, Tensor)");
  m.def(
      "_forced_align(Tensor log_probs, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank, "
      "bool batch_first, int memory, bool validate) -> (Tensor, Tensor)");
  m.def("greedy_decode(Tensor log_probs, Tensor input_lengths, int blank=0, bool batch_first=False) -> "
        "(Tensor, Tensor, Tensor)");
  m.def("_greedy_decode(Tensor log_probs, Tensor input_lengths, int blank, bool batch_first) -> "
        "(Tensor, Tensor, Tensor)");
}

std::tuple<at::Tensor, at::Tensor> ctc_forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                               const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                               int64_t blank, bool batch_first, bool from_logits, bool validate) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::_ctc_forward", "")
                       .typed<decltype(ctc_forward)>();
  return op.call(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits, validate);
}

at::Tensor ctc_backward(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                        const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                        const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                        bool from_logits) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::_ctc_backward", "")
                       .typed<decltype(ctc_backward)>();
  return op.call(grad_nll, log_probs, targets, input_lengths, target_lengths, nll, workspace, blank, zero_infinity,
                 batch_first, from_logits);
}

std::tuple<at::Tensor, at::Tensor> forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                int64_t blank, bool batch_first, int64_t memory, bool validate) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::forced_align", "")
                       .typed<decltype(forced_align)>();
  return op.call(log_probs, targets, input_lengths, target_lengths, blank, batch_first, memory, validate);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode(const at::Tensor& log_probs,
                                                             const at::Tensor& input_lengths, int64_t blank,
                                                             bool batch_first) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::greedy_decode", "")
                       .typed<decltype(greedy_decode)>();
  return op.call(log_probs, input_lengths, blank, batch_first);
}

at::Tensor ctc_nll(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                   const at::Tensor& target_lengths, int64_t blank, bool zero_infinity, bool batch_first,
                   bool from_logits, bool validate) {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("torch_ctc::ctc_nll", "").typed<decltype(ctc_nll)>();
  return op.call(log_probs, targets, input_lengths, target_lengths, blank, zero_infinity, batch_first, from_logits,
                 validate);
}

at::Tensor ctc_loss(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                    const at::Tensor& target_lengths, int64_t blank, int64_t reduction, bool zero_infinity,
                    bool batch_first, bool from_logits, bool validate) {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("torch_ctc::ctc_loss", "").typed<decltype(ctc_loss)>();
  return op.call(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity, batch_first,
                 from_logits, validate);
}

at::Tensor apply_zero_infinity(const at::Tensor& nll, bool zero_infinity) {
  if (!zero_infinity) return nll;
  return at::where(nll == std::numeric_limits<double>::infinity(), at::zeros({}, nll.options()), nll);
}

namespace {

// ctc_nll below autograd: the forward op's losses.
at::Tensor ctc_nll_no_autograd(const at::Tensor& log_probs, const at::Tensor& targets,
                               const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank,
                               bool zero_infinity, bool batch_first, bool from_logits, bool validate) {
  auto nll = std::get<0>(
      ctc_forward(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits, validate));
  return apply_zero_infinity(nll, zero_infinity);
}

at::Tensor lengths_as_vector(const at::Tensor& lengths, const char* name) {
  TORCH_CHECK_VALUE(lengths.numel() == 1, "torch_ctc: for unbatched log_probs (T, C), ", name,
                    " must hold a single length, got shape ", lengths.sizes());
  return lengths.reshape({1});
}

// torch accepts a 0-d length tensor for a batch of one (its own
// test_CTCLoss_critical_target_len passes target_lengths = torch.tensor(256)
// with N = 1): it is that sample's length. Any other count is refused later,
// naming the argument.
at::Tensor as_length_per_sample(const at::Tensor& lengths) {
  return lengths.dim() == 0 ? lengths.reshape({1}) : lengths;
}

// The arguments as a batch: unbatched (T, C) input becomes a batch of one
// (T, 1, C), with 1-D targets and single lengths; 0-d lengths of a batch of
// one become 1-D. `targets` may be undefined (greedy decoding has none).
struct Batched {
  at::Tensor log_probs, targets, input_lengths, target_lengths;
  bool unbatched, batch_first;
};

Batched as_batched(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                   const at::Tensor& target_lengths, bool batch_first) {
  Batched b{log_probs, targets, as_length_per_sample(input_lengths),
            target_lengths.defined() ? as_length_per_sample(target_lengths) : target_lengths, log_probs.dim() == 2,
            batch_first};
  if (!b.unbatched) return b;
  if (targets.defined()) {
    TORCH_CHECK_VALUE(targets.dim() == 1, "torch_ctc: for unbatched log_probs (T, C), targets must be 1-D, got shape ",
                      targets.sizes());
    b.targets = targets.unsqueeze(0);
    b.target_lengths = lengths_as_vector(target_lengths, "target_lengths");
  }
  b.log_probs = log_probs.unsqueeze(1);
  b.batch_first = false;
  b.input_lengths = lengths_as_vector(input_lengths, "input_lengths");
  return b;
}

at::Tensor ctc_loss_composite(const at::Tensor& log_probs, const at::Tensor& targets,
                              const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank,
                              int64_t reduction, bool zero_infinity, bool batch_first, bool from_logits,
                              bool validate) {
  TORCH_CHECK_VALUE(reduction == kNone || reduction == kMean || reduction == kSum, "torch_ctc: reduction = ",
                    reduction, " is not one of 0 (none), 1 (mean), 2 (sum)");
  const Batched b = as_batched(log_probs, targets, input_lengths, target_lengths, batch_first);
  at::Tensor nll = ctc_nll(b.log_probs, b.targets, b.input_lengths, b.target_lengths, blank, zero_infinity,
                           b.batch_first, from_logits, validate);
  switch (reduction) {
    case kNone: return b.unbatched ? nll.squeeze(0) : nll;
    case kSum: return nll.sum();
    default: return (nll / b.target_lengths.to(nll.device(), nll.scalar_type()).clamp_min(1)).mean();
  }
}

// Alignment and decoding have no gradient: they read the input detached.
std::tuple<at::Tensor, at::Tensor> forced_align_composite(const at::Tensor& log_probs, const at::Tensor& targets,
                                                          const at::Tensor& input_lengths,
                                                          const at::Tensor& target_lengths, int64_t blank,
                                                          bool batch_first, int64_t memory, bool validate) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::_forced_align", "")
                       .typed<decltype(forced_align_composite)>();
  const Batched b = as_batched(log_probs, targets, input_lengths, target_lengths, batch_first);
  auto [alignments, scores] = op.call(b.log_probs.detach(), b.targets, b.input_lengths, b.target_lengths, blank,
                                      b.batch_first, memory, validate);
  if (b.unbatched) return {alignments.squeeze(0), scores.squeeze(0)};
  return {alignments, scores};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode_composite(const at::Tensor& log_probs,
                                                                       const at::Tensor& input_lengths, int64_t blank,
                                                                       bool batch_first) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::_greedy_decode", "")
                       .typed<decltype(greedy_decode_composite)>();
  const Batched b = as_batched(log_probs, at::Tensor(), input_lengths, at::Tensor(), batch_first);
  auto [tokens, lengths, frames] = op.call(b.log_probs.detach(), b.input_lengths, blank, b.batch_first);
  if (b.unbatched) return {tokens.squeeze(0), lengths.squeeze(0), frames.squeeze(0)};
  return {tokens, lengths, frames};
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, CompositeImplicitAutograd, m) {
  m.impl("ctc_loss", &ctc_loss_composite);
  m.impl("forced_align", &forced_align_composite);
  m.impl("greedy_decode", &greedy_decode_composite);
}

TORCH_LIBRARY_IMPL(torch_ctc, CompositeExplicitAutograd, m) { m.impl("ctc_nll", &ctc_nll_no_autograd); }

}  // namespace torch_ctc
