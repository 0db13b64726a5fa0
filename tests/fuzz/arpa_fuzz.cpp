// libFuzzer target over the ARPA reader (ctc/ngram_lm.h) and the beam search's
// LM scorer (ctc/beam_search.h): the fuzz input is an ARPA file. The reader
// must either load it or throw a ctc::Error naming the argument "arpa" (any
// other exception, a crash or a sanitizer report is a finding). A model that
// loads is then queried: chains of words from <s>, </s> after each, and a
// character and a word LmScorer over its own vocabulary, whose scores must
// never be NaN or +inf (the reader refuses both in the file). Built by
// scripts/fuzz.sh.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "ctc/beam_search.h"
#include "ctc/error.h"
#include "ctc/ngram_lm.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "arpa_fuzz: %s\n", what);
    std::abort();
  }
}

bool finite_or_minus_inf(double x) { return !std::isnan(x) && x != INFINITY; }

// Walks the model from <s> through the first words of its vocabulary.
void query_model(const ctc::NGramLM& lm) {
  const int32_t words = static_cast<int32_t>(std::min<int64_t>(lm.vocabulary_size(), 12));
  for (int32_t start = -1; start < words; ++start) {
    ctc::NGramLM::Context context = lm.begin_context();
    for (int32_t step = 0; step < 8; ++step) {
      const int32_t w = step == 0 ? start : (start + step * 5 + 1) % std::max(words, 1);
      const double s = lm.score(context, w, &context);
      check(finite_or_minus_inf(s), "a score is NaN or +inf");
      check(finite_or_minus_inf(lm.end_score(context)), "an end score is NaN or +inf");
    }
  }
}

// A character scorer over the model's own words, and a word scorer whose
// tokens are its words' first characters (token 0 is the blank, 1 the delimiter).
void query_scorers(const ctc::NGramLM& lm) {
  std::vector<std::string> char_tokens{"<blank>"}, word_tokens{"<blank>", " "};
  for (int32_t w = 0; w < lm.vocabulary_size() && char_tokens.size() < 10; ++w) {
    char_tokens.push_back(lm.word(w));
    word_tokens.push_back(lm.word(w).substr(0, 1));
  }
  ctc::PartialWords words;
  for (int64_t delimiter : {int64_t{-1}, int64_t{1}}) {
    const auto& tokens = delimiter < 0 ? char_tokens : word_tokens;
    const ctc::LmScorer scorer(lm, tokens, 0, delimiter);
    ctc::LmScorer::State state = scorer.start();
    for (int64_t k = 0; k < 12; ++k) {
      ctc::LmScorer::State next{};
      const int64_t token = 1 + (k * 7) % (scorer.num_tokens() - 1);
      const double s = scorer.extend(state, token, &next, words);
      check(finite_or_minus_inf(s), "a scorer extension is NaN or +inf");
      state = next;
      check(finite_or_minus_inf(scorer.finish(state, words)), "a scorer end is NaN or +inf");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  try {
    const ctc::NGramLM lm = ctc::NGramLM::from_arpa(in, "fuzz.arpa");
    query_model(lm);
    if (lm.vocabulary_size() > 1) query_scorers(lm);
  } catch (const ctc::Error& e) {
    check(e.argument() == "arpa", "a ctc::Error that does not name the argument \"arpa\"");
  }
  return 0;
}
