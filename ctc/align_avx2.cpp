// The aligner's AVX2 + FMA kernel (float accumulation: float32, float16 and
// bfloat16 inputs), eight states at a time. It is math::viterbi_cell for
// eight lanes: the same predecessors (guard lanes of -inf stand in for the
// missing ones, a mask for the skip rule), the same tie rule, the same
// single addition of the emission, so its scores are the scalar kernel's bit
// for bit. Like the loss's kernels it only computes the states a complete
// path can visit (avx2::live_states). Compiled with -mavx2 -mfma and only
// called after a runtime CPU check.
#include <immintrin.h>

#include <array>
#include <cstring>
#include <vector>

#include "ctc/align_internal.h"
#include "ctc/alignment.h"
#include "ctc/cpu_avx2_shared.h"

namespace ctc::cpu {
namespace {

using avx2::EmissionBlocks;
using avx2::kLanes;
using avx2::padded_states;
using simd::Vec8;

// Eight 1-bit lane flags spread to the even bits of 16: lane i's move code
// sits at bits 2i (step) and 2i + 1 (skip).
constexpr std::array<uint16_t, 256> spread_table() {
  std::array<uint16_t, 256> table{};
  for (int m = 0; m < 256; ++m)
    for (int i = 0; i < 8; ++i)
      if (m & (1 << i)) table[m] = static_cast<uint16_t>(table[m] | (1u << (2 * i)));
  return table;
}
constexpr std::array<uint16_t, 256> kSpread = spread_table();

float all_ones() {
  const uint32_t bits = 0xffffffffu;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Padded working rows with kLanes guard lanes of -inf on each side.
struct ViterbiRows {
  explicit ViterbiRows(int64_t padded) : stride(padded + 2 * kLanes), floats(4 * stride, -INFINITY), index(stride) {}
  float* row(int k) { return floats.data() + k * stride + kLanes; }
  int64_t stride;
  std::vector<float> floats;  // previous, current, emission, skip mask
  std::vector<int32_t> index;
};

}  // namespace

template <typename In>
void viterbi_avx2(const Emissions<In, float>& in, const ViterbiSample& v, int64_t t_begin, int64_t t_end, float* row,
                  uint8_t* moves, const RowSink<float>* keep) {
  const int64_t states = v.states, padded = padded_states(states);
  ViterbiRows rows(padded);
  float* prev = rows.row(0);
  float* cur = rows.row(1);
  float* skip_mask = rows.row(3);
  std::fill(skip_mask - kLanes, skip_mask + padded + kLanes, 0.0f);
  for (int64_t s = 0; s < states; ++s)
    if (math::can_skip_into(v.target, s)) skip_mask[s] = all_ones();
  EmissionBlocks<In> emissions(in, v.target, v.blank, states, padded, rows.row(2), rows.index.data() + kLanes);
  const int64_t row_bytes = move_row_bytes(states);

  int64_t t = t_begin;
  if (t == 0) {
    avx2::gather_emissions(in, 0, v.target, v.blank, 0, std::min<int64_t>(states, 2), rows.row(2));
    for (int64_t s = 0; s < std::min<int64_t>(states, 2); ++s) prev[s] = math::alpha_initial(s, rows.row(2)[s]);
    if (keep != nullptr) {
      std::copy(prev, prev + states, row);
      (*keep)(0, row);
    }
    ++t;
  } else {
    std::copy(row, row + states, prev);
  }
  for (; t < t_end; ++t) {
    const avx2::Window live = avx2::live_states(t, v.frames, states, padded);
    emissions.prepare(t, live.begin, live.end);
    uint8_t* m = moves != nullptr ? moves + (t - t_begin) * row_bytes : nullptr;
    for (int64_t s = live.begin; s < live.end; s += kLanes) {
      const Vec8 stay = simd::load(prev + s);
      const Vec8 step = simd::load(prev + s - 1);
      const Vec8 skip = simd::select(simd::load(skip_mask + s), simd::load(prev + s - 2), simd::neg_inf8());
      // math::best_predecessor, lane by lane: skip only if above both, then step if above stay.
      const __m256 take_skip =
          _mm256_and_ps(_mm256_cmp_ps(skip.v, step.v, _CMP_GT_OQ), _mm256_cmp_ps(skip.v, stay.v, _CMP_GT_OQ));
      const __m256 take_step = _mm256_andnot_ps(take_skip, _mm256_cmp_ps(step.v, stay.v, _CMP_GT_OQ));
      const Vec8 best = simd::select(Vec8{take_skip}, skip, simd::select(Vec8{take_step}, step, stay));
      simd::store(cur + s, best + emissions.block(s));
      if (m != nullptr) {
        const uint16_t code = static_cast<uint16_t>(kSpread[_mm256_movemask_ps(take_step)] |
                                                    (kSpread[_mm256_movemask_ps(take_skip)] << 1));
        std::memcpy(m + s / 4, &code, sizeof code);
      }
    }
    std::swap(prev, cur);
    if (keep != nullptr) {
      std::copy(prev, prev + states, row);
      (*keep)(t, row);
    }
  }
  std::copy(prev, prev + states, row);
}

#define CTC_INSTANTIATE_VITERBI_AVX2(In)                                                                       \
  template void viterbi_avx2<In>(const Emissions<In, float>&, const ViterbiSample&, int64_t, int64_t, float*, \
                                 uint8_t*, const RowSink<float>*);
CTC_INSTANTIATE_VITERBI_AVX2(float)
CTC_INSTANTIATE_VITERBI_AVX2(half_t)
CTC_INSTANTIATE_VITERBI_AVX2(bfloat16_t)

}  // namespace ctc::cpu
