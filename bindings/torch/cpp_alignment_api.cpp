// The C++ API of include/torch_ctc/alignment.h, on top of the operators.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "ops.h"
#include "torch_ctc/alignment.h"

namespace ctc {

std::tuple<at::Tensor, at::Tensor> forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                const ForcedAlignOptions& options) {
  return torch_ctc::forced_align(log_probs, targets, input_lengths, target_lengths, options.blank(),
                                 options.batch_first(), static_cast<int64_t>(options.memory()), options.validate());
}

std::vector<std::vector<TokenSpan>> merge_tokens(const at::Tensor& alignments, const at::Tensor& scores,
                                                 const at::Tensor& input_lengths, int64_t blank) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("torch_ctc::_merge_tokens", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, int64_t)>();
  const at::Tensor lengths = input_lengths.defined()
                                 ? input_lengths
                                 : at::full({alignments.size(0)}, alignments.size(1), at::TensorOptions(at::kLong));
  auto [spans, means] = op.call(alignments, scores, lengths, blank);
  std::vector<std::vector<TokenSpan>> out(static_cast<size_t>(alignments.size(0)));
  const int64_t* s = spans.data_ptr<int64_t>();
  const double* m = means.data_ptr<double>();
  for (int64_t k = 0; k < spans.size(0); ++k) out[s[4 * k]].push_back({s[4 * k + 1], s[4 * k + 2], s[4 * k + 3], m[k]});
  return out;
}

std::vector<TokenSpan> merge_tokens(const at::Tensor& alignment, const at::Tensor& scores, int64_t blank) {
  TORCH_CHECK_VALUE(alignment.dim() == 1, "torch_ctc: merge_tokens: a single alignment must be 1-D (T,), got shape ",
                    alignment.sizes(), "; pass input_lengths for (N, T) alignments");
  return merge_tokens(alignment.unsqueeze(0), scores.unsqueeze(0), at::Tensor(), blank).front();
}

GreedyDecoding greedy_decode(const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t blank,
                             bool batch_first) {
  auto [tokens, lengths, frames] = torch_ctc::greedy_decode(log_probs, input_lengths, blank, batch_first);
  return {tokens, lengths, frames};
}

}  // namespace ctc
