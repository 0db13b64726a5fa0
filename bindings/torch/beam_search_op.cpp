// torch_ctc::beam_search and the NGramLM custom class: the binding of the
// core's prefix beam search (ctc/beam_search.h) and ARPA reader
// (ctc/ngram_lm.h). The search runs on the CPU in torch's intra-op threads;
// CUDA input is copied to the host first. Python (alignment.py's neighbour,
// decoding.py) and the C++ API build their Hypothesis lists from the flat
// tensors this op returns.
#include <ATen/ATen.h>
#include <torch/custom_class.h>
#include <torch/library.h>

#include <memory>
#include <string>
#include <vector>

#include "alignment_args.h"
#include "beam_search_op.h"
#include "ctc/beam_search.h"
#include "ctc/error.h"
#include "parallel.h"
#include "tensor_problem.h"

namespace torch_ctc {

LanguageModel::LanguageModel(const std::string& path, std::vector<std::string> tokens, int64_t blank,
                             int64_t word_delimiter) {
  try {
    lm_ = std::make_unique<ctc::NGramLM>(ctc::NGramLM::from_arpa_file(path));
    scorer_ = std::make_unique<ctc::LmScorer>(*lm_, std::move(tokens), blank, word_delimiter);
  } catch (const ctc::Error& e) {
    rethrow_core_error(e);
  }
  blank_ = blank;
  word_delimiter_ = word_delimiter;
}

double LanguageModel::score(const std::vector<int64_t>& tokens) const {
  ctc::PartialWords words;
  ctc::LmScorer::State state = scorer_->start();
  double total = 0;
  for (const int64_t token : tokens) {
    TORCH_CHECK_VALUE(token >= 0 && token < scorer_->num_tokens() && token != blank_, "torch_ctc: token ", token,
                      " is not one of the language model's non-blank tokens");
    ctc::LmScorer::State next;
    total += scorer_->extend(state, token, &next, words);
    state = next;
  }
  return total + scorer_->finish(state, words);
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> beam_search_cpu(
    const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t beam_size, int64_t blank, bool batch_first,
    int64_t nbest, const c10::optional<c10::intrusive_ptr<LanguageModel>>& lm, double lm_weight, double token_score,
    int64_t token_cutoff, double beam_threshold, double blank_skip_threshold) {
  const HostDecodeProblem host = make_host_decode_problem(log_probs, input_lengths, blank, batch_first);
  const ctc::Problem& p = host.problem;
  ctc::BeamSearchOptions options;
  options.beam_size = beam_size;
  options.nbest = nbest;
  options.lm_weight = lm_weight;
  options.token_score = token_score;
  options.token_cutoff = token_cutoff;
  options.beam_threshold = beam_threshold;
  options.blank_skip_threshold = blank_skip_threshold;
  const ctc::LmScorer* scorer = nullptr;
  if (lm.has_value() && *lm) {
    TORCH_CHECK_VALUE((*lm)->blank() == blank, "torch_ctc: the language model was loaded for blank = ",
                      (*lm)->blank(), " but beam_search got blank = ", blank);
    scorer = &(*lm)->scorer();
  }
  std::vector<std::vector<ctc::Hypothesis>> found;
  try {
    found = ctc::cpu_beam_search(p, options, scorer, torch_parallel_for);
  } catch (const ctc::Error& e) {
    rethrow_core_error(e);
  }
  // Flat: (N, nbest) scores and token counts (-1: no such hypothesis), then every
  // hypothesis's tokens and timesteps back to back.
  at::Tensor scores = at::full({p.batch, nbest}, -INFINITY, at::kDouble);
  at::Tensor counts = at::full({p.batch, nbest}, -1, at::kLong);
  std::vector<int64_t> tokens, timesteps;
  for (int64_t n = 0; n < p.batch; ++n)
    for (size_t k = 0; k < found[static_cast<size_t>(n)].size(); ++k) {
      const ctc::Hypothesis& h = found[static_cast<size_t>(n)][k];
      scores[n][static_cast<int64_t>(k)] = h.score;
      counts[n][static_cast<int64_t>(k)] = static_cast<int64_t>(h.tokens.size());
      tokens.insert(tokens.end(), h.tokens.begin(), h.tokens.end());
      timesteps.insert(timesteps.end(), h.timesteps.begin(), h.timesteps.end());
    }
  return {scores, counts, at::tensor(tokens, at::kLong), at::tensor(timesteps, at::kLong)};
}

// CUDA input: decoded on the host (the search is sequential per sample).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> beam_search_from_device(
    const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t beam_size, int64_t blank, bool batch_first,
    int64_t nbest, const c10::optional<c10::intrusive_ptr<LanguageModel>>& lm, double lm_weight, double token_score,
    int64_t token_cutoff, double beam_threshold, double blank_skip_threshold) {
  return beam_search_cpu(log_probs.cpu(), input_lengths.cpu(), beam_size, blank, batch_first, nbest, lm, lm_weight,
                         token_score, token_cutoff, beam_threshold, blank_skip_threshold);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(torch_ctc, m) {
  m.class_<LanguageModel>("NGramLM")
      .def(torch::init<std::string, std::vector<std::string>, int64_t, int64_t>())
      .def("order", &LanguageModel::order)
      .def("vocabulary_size", &LanguageModel::vocabulary_size)
      .def("blank", &LanguageModel::blank)
      .def("word_delimiter", &LanguageModel::word_delimiter)
      .def("score", &LanguageModel::score);
  // No defaults for the thresholds: a schema cannot spell inf (the APIs pass every argument).
  m.def(
      "beam_search(Tensor log_probs, Tensor input_lengths, int beam_size, int blank, bool batch_first, int nbest, "
      "__torch__.torch.classes.torch_ctc.NGramLM? lm, float lm_weight, float token_score, int token_cutoff, "
      "float beam_threshold, float blank_skip_threshold) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(torch_ctc, CPU, m) { m.impl("beam_search", &beam_search_cpu); }
TORCH_LIBRARY_IMPL(torch_ctc, CUDA, m) { m.impl("beam_search", &beam_search_from_device); }

}  // namespace torch_ctc
