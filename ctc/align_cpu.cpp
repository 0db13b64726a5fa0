// The CPU aligner (ctc/align.h): per sample, the Viterbi recursion through
// a kernel (scalar here, AVX2 in align_avx2.cpp), then the backtrack, in the
// full or the checkpointed mode.
#include "ctc/align.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ctc/align_internal.h"
#include "ctc/alignment.h"
#include "ctc/cpu_engine_internal.h"

namespace ctc {
namespace cpu {

template <typename In, typename Acc>
void viterbi_scalar(const Emissions<In, Acc>& in, const ViterbiSample& v, int64_t t_begin, int64_t t_end, Acc* row,
                    uint8_t* moves, const RowSink<Acc>* keep) {
  std::vector<Acc> next(static_cast<size_t>(v.states));
  const int64_t row_bytes = move_row_bytes(v.states);
  for (int64_t t = t_begin; t < t_end; ++t) {
    if (t == 0) {
      for (int64_t s = 0; s < v.states; ++s)
        row[s] = math::alpha_initial(s, in(0, math::state_label(v.target, s, v.blank)));
    } else {
      uint8_t* m = moves != nullptr ? moves + (t - t_begin) * row_bytes : nullptr;
      for (int64_t s = 0; s < v.states; ++s) {
        const math::BestPath<Acc> best =
            math::viterbi_cell(row, v.target, s, in(t, math::state_label(v.target, s, v.blank)));
        next[s] = best.score;
        if (m != nullptr) store_move(m, s, best.move);
      }
      std::copy(next.begin(), next.end(), row);
    }
    if (keep != nullptr) (*keep)(t, row);
  }
}

namespace {

bool use_avx2_aligner(DType dtype) { return active_cpu_kernel(dtype) == CpuKernel::kAvx2; }

// The recursion through the active kernel.
template <typename In, typename Acc>
void viterbi(const Emissions<In, Acc>& in, const ViterbiSample& v, int64_t t_begin, int64_t t_end, Acc* row,
             uint8_t* moves, const RowSink<Acc>* keep, bool avx2) {
#if defined(CTC_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<Acc, float>) {
    if (avx2) return viterbi_avx2<In>(in, v, t_begin, t_end, row, moves, keep);
  }
#endif
  (void)avx2;
  viterbi_scalar<In, Acc>(in, v, t_begin, t_end, row, moves, keep);
}

// k: the checkpoint interval that minimises T / k + k.
int64_t checkpoint_interval(int64_t frames) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(frames)))));
}

// The best path's end state, or -1 when no path has a finite score.
template <typename Acc>
int64_t end_state(const std::vector<Acc>& last_row, int64_t states) {
  const int64_t end = math::viterbi_end_state(last_row.data(), states);
  return std::isfinite(last_row[end]) ? end : -1;
}

template <typename In, typename Acc>
int64_t align_full(const Emissions<In, Acc>& in, const ViterbiSample& v, int64_t* labels, bool avx2) {
  const int64_t row_bytes = move_row_bytes(v.states);
  std::vector<uint8_t> moves(static_cast<size_t>(v.frames * row_bytes), 0);
  std::vector<Acc> row(static_cast<size_t>(v.states));
  viterbi<In, Acc>(in, v, 0, v.frames, row.data(), moves.data(), nullptr, avx2);
  const int64_t end = end_state(row, v.states);
  if (end >= 0) backtrack(moves.data(), row_bytes, 0, v.frames, end, v.target, v.blank, labels);
  return end;
}

// Checkpoints: the scores of frame j k - 1 for every segment start j k > 0.
template <typename In, typename Acc>
int64_t align_checkpointed(const Emissions<In, Acc>& in, const ViterbiSample& v, int64_t* labels, bool avx2) {
  const int64_t k = checkpoint_interval(v.frames);
  const int64_t segments = (v.frames + k - 1) / k;
  std::vector<Acc> checkpoints(static_cast<size_t>((segments - 1) * v.states));
  const RowSink<Acc> keep = [&](int64_t t, const Acc* row) {
    if ((t + 1) % k == 0 && t + 1 < v.frames)
      std::copy(row, row + v.states, checkpoints.begin() + ((t + 1) / k - 1) * v.states);
  };
  std::vector<Acc> row(static_cast<size_t>(v.states));
  viterbi<In, Acc>(in, v, 0, v.frames, row.data(), nullptr, &keep, avx2);
  int64_t state = end_state(row, v.states);
  if (state < 0) return -1;
  const int64_t end = state;
  const int64_t row_bytes = move_row_bytes(v.states);
  std::vector<uint8_t> moves(static_cast<size_t>(k * row_bytes));
  for (int64_t j = segments - 1; j >= 0; --j) {
    const int64_t begin = j * k, stop = std::min(v.frames, begin + k);
    if (j > 0) std::copy(checkpoints.begin() + (j - 1) * v.states, checkpoints.begin() + j * v.states, row.begin());
    std::fill(moves.begin(), moves.end(), uint8_t{0});
    viterbi<In, Acc>(in, v, begin, stop, row.data(), moves.data(), nullptr, avx2);
    state = backtrack(moves.data(), row_bytes, begin, stop, state, v.target, v.blank, labels);
  }
  return end;
}

template <typename In, typename Acc>
void align_sample(const Problem& p, AlignMemory mode, int64_t n, int64_t* alignments, Acc* scores, bool avx2) {
  const int64_t frames = p.input_lengths[n];
  const ViterbiSample v{p.targets + p.target_offsets[n], p.blank, frames, math::num_states(p.target_lengths[n])};
  int64_t* labels = alignments + n * p.max_time;
  Acc* score = scores + n * p.max_time;
  std::fill(labels, labels + p.max_time, int64_t{-1});
  std::fill(score, score + p.max_time, Acc(0));
  if (frames == 0) return;
  const Emissions<In, Acc> in(p, n, nullptr);
  const int64_t end = alignment_uses_checkpoints(mode, frames, v.states) ? align_checkpointed(in, v, labels, avx2)
                                                                         : align_full(in, v, labels, avx2);
  if (end < 0) {
    std::fill(labels, labels + frames, int64_t{-1});  // no path: the caller reports the sample
    return;
  }
  for (int64_t t = 0; t < frames; ++t) score[t] = in(t, labels[t]);
}

}  // namespace
}  // namespace cpu

bool alignment_uses_checkpoints(AlignMemory mode, int64_t frames, int64_t states) {
  if (mode != AlignMemory::kAuto) return mode == AlignMemory::kCheckpointed;
  return frames * move_row_bytes(states) > kFullAlignmentBytesLimit;
}

int64_t alignment_extra_bytes(AlignMemory mode, int64_t frames, int64_t states, int64_t accumulate_bytes) {
  const int64_t row_bytes = move_row_bytes(states);
  const int64_t working_rows = 3 * states * accumulate_bytes;  // the row, the scalar kernel's next row or the AVX2 rows
  if (!alignment_uses_checkpoints(mode, frames, states)) return frames * row_bytes + working_rows;
  const int64_t k = cpu::checkpoint_interval(frames);
  return ((frames + k - 1) / k - 1) * states * accumulate_bytes + k * row_bytes + working_rows;
}

void cpu_forced_align(const Problem& p, AlignMemory mode, int64_t* alignments, void* scores,
                      const ParallelFor& parallel_for) {
  const bool avx2 = cpu::use_avx2_aligner(p.dtype);
  dispatch_dtype(p.dtype, [&](auto in_tag, auto acc_tag) {
    using In = decltype(in_tag);
    using Acc = decltype(acc_tag);
    cpu::for_each_sample_balanced(p, parallel_for, [&](int64_t n) {
      cpu::align_sample<In, Acc>(p, mode, n, alignments, static_cast<Acc*>(scores), avx2);
    });
  });
}

}  // namespace ctc
