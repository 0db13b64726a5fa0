// torch-ctc's C++ API for what comes after the loss: forced alignment,
// merging an alignment into token spans, and greedy decoding.
//
//   #include <torch_ctc/alignment.h>
//   auto [alignments, scores] = ctc::forced_align(log_probs, targets, input_lengths, target_lengths);
//   auto spans = ctc::merge_tokens(alignments[0], scores[0].exp());
//   ctc::GreedyDecoding decoded = ctc::greedy_decode(log_probs, input_lengths);
//
// log_probs, targets and lengths take the same forms as ctc::ctc_loss's
// (docs/alignment.md has the semantics and the tie rule).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <tuple>
#include <vector>

namespace ctc {

// How much memory forced alignment keeps (see docs/alignment.md).
enum class AlignmentMemory : int64_t { kAuto = 0, kFull = 1, kCheckpointed = 2 };

struct ForcedAlignOptions {
  TORCH_ARG(int64_t, blank) = 0;
  // log_probs is (N, T, C).
  TORCH_ARG(bool, batch_first) = false;
  // kAuto checkpoints a sample whose moves would take over 64 MiB (CPU only).
  TORCH_ARG(AlignmentMemory, memory) = AlignmentMemory::kAuto;
  // CUDA only (the CPU always checks): false skips the host copy of lengths
  // and targets, for CUDA-graph capture; bad data then gives -1 alignments.
  TORCH_ARG(bool, validate) = true;
};

// (alignments, scores), each (N, T) (or (T,) unbatched): the label of every
// frame on the best CTC path of each sample's target, -1 past its input
// length; and log_probs at that label (float32, float64 for float64 input), 0
// past the input length. Raises c10::ValueError for samples with too few
// frames, or with no path of finite score.
std::tuple<at::Tensor, at::Tensor> forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                const ForcedAlignOptions& options = {});

// A run of one token in an alignment: frames [start, end), and the mean of
// the given scores over them (torchaudio's TokenSpan).
struct TokenSpan {
  int64_t token, start, end;
  double score;
};

// The token spans of a 1-D alignment (frames holding -1, past the input
// length, are left out), blank dropped.
std::vector<TokenSpan> merge_tokens(const at::Tensor& alignment, const at::Tensor& scores, int64_t blank = 0);

// Per sample of (N, T) alignments, frames t >= input_lengths[n] ignored
// (undefined input_lengths: all frames).
std::vector<std::vector<TokenSpan>> merge_tokens(const at::Tensor& alignments, const at::Tensor& scores,
                                                 const at::Tensor& input_lengths, int64_t blank = 0);

// Best-path decoding: each frame's argmax label, repeats merged, blanks
// removed. tokens (N, T) int64 padded with -1, lengths (N,), and each token's
// first frame (N, T), -1 padded. tokens[n].slice(0, 0, lengths[n]) is sample
// n's output. On CUDA it runs without a host sync.
struct GreedyDecoding {
  at::Tensor tokens, lengths, frames;
};
GreedyDecoding greedy_decode(const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t blank = 0,
                             bool batch_first = false);

}  // namespace ctc
