// CTC prefix beam search on the CPU, batched over threads, with an optional
// n-gram language model (ctc/ngram_lm.h). docs/decoding.md has the contract.
//
// Each prefix keeps the probability of its paths that end in blank (p_b) and
// in its last label (p_nb). Extending a prefix with its own last label only
// counts p_b (a blank must separate the two). With no LM and no pruning, and
// a beam as wide as the number of distinct prefixes, the result is exactly the
// top-nbest of log P_ctc(y | x) (= -ctc_loss). With an LM the score of y is
//   log P_ctc(y | x) + lm_weight * ln P_lm(y </s>) + token_score * |y|,
// and the search ranks prefixes by their CTC probability plus the LM terms of
// the tokens so far.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "ctc/cpu_engine.h"
#include "ctc/ngram_lm.h"
#include "ctc/problem.h"

namespace ctc {

struct BeamSearchOptions {
  int64_t beam_size = 16;
  int64_t nbest = 1;
  double lm_weight = 0.5;    // weight of ln P_lm (with an LM); at least 0
  double token_score = 0.0;  // added for every emitted token
  // Pruning, all off by default:
  int64_t token_cutoff = 0;                // > 0: extend with only the k likeliest tokens of each frame
  double beam_threshold = INFINITY;        // drop prefixes more than this (natural log) below the best
  double blank_skip_threshold = INFINITY;  // frames where P(blank) >= this extend no prefix (<= 1 to use)
};

struct Hypothesis {
  std::vector<int64_t> tokens;
  std::vector<int64_t> timesteps;  // the frame at which the search first emitted each token
  double score = 0;                // natural log
};

// The texts of the growing last word of a word-level LM, interned per search.
class PartialWords {
 public:
  int32_t intern(const std::string& text);
  const std::string& text(int32_t id) const { return texts_[static_cast<size_t>(id)]; }

 private:
  std::vector<std::string> texts_;
  std::unordered_map<std::string, int32_t> ids_;
};

// How tokens meet an n-gram LM. Character LM (word_delimiter < 0): tokens[i]
// is the LM word of token i, and every token but blank must be in the LM.
// Word LM: tokens[i] is the text of token i; a word is the concatenated text
// of the tokens between two word_delimiter tokens, scored when the delimiter
// (or the end, for the last word) is reached; a word not in the LM scores as
// <unk>. </s> ends every hypothesis.
class LmScorer {
 public:
  struct State {
    NGramLM::Context context;
    int32_t partial;  // word LM: the interned text of the word so far (-1: none)
  };

  // Throws ctc::Error: tokens naming words the LM lacks (character LM), or a
  // delimiter out of range or equal to blank.
  LmScorer(const NGramLM& lm, std::vector<std::string> tokens, int64_t blank, int64_t word_delimiter);

  int64_t num_tokens() const { return static_cast<int64_t>(texts_.size()); }
  State start() const { return {lm_->begin_context(), -1}; }
  // ln P of appending `token` (0 while a word LM's word is still growing).
  double extend(const State& state, int64_t token, State* next, PartialWords& words) const;
  // ln P of ending here: the last word (word LM), then </s>.
  double finish(const State& state, const PartialWords& words) const;

 private:
  const NGramLM* lm_;
  std::vector<std::string> texts_;
  std::vector<int32_t> word_of_token_;  // character LM
  int64_t delimiter_;
};

// Decodes every sample of `problem` (its input, sizes, strides, input_lengths
// and blank; from_logits false): up to options.nbest hypotheses each, best
// first. `lm` may be null. Throws ctc::Error for options out of range.
std::vector<std::vector<Hypothesis>> cpu_beam_search(const Problem& problem, const BeamSearchOptions& options,
                                                     const LmScorer* lm, const ParallelFor& parallel_for = serial_for);

// Throws ctc::Error naming the option: beam_size < 1, nbest < 1, lm_weight < 0,
// token_cutoff < 0, a NaN threshold.
void check_beam_search_options(const BeamSearchOptions& options);

}  // namespace ctc
