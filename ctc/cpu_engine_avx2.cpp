// The CPU engine's AVX2 + FMA kernels (float accumulation: float32, float16
// and bfloat16 inputs). States are processed eight at a time in padded rows
// whose guard lanes hold -inf, so the s-1, s-2 (alpha) and s+1, s+2 (beta)
// neighbours need no per-cell branches; the combination step itself is
// math::combine_paths instantiated for eight lanes. Compiled with -mavx2
// -mfma and only called after a runtime CPU check (cpu_engine.cpp).
#include <cstring>
#include <type_traits>

#include "ctc/cpu_engine_internal.h"
#include "ctc/simd_avx2.h"

namespace ctc::cpu {
namespace {

using simd::Vec8;

constexpr int64_t kLanes = 8;

int64_t padded_states(int64_t states) { return (states + kLanes - 1) / kLanes * kLanes; }

// The sample's padded rows inside its scratch; each pointer is at state 0
// with kGuard lanes before it.
struct Rows {
  float* a;
  float* b;
  float* emission;
  float* skip_mask;
  float* extra;
};

Rows make_rows(const Problem& p, float* scratch, int64_t n) {
  float* base = sample_scratch(p, scratch, n);
  const int64_t cap = row_capacity(p, n);
  return {base + kGuard, base + cap + kGuard, base + 2 * cap + kGuard, base + 3 * cap + kGuard,
          base + 4 * cap + kGuard};
}

void fill_row(float* row, int64_t padded, float value) { std::fill(row - kGuard, row + padded + kGuard, value); }

float all_ones() {
  const uint32_t bits = 0xffffffffu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// emission[s] = lp[t][l'_s] for s < S; lanes beyond S stay -inf. Labels were
// validated on the CPU, so this reads the row directly (no range checks).
template <typename In>
void gather_emissions(const Emissions<In, float>& in, int64_t t, const int64_t* target, int64_t length, int64_t blank,
                      float* emission) {
  const In* row = in.base + t * in.stride_t;
  const int64_t stride_c = in.stride_c;
  const float shift = in.normaliser ? in.normaliser[t] : 0.0f;
  const float blank_e = load<float>(row[blank * stride_c]) - shift;
  emission[0] = blank_e;
  for (int64_t i = 0; i < length; ++i) {
    emission[2 * i + 1] = load<float>(row[target[i] * stride_c]) - shift;
    emission[2 * i + 2] = blank_e;
  }
}

// The states [first, last] that can lie on a complete path at frame t: reachable
// from the start (s <= 2t + 1) and still able to reach the end in the frames
// left (s >= S' - 2 (T - t)). Returned as whole lane blocks [begin, end).
// Cells outside need no work: above the window alpha stays -inf and below it
// beta does (the buffers hold -inf there); alpha cells below the window are
// never read by cells inside it and their posterior is 0 because beta is -inf.
struct Window {
  int64_t begin, end;
};
Window live_states(int64_t t, int64_t frames, int64_t states, int64_t padded) {
  const int64_t first = std::max<int64_t>(0, states - 2 * (frames - t));
  const int64_t last = std::min<int64_t>(states - 1, 2 * t + 1);
  if (last < first) return {0, 0};
  return {first / kLanes * kLanes, std::min(padded, (last / kLanes + 1) * kLanes)};
}

// The gradient row of frame t from the per-class posterior sums. The common
// case (log-probs input, float32, contiguous classes) is a vector fill and a
// scatter over the target's classes only; everything else takes the generic
// per-element path.
template <typename In>
void write_gradient_row_fast(const Emissions<In, float>& in, const GradientOutput& g, int64_t n, int64_t t,
                             const int64_t* target, int64_t length, int64_t blank, float* class_posterior,
                             float scale) {
  if constexpr (std::is_same_v<In, float>) {
    if (!in.normaliser && g.stride_c == 1) {
      float* row = static_cast<float*>(g.data) + n * g.stride_n + t * g.stride_t;
      std::fill(row, row + in.num_classes, 0.0f);
      row[blank] = -class_posterior[blank] * scale;
      for (int64_t i = 0; i < length; ++i) row[target[i]] = -class_posterior[target[i]] * scale;
      return;
    }
  }
  write_gradient_row(in, g, n, t, class_posterior, scale);
}

}  // namespace

template <typename In>
void forward_sample_avx2(const Problem& p, float* workspace, float* nll, float* scratch, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  float* normaliser = normalisers_of(p, workspace, n);
  if (frames == 0) {
    nll[n] = math::nll_without_frames<float>(length);
    fill_unused_workspace(p, workspace, n, 0, normaliser);
    return;
  }
  const Emissions<In, float> in(p, n, normaliser);
  if (normaliser) frame_normalisers(in, frames, normaliser);

  const int64_t states = math::num_states(length);
  const int64_t padded = padded_states(states);
  Rows rows = make_rows(p, scratch, n);
  for (float* row : {rows.a, rows.b, rows.emission}) fill_row(row, padded, -INFINITY);
  fill_row(rows.skip_mask, padded, 0.0f);
  for (int64_t s = 0; s < states; ++s)
    if (math::can_skip_into(target, s)) rows.skip_mask[s] = all_ones();

  float* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  gather_emissions(in, 0, target, length, p.blank, rows.emission);
  float* cur = rows.a;
  float* prev = rows.b;
  for (int64_t s = 0; s < std::min<int64_t>(states, 2); ++s) cur[s] = math::alpha_initial(s, rows.emission[s]);
  std::memcpy(alpha, cur, states * sizeof(float));
  for (int64_t t = 1; t < frames; ++t) {
    std::swap(cur, prev);
    gather_emissions(in, t, target, length, p.blank, rows.emission);
    const Window live = live_states(t, frames, states, padded);
    for (int64_t s = live.begin; s < live.end; s += kLanes) {
      const Vec8 skip = simd::select(simd::load(rows.skip_mask + s), simd::load(prev + s - 2), simd::neg_inf8());
      simd::store(cur + s, math::combine_paths(simd::load(prev + s), simd::load(prev + s - 1), skip,
                                               simd::load(rows.emission + s)));
    }
    std::memcpy(alpha + t * states, cur, states * sizeof(float));
  }
  nll[n] = math::nll_from_last_alpha(cur, states);
  fill_unused_workspace(p, workspace, n, frames * states, normaliser);
}

template <typename In>
void backward_sample_avx2(const Problem& p, const float* workspace, const float* nll_all, const float* grad_nll,
                          bool zero_infinity, float* scratch, const GradientOutput& g, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  const float nll = nll_all[n];
  if (frames == 0 || (zero_infinity && std::isinf(nll))) {
    zero_gradient_frames<In, float>(g, n, 0, p.max_time, p.num_classes);
    return;
  }
  const float scale = grad_nll[n];
  const Emissions<In, float> in(p, n, normalisers_of(p, const_cast<float*>(workspace), n));
  const int64_t states = math::num_states(length);
  const int64_t padded = padded_states(states);
  const float* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  Rows rows = make_rows(p, scratch, n);
  for (float* row : {rows.a, rows.b, rows.emission, rows.extra}) fill_row(row, padded, -INFINITY);
  // Here the mask is for the s+2 neighbour: beta_t(s) may come from beta_{t+1}(s+2).
  fill_row(rows.skip_mask, padded, 0.0f);
  for (int64_t s = 0; s + 2 < states; ++s)
    if (math::can_skip_into(target, s + 2)) rows.skip_mask[s] = all_ones();
  float* class_posterior = sample_scratch(p, scratch, n) + kScratchRows * row_capacity(p, n);
  std::fill(class_posterior, class_posterior + p.num_classes, 0.0f);
  float* posterior = rows.extra;  // alpha row t in, posteriors out

  float* cur = rows.a;
  float* next = rows.b;
  for (int64_t t = frames - 1; t >= 0; --t) {
    gather_emissions(in, t, target, length, p.blank, rows.emission);
    if (t == frames - 1) {
      for (int64_t s = std::max<int64_t>(states - 2, 0); s < states; ++s)
        cur[s] = math::beta_initial(s, states, rows.emission[s]);
    } else {
      std::swap(cur, next);
      const Window live = live_states(t, frames, states, padded);
      for (int64_t s = live.begin; s < live.end; s += kLanes) {
        const Vec8 skip = simd::select(simd::load(rows.skip_mask + s), simd::load(next + s + 2), simd::neg_inf8());
        simd::store(cur + s, math::combine_paths(simd::load(next + s), simd::load(next + s + 1), skip,
                                                 simd::load(rows.emission + s)));
      }
    }
    // Posteriors outside the live window are exactly 0 (alpha or beta is -inf
    // there), so only the window is computed and summed.
    const Window live = live_states(t, frames, states, padded);
    std::memcpy(posterior + live.begin, alpha + t * states + live.begin,
                (std::min(live.end, states) - live.begin) * sizeof(float));
    for (int64_t s = live.begin; s < live.end; s += kLanes)
      simd::store(posterior + s, simd::state_posterior(simd::load(posterior + s), simd::load(cur + s),
                                                       simd::load(rows.emission + s), nll));
    // Per class, in ascending state order (as the scalar engine). Only the
    // target's classes and blank are touched; the rest of the array stays 0.
    class_posterior[p.blank] = 0.0f;
    for (int64_t i = 0; i < length; ++i) class_posterior[target[i]] = 0.0f;
    const int64_t live_end = std::min(live.end, states);
    for (int64_t s = live.begin; s < live_end; ++s)
      class_posterior[math::state_label(target, s, p.blank)] += posterior[s];
    write_gradient_row_fast(in, g, n, t, target, length, p.blank, class_posterior, scale);
    // Lanes past S of the posterior row were computed from -inf: restore -inf for the next copy.
    std::fill(posterior + states, posterior + padded, -INFINITY);
  }
  zero_gradient_frames<In, float>(g, n, frames, p.max_time, p.num_classes);
}

#define CTC_INSTANTIATE_AVX2(In)                                                                        \
  template void forward_sample_avx2<In>(const Problem&, float*, float*, float*, int64_t);               \
  template void backward_sample_avx2<In>(const Problem&, const float*, const float*, const float*, bool, \
                                         float*, const GradientOutput&, int64_t);
CTC_INSTANTIATE_AVX2(float)
CTC_INSTANTIATE_AVX2(half_t)
CTC_INSTANTIATE_AVX2(bfloat16_t)

}  // namespace ctc::cpu
