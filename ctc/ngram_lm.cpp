#include "ctc/ngram_lm.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

#include "ctc/error.h"

namespace ctc {
namespace {

constexpr double kLn10 = 2.302585092994045684;

[[noreturn]] void fail(const std::string& source, int64_t line, const std::string& what) {
  throw Error(ErrorKind::kValue, "arpa",
              "torch_ctc: " + source + (line > 0 ? ", line " + std::to_string(line) : "") + ": " + what);
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; in >> f;) out.push_back(f);
  return out;
}

std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// A log10 value: a finite number or -inf (probability 0); NaN and +inf, which
// strtod also reads, are refused like any other non-number.
bool parse_number(const std::string& s, double* out) {
  errno = 0;
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return end != s.c_str() && *end == '\0' && errno != ERANGE && !std::isnan(*out) && *out != HUGE_VAL;
}

// "\k-grams:" -> k, or 0.
int section_order(const std::string& line) {
  const std::string suffix = "-grams:";
  if (line.size() < suffix.size() + 2 || line.front() != '\\' ||
      line.compare(line.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  const std::string digits = line.substr(1, line.size() - suffix.size() - 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::atoi(digits.c_str());
}

}  // namespace

int32_t NGramLM::word_id(const std::string& word) const {
  const auto it = word_ids_.find(word);
  return it == word_ids_.end() ? -1 : it->second;
}

int32_t NGramLM::intern(const std::string& word) {
  const auto [it, added] = word_ids_.emplace(word, static_cast<int32_t>(words_.size()));
  if (added) words_.push_back(word);
  return it->second;
}

int32_t NGramLM::child(int32_t node, int32_t word) const {
  const auto it = children_.find(key(node, word));
  return it == children_.end() ? -1 : it->second;
}

// Adds the n-gram, and its prefixes as contexts where the file did not list them.
// Returns the node, or -1 if it was already listed.
int32_t NGramLM::add(const std::vector<int32_t>& words, double log_prob, double backoff) {
  int32_t node = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    int32_t next = child(node, words[i]);
    const bool last = i + 1 == words.size();
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{-INFINITY, 0.0, -1, static_cast<int32_t>(i + 1)});
      listed_.push_back(false);
      children_.emplace(key(node, words[i]), next);
    } else if (last && listed_[static_cast<size_t>(next)]) {
      return -1;
    }
    node = next;
  }
  nodes_[static_cast<size_t>(node)].log_prob = log_prob;
  nodes_[static_cast<size_t>(node)].backoff = backoff;
  listed_[static_cast<size_t>(node)] = true;
  node_words_.resize(nodes_.size());
  node_words_[static_cast<size_t>(node)] = words;
  return node;
}

// suffix(w1..wk) = the node of the longest proper suffix of w1..wk that exists
// (a context the file does not list has backoff weight 1, so skipping it is exact).
void NGramLM::link_suffixes() {
  node_words_.resize(nodes_.size());
  // Placeholders (prefixes never listed) get their words from a listed extension.
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const std::vector<int32_t>& w = node_words_[n];
    for (size_t k = 1; k < w.size(); ++k) {
      int32_t node = 0;
      for (size_t i = 0; i < k; ++i) node = child(node, w[i]);
      if (node_words_[static_cast<size_t>(node)].empty())
        node_words_[static_cast<size_t>(node)].assign(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  for (size_t n = 1; n < nodes_.size(); ++n) {
    const std::vector<int32_t>& w = node_words_[n];
    int32_t suffix = 0;
    for (size_t start = 1; start < w.size() && suffix == 0; ++start) {
      int32_t node = 0;
      for (size_t i = start; i < w.size() && node >= 0; ++i) node = child(node, w[i]);
      if (node > 0) suffix = node;
    }
    nodes_[n].suffix = suffix;
  }
  node_words_.clear();
  node_words_.shrink_to_fit();
}

NGramLM NGramLM::from_arpa(std::istream& in, const std::string& source) {
  NGramLM lm;
  std::vector<int64_t> counts;  // counts[k - 1]: the header's count of k-grams
  std::string raw;
  int64_t line_no = 0;
  // The header.
  bool in_data = false;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string line = trimmed(raw);
    if (!in_data) {
      in_data = line == "\\data\\";
      continue;
    }
    if (line.empty()) continue;
    if (section_order(line) > 0) break;
    if (line.compare(0, 6, "ngram ") != 0)
      fail(source, line_no, "expected 'ngram k=count' in the \\data\\ header, got '" + line + "'");
    const size_t eq = line.find('=');
    const std::string k = eq == std::string::npos ? "" : trimmed(line.substr(6, eq - 6));
    const std::string count = eq == std::string::npos ? "" : trimmed(line.substr(eq + 1));
    const bool digits = !k.empty() && !count.empty() && k.find_first_not_of("0123456789") == std::string::npos &&
                        count.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::atoi(k.c_str()) != static_cast<int>(counts.size()) + 1)
      fail(source, line_no,
           "malformed '" + line + "' (expected 'ngram " + std::to_string(counts.size() + 1) + "=<count>')");
    counts.push_back(std::atoll(count.c_str()));
  }
  if (!in_data) fail(source, 0, "no \\data\\ header");
  if (counts.empty()) fail(source, line_no, "the \\data\\ header lists no n-gram counts");
  lm.order_ = static_cast<int>(counts.size());

  // The sections. `raw` holds the first "\1-grams:" line.
  int order = section_order(trimmed(raw));
  if (order != 1) fail(source, line_no, "expected the \\1-grams: section after the \\data\\ header");
  bool ended = false;
  while (order > 0) {
    if (order > lm.order_)
      fail(source, line_no,
           "a \\" + std::to_string(order) + "-grams: section, but the header stops at " + std::to_string(lm.order_));
    int64_t seen = 0;
    const int64_t section_line = line_no;
    int next_order = 0;
    while (std::getline(in, raw)) {
      ++line_no;
      const std::string line = trimmed(raw);
      if (line.empty()) continue;
      if (line == "\\end\\") {
        ended = true;
        break;
      }
      if ((next_order = section_order(line)) > 0) break;
      const std::vector<std::string> f = fields_of(line);
      if (f.size() != static_cast<size_t>(order) + 1 && f.size() != static_cast<size_t>(order) + 2)
        fail(source, line_no,
             std::to_string(f.size()) + " fields in a " + std::to_string(order) + "-gram line (expected " +
                 std::to_string(order + 1) + " or " + std::to_string(order + 2) +
                 ": log10 probability, the words, an optional log10 backoff)");
      double log10_prob = 0, log10_backoff = 0;
      if (!parse_number(f[0], &log10_prob))
        fail(source, line_no, "the probability '" + f[0] + "' is not a number (finite, or -inf)");
      if (f.size() == static_cast<size_t>(order) + 2 && !parse_number(f.back(), &log10_backoff))
        fail(source, line_no, "the backoff weight '" + f.back() + "' is not a number (finite, or -inf)");
      std::vector<int32_t> words;
      for (int i = 1; i <= order; ++i) words.push_back(lm.intern(f[static_cast<size_t>(i)]));
      if (lm.add(words, log10_prob * kLn10, log10_backoff * kLn10) < 0)
        fail(source, line_no, "this n-gram is listed twice");
      ++seen;
    }
    if (seen != counts[static_cast<size_t>(order - 1)])
      fail(source, section_line,
           "the \\" + std::to_string(order) + "-grams: section has " + std::to_string(seen) +
               " entries but the header says " + std::to_string(counts[static_cast<size_t>(order - 1)]));
    if (ended) break;
    if (next_order != 0 && next_order != order + 1)
      fail(source, line_no,
           "the \\" + std::to_string(next_order) + "-grams: section follows \\" + std::to_string(order) + "-grams:");
    order = next_order;
  }
  if (!ended) fail(source, line_no, "no \\end\\ line");
  lm.link_suffixes();
  lm.unk_ = lm.word_id("<unk>");
  lm.end_ = lm.word_id("</s>");
  if (lm.end_ < 0) fail(source, 0, "the model has no </s>");
  const int32_t begin = lm.word_id("<s>");
  lm.begin_ = begin >= 0 && lm.child(0, begin) >= 0 ? lm.child(0, begin) : 0;
  return lm;
}

NGramLM NGramLM::from_arpa_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::kValue, "arpa", "torch_ctc: cannot open the ARPA file '" + path + "'");
  return from_arpa(in, path);
}

double NGramLM::score(Context context, int32_t word, Context* next) const {
  if (word < 0) word = unk_;
  double total = 0;
  if (word < 0) {
    total = -INFINITY;
  } else {
    for (int32_t node = context;;) {
      const int32_t c = child(node, word);
      if (c >= 0 && listed_[static_cast<size_t>(c)]) {
        total += nodes_[static_cast<size_t>(c)].log_prob;
        break;
      }
      if (node == 0) {
        total = -INFINITY;  // not even a unigram
        break;
      }
      total += nodes_[static_cast<size_t>(node)].backoff;
      node = nodes_[static_cast<size_t>(node)].suffix;
    }
  }
  if (next != nullptr) {
    // The longest suffix of (context, word) the model knows, at most order - 1 words.
    int32_t node = context;
    *next = 0;
    while (word >= 0) {
      if (nodes_[static_cast<size_t>(node)].length + 1 <= order_ - 1) {
        const int32_t c = child(node, word);
        if (c >= 0) {
          *next = c;
          break;
        }
      }
      if (node == 0) break;
      node = nodes_[static_cast<size_t>(node)].suffix;
    }
  }
  return total;
}

}  // namespace ctc
