#include "ctc/validate.h"

#include <cstdint>
#include <string>

#include "ctc/error.h"
#include "ctc/math.h"

namespace ctc {
namespace {

[[noreturn]] void fail(const char* argument, const std::string& message) {
  throw Error(ErrorKind::kValue, argument, "torch_ctc: " + message);
}

std::string at(const char* name, int64_t n) { return std::string(name) + "[" + std::to_string(n) + "]"; }

}  // namespace

void validate_values(const Problem& p, int64_t padded_width) {
  // The bindings check these on shapes already; the core refuses them too, as
  // every label check below relies on them.
  if (p.num_classes < 1)
    fail("log_probs", "log_probs has C = " + std::to_string(p.num_classes) +
                          " classes; it needs at least the blank class");
  if (p.blank < 0 || p.blank >= p.num_classes)
    fail("blank", "blank = " + std::to_string(p.blank) + " must be in [0, C) with C = " +
                      std::to_string(p.num_classes) + " classes in log_probs");
  int64_t total_length = 0;
  for (int64_t n = 0; n < p.batch; ++n) {
    const int64_t frames = p.input_lengths[n];
    if (frames < 0) fail("input_lengths", at("input_lengths", n) + " = " + std::to_string(frames) + " is negative");
    if (frames > p.max_time)
      fail("input_lengths", at("input_lengths", n) + " = " + std::to_string(frames) +
                                " is greater than the number of frames in log_probs (T = " +
                                std::to_string(p.max_time) + ")");
    const int64_t length = p.target_lengths[n];
    if (length < 0) fail("target_lengths", at("target_lengths", n) + " = " + std::to_string(length) + " is negative");
    if (padded_width >= 0 && length > padded_width)
      fail("target_lengths", at("target_lengths", n) + " = " + std::to_string(length) +
                                 " is longer than the padded targets allow (targets.size(1) = " +
                                 std::to_string(padded_width) + ")");
    if (__builtin_add_overflow(total_length, length, &total_length)) total_length = INT64_MAX;
  }
  if (padded_width < 0 && total_length != p.target_slots)
    fail("targets", "concatenated targets have " + std::to_string(p.target_slots) +
                        " labels but sum(target_lengths) = " + std::to_string(total_length) +
                        "; they must be equal (or pass padded (N, S) targets)");

  for (int64_t n = 0; n < p.batch; ++n) {
    const int64_t* target = p.targets + p.target_offsets[n];
    for (int64_t i = 0; i < p.target_lengths[n]; ++i) {
      const int64_t label = target[i];
      if (label >= 0 && label < p.num_classes && label != p.blank) continue;  // the common case, no message built
      const std::string where = "targets: sample " + std::to_string(n) + ", position " + std::to_string(i);
      if (label < 0 || label >= p.num_classes)
        fail("targets", where + " holds label " + std::to_string(label) + ", outside [0, C) with C = " +
                            std::to_string(p.num_classes) + " classes in log_probs");
      if (label == p.blank)
        fail("targets", where + " holds the blank index " + std::to_string(label) +
                            "; blank cannot be a target label (check the tokenizer's blank id)");
    }
  }
}

std::vector<int64_t> infeasible_samples(const Problem& p) {
  std::vector<int64_t> out;
  for (int64_t n = 0; n < p.batch; ++n)
    if (math::min_frames_needed(p.targets + p.target_offsets[n], p.target_lengths[n]) > p.input_lengths[n])
      out.push_back(n);
  return out;
}

std::string list_samples(const std::vector<int64_t>& samples, size_t limit) {
  std::string out;
  for (size_t i = 0; i < samples.size() && i < limit; ++i)
    out += (i == 0 ? "" : i + 1 == samples.size() ? " and " : ", ") + std::to_string(samples[i]);
  if (samples.size() > limit) out += ", ... (" + std::to_string(samples.size()) + " in all)";
  return out;
}

}  // namespace ctc
