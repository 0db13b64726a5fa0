// The CPU engine's AVX2 + FMA kernels (float accumulation: float32, float16
// and bfloat16 inputs). States are processed eight at a time in padded rows
// whose guard lanes hold -inf, so the s-1, s-2 (alpha) and s+1, s+2 (beta)
// neighbours need no per-cell branches; the combination step itself is
// math::combine_paths instantiated for eight lanes (the backward's
// simd::beta_and_paths computes the same value and keeps beta - emission
// too). Compiled with -mavx2 -mfma and only called after a runtime CPU check
// (cpu_engine.cpp).
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <type_traits>

#include "ctc/cpu_avx2_shared.h"
#include "ctc/cpu_engine_internal.h"
#include "ctc/simd_avx2.h"

namespace ctc::cpu {
namespace {

using avx2::EmissionBlocks;
using avx2::gather_emissions;
using avx2::kLanes;
using avx2::live_states;
using avx2::padded_states;
using avx2::Window;
using simd::Vec8;

// The sample's padded rows inside its scratch; each pointer is at state 0
// with kGuard lanes before it.
struct Rows {
  float* a;
  float* b;
  float* emission;
  float* skip_mask;
  float* extra;
  int32_t* index;  // per state, the input offset of its class (EmissionBlocks)
};

Rows make_rows(const Problem& p, float* scratch, int64_t n) {
  float* base = sample_scratch(p, scratch, n);
  const int64_t cap = row_capacity(p, n);
  static_assert(sizeof(int32_t) == sizeof(float), "the index row shares the float scratch");
  return {base + kGuard,           base + cap + kGuard,     base + 2 * cap + kGuard,
          base + 3 * cap + kGuard, base + 4 * cap + kGuard, reinterpret_cast<int32_t*>(base + 5 * cap + kGuard)};
}

void fill_row(float* row, int64_t padded, float value) { std::fill(row - kGuard, row + padded + kGuard, value); }

float all_ones() {
  const uint32_t bits = 0xffffffffu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// dst[0, count) = src[0, count), inline: rows are short (htr-s: about 60
// floats), so a call to memcpy and its size dispatch cost as much as the copy
// (measured: a masked tail was slower than the scalar one).
void copy_row(float* dst, const float* src, int64_t count) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) simd::store(dst + i, simd::load(src + i));
  for (; i < count; ++i) dst[i] = src[i];
}

// Bytes of the whole input (and so of the gradient).
template <typename In>
int64_t input_bytes(const Problem& p) {
  return p.max_time * p.batch * p.num_classes * static_cast<int64_t>(sizeof(In));
}

// Prefetches the rows the next frame will use, a few cache lines per block of
// the current frame's loop. A sample's rows lie N * C apart, a stride the
// hardware prefetchers do not follow, and with many classes (asr-bpe: 4 KB
// rows, 64 MB of input) the next frame's gathers would otherwise start on
// cold memory. Spreading the requests keeps them from filling the miss
// buffers all at once (measured: all at the frame start stalled on them).
struct PrefetchRegion {
  const void* begin;  // null: nothing to fetch
  int64_t bytes;
  bool write;  // fetch for ownership: the row is about to be written
};

class SpreadPrefetch {
 public:
  // Up to kBurstLines lines a frame are requested at once, right away
  // (measured: best for htr-s, about 15 lines a frame); more are spread over
  // the frame's `blocks` iterations, each of which then calls step().
  SpreadPrefetch(std::initializer_list<PrefetchRegion> regions, int64_t blocks) {
    constexpr int64_t kBurstLines = 32;
    int64_t lines = 0;
    for (const PrefetchRegion& r : regions)
      if (r.begin != nullptr && r.bytes > 0) lines += (r.bytes + 63) / 64;
    if (lines <= kBurstLines || blocks <= 0) {
      for (const PrefetchRegion& r : regions) {
        if (r.begin == nullptr) continue;
        const char* line = static_cast<const char*>(r.begin);
        const char* end = line + r.bytes;
        if (r.write)
          for (; line < end; line += 64) __builtin_prefetch(line, 1, 3);
        else
          for (; line < end; line += 64) __builtin_prefetch(line, 0, 3);
      }
      return;
    }
    for (const PrefetchRegion& r : regions)
      if (r.begin != nullptr && r.bytes > 0 && count_ < kMaxRegions) regions_[count_++] = r;
    per_step_ = (lines + blocks - 1) / blocks;
  }
  bool spreading() const { return per_step_ > 0; }
  void step() {
    for (int64_t i = 0; i < per_step_ && current_ < count_; ++i) {
      PrefetchRegion& r = regions_[current_];
      fetch(r);
      r.begin = static_cast<const char*>(r.begin) + 64;
      r.bytes -= 64;
      if (r.bytes <= 0) ++current_;
    }
  }

 private:
  static void fetch(const PrefetchRegion& r) {
    if (r.write) __builtin_prefetch(r.begin, 1, 3);
    else __builtin_prefetch(r.begin, 0, 3);
  }
  static constexpr int kMaxRegions = 3;
  PrefetchRegion regions_[kMaxRegions];
  int count_ = 0, current_ = 0;
  int64_t per_step_ = 0;
};

// The common case -- log-probs input, float32, contiguous classes -- writes
// the gradient row directly: fill with 0 * scale (so an inf/NaN incoming
// gradient still poisons every class, as in the generic path), then subtract
// each live state's posterior from its class. Blank's share is summed in
// vector lanes. Other cases accumulate per-class sums first.
template <typename In>
bool direct_gradient_row(const Emissions<In, float>& in, const GradientOutput& g) {
  return std::is_same_v<In, float> && !in.normaliser && g.stride_c == 1;
}

// Copies a finished row to the gradient with non-temporal stores: no read of
// the destination lines first, and no cache space spent on them.
void stream_row(float* dst, const float* src, int64_t count) {
  int64_t i = 0;
  for (; i < count && (reinterpret_cast<uintptr_t>(dst + i) & 31) != 0; ++i) dst[i] = src[i];
  for (; i + kLanes <= count; i += kLanes) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < count; ++i) dst[i] = src[i];
}

// A gradient much larger than the caches (asr-bpe: 64 MB) is written with
// streaming stores, from a row built in scratch; a smaller one in place,
// where it stays cached for the caller's next use of it.
constexpr int64_t kStreamGradientBytes = int64_t{16} << 20;

// `staging`: C floats of scratch to build the row in before streaming it out,
// or null to build it in place.
void write_gradient_row_direct(const GradientOutput& g, int64_t n, int64_t t, const int64_t* target, int64_t blank,
                               const int32_t* offsets, int64_t num_classes, const float* posterior, int64_t begin,
                               int64_t end, float scale, float* staging) {
  float* out = static_cast<float*>(g.data) + n * g.stride_n + t * g.stride_t;
  float* row = staging != nullptr ? staging : out;
  std::fill(row, row + num_classes, 0.0f * scale);
  // Blank states are the even ones; begin is a multiple of 8, so lane parity is state parity.
  const Vec8 even_lanes{_mm256_castsi256_ps(_mm256_setr_epi32(-1, 0, -1, 0, -1, 0, -1, 0))};
  Vec8 blank_sum = simd::splat(0.0f);
  int64_t s = begin;
  for (; s + kLanes <= end; s += kLanes)
    blank_sum = blank_sum + simd::select(even_lanes, simd::load(posterior + s), simd::splat(0.0f));
  float lanes[kLanes];
  simd::store(lanes, blank_sum);
  float blank_total = ((lanes[0] + lanes[2]) + (lanes[4] + lanes[6]));
  for (; s < end; ++s)
    if (!(s & 1)) blank_total += posterior[s];
  row[blank] -= blank_total * scale;
  // Label states are the odd ones; `offsets` (the gather's int32 class offsets, when
  // present) saves reading and scaling the int64 targets.
  if (offsets != nullptr)
    for (int64_t s = begin + 1; s < end; s += 2) row[offsets[s]] -= posterior[s] * scale;
  else
    for (int64_t i = begin / 2; 2 * i + 1 < end; ++i) row[target[i]] -= posterior[2 * i + 1] * scale;
  if (staging != nullptr) stream_row(out, staging, num_classes);
}

}  // namespace

template <typename In>
void forward_sample_avx2(const Problem& p, float* workspace, float* nll, float* scratch, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  float* normaliser = normalisers_of(p, workspace, n);
  const Emissions<In, float> in(p, n, normaliser);
  if (!begin_forward_sample(p, workspace, nll, n, in)) return;

  const int64_t states = math::num_states(length);
  const int64_t padded = padded_states(states);
  Rows rows = make_rows(p, scratch, n);
  for (float* row : {rows.a, rows.b, rows.emission}) fill_row(row, padded, -INFINITY);
  fill_row(rows.skip_mask, padded, 0.0f);
  for (int64_t s = 0; s < states; ++s)
    if (math::can_skip_into(target, s)) rows.skip_mask[s] = all_ones();

  EmissionBlocks<In> emissions(in, target, p.blank, states, padded, rows.emission, rows.index);
  float* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  gather_emissions(in, 0, target, p.blank, 0, std::min<int64_t>(states, 2), rows.emission);
  float* cur = rows.a;
  float* prev = rows.b;
  for (int64_t s = 0; s < std::min<int64_t>(states, 2); ++s) cur[s] = math::alpha_initial(s, rows.emission[s]);
  std::memcpy(alpha, cur, states * sizeof(float));
  for (int64_t t = 1; t < frames; ++t) {
    std::swap(cur, prev);
    const Window live = live_states(t, frames, states, padded);
    emissions.prepare(t, live.begin, live.end);
    const auto next_row = t + 1 < frames ? emissions.row(t + 1) : std::pair<const void*, int64_t>{nullptr, 0};
    SpreadPrefetch prefetch({{next_row.first, next_row.second, false}}, (live.end - live.begin) / kLanes);
    const bool spread = prefetch.spreading();
    for (int64_t s = live.begin; s < live.end; s += kLanes) {
      if (spread) prefetch.step();
      const Vec8 skip = simd::select(simd::load(rows.skip_mask + s), simd::load(prev + s - 2), simd::neg_inf8());
      simd::store(cur + s, math::combine_paths(simd::load(prev + s), simd::load(prev + s - 1), skip,
                                               emissions.block(s)));
    }
    copy_row(alpha + t * states, cur, states);
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
  if (trivial_gradient<In, float>(p, g, n, nll, zero_infinity)) return;
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
  // The gradient has the input's size.
  const bool stream_gradient = direct_gradient_row(in, g) && input_bytes<In>(p) >= kStreamGradientBytes;
  std::fill(class_posterior, class_posterior + p.num_classes, 0.0f);
  float* posterior = rows.extra;  // the live window's state posteriors of the current frame
  EmissionBlocks<In> emissions(in, target, p.blank, states, padded, rows.emission, rows.index);

  float* cur = rows.a;
  float* next = rows.b;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i state_count = _mm256_set1_epi32(static_cast<int32_t>(states));
  const Vec8 sample_nll = simd::splat(nll);
  float* paths = rows.emission;  // beta - emission of the current frame's live window
  for (int64_t t = frames - 1; t >= 0; --t) {
    const Window live = live_states(t, frames, states, padded);
    const float* alpha_row = alpha + t * states;
    if (t == frames - 1) {
      gather_emissions(in, t, target, p.blank, live.begin, std::min(live.end, states), rows.emission);
      for (int64_t s = std::max<int64_t>(states - 2, 0); s < states; ++s)
        cur[s] = math::beta_initial(s, states, rows.emission[s]);
      // The paths part of beta_initial: 0 (log 1) for the two states that end a path.
      for (int64_t s = live.begin; s < live.end; ++s)
        paths[s] = s < states ? math::beta_initial(s, states, 0.0f) : -INFINITY;
    } else {
      std::swap(cur, next);
      emissions.prepare(t, live.begin, live.end);
      // The next frame's input, alpha and (written whole, unless streamed) gradient rows.
      const bool more = t > 0;
      const auto next_row = more ? emissions.row(t - 1) : std::pair<const void*, int64_t>{nullptr, 0};
      const void* next_gradient = more && !stream_gradient && g.stride_c == 1
                                      ? static_cast<const In*>(g.data) + n * g.stride_n + (t - 1) * g.stride_t
                                      : nullptr;
      SpreadPrefetch prefetch({{next_row.first, next_row.second, false},
                               {more ? alpha_row - states + live.begin : nullptr, (live.end - live.begin) * 4, false},
                               {next_gradient, in.num_classes * static_cast<int64_t>(sizeof(In)), true}},
                              (live.end - live.begin) / kLanes);
      const bool spread = prefetch.spreading();
      // Beta, and its paths part (beta - emission) for the posteriors, kept in
      // the emission row (in direct mode it is otherwise unused; in row mode
      // each block's emissions are read before its paths overwrite them).
      for (int64_t s = live.begin; s < live.end; s += kLanes) {
        if (spread) prefetch.step();
        const Vec8 skip = simd::select(simd::load(rows.skip_mask + s), simd::load(next + s + 2), simd::neg_inf8());
        const simd::BetaAndPaths step =
            simd::beta_and_paths(simd::load(next + s), simd::load(next + s + 1), skip, emissions.block(s));
        simd::store(cur + s, step.beta);
        simd::store(paths + s, step.paths);
      }
    }
    // The posteriors, in a pass of their own: independent blocks, off the
    // chain the next frame waits on (inside the beta loop their work held back
    // the recurrence: measured 10% slower at htr-s). Alpha is read straight
    // from the workspace row, lanes past S masked out (they read nothing and
    // come out 0, since their beta is -inf).
    for (int64_t s = live.begin; s < live.end; s += kLanes) {
      const __m256i state = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(s)), lanes);
      const Vec8 a{_mm256_maskload_ps(alpha_row + s, _mm256_cmpgt_epi32(state_count, state))};
      simd::store(posterior + s, simd::state_posterior_from_paths(a, simd::load(paths + s), sample_nll));
    }
    // Posteriors outside the live window are exactly 0 (alpha or beta is -inf
    // there), so only the window is summed.
    const int64_t live_end = std::min(live.end, states);
    if (direct_gradient_row(in, g)) {
      write_gradient_row_direct(g, n, t, target, p.blank, emissions.class_offsets(g.stride_c), in.num_classes,
                                posterior, live.begin, live_end, scale, stream_gradient ? class_posterior : nullptr);
    } else {
      // Per class, in ascending state order (as the scalar engine). Only the
      // target's classes and blank are touched; the rest of the array stays 0.
      class_posterior[p.blank] = 0.0f;
      for (int64_t i = 0; i < length; ++i) class_posterior[target[i]] = 0.0f;
      for (int64_t s = live.begin; s < live_end; ++s)
        class_posterior[math::state_label(target, s, p.blank)] += posterior[s];
      write_gradient_row(in, g, n, t, class_posterior, scale);
    }
  }
  if (stream_gradient) _mm_sfence();  // order the streaming stores before the caller's join
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
