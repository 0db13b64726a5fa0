// Eight float lanes (AVX2 + FMA) with the operations the CTC recurrences need:
// arithmetic, select, and exp/log accurate to a few ulp (table-driven
// argument reduction, short polynomials).
// Include only from translation units compiled with -mavx2 -mfma.
//
// Error bounds (checked by tests/cpp/simd_test and tests/python): exp8 has a
// relative error below 2e-7 for results above 1.2e-38 (smaller results may
// flush to 0, an absolute error below 1.2e-38); log8 has an absolute error
// below 2e-7 on [0.5, 4] (our use: sums of three exps, in [1, 3]) and below
// 2e-7 |log x| for other normal x; log_add is within 1e-6 max(1, |result|).
//
// The recurrences are bound by the latency of one cell (the next frame waits
// on it), so the polynomials are evaluated in halves (Estrin) and sums are
// ordered so the last step waits on as little as possible.
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
CTC_SIMD_INLINE Vec8 neg_inf8() { return splat(-INFINITY); }

namespace detail {

// exp8 and log8 reduce their argument with an 8-entry table (one vpermps), so
// their polynomials are short: the recurrences are latency-bound, and these
// two sit on the critical path of every cell. Table entries are the float
// nearest to the stated value.

// The bits of 2^(j/8) (the float nearest to it), j = 0..7, minus j << 20: adding
// k << 20 for k = 8n + j then gives the bits of 2^n 2^(j/8) with no masking,
// since vpermps reads only the low three bits of k.
CTC_SIMD_INLINE __m256 exp2_eighths_bits() {
  return _mm256_castsi256_ps(_mm256_setr_epi32(0x3f800000, 0x3f7b95c2, 0x3f7837f0, 0x3f75fed7, 0x3f7504f3, 0x3f75672a,
                                               0x3f7744fd, 0x3f7ac0c7));
}
// For mantissas in [1 + j/8, 1 + (j+1)/8): 1/c_j with c_j = 1 + (2j+1)/16, and
// -log of that float (so log(m) = log1p(m/c_j - 1) + log_c_j with no table error
// beyond one rounding).
CTC_SIMD_INLINE __m256 inverse_centres() {
  return _mm256_setr_ps(9.411764741e-01f, 8.421052694e-01f, 7.619047761e-01f, 6.956521869e-01f, 6.399999857e-01f,
                        5.925925970e-01f, 5.517241359e-01f, 5.161290169e-01f);
}
CTC_SIMD_INLINE __m256 log_centres() {
  return _mm256_setr_ps(6.062461808e-02f, 1.718502492e-01f, 2.719337046e-01f, 3.629054725e-01f, 4.462871253e-01f,
                        5.232481360e-01f, 5.947071314e-01f, 6.613985300e-01f);
}

// offset + log(x) for finite x > 0 with a normal exponent (no special values).
// log(x) = e ln2 + log(c_j) + log1p(r); everything but log1p's nonlinear part
// is summed while that part's polynomial is still being evaluated, and the
// offset (log_add's maximum, often large) is added last, in one rounding.
CTC_SIMD_INLINE __m256 offset_plus_log(__m256 offset, __m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
  const __m256 m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
  const __m256i j = _mm256_srli_epi32(bits, 20);  // vpermps reads its low three bits only
  // |r| <= 1/17: log1p(r) to degree 5 is within 7e-9; r + r^2 q(r), q in two halves (Estrin).
  const __m256 r = _mm256_fmsub_ps(m, _mm256_permutevar8x32_ps(inverse_centres(), j), _mm256_set1_ps(1.0f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  const __m256 odd = _mm256_fmadd_ps(_mm256_set1_ps(0.2f), r, _mm256_set1_ps(-0.25f));
  const __m256 even = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 3.0f), r, _mm256_set1_ps(-0.5f));
  const __m256 q = _mm256_fmadd_ps(odd, r2, even);
  // e ln2 split in two (the high part has 9 bits, so e * high is exact).
  const __m256 hi = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_permutevar8x32_ps(log_centres(), j));
  const __m256 linear = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), _mm256_add_ps(hi, r));
  return _mm256_add_ps(offset, _mm256_fmadd_ps(q, r2, linear));
}

// log(x) for finite x > 0 with a normal exponent (no special values).
CTC_SIMD_INLINE __m256 log_normal(__m256 x) { return offset_plus_log(_mm256_setzero_ps(), x); }

// exp(x) = p * scale for x in [-88, 88.02] (callers clamp; NaN passes
// through): p = exp(r) and scale = 2^(k/8). At x = -88 the scale is 0, so
// anything clamped there (-inf included) gives exactly 0.
struct ExpParts {
  __m256 p, scale;
};
// kFull: reduce with ln2/8 split in two, exact for any k, and a degree-4
// polynomial; the relative error stays below 2e-7 over the whole range.
// kLogAddTerm, for log_add's terms (x <= 0, added to 1): a single float ln2/8
// (off by 2.4e-10, so a relative error up to 2.4e-10 |k|: at most 1e-9 in
// absolute terms for x <= 0) and a degree-3 minimax polynomial (2.8e-8 relative
// in exact arithmetic, float32 rounding dominates): one fused multiply-add and
// one polynomial level sooner, on the chain every cell waits on.
enum class ExpForm { kFull, kLogAddTerm };
template <ExpForm kForm>
CTC_SIMD_INLINE ExpParts exp_parts(__m256 x) {
  // x = k ln2/8 + r with k = 8n + j rounded to nearest by the 1.5 * 2^23 trick, |r| <= ln2/16.
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 k_big = _mm256_fmadd_ps(x, _mm256_set1_ps(11.5415603271f), magic);
  const __m256 k = _mm256_sub_ps(k_big, magic);
  // k_big's bits are magic's plus k, and magic's low 20 bits are 0: they serve as k
  // for the table index (low three bits) and for k << 20 (mod 2^32) alike.
  const __m256i k_bits = _mm256_castps_si256(k_big);
  __m256 r;
  __m256 p;
  if constexpr (kForm == ExpForm::kFull) {
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.086669921875f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.6524305e-5f), r);
    // exp(r) to degree 4 (within 1.3e-9 for |r| <= ln2/16), evaluated in two
    // halves (Estrin) for a shorter dependency chain.
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 hi = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24.0f), r, _mm256_set1_ps(1.0f / 6.0f));
    const __m256 lo = _mm256_fmadd_ps(_mm256_set1_ps(0.5f), r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(_mm256_fmadd_ps(hi, r2, lo), r, _mm256_set1_ps(1.0f));
  } else {
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.0866433978f), x);
    // 1 + r + r^2 (c2 + c3 r), minimax for the relative error on |r| <= ln2/16.
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 c = _mm256_fmadd_ps(_mm256_set1_ps(1.666711718e-01f), r, _mm256_set1_ps(5.000671148e-01f));
    p = _mm256_fmadd_ps(c, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  }
  // 2^(k/8) = 2^n 2^(j/8) built in the exponent bits. n >= -127 after the clamp;
  // n = -127 leaves a subnormal below 1.2e-38 (exactly 0 for j = 0, which is
  // what -inf, clamped to -88, gives).
  const __m256i table = _mm256_castps_si256(_mm256_permutevar8x32_ps(exp2_eighths_bits(), k_bits));
  return {p, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(k_bits, 20), table))};
}

// Clamps x into exp_parts' range from below: from -88 down the result
// flushes to 0. The operand order keeps NaN (x86 min/max return the second
// operand if either is NaN).
CTC_SIMD_INLINE __m256 clamp_below(__m256 x) { return _mm256_max_ps(_mm256_set1_ps(-88.0f), x); }

}  // namespace detail

CTC_SIMD_INLINE Vec8 exp8(Vec8 in) {
  // Clamped above so the scale 2^n stays representable: past 88.02 the result would overflow.
  const __m256 x = detail::clamp_below(_mm256_min_ps(_mm256_set1_ps(88.02f), in.v));
  const detail::ExpParts e = detail::exp_parts<detail::ExpForm::kFull>(x);
  return {_mm256_mul_ps(e.p, e.scale)};
}

CTC_SIMD_INLINE Vec8 log8(Vec8 in) {
  // Subnormals are read as the smallest normal (an error below 0.7 in the log).
  const __m256 result = detail::log_normal(_mm256_max_ps(_mm256_castsi256_ps(_mm256_set1_epi32(0x00800000)), in.v));
  // log(0) = -inf, log(+inf) = +inf; NaN (and negative) inputs give NaN.
  const __m256 zero = _mm256_setzero_ps();
  __m256 out = _mm256_blendv_ps(result, _mm256_set1_ps(-INFINITY), _mm256_cmp_ps(in.v, zero, _CMP_EQ_OQ));
  out = _mm256_blendv_ps(out, in.v, _mm256_cmp_ps(in.v, _mm256_set1_ps(INFINITY), _CMP_EQ_OQ));
  return {_mm256_blendv_ps(out, _mm256_set1_ps(NAN), _mm256_cmp_ps(in.v, zero, _CMP_NGE_UQ))};
}

// offset + log(exp(a) + exp(b) + exp(c)) per lane, with math::log_add's
// rules: all -inf gives -inf, any NaN or +inf operand gives NaN (as the scalar
// formula's inf - inf). The largest term m contributes exp(0) = 1 exactly, so
// only the other two need an exp: (offset + m) + log(1 + exp(o1 - m) +
// exp(o2 - m)), and the log's argument lies in [1, 3], where it needs no
// special-value handling. offset + m is ready long before the log, so the
// offset costs no latency, and neither do the special values: they reach the
// result through offset + m (see below), not through a final select.
namespace detail {

// log(exp(a) + exp(b) + exp(c)) = max + log(sum), in two parts (see offset_log_add).
struct LogAddParts {
  __m256 max;  // made NaN where the result must be NaN
  __m256 sum;  // 1 + exp(o1 - m) + exp(o2 - m), in [1, 3]

  // max + log(sum); all -inf: -inf + log(1).
  CTC_SIMD_INLINE Vec8 value() const { return {offset_plus_log(max, sum)}; }
  // offset + max + log(sum), the offset joined to the maximum, off the chain.
  CTC_SIMD_INLINE Vec8 plus(Vec8 offset) const { return {offset_plus_log(_mm256_add_ps(offset.v, max), sum)}; }
};
CTC_SIMD_INLINE LogAddParts log_add_parts(Vec8 a, Vec8 b, Vec8 c) {
  // x86 min/max return their second operand when either is NaN. The operand
  // order keeps every NaN: b's in hi_ab and so in m, a's in other2, c's in other1.
  const __m256 hi_ab = _mm256_max_ps(a.v, b.v);
  const Vec8 m{_mm256_max_ps(c.v, hi_ab)};
  const Vec8 other1{_mm256_min_ps(hi_ab, c.v)};
  const Vec8 other2{_mm256_min_ps(b.v, a.v)};
  // All -inf: shift by the lowest float instead, so -inf - shift = -inf and the sum is 1.
  const Vec8 shift{_mm256_max_ps(m.v, _mm256_set1_ps(-3.402823466e+38f))};
  // Both exponents are <= 0: no upper clamp, and the short form is accurate enough.
  const ExpParts exp1 = exp_parts<ExpForm::kLogAddTerm>(clamp_below((other1 - shift).v));
  const ExpParts exp2 = exp_parts<ExpForm::kLogAddTerm>(clamp_below((other2 - shift).v));
  const __m256 sum = _mm256_fmadd_ps(exp2.p, exp2.scale, _mm256_fmadd_ps(exp1.p, exp1.scale, _mm256_set1_ps(1.0f)));
  // m, made NaN by x * 0 where the sum is NaN (a NaN in a or c) or the shift is
  // +inf (a +inf operand). The log reads the sum's bits and would drop its NaN;
  // m carries b's.
  const __m256 zero = _mm256_setzero_ps();
  return {_mm256_fmadd_ps(shift.v, zero, _mm256_fmadd_ps(sum, zero, m.v)), sum};
}

}  // namespace detail

CTC_SIMD_INLINE Vec8 offset_log_add(Vec8 offset, Vec8 a, Vec8 b, Vec8 c) {
  return detail::log_add_parts(a, b, c).plus(offset);
}

// The backward's step: beta = math::combine_paths(stay, step, skip, emission)
// (the same operations as offset_log_add) and, from the same terms, the paths
// part without the emission, paths = beta - emission. The posterior needs
// alpha + beta - emission: taking paths instead saves the subtraction and the
// case where it is NaN (a -inf emission makes both alpha and beta -inf).
struct BetaAndPaths {
  Vec8 beta, paths;
};
CTC_SIMD_INLINE BetaAndPaths beta_and_paths(Vec8 stay, Vec8 step, Vec8 skip, Vec8 emission) {
  const detail::LogAddParts parts = detail::log_add_parts(stay, step, skip);
  return {parts.plus(emission), parts.value()};
}

// log(exp(a) + exp(b) + exp(c)) per lane (see offset_log_add).
CTC_SIMD_INLINE Vec8 log_add(Vec8 a, Vec8 b, Vec8 c) { return detail::log_add_parts(a, b, c).value(); }

// math::state_posterior per lane, from the paths part of beta (beta_and_paths):
// exp(alpha + paths + nll). A state no complete path visits has alpha or paths
// -inf, and the posterior comes out exactly 0 (exp8(-inf) = 0), with no NaN
// for a -inf emission. An infeasible sample (nll = +inf) never gets here: its
// gradient is set before the posteriors (math::gradient_undefined).
CTC_SIMD_INLINE Vec8 state_posterior_from_paths(Vec8 alpha, Vec8 paths, Vec8 nll) {
  return exp8(alpha + paths + nll);
}

}  // namespace ctc::simd
