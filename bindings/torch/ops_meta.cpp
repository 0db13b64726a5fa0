// Meta (fake tensor) kernels: output shapes and dtypes from input shapes alone,
// so torch.compile and torch.library.opcheck can trace the ops without data.
// Sizes are symbolic-aware (SymInt) for dynamic shapes.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "alignment_args.h"
#include "tensor_problem.h"

namespace torch_ctc {
namespace {

std::tuple<at::Tensor, at::Tensor> ctc_forward_meta(const at::Tensor& log_probs, const at::Tensor& targets,
                                                    const at::Tensor& input_lengths,
                                                    const at::Tensor& target_lengths, int64_t blank, bool batch_first,
                                                    bool from_logits, bool /*validate*/) {
  check_arguments(log_probs, targets, input_lengths, target_lengths, blank, batch_first);
  const c10::SymInt time = log_probs.sym_size(batch_first ? 1 : 0);
  const c10::SymInt batch = log_probs.sym_size(batch_first ? 0 : 1);
  // Mirrors ctc::forward_workspace_layout (see ctc/workspace.h).
  c10::SymInt elems = time * (2 * targets.sym_numel() + batch);
  if (from_logits) elems = elems + time * batch;
  const auto acc = log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type()));
  return {at::empty_symint({batch}, acc), at::empty_symint({elems}, acc)};
}

at::Tensor ctc_backward_meta(const at::Tensor& /*grad_nll*/, const at::Tensor& log_probs, const at::Tensor& targets,
                             const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                             const at::Tensor& /*nll*/, const at::Tensor& /*workspace*/, int64_t blank,
                             bool /*zero_infinity*/, bool batch_first, bool /*from_logits*/) {
  check_arguments(log_probs, targets, input_lengths, target_lengths, blank, batch_first);
  return at::empty_like(log_probs);
}

std::tuple<at::Tensor, at::Tensor> forced_align_meta(const at::Tensor& log_probs, const at::Tensor& targets,
                                                     const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                     int64_t blank, bool batch_first, int64_t memory,
                                                     bool /*validate*/) {
  check_arguments(log_probs, targets, input_lengths, target_lengths, blank, batch_first);
  align_memory(memory);
  const c10::SymInt time = log_probs.sym_size(batch_first ? 1 : 0);
  const c10::SymInt batch = log_probs.sym_size(batch_first ? 0 : 1);
  const auto acc = log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type()));
  return {at::empty_symint({batch, time}, log_probs.options().dtype(at::kLong)), at::empty_symint({batch, time}, acc)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode_meta(const at::Tensor& log_probs,
                                                                  const at::Tensor& input_lengths, int64_t blank,
                                                                  bool batch_first) {
  check_decode_arguments(log_probs, input_lengths, blank, batch_first);
  const c10::SymInt time = log_probs.sym_size(batch_first ? 1 : 0);
  const c10::SymInt batch = log_probs.sym_size(batch_first ? 0 : 1);
  const auto long_options = log_probs.options().dtype(at::kLong);
  return {at::empty_symint({batch, time}, long_options), at::empty_symint({batch}, long_options),
          at::empty_symint({batch, time}, long_options)};
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, Meta, m) {
  m.impl("_ctc_forward", &ctc_forward_meta);
  m.impl("_ctc_backward", &ctc_backward_meta);
  m.impl("_forced_align", &forced_align_meta);
  m.impl("_greedy_decode", &greedy_decode_meta);
}

}  // namespace torch_ctc
