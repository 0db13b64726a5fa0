// Checks on the values of a problem (lengths and labels) that need the data.
// Every backend calls these on host copies of the lengths and targets, so the
// messages are the same on CPU and CUDA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ctc/problem.h"

namespace ctc {

// Throws ctc::Error naming the argument and the offending value when: there
// are no classes or blank is outside [0, C); an input length is negative or
// above T; a target length is negative or overruns its slots (padded width or
// concatenated total); a label is outside [0, C) or equals blank within its
// target length.
// `padded_width` is S for padded (N, S) targets and -1 for concatenated ones.
void validate_values(const Problem& problem, int64_t padded_width);

// The samples (of a validated problem) whose targets need more frames than
// they have: L labels plus one blank between each pair of equal neighbours.
std::vector<int64_t> infeasible_samples(const Problem& problem);

// For the error messages: "3, 7 and 12" (up to `limit` of them, then "...").
std::string list_samples(const std::vector<int64_t>& samples, size_t limit = 8);

}  // namespace ctc
