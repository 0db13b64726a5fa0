#include "ctc/beam_search.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <queue>

#include "ctc/cpu_engine_internal.h"
#include "ctc/error.h"
#include "ctc/math.h"

namespace ctc {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double log_add(double a, double b) { return math::log_add(a, b); }

[[noreturn]] void fail(const char* argument, const std::string& what) {
  throw Error(ErrorKind::kValue, argument, "torch_ctc: " + what);
}

// Prefixes as a trie (a prefix is a node; its tokens are the path from the
// root), and the frames their tokens were emitted at as an immutable tree of
// their own. Each beam keeps two timelines: that of its likeliest path ending
// in blank and that of its likeliest path ending in its last label, so that
// an extension follows the route it actually extends (a repeated label only
// the blank-ending one) and timesteps always fit a valid alignment.
struct TrieNode {
  int32_t parent, token;
};
struct History {
  int32_t parent, frame;
};

struct Beam {
  int32_t node;
  int32_t history_b, history_nb;  // the timelines of its likeliest path ending in blank / its last label
  double p_b, p_nb;  // ln P of the prefix's paths so far ending in blank / in its last label
  double lm;         // the LM and token-score terms of its tokens
  LmScorer::State lm_state;
  int32_t last;  // its last token, -1 for the empty prefix
};

// A prefix of the next frame: a beam carried over (token < 0) or extended.
struct Candidate {
  double score;  // ln(p_b + p_nb) + lm: what the beam is ranked by
  double p_b, p_nb, lm;
  LmScorer::State lm_state;
  int32_t source;      // the beam it comes from
  int32_t token;       // the token it adds, -1 when carried
  int32_t history_b;   // its blank-ending timeline
  int32_t history_nb;  // its label-ending timeline, or (nb_emitted) the timeline the label extends at this frame
  bool nb_emitted;
  bool operator>(const Candidate& o) const { return score > o.score; }
};

// The timeline of a beam's likeliest path.
int32_t dominant(const Beam& b) { return b.p_b >= b.p_nb ? b.history_b : b.history_nb; }

class PrefixSearch {
 public:
  PrefixSearch(const BeamSearchOptions& options, const LmScorer* lm, int64_t blank, int64_t classes)
      : o_(options), lm_(lm), blank_(blank), classes_(classes), child_of_beam_(static_cast<size_t>(classes), -1) {
    trie_.push_back({-1, -1});
    histories_.push_back({-1, -1});
    LmScorer::State start = lm_ != nullptr ? lm_->start() : LmScorer::State{0, -1};
    beams_.push_back({0, 0, 0, 0.0, kNegInf, 0.0, start, -1});
  }

  // One frame of emissions e[c] (log-probabilities).
  void step(int32_t frame, const std::vector<double>& e) {
    if (std::exp(e[blank_]) >= o_.blank_skip_threshold) return blank_only(e);
    select_tokens(e);
    std::vector<Candidate> heap;
    heap.reserve(static_cast<size_t>(o_.beam_size) + 1);
    const std::vector<int32_t> carried = carry(e, frame, heap);
    for (size_t i = 0; i < beams_.size(); ++i) extend(static_cast<int32_t>(i), carried, e, frame, heap);
    keep(heap, frame);
  }

  std::vector<Hypothesis> finish() const {
    std::vector<Hypothesis> out;
    for (const Beam& b : beams_) {
      Hypothesis h;
      h.score = log_add(b.p_b, b.p_nb) + b.lm + (lm_ != nullptr ? o_.lm_weight * lm_->finish(b.lm_state, words_) : 0);
      for (int32_t n = b.node; n > 0; n = trie_[n].parent) h.tokens.push_back(trie_[n].token);
      for (int32_t k = dominant(b); k > 0; k = histories_[k].parent) h.timesteps.push_back(histories_[k].frame);
      std::reverse(h.tokens.begin(), h.tokens.end());
      std::reverse(h.timesteps.begin(), h.timesteps.end());
      out.push_back(std::move(h));
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (out.size() > static_cast<size_t>(o_.nbest)) out.resize(static_cast<size_t>(o_.nbest));
    return out;
  }

 private:
  // A frame whose blank probability is above the skip threshold: every path takes blank.
  void blank_only(const std::vector<double>& e) {
    for (Beam& b : beams_) {
      b.p_b = log_add(b.p_b, b.p_nb) + e[blank_];
      b.p_nb = kNegInf;
    }
  }

  // The tokens this frame may extend with: all but blank, or the token_cutoff likeliest.
  void select_tokens(const std::vector<double>& e) {
    tokens_.clear();
    for (int32_t c = 0; c < classes_; ++c)
      if (c != blank_ && e[c] > kNegInf) tokens_.push_back(c);
    if (o_.token_cutoff > 0 && tokens_.size() > static_cast<size_t>(o_.token_cutoff)) {
      std::nth_element(tokens_.begin(), tokens_.begin() + o_.token_cutoff, tokens_.end(),
                       [&](int32_t a, int32_t b) { return e[a] > e[b] || (e[a] == e[b] && a < b); });
      tokens_.resize(static_cast<size_t>(o_.token_cutoff));
      std::sort(tokens_.begin(), tokens_.end());
    }
  }

  // Every beam carried into the next frame (blank, or its last label again),
  // merged with its own extension from its parent if the parent is a beam too.
  // Returns, per beam, the index of the beam that extends it (or -1).
  std::vector<int32_t> carry(const std::vector<double>& e, int32_t frame, std::vector<Candidate>& heap) {
    std::vector<int32_t> parent_beam(beams_.size(), -1);
    for (size_t j = 0; j < beams_.size(); ++j)
      for (size_t i = 0; i < beams_.size(); ++i)
        if (beams_[j].node > 0 && trie_[beams_[j].node].parent == beams_[i].node)
          parent_beam[j] = static_cast<int32_t>(i);
    for (size_t j = 0; j < beams_.size(); ++j) {
      const Beam& b = beams_[j];
      Candidate c{0, log_add(b.p_b, b.p_nb) + e[blank_], b.last >= 0 ? b.p_nb + e[b.last] : kNegInf, b.lm,
                  b.lm_state, static_cast<int32_t>(j), -1, dominant(b), b.history_nb, false};
      if (parent_beam[j] >= 0 && on_the_token_list(b.last)) {
        const Beam& parent = beams_[parent_beam[j]];
        const bool repeat = parent.last == b.last;
        const double ext = (repeat ? parent.p_b : log_add(parent.p_b, parent.p_nb)) + e[b.last];
        if (ext > c.p_nb) {  // the label is likelier emitted now, after the parent's route, than carried
          c.history_nb = repeat ? parent.history_b : dominant(parent);
          c.nb_emitted = true;
        }
        c.p_nb = log_add(c.p_nb, ext);
      }
      c.score = log_add(c.p_b, c.p_nb) + c.lm;
      push(heap, c);
    }
    (void)frame;
    return parent_beam;
  }

  bool on_the_token_list(int32_t token) const {
    return o_.token_cutoff <= 0 || std::binary_search(tokens_.begin(), tokens_.end(), token);
  }

  // Beam i extended with each token; those already carried (its children in the beam) are skipped.
  void extend(int32_t i, const std::vector<int32_t>& parent_beam, const std::vector<double>& e, int32_t frame,
              std::vector<Candidate>& heap) {
    const Beam& b = beams_[static_cast<size_t>(i)];
    for (size_t j = 0; j < beams_.size(); ++j)
      if (parent_beam[j] == i) child_of_beam_[static_cast<size_t>(beams_[j].last)] = static_cast<int32_t>(j);
    const double total = log_add(b.p_b, b.p_nb);
    for (const int32_t c : tokens_) {
      if (child_of_beam_[static_cast<size_t>(c)] >= 0) continue;
      const double ext = (c == b.last ? b.p_b : total) + e[c];
      if (ext == kNegInf) continue;
      const double bound = ext + b.lm + o_.token_score;  // the LM term is <= 0
      if (heap.size() >= static_cast<size_t>(o_.beam_size) && bound <= heap.front().score) continue;
      Candidate cand{0, kNegInf, ext, b.lm + o_.token_score, b.lm_state, i, c, 0,
                     c == b.last ? b.history_b : dominant(b), true};
      if (lm_ != nullptr) cand.lm += o_.lm_weight * lm_->extend(b.lm_state, c, &cand.lm_state, words_);
      cand.score = ext + cand.lm;
      push(heap, cand);
    }
    for (size_t j = 0; j < beams_.size(); ++j)
      if (parent_beam[j] == i) child_of_beam_[static_cast<size_t>(beams_[j].last)] = -1;
    (void)frame;
  }

  // Keeps the beam_size best candidates in a min-heap.
  void push(std::vector<Candidate>& heap, const Candidate& c) {
    if (c.score == kNegInf) return;
    const auto greater = [](const Candidate& a, const Candidate& b) { return a > b; };
    if (heap.size() < static_cast<size_t>(o_.beam_size)) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), greater);
    } else if (c.score > heap.front().score) {
      std::pop_heap(heap.begin(), heap.end(), greater);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), greater);
    }
  }

  // The next frame's beams from the kept candidates, best first.
  void keep(std::vector<Candidate>& heap, int32_t frame) {
    std::sort(heap.begin(), heap.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    if (!heap.empty() && std::isfinite(o_.beam_threshold)) {
      const double floor = heap.front().score - o_.beam_threshold;
      heap.erase(std::remove_if(heap.begin(), heap.end(), [&](const Candidate& c) { return c.score < floor; }),
                 heap.end());
    }
    std::vector<Beam> next;
    next.reserve(heap.size());
    for (const Candidate& c : heap) {
      const Beam& from = beams_[static_cast<size_t>(c.source)];
      Beam b{from.node, c.history_b, c.history_nb, c.p_b, c.p_nb, c.lm, c.lm_state, from.last};
      if (c.token >= 0) {
        b.node = child(from.node, c.token);
        b.last = c.token;
      }
      if (c.nb_emitted) {
        b.history_nb = static_cast<int32_t>(histories_.size());
        histories_.push_back({c.history_nb, frame});
      }
      next.push_back(b);
    }
    beams_ = std::move(next);
  }

  int32_t child(int32_t node, int32_t token) {
    const uint64_t key = (static_cast<uint64_t>(node) << 32) | static_cast<uint32_t>(token);
    const auto [it, added] = children_.emplace(key, static_cast<int32_t>(trie_.size()));
    if (added) trie_.push_back({node, token});
    return it->second;
  }

  const BeamSearchOptions& o_;
  const LmScorer* lm_;
  int64_t blank_, classes_;
  std::vector<TrieNode> trie_;
  std::unordered_map<uint64_t, int32_t> children_;
  std::vector<History> histories_;
  std::vector<Beam> beams_;
  std::vector<int32_t> tokens_;
  std::vector<int32_t> child_of_beam_;  // per token, the beam that is the current beam's child by it
  mutable PartialWords words_;
};

template <typename In, typename Acc>
std::vector<Hypothesis> decode_sample(const Problem& p, int64_t n, const BeamSearchOptions& options,
                                      const LmScorer* lm) {
  const Emissions<In, Acc> in(p, n, nullptr);
  PrefixSearch search(options, lm, p.blank, p.num_classes);
  std::vector<double> e(static_cast<size_t>(p.num_classes));
  for (int64_t t = 0; t < p.input_lengths[n]; ++t) {
    for (int64_t c = 0; c < p.num_classes; ++c) e[static_cast<size_t>(c)] = static_cast<double>(in.raw(t, c));
    search.step(static_cast<int32_t>(t), e);
  }
  return search.finish();
}

}  // namespace

int32_t PartialWords::intern(const std::string& text) {
  const auto [it, added] = ids_.emplace(text, static_cast<int32_t>(texts_.size()));
  if (added) texts_.push_back(text);
  return it->second;
}

LmScorer::LmScorer(const NGramLM& lm, std::vector<std::string> tokens, int64_t blank, int64_t word_delimiter)
    : lm_(&lm), texts_(std::move(tokens)), delimiter_(word_delimiter) {
  const int64_t count = static_cast<int64_t>(texts_.size());
  if (blank < 0 || blank >= count)
    fail("blank", "blank = " + std::to_string(blank) + " is not one of the " + std::to_string(count) + " tokens");
  if (word_delimiter >= count || word_delimiter == blank || word_delimiter < -1)
    fail("word_delimiter", "word_delimiter = " + std::to_string(word_delimiter) + " must be a token in [0, " +
                               std::to_string(count) + ") other than blank");
  if (word_delimiter >= 0) return;
  std::string missing;
  int64_t missing_count = 0;
  for (int64_t i = 0; i < count; ++i) {
    const int32_t id = i == blank ? -1 : lm.word_id(texts_[static_cast<size_t>(i)]);
    word_of_token_.push_back(id);
    if (i != blank && id < 0 && missing_count++ < 8)
      missing += (missing.empty() ? "" : ", ") + std::to_string(i) + " ('" + texts_[static_cast<size_t>(i)] + "')";
  }
  if (missing_count > 0)
    fail("tokens", "the language model has no word for token" + std::string(missing_count > 1 ? "s " : " ") +
                       missing + (missing_count > 8 ? ", ..." : "") + " (" + std::to_string(missing_count) +
                       " in all); a character LM needs one for every token but blank");
}

double LmScorer::extend(const State& state, int64_t token, State* next, PartialWords& words) const {
  *next = state;
  if (delimiter_ < 0) return lm_->score(state.context, word_of_token_[static_cast<size_t>(token)], &next->context);
  if (token == delimiter_) {
    if (state.partial < 0) return 0.0;  // no word between two delimiters
    next->partial = -1;
    return lm_->score(state.context, lm_->word_id(words.text(state.partial)), &next->context);
  }
  const std::string& piece = texts_[static_cast<size_t>(token)];
  next->partial = words.intern(state.partial < 0 ? piece : words.text(state.partial) + piece);
  return 0.0;
}

double LmScorer::finish(const State& state, const PartialWords& words) const {
  NGramLM::Context context = state.context;
  double total = 0;
  if (delimiter_ >= 0 && state.partial >= 0)
    total += lm_->score(context, lm_->word_id(words.text(state.partial)), &context);
  return total + lm_->end_score(context);
}

void check_beam_search_options(const BeamSearchOptions& o) {
  if (o.beam_size < 1) fail("beam_size", "beam_size = " + std::to_string(o.beam_size) + " must be at least 1");
  if (o.nbest < 1) fail("nbest", "nbest = " + std::to_string(o.nbest) + " must be at least 1");
  if (!(o.lm_weight >= 0)) fail("lm_weight", "lm_weight = " + std::to_string(o.lm_weight) + " must be >= 0");
  if (std::isnan(o.token_score)) fail("token_score", "token_score is NaN");
  if (o.token_cutoff < 0) fail("token_cutoff", "token_cutoff = " + std::to_string(o.token_cutoff) + " must be >= 0");
  if (std::isnan(o.beam_threshold) || o.beam_threshold < 0)
    fail("beam_threshold", "beam_threshold must be >= 0 (inf: off)");
  if (std::isnan(o.blank_skip_threshold)) fail("blank_skip_threshold", "blank_skip_threshold is NaN");
}

std::vector<std::vector<Hypothesis>> cpu_beam_search(const Problem& problem, const BeamSearchOptions& options,
                                                     const LmScorer* lm, const ParallelFor& parallel_for) {
  check_beam_search_options(options);
  if (lm != nullptr && lm->num_tokens() != problem.num_classes)
    fail("tokens", "the language model's token list has " + std::to_string(lm->num_tokens()) +
                       " entries but log_probs has C = " + std::to_string(problem.num_classes) + " classes");
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(problem.batch));
  cpu::for_each_sample_without_targets(problem, parallel_for, [&](auto in_tag, auto acc_tag, const Problem& p,
                                                                  int64_t n) {
    out[static_cast<size_t>(n)] = decode_sample<decltype(in_tag), decltype(acc_tag)>(p, n, options, lm);
  });
  return out;
}

}  // namespace ctc
