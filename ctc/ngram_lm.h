// A back-off n-gram language model read from an ARPA file (our own reader:
// no KenLM), for the beam search (ctc/beam_search.h). Probabilities are kept
// in natural log.
//
// ARPA: a "\data\" header with "ngram k=count" lines, then "\k-grams:"
// sections of "log10prob w1 ... wk [log10backoff]" lines, then "\end\".
// P(w | h) is the n-gram's probability when (h, w) is listed, otherwise
// backoff(h) + P(w | h without its oldest word); a word not in the
// vocabulary scores as <unk> (when the file has no <unk>: -inf).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <unordered_map>
#include <vector>

namespace ctc {

class NGramLM {
 public:
  // Throws ctc::Error (argument "arpa") naming the line of anything malformed:
  // a bad header, a count that does not match its section, a line with the
  // wrong number of fields, a number that does not parse, a missing \end\.
  static NGramLM from_arpa(std::istream& in, const std::string& source_name = "ARPA file");
  static NGramLM from_arpa_file(const std::string& path);

  int order() const { return order_; }
  int64_t vocabulary_size() const { return static_cast<int64_t>(words_.size()); }

  // The id of a word, or -1.
  int32_t word_id(const std::string& word) const;
  const std::string& word(int32_t id) const { return words_[static_cast<size_t>(id)]; }
  int32_t unk() const { return unk_; }

  // A context: the longest suffix of the history that the model lists, as a node.
  using Context = int32_t;
  Context begin_context() const { return begin_; }  // after <s>
  // ln P(word | context); `next` gets the context after the word. `word` may
  // be -1 (not in the vocabulary): it scores as <unk>.
  double score(Context context, int32_t word, Context* next) const;
  // ln P(</s> | context).
  double end_score(Context context) const { return score(context, end_, nullptr); }

 private:
  struct Node {
    double log_prob;  // ln P of the n-gram (-inf for a context listed only as a prefix)
    double backoff;   // ln backoff weight (0 when none is given)
    int32_t suffix;   // the node of the n-gram without its first word (root: -1)
    int32_t length;   // words in the n-gram
  };
  static uint64_t key(int32_t node, int32_t word) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(node)) << 32) | static_cast<uint32_t>(word);
  }
  int32_t child(int32_t node, int32_t word) const;
  int32_t intern(const std::string& word);
  int32_t add(const std::vector<int32_t>& words, double log_prob, double backoff);
  void link_suffixes();

  int order_ = 0;
  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> word_ids_;
  std::vector<Node> nodes_{Node{0.0, 0.0, -1, 0}};  // node 0: the empty context
  std::vector<bool> listed_{false};                  // the file gave the n-gram a probability
  std::vector<std::vector<int32_t>> node_words_;      // while loading: each node's words
  std::unordered_map<uint64_t, int32_t> children_;
  int32_t unk_ = -1, begin_ = 0, end_ = -1;
};

}  // namespace ctc
