// Forced alignment on the GPU: the Viterbi recursion with 2-bit moves (one
// block per sample, a barrier per frame, as the loss's alpha_kernel), then
// the backtrack (one thread per sample). The cell is math::viterbi_cell and
// the backtrack ctc::backtrack, shared with the CPU aligner.
#pragma once

#include "ctc/alignment.h"
#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/problem.h"
#include "device.h"

namespace ctc::cuda {

// Per sample: two score rows of S' (at 2 (2 target_offsets[n] + n), as the
// loss's beta rows) and the moves of T frames (at T (target_offsets[n] + 2 n)
// bytes: a frame's moves take move_row_bytes(S') <= label slots + 2 bytes).
CTC_HD int64_t viterbi_rows_offset(const Problem& p, int64_t n) { return 2 * (2 * p.target_offsets[n] + n); }
CTC_HD int64_t moves_offset(const Problem& p, int64_t n) { return p.max_time * (p.target_offsets[n] + 2 * n); }

// Each thread owns four consecutive states, so it writes whole bytes of moves.
template <typename In, typename Acc>
__global__ void viterbi_kernel(Problem p, Acc* rows_all, uint8_t* moves_all) {
  const int64_t n = blockIdx.x;
  const int64_t frames = p.input_lengths[n];
  if (frames == 0) return;
  const int64_t states = math::num_states(p.target_lengths[n]);
  const int64_t* target = p.targets + p.target_offsets[n];
  const Emissions<In, Acc> emission(p, n, nullptr);
  Acc* rows = rows_all + viterbi_rows_offset(p, n);
  uint8_t* moves = moves_all + moves_offset(p, n);
  const int64_t row_bytes = move_row_bytes(states);
  for (int64_t s = threadIdx.x; s < states; s += blockDim.x)
    rows[s] = math::alpha_initial(s, emission(0, math::state_label(target, s, p.blank)));
  for (int64_t t = 1; t < frames; ++t) {
    __syncthreads();  // frame t-1's row complete, and frame t-2's free to overwrite
    const Acc* prev = rows + ((t - 1) & 1) * states;
    Acc* cur = rows + (t & 1) * states;
    uint8_t* row_moves = moves + t * row_bytes;
    for (int64_t group = threadIdx.x; 4 * group < states; group += blockDim.x) {
      uint8_t byte = 0;
      for (int64_t s = 4 * group; s < 4 * group + 4 && s < states; ++s) {
        const math::BestPath<Acc> best =
            math::viterbi_cell(prev, target, s, emission(t, math::state_label(target, s, p.blank)));
        cur[s] = best.score;
        byte = static_cast<uint8_t>(byte | (best.move << (2 * (s & 3))));
      }
      row_moves[group] = byte;
    }
  }
}

// One thread per sample: the end state from the last row, the backtrack, and
// each frame's score. A sample with no finite path gets -1 and 0 throughout.
template <typename In, typename Acc>
__global__ void backtrack_kernel(Problem p, const Acc* rows_all, const uint8_t* moves_all, int64_t* alignments,
                                 Acc* scores) {
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; n < p.batch;
       n += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t frames = p.input_lengths[n];
    const int64_t states = math::num_states(p.target_lengths[n]);
    const int64_t* target = p.targets + p.target_offsets[n];
    int64_t* labels = alignments + n * p.max_time;
    Acc* score = scores + n * p.max_time;
    int64_t end = -1;
    if (frames > 0) {
      const Acc* last = rows_all + viterbi_rows_offset(p, n) + ((frames - 1) & 1) * states;
      end = math::viterbi_end_state(last, states);
      if (!isfinite(last[end])) end = -1;
    }
    if (end >= 0) backtrack(moves_all + moves_offset(p, n), move_row_bytes(states), 0, frames, end, target, p.blank,
                            labels);
    const Emissions<In, Acc> emission(p, n, nullptr);
    for (int64_t t = 0; t < p.max_time; ++t) {
      const bool on_path = end >= 0 && t < frames;
      if (!on_path) labels[t] = -1;
      score[t] = on_path ? emission(t, labels[t]) : Acc(0);
    }
  }
}

}  // namespace ctc::cuda
