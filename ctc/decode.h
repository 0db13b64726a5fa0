// Greedy decoding on the CPU, batched and multithreaded over samples.
#pragma once

#include <cstdint>

#include "ctc/cpu_engine.h"
#include "ctc/problem.h"

namespace ctc {

// For each sample n of `problem` (only the input, its sizes and strides,
// input_lengths and blank are read), at row n * T of the (N, T) outputs:
// tokens and first_frames of the decoded tokens, -1 after the last;
// lengths[n] = the number of tokens.
void cpu_greedy_decode(const Problem& problem, int64_t* tokens, int64_t* lengths, int64_t* first_frames,
                       const ParallelFor& parallel_for = serial_for);

}  // namespace ctc
