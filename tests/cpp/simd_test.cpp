// Error bounds of the AVX2 exp/log used by the CPU kernels (ctc/simd_avx2.h),
// measured against double-precision std::exp/std::log over the ranges the
// kernels use, plus the -inf / NaN rules the recurrences rely on. This file is
// compiled with -mavx2 -mfma and skips at run time on CPUs without them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ctc/math.h"
#include "ctc/simd_avx2.h"

namespace {

using ctc::simd::Vec8;

bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

std::vector<float> apply(Vec8 (*fn)(Vec8), const std::vector<float>& xs) {
  std::vector<float> out(xs.size());
  for (size_t i = 0; i + 8 <= xs.size(); i += 8) ctc::simd::store(out.data() + i, fn(ctc::simd::load(xs.data() + i)));
  return out;
}

std::vector<float> sweep(float lo, float hi, int count) {
  std::vector<float> xs(count);
  for (int i = 0; i < count; ++i) xs[i] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(count - 1);
  return xs;
}

// Largest relative error of exp8 over an even sweep of [lo, hi].
double worst_exp_error(float lo, float hi) {
  const auto xs = sweep(lo, hi, 1 << 16);
  const auto ys = apply(&ctc::simd::exp8, xs);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::exp(static_cast<double>(xs[i]));
    worst = std::max(worst, std::abs(ys[i] - exact) / exact);
  }
  return worst;
}

TEST(SimdMath, ExpRelativeErrorBelow2e7) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  EXPECT_LT(worst_exp_error(-87.0f, 0.0f), 2e-7);  // the kernels exponentiate values <= 0
}

TEST(SimdMath, ExpRelativeErrorBelow2e7ForPositiveArguments) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  EXPECT_LT(worst_exp_error(0.0f, 88.0f), 2e-7);
}

TEST(SimdMath, ExpFlushesOnlyBelowTheSmallestNormal) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  const auto xs = sweep(-104.0f, -80.0f, 1 << 14);
  const auto ys = apply(&ctc::simd::exp8, xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::exp(static_cast<double>(xs[i]));
    ASSERT_GE(ys[i], 0.0f) << xs[i];
    ASSERT_LT(std::abs(ys[i] - exact), std::max(1.2e-38, 2e-7 * exact)) << xs[i];
  }
}

TEST(SimdMath, LogAbsoluteErrorBelow2e7) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  const auto xs = sweep(0.5f, 4.0f, 1 << 16);  // sums of three exps lie in [1, 3]
  const auto ys = apply(&ctc::simd::log8, xs);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(ys[i] - std::log(static_cast<double>(xs[i]))));
  EXPECT_LT(worst, 2e-7);
}

TEST(SimdMath, LogErrorOverTheNormalRange) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  std::vector<float> grid;
  for (int i = 0; i < (1 << 16); ++i) grid.push_back(std::exp(-87.0f + 175.0f * static_cast<float>(i) / 65536.0f));
  const std::vector<float>& xs = grid;
  const auto ys = apply(&ctc::simd::log8, xs);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::log(static_cast<double>(xs[i]));
    ASSERT_LT(std::abs(ys[i] - exact), 2e-7 * std::max(1.0, std::abs(exact))) << xs[i];
  }
}

TEST(SimdMath, SpecialValues) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  float out[8];
  ctc::simd::store(out, ctc::simd::exp8(ctc::simd::splat(-inf)));
  EXPECT_EQ(out[0], 0.0f);
  ctc::simd::store(out, ctc::simd::exp8(ctc::simd::splat(nan)));
  EXPECT_TRUE(std::isnan(out[0]));
  ctc::simd::store(out, ctc::simd::log8(ctc::simd::splat(0.0f)));
  EXPECT_EQ(out[0], -inf);
  ctc::simd::store(out, ctc::simd::log8(ctc::simd::splat(nan)));
  EXPECT_TRUE(std::isnan(out[0]));
  ctc::simd::store(out, ctc::simd::log8(ctc::simd::splat(-1.0f)));
  EXPECT_TRUE(std::isnan(out[0]));
  ctc::simd::store(out, ctc::simd::log8(ctc::simd::splat(inf)));
  EXPECT_EQ(out[0], inf);
  ctc::simd::store(out, ctc::simd::exp8(ctc::simd::splat(inf)));
  EXPECT_GT(out[0], 1e38f);  // clamped to exp(88.02), the largest value the scale allows
  // log_add keeps -inf exact and propagates NaN from any operand.
  ctc::simd::store(out, ctc::simd::log_add(ctc::simd::splat(-inf), ctc::simd::splat(-inf), ctc::simd::splat(-inf)));
  EXPECT_EQ(out[0], -inf);
  for (int which = 0; which < 3; ++which) {
    Vec8 v[3] = {ctc::simd::splat(-1.0f), ctc::simd::splat(-inf), ctc::simd::splat(2.0f)};
    v[which] = ctc::simd::splat(nan);
    ctc::simd::store(out, ctc::simd::log_add(v[0], v[1], v[2]));
    EXPECT_TRUE(std::isnan(out[0])) << "NaN in operand " << which;
  }
  ctc::simd::store(out, ctc::simd::log_add(ctc::simd::splat(-1.0f), ctc::simd::splat(-inf), ctc::simd::splat(2.0f)));
  EXPECT_NEAR(out[0], std::log(std::exp(-1.0) + std::exp(2.0)), 1e-6);
}

TEST(SimdMath, LogAddMatchesScalarFormula) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  double worst = 0;
  for (int i = 0; i < 4096; ++i) {
    const float a = -0.37f * static_cast<float>(i % 97), b = -0.11f * static_cast<float>(i % 53) - 3.0f,
                c = (i % 5 == 0) ? -std::numeric_limits<float>::infinity() : -0.05f * static_cast<float>(i % 31);
    float out[8];
    ctc::simd::store(out, ctc::simd::log_add(ctc::simd::splat(a), ctc::simd::splat(b), ctc::simd::splat(c)));
    const double exact = std::log(std::exp(double(a)) + std::exp(double(b)) + std::exp(double(c)));
    worst = std::max(worst, std::abs(out[0] - exact) / std::max(1.0, std::abs(exact)));
  }
  EXPECT_LT(worst, 1e-6);
}

// The recurrences call offset_log_add(emission, ...), which adds the emission to
// the maximum before the log: the same value as emission + log_add to float32
// rounding at the result's size, and the same -inf / NaN rules.
TEST(SimdMath, OffsetLogAddMatchesEmissionPlusLogAdd) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  const float inf = std::numeric_limits<float>::infinity();
  double worst = 0;
  for (int i = 0; i < 4096; ++i) {
    const float a = -0.37f * static_cast<float>(i % 97) - 300.0f, b = -0.11f * static_cast<float>(i % 53) - 303.0f,
                c = (i % 5 == 0) ? -inf : -0.05f * static_cast<float>(i % 31) - 300.0f,
                e = -0.5f * static_cast<float>(i % 41);
    float out[8];
    ctc::simd::store(out, ctc::simd::offset_log_add(ctc::simd::splat(e), ctc::simd::splat(a), ctc::simd::splat(b),
                                                    ctc::simd::splat(c)));
    const double exact = double(e) + std::log(std::exp(double(a)) + std::exp(double(b)) + std::exp(double(c)));
    worst = std::max(worst, std::abs(out[0] - exact) / std::abs(exact));
  }
  EXPECT_LT(worst, 1e-6);
  float out[8];
  const Vec8 all_neg_inf = ctc::simd::splat(-inf);
  ctc::simd::store(out, ctc::simd::offset_log_add(ctc::simd::splat(-2.0f), all_neg_inf, all_neg_inf, all_neg_inf));
  EXPECT_EQ(out[0], -inf);
  ctc::simd::store(out, ctc::simd::offset_log_add(all_neg_inf, ctc::simd::splat(-1.0f), ctc::simd::splat(-2.0f),
                                                  ctc::simd::splat(-3.0f)));
  EXPECT_EQ(out[0], -inf);  // a -inf emission: the state is impossible
  ctc::simd::store(out, ctc::simd::offset_log_add(ctc::simd::splat(std::nanf("")), ctc::simd::splat(-1.0f),
                                                  ctc::simd::splat(-2.0f), ctc::simd::splat(-3.0f)));
  EXPECT_TRUE(std::isnan(out[0]));
  ctc::simd::store(out, ctc::simd::offset_log_add(ctc::simd::splat(-1.0f), ctc::simd::splat(std::nanf("")),
                                                  ctc::simd::splat(-2.0f), ctc::simd::splat(-3.0f)));
  EXPECT_TRUE(std::isnan(out[0]));
}

// Every combination of special and ordinary operands gives what the scalar
// math::log_add gives: the same -inf, the same NaN (a NaN operand, or any +inf,
// where the scalar formula computes inf - inf), and close values otherwise.
TEST(SimdMath, LogAddSpecialValuesMatchTheScalarFormula) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  const float inf = std::numeric_limits<float>::infinity();
  const float values[] = {-inf, inf, std::nanf(""), -1.0f, 2.0f, -1e4f};
  for (float a : values)
    for (float b : values)
      for (float c : values)
        for (float offset : {0.0f, -3.0f, -inf}) {
          float out[8];
          ctc::simd::store(out, ctc::simd::offset_log_add(ctc::simd::splat(offset), ctc::simd::splat(a),
                                                          ctc::simd::splat(b), ctc::simd::splat(c)));
          const float expected = offset + ctc::math::log_add(a, b, c);
          if (std::isnan(expected)) {
            EXPECT_TRUE(std::isnan(out[0])) << a << " " << b << " " << c << " + " << offset;
          } else if (std::isinf(expected)) {
            EXPECT_EQ(out[0], expected) << a << " " << b << " " << c << " + " << offset;
          } else {
            EXPECT_NEAR(out[0], expected, 1e-6 * std::max(1.0f, std::abs(expected)))
                << a << " " << b << " " << c << " + " << offset;
          }
        }
}

}  // namespace
