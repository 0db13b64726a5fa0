// The CTC recurrences in log space, one cell at a time. This header is the
// single source of truth for the math: the CPU engine and the CUDA kernels
// both include it unchanged (everything here is CTC_HD, i.e. host/device).
//
// Notation (see docs/math.md): a target l of length L becomes the extended
// sequence l' = (blank, l1, blank, l2, ..., lL, blank) with S' = 2L+1 states.
// alpha_t(s) is the log probability of all prefixes of length t+1 that end in
// state s, beta_t(s) that of all suffixes starting at t in state s; both
// include the emission lp[t][l'_s].
#pragma once

#include <math.h>

#include <cstdint>

#include "ctc/hd.h"

namespace ctc::math {

template <typename T>
CTC_HD T neg_inf() {
  return -static_cast<T>(INFINITY);
}

CTC_HD float exp_(float x) { return ::expf(x); }
CTC_HD double exp_(double x) { return ::exp(x); }
CTC_HD float log_(float x) { return ::logf(x); }
CTC_HD double log_(double x) { return ::log(x); }
CTC_HD float log1p_(float x) { return ::log1pf(x); }
CTC_HD double log1p_(double x) { return ::log1p(x); }
// The larger of two, the other when one is NaN (one instruction on the GPU).
CTC_HD float max_(float a, float b) { return ::fmaxf(a, b); }
CTC_HD double max_(double a, double b) { return ::fmax(a, b); }

// log(exp(a) + exp(b)). -inf is "impossible" and is absorbed exactly; a NaN
// operand makes the result NaN (it is never silently dropped).
template <typename T>
CTC_HD T log_add(T a, T b) {
  const T hi = a > b ? a : b;
  const T lo = a > b ? b : a;
  if (hi == neg_inf<T>()) return lo;  // both -inf, or lo is NaN
  return hi + log1p_(exp_(lo - hi));
}

// The exp and log of the three-way log-sum-exp below, as a policy: this one
// is the C library's (and CUDA's) accurate expf/logf. The CUDA warp kernels
// pass kernels/fast_math.cuh's FastMath instead, the special-function unit's
// approximations for float (docs/cuda-kernels.md has the error bound).
struct PreciseMath {
  template <typename T>
  CTC_HD static T exp(T x) {
    return exp_(x);
  }
  template <typename T>
  CTC_HD static T log(T x) {
    return log_(x);
  }
};

// log(exp(a) + exp(b) + exp(c)), with the same -inf and NaN rules, computed
// with the exp and log of the policy M.
// The sum is computed and then chosen, without a branch, so the lanes of a
// CUDA warp stay converged. A NaN operand that max_ passes over still makes
// the sum NaN, through its exp.
template <typename M, typename T>
CTC_HD T log_add_with(T a, T b, T c) {
  const T m = max_(max_(a, b), c);
  const T sum = m + M::log(M::exp(a - m) + M::exp(b - m) + M::exp(c - m));
  return m == neg_inf<T>() ? a + b + c : sum;  // all -inf: -inf, or NaN if any operand is NaN
}

template <typename T>
CTC_HD T log_add(T a, T b, T c) {
  return log_add_with<PreciseMath>(a, b, c);
}

// Number of states of the extended sequence for a target of length L.
CTC_HD int64_t num_states(int64_t target_length) { return 2 * target_length + 1; }

// The class emitted in state s: blank on even states, target[s/2] on odd ones.
// `target` points at this sample's first label.
CTC_HD int64_t state_label(const int64_t* target, int64_t s, int64_t blank) {
  return (s & 1) ? target[s >> 1] : blank;
}

// True when state s may be entered directly from state s-2, skipping the blank
// between two labels. That is allowed only between different labels.
CTC_HD bool can_skip_into(const int64_t* target, int64_t s) {
  return (s & 1) && s >= 3 && target[s >> 1] != target[(s >> 1) - 1];
}

// alpha_0(s): only the first blank and the first label can start a path.
template <typename T>
CTC_HD T alpha_initial(int64_t s, T emission) {
  return s <= 1 ? emission : neg_inf<T>();
}

// offset + log(exp(a) + exp(b) + exp(c)). A function of its own so that a
// vector type can add the offset where it costs least (simd_avx2.h adds it to
// the maximum, off the dependency chain); found by ADL like log_add.
template <typename T>
CTC_HD T offset_log_add(T offset, T a, T b, T c) {
  return offset + log_add(a, b, c);
}

// One step of either recurrence: the emission times the sum of the (up to)
// three predecessor paths, in log space. Predecessors that do not exist are
// -inf. Generic in T so that vector types with the same operators (the CPU's
// SIMD lanes) run exactly this formula too.
template <typename T>
CTC_HD T combine_paths(T stay, T step, T skip, T emission) {
  return offset_log_add(emission, stay, step, skip);
}

// The transition rules, written once: the paths into state s at frame t come
// from the previous frame's state s (stay), s-1 (step) and, where allowed,
// s-2 (skip over a blank). A predecessor that does not exist is -inf. Both
// semirings read them: the loss's log-sum-exp (alpha_cell) and the aligner's
// max-plus (viterbi_cell).
template <typename T>
struct Predecessors {
  T stay, step, skip;
};

// Which of the step and skip moves exist, into state s (alpha) or out of it
// (beta, whose s+1 and s+2 are alpha's s-1 and s-2 seen from the other end).
// Staying always exists.
struct Moves {
  bool step, skip;
};

CTC_HD Moves alpha_moves(const int64_t* target, int64_t s) { return {s >= 1, can_skip_into(target, s)}; }

CTC_HD Moves beta_moves(const int64_t* target, int64_t s, int64_t num_states) {
  return {s + 1 < num_states, s + 2 < num_states && can_skip_into(target, s + 2)};
}

// A step of either recurrence from neighbour values already at hand (the
// CUDA warp kernels hold them in registers and shuffles): a neighbour whose
// move does not exist counts as -inf, whatever the register holds. The same
// sum as combine_paths (emission + log_add), with the exp and log of M.
template <typename M, typename T>
CTC_HD T combine_moves(T stay, T step, T skip, Moves moves, T emission) {
  return emission + log_add_with<M>(stay, moves.step ? step : neg_inf<T>(), moves.skip ? skip : neg_inf<T>());
}

template <typename T>
CTC_HD Predecessors<T> predecessors(const T* prev, const int64_t* target, int64_t s) {
  const Moves m = alpha_moves(target, s);
  return {prev[s], m.step ? prev[s - 1] : neg_inf<T>(), m.skip ? prev[s - 2] : neg_inf<T>()};
}

// alpha_t(s) from the previous row alpha_{t-1} (`prev`, S' entries).
template <typename T>
CTC_HD T alpha_cell(const T* prev, const int64_t* target, int64_t s, T emission) {
  const Predecessors<T> p = predecessors(prev, target, s);
  return combine_paths(p.stay, p.step, p.skip, emission);
}

// The max-plus semiring of forced alignment (Viterbi): the best predecessor
// instead of the sum over all of them, and which move it was.
enum Move : uint8_t { kStay = 0, kStep = 1, kSkip = 2 };

template <typename T>
struct BestPath {
  T score;
  uint8_t move;
};

// The tie rule, the same on every backend and torchaudio's: of equal scores,
// staying wins over stepping, and stepping over skipping. (NaN compares
// false, so a NaN predecessor is kept only when staying.)
template <typename T>
CTC_HD BestPath<T> best_predecessor(T stay, T step, T skip) {
  if (skip > step && skip > stay) return {skip, kSkip};
  if (step > stay) return {step, kStep};
  return {stay, kStay};
}

// delta_t(s): the best path's log-probability into state s at frame t, and
// its move, from the previous row delta_{t-1} (`prev`). Starts from
// alpha_initial, like alpha.
template <typename T>
CTC_HD BestPath<T> viterbi_cell(const T* prev, const int64_t* target, int64_t s, T emission) {
  const Predecessors<T> p = predecessors(prev, target, s);
  BestPath<T> best = best_predecessor(p.stay, p.step, p.skip);
  best.score = best.score + emission;
  return best;
}

// The state the best path ends in, from the last row: the final blank or the
// last label, the last label on a tie (torchaudio's rule). An empty target
// has one state.
template <typename T>
CTC_HD int64_t viterbi_end_state(const T* last_row, int64_t num_states) {
  if (num_states == 1) return 0;
  return last_row[num_states - 1] > last_row[num_states - 2] ? num_states - 1 : num_states - 2;
}

// beta_{T-1}(s): only the last label and the final blank can end a path.
template <typename T>
CTC_HD T beta_initial(int64_t s, int64_t num_states, T emission) {
  return s >= num_states - 2 ? emission : neg_inf<T>();
}

// beta_t(s) from the next row beta_{t+1} (`next`, S' entries).
template <typename T>
CTC_HD T beta_cell(const T* next, const int64_t* target, int64_t s, int64_t num_states, T emission) {
  const Moves m = beta_moves(target, s, num_states);
  return combine_paths(next[s], m.step ? next[s + 1] : neg_inf<T>(), m.skip ? next[s + 2] : neg_inf<T>(), emission);
}

// Negative log likelihood from the last alpha row of a sample with T >= 1.
template <typename T>
CTC_HD T nll_from_last_alpha(const T* last_row, int64_t num_states) {
  const T end_blank = last_row[num_states - 1];
  const T end_label = num_states >= 2 ? last_row[num_states - 2] : neg_inf<T>();
  return -log_add(end_blank, end_label);
}

// Loss of a sample with no frames: 0 for an empty target, +inf otherwise.
template <typename T>
CTC_HD T nll_without_frames(int64_t target_length) {
  return target_length == 0 ? T(0) : static_cast<T>(INFINITY);
}

// Posterior occupancy of state s at frame t: exp(gamma_t(s)) with
// gamma = alpha + beta - emission + nll (the emission is counted in both).
// A state that no complete path visits has posterior exactly 0, also when its
// emission is -inf (a masked class), where the formula would give
// (-inf) - (-inf) = NaN. An infeasible sample (nll = +inf) keeps NaN, as torch.
template <typename M, typename T>
CTC_HD T state_posterior_with(T alpha, T beta, T emission, T nll) {
  if ((alpha == neg_inf<T>() || beta == neg_inf<T>()) && nll != -neg_inf<T>()) return T(0);
  return M::exp(alpha + beta - emission + nll);
}

template <typename T>
CTC_HD T state_posterior(T alpha, T beta, T emission, T nll) {
  return state_posterior_with<PreciseMath>(alpha, beta, emission, nll);
}

// Gradient of the loss w.r.t. one input element, before scaling by the
// incoming gradient. With log-probs input it is the exact derivative,
// -posterior. With logits input (log_softmax fused) it is softmax - posterior.
template <typename T>
CTC_HD T input_gradient(T posterior, T softmax_or_zero) {
  return softmax_or_zero - posterior;
}

// logsumexp of a frame from its maximum m and sum_c exp(x_c - m). A frame whose
// maximum is infinite (all -inf, or a +inf present) gives that infinity; a NaN
// logit reaches the sum and makes the result NaN.
template <typename T>
CTC_HD T logsumexp_finish(T max_value, T sum_exp) {
  if (max_value == neg_inf<T>() || max_value == -neg_inf<T>()) return max_value;
  return max_value + log_(sum_exp);
}

// The running maximum used for logsumexp; NaN operands are left to the sum.
template <typename T>
CTC_HD T max_ignoring_nan(T a, T b) {
  return b > a ? b : a;
}

// A sample whose loss is not finite has no defined gradient. An infeasible
// one (nll = +inf) gets NaN on every element of its valid frames, as in torch,
// or 0 with zero_infinity. A NaN loss (from NaN input, or a frame of all -inf
// logits) and -inf (from +inf input) get NaN too: their posteriors would mix
// 0s and NaNs, differently on each kernel. Every backend checks this before
// the posteriors, and never computes posteriors for a non-finite loss.
template <typename T>
CTC_HD bool gradient_undefined(T nll, bool zero_infinity) {
  const bool infinite = nll == -neg_inf<T>() || nll == neg_inf<T>();
  return nll != nll || (infinite && !zero_infinity);
}

// Frames a target needs: one per label plus a blank between equal neighbours.
CTC_HD int64_t min_frames_needed(const int64_t* target, int64_t target_length) {
  int64_t repeats = 0;
  for (int64_t i = 1; i < target_length; ++i) repeats += target[i] == target[i - 1];
  return target_length + repeats;
}

}  // namespace ctc::math
