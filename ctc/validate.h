// Checks on the values of a problem (lengths and labels) that need the data.
// Every backend calls these on host copies of the lengths and targets, so the
// messages are the same on CPU and CUDA.
#pragma once

#include "ctc/problem.h"

namespace ctc {

// Throws ctc::Error naming the argument and the offending value when:
// there are no classes or blank is outside [0, C); an input length is negative or above T; a target length is negative or
// overruns its slots (padded width or concatenated total); a label is outside
// [0, C) or equals blank within its target length.
// `padded_width` is S for padded (N, S) targets and -1 for concatenated ones.
void validate_values(const Problem& problem, int64_t padded_width);

}  // namespace ctc
