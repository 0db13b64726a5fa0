// Forced alignment on the CPU: the best (Viterbi) CTC path of each sample's
// target, batched, multithreaded over samples, with AVX2 kernels for float
// accumulation (as the loss: ctc/cpu_engine.h's set_cpu_kernel applies).
//
// Memory: the full mode keeps every frame's moves (2 bits a state, T_n x S'_n
// / 4 bytes a sample). The checkpointed mode keeps the scores of one frame in
// k = ceil(sqrt(T_n)) and, while backtracking, recomputes one segment of k
// frames at a time: O(S'_n (T_n / k + k)) extra memory, about twice the work.
// Both give exactly the same alignment.
#pragma once

#include <cstdint>

#include "ctc/cpu_engine.h"
#include "ctc/problem.h"

namespace ctc {

enum class AlignMemory { kAuto, kFull, kCheckpointed };

// kAuto uses the checkpointed mode for a sample whose moves would take more
// than this many bytes.
constexpr int64_t kFullAlignmentBytesLimit = int64_t{64} << 20;

// Whether sample n (frames, states) runs checkpointed in `mode`.
bool alignment_uses_checkpoints(AlignMemory mode, int64_t frames, int64_t states);

// Extra bytes one sample's alignment needs, for the memory test and the docs.
int64_t alignment_extra_bytes(AlignMemory mode, int64_t frames, int64_t states, int64_t accumulate_bytes);

// Aligns every sample of `problem` (from_logits must be false; labels valid,
// as validate_values checks). Writes, for sample n at row n * T:
//   alignments[t] = the class of frame t on the best path, -1 for t >= T_n;
//   scores[t]     = log_probs[t, n, alignments[t]] (accumulate dtype), 0 for t >= T_n.
// A sample with no path of finite score (too few frames, or every path meets
// a -inf or NaN log-prob) gets -1 and 0 in every frame; the caller reports it.
void cpu_forced_align(const Problem& problem, AlignMemory mode, int64_t* alignments, void* scores,
                      const ParallelFor& parallel_for = serial_for);

}  // namespace ctc
