// The NGramLM custom class (torch.classes.torch_ctc.NGramLM) that
// beam_search_op.cpp registers: an ARPA model and how the tokens meet it.
#pragma once

#include <torch/custom_class.h>

#include <memory>
#include <string>
#include <vector>

#include "ctc/beam_search.h"
#include "ctc/ngram_lm.h"

namespace torch_ctc {

class LanguageModel : public torch::CustomClassHolder {
 public:
  // word_delimiter: -1 for a character LM (tokens[i] is the LM word of token i).
  LanguageModel(const std::string& path, std::vector<std::string> tokens, int64_t blank, int64_t word_delimiter);

  int64_t order() const { return lm_->order(); }
  int64_t vocabulary_size() const { return lm_->vocabulary_size(); }
  int64_t blank() const { return blank_; }
  int64_t word_delimiter() const { return word_delimiter_; }
  // ln P_lm(tokens </s>) as the beam search scores it.
  double score(const std::vector<int64_t>& tokens) const;
  const ctc::LmScorer& scorer() const { return *scorer_; }

 private:
  std::unique_ptr<ctc::NGramLM> lm_;
  std::unique_ptr<ctc::LmScorer> scorer_;
  int64_t blank_ = 0, word_delimiter_ = -1;
};

}  // namespace torch_ctc
