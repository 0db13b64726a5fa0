// _merge_tokens: an alignment's token spans, as flat tensors (the Python and
// C++ APIs build their TokenSpan lists from them, so the rule lives here
// once). Device-independent: it reads CPU copies.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

namespace torch_ctc {
namespace {

// Returns (spans (M, 4) int64: sample, token, start, end; scores (M,) float64,
// the mean of `scores` over each span). Spans of sample n, in frame order,
// over frames [0, input_lengths[n]) that hold a label (not -1), blank dropped.
std::tuple<at::Tensor, at::Tensor> merge_tokens_kernel(const at::Tensor& alignments, const at::Tensor& scores,
                                                       const at::Tensor& input_lengths, int64_t blank) {
  TORCH_CHECK_VALUE(alignments.dim() == 2, "torch_ctc: merge_tokens: alignments must be (N, T), got shape ",
                    alignments.sizes());
  TORCH_CHECK_VALUE(scores.sizes() == alignments.sizes(), "torch_ctc: merge_tokens: scores has shape ", scores.sizes(),
                    " but alignments has ", alignments.sizes());
  TORCH_CHECK_VALUE(input_lengths.numel() == alignments.size(0), "torch_ctc: merge_tokens: input_lengths has ",
                    input_lengths.numel(), " entries for ", alignments.size(0), " alignments");
  const at::Tensor tokens = alignments.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor values = scores.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor lengths = input_lengths.to(at::kCPU, at::kLong).contiguous();
  const int64_t N = tokens.size(0), T = tokens.size(1);
  const int64_t* token = tokens.data_ptr<int64_t>();
  const double* value = values.data_ptr<double>();
  std::vector<int64_t> spans;
  std::vector<double> means;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t frames = std::min<int64_t>(std::max<int64_t>(lengths.data_ptr<int64_t>()[n], 0), T);
    const int64_t* row = token + n * T;
    for (int64_t start = 0; start < frames;) {
      int64_t end = start + 1;
      while (end < frames && row[end] == row[start]) ++end;
      if (row[start] != blank && row[start] >= 0) {
        double sum = 0;
        for (int64_t t = start; t < end; ++t) sum += value[n * T + t];
        spans.insert(spans.end(), {n, row[start], start, end});
        means.push_back(sum / static_cast<double>(end - start));
      }
      start = end;
    }
  }
  const int64_t M = static_cast<int64_t>(means.size());
  return {at::tensor(spans, at::kLong).reshape({M, 4}), at::tensor(means, at::kDouble)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torch_ctc, m) {
  m.def("_merge_tokens(Tensor alignments, Tensor scores, Tensor input_lengths, int blank) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(torch_ctc, CompositeExplicitAutograd, m) { m.impl("_merge_tokens", &merge_tokens_kernel); }

}  // namespace torch_ctc
