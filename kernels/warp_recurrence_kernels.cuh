// The recurrences with one warp per sample and the states in registers, for
// S' = 2L + 1 <= 32 * K states (recurrence_path.h picks K from max_states).
//
// Lane l holds states l*K .. l*K + K-1. A step of alpha needs each state's
// s-1 and s-2 of the previous frame: inside the lane they are registers, and
// for the lane's first states they are the last two of lane l-1, fetched with
// __shfl_up_sync (beta mirrors this with lane l+1 and __shfl_down_sync). So a
// frame costs two shuffles and K cells per lane, and no block barrier: the
// samples of a block (kSamplesPerBlock warps) run independently, each for its
// own number of frames. The next frame's emissions are loaded before the
// current frame is computed, so their latency hides behind the arithmetic.
//
// The rows and posteriors go to the same places as the block kernels'
// (recurrence_kernels.cuh), so either pass may run on either path. The cells
// are ctc/math.h's, with the move rules of math::alpha_moves / beta_moves and
// the fast exp and log of fast_math.cuh for float accumulation.
#pragma once

#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/problem.h"
#include "ctc/workspace.h"
#include "device.h"
#include "fast_math.cuh"
#include "recurrence_kernels.cuh"

namespace ctc::cuda {

constexpr int kWarpLanes = 32;
constexpr int kSamplesPerBlock = 4;
constexpr int kWarpRecurrenceThreads = kWarpLanes * kSamplesPerBlock;
constexpr unsigned kFullWarp = 0xffffffffu;
// The kernels' __launch_bounds__ also say 1 block per SM suffices: without
// it, ptxas 13.0 spilled a few bytes inside the step loop of some small-K
// instances (float64 K = 1, 2 on sm_90; float16 K = 1 on sm_80) while far
// below the register limit. scripts/ptxas_report.py --check guards this.

// What a lane knows of its K states for the whole sample. A state past S'
// computes garbage that nothing reads: alpha's neighbours of a real state are
// below it, and beta's above it are masked by math::beta_moves (s + 1 < S').
// Only the stores check `valid`.
template <typename In, int K>
struct LaneStates {
  // The state's class in the input (Emissions::column). A label outside
  // [0, C) reads the blank's column instead, and `bad` turns it into NaN: a
  // select, where a skipped load would be a branch per state and frame.
  const In* column[K];
  bool bad[K];
  bool valid[K];  // s < S'
  math::Moves moves[K];
};

template <typename In, typename Acc, int K>
__device__ inline LaneStates<In, K> lane_states(const Emissions<In, Acc>& emission, const int64_t* target,
                                                int64_t states, int64_t blank, int lane, bool beta) {
  LaneStates<In, K> ls;
  for (int j = 0; j < K; ++j) {
    const int64_t s = static_cast<int64_t>(lane) * K + j;
    ls.valid[j] = s < states;
    const In* column = emission.column(ls.valid[j] ? math::state_label(target, s, blank) : blank);
    ls.bad[j] = column == nullptr;
    ls.column[j] = ls.bad[j] ? emission.column(blank) : column;
    ls.moves[j] = !ls.valid[j] ? math::Moves{false, false}
                  : beta       ? math::beta_moves(target, s, states)
                               : math::alpha_moves(target, s);
  }
  return ls;
}

template <typename In, typename Acc, int K>
__device__ inline void load_emissions(const Emissions<In, Acc>& emission, int64_t t, const LaneStates<In, K>& ls,
                                      Acc* e) {
  const Acc normaliser = emission.frame_normaliser(t);
  for (int j = 0; j < K; ++j) {
    const Acc x = emission.at(ls.column[j], t, normaliser);
    e[j] = ls.bad[j] ? static_cast<Acc>(NAN) : x;
  }
}

template <typename In, typename Acc, int K>
__device__ inline void store_row(Acc* row, const Acc* v, const LaneStates<In, K>& ls, int lane) {
  for (int j = 0; j < K; ++j)
    if (ls.valid[j]) row[lane * K + j] = v[j];
}

// Fills the sample's alpha cells from `from` on with -inf (the workspace is an op output).
template <typename Acc>
__device__ inline void clear_alpha_tail(Acc* alpha, int64_t from, int64_t end, int lane) {
  for (int64_t i = from + lane; i < end; i += kWarpLanes) alpha[i] = math::neg_inf<Acc>();
}

// alpha_{t-1} -> alpha_t in place. Descending j, so a[j-1] and a[j-2] are
// still the previous frame's when a[j] reads them.
template <typename In, typename Acc, int K>
__device__ inline void alpha_step(Acc* a, const Acc* e, const LaneStates<In, K>& ls) {
  // The previous frame's states l*K - 1 and l*K - 2 (lane l-1's last two; for
  // K = 1 the second is lane l-2's). The first lanes get their own values
  // back; the moves mask those (no step into s = 0, no skip below s = 3).
  const Acc left1 = __shfl_up_sync(kFullWarp, a[K - 1], 1);
  const Acc left2 = K >= 2 ? __shfl_up_sync(kFullWarp, a[K >= 2 ? K - 2 : 0], 1) : __shfl_up_sync(kFullWarp, a[0], 2);
  for (int j = K - 1; j >= 0; --j) {
    const Acc step = j >= 1 ? a[j >= 1 ? j - 1 : 0] : left1;
    const Acc skip = j >= 2 ? a[j >= 2 ? j - 2 : 0] : (j == 1 ? left1 : left2);
    a[j] = math::combine_moves<FastMath>(a[j], step, skip, ls.moves[j], e[j]);
  }
}

// beta_{t+1} -> beta_t in place, ascending j (the mirror of alpha_step).
template <typename In, typename Acc, int K>
__device__ inline void beta_step(Acc* b, const Acc* e, const LaneStates<In, K>& ls) {
  // The next frame's states l*K + K and l*K + K + 1. The last lanes get their
  // own values back; the moves mask those, as S' <= 32 * K is odd, so
  // s + 1 and s + 2 are past the last state there.
  const Acc right1 = __shfl_down_sync(kFullWarp, b[0], 1);
  const Acc right2 = K >= 2 ? __shfl_down_sync(kFullWarp, b[K >= 2 ? 1 : 0], 1) : __shfl_down_sync(kFullWarp, b[0], 2);
  for (int j = 0; j < K; ++j) {
    const Acc step = j + 1 < K ? b[j + 1 < K ? j + 1 : 0] : right1;
    const Acc skip = j + 2 < K ? b[j + 2 < K ? j + 2 : 0] : (j + 2 == K ? right1 : right2);
    b[j] = math::combine_moves<FastMath>(b[j], step, skip, ls.moves[j], e[j]);
  }
}

// alpha for the sample of this warp: rows to the workspace, then its nll.
template <typename In, typename Acc, int K>
__global__ void __launch_bounds__(kWarpRecurrenceThreads, 1)
    warp_alpha_kernel(Problem p, Acc* workspace, int64_t alpha_elems, Acc* nll) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpLanes;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kSamplesPerBlock + threadIdx.x / kWarpLanes;
  if (n >= p.batch) return;  // a whole warp: no shuffle waits for it
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t states = math::num_states(length);
  const int64_t begin = alpha_offset(p.max_time, p.target_offsets[n], n);
  Acc* alpha = workspace + begin;
  const int64_t end = alpha_block_end(p, n) - begin;
  // max_states bounds every sample once sanitize_indices has clamped the
  // lengths, so this cannot happen; if it did, the sample gets NaN, not a
  // write past the lane's states.
  const bool fits = states <= static_cast<int64_t>(kWarpLanes) * K;
  clear_alpha_tail(alpha, fits ? frames * states : 0, end, lane);
  if (frames == 0 || !fits) {
    if (lane == 0) nll[n] = fits ? math::nll_without_frames<Acc>(length) : static_cast<Acc>(NAN);
    return;
  }
  const int64_t* target = p.targets + p.target_offsets[n];
  const Emissions<In, Acc> emission(p, n, sample_normalisers(p, workspace, alpha_elems, n));
  const LaneStates<In, K> ls = lane_states<In, Acc, K>(emission, target, states, p.blank, lane, false);

  Acc a[K], e[K], e_next[K] = {};
  load_emissions(emission, 0, ls, e);
  for (int j = 0; j < K; ++j)
    a[j] = ls.valid[j] ? math::alpha_initial(static_cast<int64_t>(lane) * K + j, e[j]) : math::neg_inf<Acc>();
  store_row(alpha, a, ls, lane);
  if (frames > 1) load_emissions(emission, 1, ls, e);
  for (int64_t t = 1; t < frames; ++t) {
    if (t + 1 < frames) load_emissions(emission, t + 1, ls, e_next);  // ahead of this step's work
    alpha_step(a, e, ls);
    store_row(alpha + t * states, a, ls, lane);
    for (int j = 0; j < K; ++j) e[j] = e_next[j];
  }
  __syncwarp();  // the last row, written by every lane, is visible to lane 0
  if (lane == 0) nll[n] = math::nll_from_last_alpha(alpha + (frames - 1) * states, states);
}

// beta from the last frame down, in registers, and the posterior of every
// (t, s) from it and the stored alpha row.
template <typename In, typename Acc, int K>
__global__ void __launch_bounds__(kWarpRecurrenceThreads, 1)
    warp_beta_posterior_kernel(Problem p, const Acc* workspace, int64_t alpha_elems, const Acc* nll_all,
                               Acc* posterior_all) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpLanes;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kSamplesPerBlock + threadIdx.x / kWarpLanes;
  if (n >= p.batch) return;
  const int64_t frames = p.input_lengths[n];
  const Acc nll = nll_all[n];
  if (frames == 0 || !isfinite(nll)) return;  // the gradient pass writes 0 or NaN (math::gradient_undefined)
  const int64_t states = math::num_states(p.target_lengths[n]);
  if (states > static_cast<int64_t>(kWarpLanes) * K) return;  // cannot happen: the forward gave it a NaN nll
  const int64_t* target = p.targets + p.target_offsets[n];
  const Emissions<In, Acc> emission(p, n, sample_normalisers(p, workspace, alpha_elems, n));
  const int64_t begin = alpha_offset(p.max_time, p.target_offsets[n], n);
  const Acc* alpha = workspace + begin;
  Acc* posterior = posterior_all + begin;
  const LaneStates<In, K> ls = lane_states<In, Acc, K>(emission, target, states, p.blank, lane, true);

  Acc b[K], e[K], e_next[K] = {};
  load_emissions(emission, frames - 1, ls, e);
  for (int j = 0; j < K; ++j)
    b[j] = ls.valid[j] ? math::beta_initial(static_cast<int64_t>(lane) * K + j, states, e[j]) : math::neg_inf<Acc>();
  for (int64_t t = frames - 1;; --t) {
    if (t > 0) load_emissions(emission, t - 1, ls, e_next);  // the next step's, ahead of this one's work
    for (int j = 0; j < K; ++j) {
      const int64_t i = t * states + static_cast<int64_t>(lane) * K + j;
      if (ls.valid[j]) posterior[i] = math::state_posterior_with<FastMath>(alpha[i], b[j], e[j], nll);
    }
    if (t == 0) break;
    for (int j = 0; j < K; ++j) e[j] = e_next[j];
    beta_step(b, e, ls);  // beta_{t-1}
  }
}

}  // namespace ctc::cuda
