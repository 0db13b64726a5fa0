// Forced alignment pieces shared by the CPU aligner and the CUDA kernels
// (host/device): the compact back-pointers and the backtrack. The recurrence
// itself is math::viterbi_cell, the loss's transition rules in the max-plus
// semiring.
//
// Back-pointers ("moves"): each (t, s) cell needs only stay, step or skip
// (math::Move), so a frame's moves take 2 bits a state, in a row of
// move_row_bytes(S') bytes: state s in byte s / 4, bits 2 (s % 4) and up.
// Frame 0 has no moves (every path starts there).
#pragma once

#include <cstdint>

#include "ctc/hd.h"
#include "ctc/math.h"

namespace ctc {

// Bytes of one frame's moves: S' rounded up to 8 states (whole 16-bit words,
// as the AVX2 kernel writes eight states at a time), 2 bits each.
CTC_HD int64_t move_row_bytes(int64_t states) { return (states + 7) / 8 * 2; }

// The row must start zeroed; each state is set once.
CTC_HD void store_move(uint8_t* row, int64_t s, uint8_t move) {
  row[s >> 2] = static_cast<uint8_t>(row[s >> 2] | (move << (2 * (s & 3))));
}

CTC_HD uint8_t load_move(const uint8_t* row, int64_t s) { return (row[s >> 2] >> (2 * (s & 3))) & 3u; }

// Follows the best path back through frames [t_begin, t_end), from `state`,
// the path's state at frame t_end - 1, writing the class of each frame's
// state to labels[t]. moves + (t - t_begin) * row_bytes holds frame t's
// moves. Returns the path's state at frame t_begin - 1 (for t_begin > 0: the
// checkpointed mode backtracks one segment at a time).
CTC_HD int64_t backtrack(const uint8_t* moves, int64_t row_bytes, int64_t t_begin, int64_t t_end, int64_t state,
                         const int64_t* target, int64_t blank, int64_t* labels) {
  for (int64_t t = t_end - 1; t >= t_begin; --t) {
    labels[t] = math::state_label(target, state, blank);
    if (t > 0) state -= load_move(moves + (t - t_begin) * row_bytes, state);
  }
  return state;
}

}  // namespace ctc
