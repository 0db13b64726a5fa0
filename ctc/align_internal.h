// The CPU aligner's kernels (align_cpu.cpp: scalar; align_avx2.cpp: AVX2),
// behind one signature. Not a public header.
#pragma once

#include <cstdint>
#include <functional>

#include "ctc/emissions.h"

namespace ctc::cpu {

struct ViterbiSample {
  const int64_t* target;
  int64_t blank, frames, states;
};

// Called with each frame's scores (S' values) as the recursion passes it.
template <typename Acc>
using RowSink = std::function<void(int64_t t, const Acc* row)>;

// Runs the Viterbi recursion of one sample over frames [t_begin, t_end).
//  row:   S' values; on entry the scores of frame t_begin - 1 (unused when
//         t_begin == 0), on return those of frame t_end - 1.
//  moves: null, or one zeroed row of move_row_bytes(S') bytes per frame of the
//         segment (frame t at (t - t_begin) rows in), receiving its moves.
//  keep:  null, or called after every frame.
// Both kernels compute the same scores, bit for bit, for every state a
// complete path can visit (the AVX2 one skips the others), so the backtrack
// and the alignment are the same.
template <typename In, typename Acc>
void viterbi_scalar(const Emissions<In, Acc>& in, const ViterbiSample& v, int64_t t_begin, int64_t t_end, Acc* row,
                    uint8_t* moves, const RowSink<Acc>* keep);

template <typename In>
void viterbi_avx2(const Emissions<In, float>& in, const ViterbiSample& v, int64_t t_begin, int64_t t_end, float* row,
                  uint8_t* moves, const RowSink<float>* keep);

}  // namespace ctc::cpu
