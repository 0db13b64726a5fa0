// Eight float lanes (AVX2 + FMA) with the operations the CTC recurrences need:
// arithmetic, select, and exp/log accurate to a few ulp (Cephes polynomials).
// Include only from translation units compiled with -mavx2 -mfma.
//
// Error bounds (checked by tests/cpp/core_test and tests/python): exp8 has a
// relative error below 2e-7 for results above 1.2e-38 (smaller results may
// flush to 0, an absolute error below 1.2e-38); log8 has an absolute error
// below 2e-7 on [0.5, 4] (our use: sums of three exps, in [1, 3]).
//
// -inf means "impossible" and must stay exact: exp8(-inf) = 0, and a NaN
// input always gives a NaN result (the min/max operand order below keeps
// NaNs: x86 min/max return their second operand when either is NaN).
#pragma once

#include <immintrin.h>

#include <cmath>

// Everything here is small and on the hot path: force inlining so eight-lane
// values stay in registers instead of crossing calls.
#define CTC_SIMD_INLINE inline __attribute__((always_inline))

namespace ctc::simd {

struct Vec8 {
  __m256 v;
};

CTC_SIMD_INLINE Vec8 splat(float x) { return {_mm256_set1_ps(x)}; }
CTC_SIMD_INLINE Vec8 load(const float* p) { return {_mm256_loadu_ps(p)}; }
CTC_SIMD_INLINE void store(float* p, Vec8 a) { _mm256_storeu_ps(p, a.v); }
CTC_SIMD_INLINE Vec8 operator+(Vec8 a, Vec8 b) { return {_mm256_add_ps(a.v, b.v)}; }
CTC_SIMD_INLINE Vec8 operator-(Vec8 a, Vec8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
CTC_SIMD_INLINE Vec8 operator*(Vec8 a, Vec8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
CTC_SIMD_INLINE Vec8 max(Vec8 a, Vec8 b) { return {_mm256_max_ps(a.v, b.v)}; }
// Lanes where `mask` is all ones take `yes`, the others `no`.
CTC_SIMD_INLINE Vec8 select(Vec8 mask, Vec8 yes, Vec8 no) { return {_mm256_blendv_ps(no.v, yes.v, mask.v)}; }
CTC_SIMD_INLINE Vec8 equal(Vec8 a, Vec8 b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
CTC_SIMD_INLINE Vec8 operator|(Vec8 a, Vec8 b) { return {_mm256_or_ps(a.v, b.v)}; }
CTC_SIMD_INLINE Vec8 neg_inf8() { return splat(-INFINITY); }

CTC_SIMD_INLINE Vec8 exp8(Vec8 in) {
  __m256 x = _mm256_min_ps(_mm256_set1_ps(88.02f), in.v);
  x = _mm256_max_ps(_mm256_set1_ps(-88.3762626647949f), x);
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 split in two for an exact n ln2.
  const __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  // 2^n from the exponent bits; n = -127 gives the bit pattern of 0 (flush).
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
  return {_mm256_mul_ps(y, _mm256_castsi256_ps(bits))};
}

CTC_SIMD_INLINE Vec8 log8(Vec8 in) {
  const __m256 min_normal = _mm256_castsi256_ps(_mm256_set1_epi32(0x00800000));
  __m256 x = _mm256_max_ps(min_normal, in.v);
  __m256i exponent = _mm256_srli_epi32(_mm256_castps_si256(x), 23);
  // Mantissa in [0.5, 1).
  x = _mm256_or_ps(_mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(~0x7f800000))), _mm256_set1_ps(0.5f));
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(exponent, _mm256_set1_epi32(126)));
  // Below sqrt(1/2): use 2x - 1 and one less in the exponent, keeping the argument near 0.
  const __m256 small = _mm256_cmp_ps(x, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(_mm256_set1_ps(1.0f), small));
  x = _mm256_add_ps(_mm256_sub_ps(x, _mm256_set1_ps(1.0f)), _mm256_and_ps(x, small));
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, x), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  __m256 result = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(x, y));
  // log(0) = -inf; NaN (and negative) inputs give NaN.
  result = _mm256_blendv_ps(result, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(in.v, _mm256_setzero_ps(), _CMP_EQ_OQ));
  return {_mm256_blendv_ps(result, _mm256_set1_ps(NAN), _mm256_cmp_ps(in.v, _mm256_setzero_ps(), _CMP_NGE_UQ))};
}

// log(exp(a) + exp(b) + exp(c)) per lane, with math::log_add's rules: all -inf
// gives -inf, any NaN gives NaN. Found by ADL from math::combine_paths<Vec8>.
// The largest term contributes exp(0) = 1 exactly, so only the other two need
// an exp: m + log(1 + exp(o1 - m) + exp(o2 - m)).
CTC_SIMD_INLINE Vec8 log_add(Vec8 a, Vec8 b, Vec8 c) {
  const __m256 hi_ab = _mm256_max_ps(a.v, b.v);
  const Vec8 m{_mm256_max_ps(hi_ab, c.v)};
  const Vec8 other1{_mm256_min_ps(hi_ab, c.v)};
  const Vec8 other2{_mm256_min_ps(a.v, b.v)};
  const Vec8 shift = select(equal(m, neg_inf8()), splat(0.0f), m);  // all -inf: keep -inf - shift = -inf
  const Vec8 sum = splat(1.0f) + exp8(other1 - shift) + exp8(other2 - shift);
  const Vec8 result = m + log8(sum);  // all -inf: -inf + log(1)
  // min/max drop NaN operands; a NaN anywhere (or +inf meeting -inf) shows in the plain sum.
  const __m256 total = _mm256_add_ps(_mm256_add_ps(a.v, b.v), c.v);
  return select(Vec8{_mm256_cmp_ps(total, total, _CMP_UNORD_Q)}, Vec8{total}, result);
}

// math::state_posterior per lane: exp(alpha + beta - emission + nll), exactly
// 0 where alpha or beta is -inf (no complete path visits the state), unless
// the sample is infeasible (nll = +inf), which stays NaN as in the scalar code.
CTC_SIMD_INLINE Vec8 state_posterior(Vec8 alpha, Vec8 beta, Vec8 emission, float nll) {
  const Vec8 posterior = exp8(alpha + beta - emission + splat(nll));
  if (std::isinf(nll)) return posterior;
  return select(equal(alpha, neg_inf8()) | equal(beta, neg_inf8()), splat(0.0f), posterior);
}

}  // namespace ctc::simd
