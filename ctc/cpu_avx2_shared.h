// Pieces the CPU engine's AVX2 kernels share: the loss (cpu_engine_avx2.cpp)
// and the aligner (align_avx2.cpp). Only for translation units compiled with
// -mavx2 -mfma. Not a public header.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/simd_avx2.h"

namespace ctc::cpu::avx2 {

using simd::Vec8;

constexpr int64_t kLanes = 8;

inline int64_t padded_states(int64_t states) { return (states + kLanes - 1) / kLanes * kLanes; }

// emission[s] = lp[t][l'_s] for s in [begin, end) (end <= S); lanes beyond S
// stay -inf. Labels were validated on the CPU, so this reads the row directly.
template <typename In>
inline void gather_emissions(const Emissions<In, float>& in, int64_t t, const int64_t* target, int64_t blank,
                             int64_t begin, int64_t end, float* emission) {
  const In* row = in.base + t * in.stride_t;
  const int64_t stride_c = in.stride_c;
  const float shift = in.normaliser ? in.normaliser[t] : 0.0f;
  const float blank_e = load<float>(row[blank * stride_c]) - shift;
  int64_t s = begin;
  if (s < end && (s & 1)) {
    emission[s] = load<float>(row[target[s >> 1] * stride_c]) - shift;
    ++s;
  }
  for (; s + 1 < end; s += 2) {
    emission[s] = blank_e;
    emission[s + 1] = load<float>(row[target[s >> 1] * stride_c]) - shift;
  }
  if (s < end) emission[s] = blank_e;
}

// Emissions of eight states at a time for frame t. float input whose class
// offsets fit in int32 is gathered straight from the input row with one AVX2
// gather per block; other inputs are first gathered one by one into the
// emission row. Either way lanes at or past S read as -inf.
template <typename In>
class EmissionBlocks {
 public:
  // `emission_row` and `index_row` are padded rows of scratch (S' rounded up to 8 lanes).
  EmissionBlocks(const Emissions<In, float>& in, const int64_t* target, int64_t blank, int64_t states,
                 int64_t padded, float* emission_row, int32_t* index_row)
      : in_(in), target_(target), blank_(blank), states_(states), row_(emission_row), index_(index_row) {
    if constexpr (std::is_same_v<In, float>) {
      direct_ = in.stride_c >= 0 && in.num_classes * in.stride_c < (int64_t{1} << 31);
      // Lanes at or past S get index -1: its sign bit masks them out of the gather.
      if (direct_)
        for (int64_t s = 0; s < padded; ++s)
          index_[s] = s < states ? static_cast<int32_t>(math::state_label(target, s, blank) * in.stride_c) : -1;
    }
  }

  // Makes emissions of frame t for the states [begin, end) available.
  void prepare(int64_t t, int64_t begin, int64_t end) {
    if (direct_) {
      frame_ = reinterpret_cast<const float*>(in_.base + t * in_.stride_t);
      if (shifted_) shift_ = simd::splat(in_.normaliser[t]);
    } else {
      gather_emissions(in_, t, target_, blank_, begin, std::min(end, states_), row_);
    }
  }

  // Per state, the offset of its class in a row whose class stride is
  // `stride_c`: the gather's offsets, when gathering directly from an input
  // with that class stride; null otherwise. (A gradient row written through
  // offsets built for another stride lands outside the row: strided float32
  // input once corrupted the heap that way.)
  const int32_t* class_offsets(int64_t stride_c) const {
    return direct_ && in_.stride_c == stride_c ? index_ : nullptr;
  }

  // Frame t's input row as bytes, for SpreadPrefetch; empty unless the
  // classes are contiguous.
  std::pair<const void*, int64_t> row(int64_t t) const {
    if (in_.stride_c != 1) return {nullptr, 0};
    return {in_.base + t * in_.stride_t, in_.num_classes * static_cast<int64_t>(sizeof(In))};
  }

  Vec8 block(int64_t s) const {
    if (!direct_) return simd::load(row_ + s);
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index_ + s));
    // Masked-out lanes (index -1) keep the -inf source and read nothing.
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1)));
    const Vec8 e{_mm256_mask_i32gather_ps(_mm256_set1_ps(-INFINITY), frame_, idx, valid, 4)};
    return shifted_ ? e - shift_ : e;
  }

 private:
  const Emissions<In, float>& in_;
  const int64_t* target_;
  int64_t blank_, states_;
  float* row_;
  int32_t* index_;
  bool direct_ = false;
  const bool shifted_ = in_.normaliser != nullptr;  // logits input: subtract the frame's logsumexp
  const float* frame_ = nullptr;
  Vec8 shift_{};
};

// The states [first, last] that can lie on a complete path at frame t: reachable
// from the start (s <= 2t + 1) and still able to reach the end in the frames
// left (s >= S' - 2 (T - t)). Returned as whole lane blocks [begin, end).
// Cells outside need no work: above the window alpha stays -inf and below it
// beta does (the buffers hold -inf there); alpha cells below the window are
// never read by cells inside it and their posterior is 0 because beta is -inf.
struct Window {
  int64_t begin, end;
};
inline Window live_states(int64_t t, int64_t frames, int64_t states, int64_t padded) {
  const int64_t first = std::max<int64_t>(0, states - 2 * (frames - t));
  const int64_t last = std::min<int64_t>(states - 1, 2 * t + 1);
  if (last < first) return {0, 0};
  return {first / kLanes * kLanes, std::min(padded, (last / kLanes + 1) * kLanes)};
}

}  // namespace ctc::cpu::avx2
