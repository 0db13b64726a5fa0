// The CUDA engine (kernels/), run in the CUDA simulator, against the CPU
// engine's scalar kernels: every dtype, padded and concatenated targets,
// from_logits, time-major, batch-first, class-strided and channels-first
// input, blank anywhere, zero_infinity, empty targets, T = 0 and 1,
// infeasible samples, NaN in padded frames, long targets, and garbage with
// validation off. Both engines are driven as the bindings drive them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <cstring>
#include <string>
#include <vector>

#include "ctc/dtype.h"
#include "ctc/error.h"
#include "sim/scheduler.h"
#include "sim_problem.h"

namespace {

using ctc::DType;
using ctc::sim_test::CaseSpec;
using ctc::sim_test::Layout;
using ctc::sim_test::Result;

// The engines share the recurrences (ctc/math.h) and sum each class's
// posteriors in the same order; only the from_logits normaliser is reduced in
// another order (CUB's block reduction). So they agree to a few ulp of the
// accumulate type, scaled by the magnitude of the log-space values.
double tolerance(DType dtype, double magnitude) {
  const double eps = dtype == DType::kFloat64 ? 2.2e-16 : 1.2e-7;
  return 64 * eps * (1 + magnitude);
}

double half_rounding(DType dtype) {
  return dtype == DType::kFloat16 ? 1e-3 : dtype == DType::kBFloat16 ? 8e-3 : 0.0;
}

::testing::AssertionResult same(double cpu, double sim, double tol) {
  if (std::isnan(cpu) || std::isnan(sim)) {
    if (std::isnan(cpu) && std::isnan(sim)) return ::testing::AssertionSuccess();
  } else if (std::isinf(cpu) || std::isinf(sim)) {
    if (cpu == sim) return ::testing::AssertionSuccess();
  } else if (std::fabs(cpu - sim) <= tol) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "CPU " << cpu << ", simulated CUDA " << sim << " (tolerance " << tol << ")";
}

// One choice of recurrence kernels (spec.forward_path, spec.backward_path) against the CPU engine.
void expect_path_agrees(const CaseSpec& spec) {
  SCOPED_TRACE(spec.describe());
  const ctc::sim_test::Case c = ctc::sim_test::make_case(spec);
  const Result cpu = ctc::sim_test::run_cpu(c);
  // A random schedule of the simulated threads (seeded by the case): in thread
  // order, a missing barrier between a thread's write and a higher thread's
  // read would go unseen outside ThreadSanitizer.
  ctc::sim::set_schedule_seed(spec.seed * 7919 + 1);
  const Result sim = ctc::sim_test::run_cuda(c);
  ctc::sim::set_schedule_seed(0);
  EXPECT_TRUE(sim.every_gradient_element_written);
  ASSERT_EQ(cpu.nll.size(), sim.nll.size());
  double magnitude = 0;
  for (double v : cpu.nll)
    if (std::isfinite(v)) magnitude = std::max(magnitude, std::fabs(v));
  const double tol = tolerance(spec.dtype, magnitude + static_cast<double>(spec.T));
  for (size_t n = 0; n < cpu.nll.size(); ++n) EXPECT_TRUE(same(cpu.nll[n], sim.nll[n], tol)) << "nll of sample " << n;
  ASSERT_EQ(cpu.alpha.size(), sim.alpha.size());
  int bad_alpha = 0;
  for (size_t i = 0; i < cpu.alpha.size() && bad_alpha < 3; ++i)
    if (!same(cpu.alpha[i], sim.alpha[i], tol)) {
      ADD_FAILURE() << "alpha workspace element " << i << ": " << same(cpu.alpha[i], sim.alpha[i], tol).message();
      ++bad_alpha;
    }
  ASSERT_EQ(cpu.grad.size(), sim.grad.size());
  int bad_grad = 0;
  for (size_t i = 0; i < cpu.grad.size() && bad_grad < 3; ++i) {
    const double g_tol = 2 * tol + half_rounding(spec.dtype) * std::fabs(cpu.grad[i]) + 1e-7;
    if (!same(cpu.grad[i], sim.grad[i], g_tol)) {
      const size_t C = static_cast<size_t>(spec.C), N = static_cast<size_t>(spec.N);
      ADD_FAILURE() << "gradient (t " << i / (N * C) << ", n " << i / C % N << ", c " << i % C
                    << "): " << same(cpu.grad[i], sim.grad[i], g_tol).message();
      ++bad_grad;
    }
  }
}

using ctc::cuda::RecurrencePath;

bool fits_a_warp(const CaseSpec& spec) {
  return ctc::cuda::warp_states_per_lane(ctc::sim_test::make_case(spec).max_states()) > 0;
}

// Both recurrence paths where the problem fits a warp (the block path alone where not).
void expect_engines_agree(CaseSpec spec) {
  for (RecurrencePath path : {RecurrencePath::kBlock, RecurrencePath::kWarp}) {
    if (path == RecurrencePath::kWarp && !fits_a_warp(spec)) continue;
    spec.forward_path = spec.backward_path = path;
    expect_path_agrees(spec);
  }
}

const DType kDtypes[] = {DType::kFloat64, DType::kFloat32, DType::kFloat16, DType::kBFloat16};
const Layout kLayouts[] = {Layout::kTimeMajor, Layout::kBatchFirst, Layout::kClassStride, Layout::kChannelsFirst};

// The whole matrix, on small random problems.
TEST(CudaEngineSim, MatchesTheCpuEngineOnEveryPath) {
  uint64_t seed = 1;
  for (DType dtype : kDtypes)
    for (Layout layout : kLayouts)
      for (bool padded : {true, false})
        for (bool from_logits : {false, true})
          for (bool zero_infinity : {false, true}) {
            CaseSpec s;
            s.seed = seed++;
            s.dtype = dtype;
            s.layout = layout;
            s.padded = padded;
            s.from_logits = from_logits;
            s.zero_infinity = zero_infinity;
            s.T = 3 + static_cast<int64_t>(s.seed % 9);
            s.N = 1 + static_cast<int64_t>(s.seed % 4);
            s.C = 2 + static_cast<int64_t>(s.seed % 7);
            s.blank = static_cast<int64_t>(s.seed % s.C);
            s.max_length = 1 + static_cast<int64_t>(s.seed % 5);
            s.infeasible = s.seed % 3 == 0;
            s.nan_padding = s.seed % 4 == 1;
            expect_engines_agree(s);
          }
}

// Larger random problems, every option drawn at random: several blocks per
// grid-stride kernel, ragged lengths, longer targets. TORCH_CTC_SIM_CASES sets
// how many (default 40).
TEST(CudaEngineSim, RandomProblems) {
  const char* env = std::getenv("TORCH_CTC_SIM_CASES");
  const int cases = env ? std::atoi(env) : 40;
  std::mt19937_64 rng(2026);
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (int i = 0; i < cases; ++i) {
    CaseSpec s;
    s.seed = 1000 + static_cast<uint64_t>(i);
    s.dtype = kDtypes[pick(0, 3)];
    s.layout = kLayouts[pick(0, 3)];
    s.T = pick(1, 40);
    s.N = pick(1, 6);
    s.C = pick(2, 30);
    s.blank = pick(0, s.C - 1);
    s.max_length = pick(0, 15);
    s.padded = pick(0, 1);
    s.from_logits = pick(0, 1);
    s.zero_infinity = pick(0, 1);
    s.infeasible = pick(0, 3) == 0;
    s.nan_padding = pick(0, 3) == 0;
    expect_engines_agree(s);
  }
}

TEST(CudaEngineSim, EdgeCases) {
  for (DType dtype : kDtypes)
    for (bool from_logits : {false, true}) {
      CaseSpec s;
      s.dtype = dtype;
      s.from_logits = from_logits;
      s.T = 0;  // no frames at all: empty targets give 0, others inf
      s.N = 3;
      s.max_length = 2;
      s.seed = 101;
      expect_engines_agree(s);
      s.T = 1;
      s.max_length = 1;
      expect_engines_agree(s);
      s.T = 6;
      s.max_length = 0;  // every target empty
      expect_engines_agree(s);
      s.max_length = 3;
      s.blank = s.C - 1;  // blank last
      s.infeasible = true;
      s.zero_infinity = true;
      expect_engines_agree(s);
    }
}

// S' = 2001 states: more than a block, so the recurrence kernels loop over states.
TEST(CudaEngineSim, LongTargetsUseTheLoopOverStates) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    CaseSpec s;
    s.dtype = dtype;
    s.seed = 7;
    s.T = 1010;
    s.N = 1;
    s.C = 5;
    s.max_length = 1000;
    s.no_repeats = true;
    ctc::sim_test::Case c = ctc::sim_test::make_case(s);
    ASSERT_GT(c.max_states(), 1024) << "the case must exceed one block";
    expect_engines_agree(s);
  }
}

// Two runs give the same bits, and so do other schedules of the simulated threads.
TEST(CudaEngineSim, DeterministicAcrossRunsAndSchedules) {
  CaseSpec s;
  s.seed = 55;
  s.T = 12;
  s.N = 4;
  s.C = 7;
  s.max_length = 4;
  s.from_logits = true;
  s.padded = false;
  for (RecurrencePath path : {RecurrencePath::kBlock, RecurrencePath::kWarp}) {
    s.forward_path = s.backward_path = path;
    const ctc::sim_test::Case c = ctc::sim_test::make_case(s);
    const Result first = ctc::sim_test::run_cuda(c);
    for (uint64_t seed : {0, 3, 99}) {
      ctc::sim::set_schedule_seed(seed);
      const Result again = ctc::sim_test::run_cuda(c);
      ctc::sim::set_schedule_seed(0);
      EXPECT_EQ(std::memcmp(first.nll.data(), again.nll.data(), first.nll.size() * sizeof(double)), 0) << seed;
      EXPECT_EQ(std::memcmp(first.grad.data(), again.grad.data(), first.grad.size() * sizeof(double)), 0) << seed;
      EXPECT_EQ(std::memcmp(first.alpha.data(), again.alpha.data(), first.alpha.size() * sizeof(double)), 0) << seed;
    }
  }
}

// Validation off (validate=False in the op): lengths and labels that are
// garbage must not make a kernel touch memory outside its buffers (ASan
// checks), and every gradient element is still written.
TEST(CudaEngineSim, GarbageWithValidationOffStaysInBounds) {
  for (bool padded : {true, false})
    for (bool from_logits : {false, true}) {
      CaseSpec s;
      s.seed = 31;
      s.T = 6;
      s.N = 4;
      s.C = 5;
      s.max_length = 3;
      s.padded = padded;
      s.from_logits = from_logits;
      ctc::sim_test::Case c = ctc::sim_test::make_case(s);
      c.input_lengths = {-3, 99, 6, 1 << 30};
      c.target_lengths = {1000, -5, 2, 7};
      for (size_t i = 0; i < c.targets.size(); ++i) c.targets[i] = (i % 3 == 0) ? -4 : (i % 3 == 1) ? 77 : 0;
      // max_states from the padded width (3 labels: 7 states) or the label count: both fit a warp.
      for (RecurrencePath path : {RecurrencePath::kBlock, RecurrencePath::kWarp}) {
        c.spec.forward_path = c.spec.backward_path = path;
        SCOPED_TRACE(c.spec.describe());
        const Result r = ctc::sim_test::run_cuda(c, /*validated=*/false);
        EXPECT_TRUE(r.every_gradient_element_written);
        EXPECT_EQ(r.nll.size(), 4u);
      }
    }
}

// The warp kernels at each boundary of K (states per lane): S' = 2L + 1 just
// below and above 32, 64 and 128, up to the largest that fits (L = 127, 255
// states) and the first that does not (L = 128: the block path). One warp and
// several, a partial last block (N = 5 with 4 samples a block), T = 1 and T
// odd and even, every dtype.
TEST(CudaEngineSim, WarpPathAtEveryStatesPerLaneBoundary) {
  uint64_t seed = 300;
  for (int64_t L : {0, 1, 15, 16, 31, 32, 63, 64, 127, 128})
    for (int64_t N : {1, 5})
      for (int64_t T : {int64_t{1}, L + 2, L + 3}) {
        CaseSpec s;
        s.seed = seed++;
        s.dtype = kDtypes[s.seed % 4];
        s.layout = kLayouts[s.seed % 4];
        s.T = T;
        s.N = N;
        s.C = 6;
        s.min_length = s.max_length = L;
        s.no_repeats = true;
        s.from_logits = s.seed % 2 == 0;
        ctc::sim_test::Case c = ctc::sim_test::make_case(s);
        if (T >= L) {  // T = 1 keeps at most one label
          ASSERT_EQ(c.max_states(), 2 * L + 1) << s.describe();
        }
        ASSERT_EQ(fits_a_warp(s), c.max_states() <= 256) << s.describe();
        expect_engines_agree(s);
      }
}

// The two paths write the same rows, so a forward on one and a backward on the other agree.
TEST(CudaEngineSim, ForwardAndBackwardOnDifferentPaths) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    CaseSpec s;
    s.seed = 77;
    s.dtype = dtype;
    s.T = 21;
    s.N = 6;
    s.C = 9;
    s.max_length = 9;
    s.nan_padding = true;
    s.infeasible = true;
    s.forward_path = RecurrencePath::kWarp;
    s.backward_path = RecurrencePath::kBlock;
    expect_path_agrees(s);
    s.forward_path = RecurrencePath::kBlock;
    s.backward_path = RecurrencePath::kWarp;
    expect_path_agrees(s);
  }
}

// kAuto picks the warp path up to 256 states; TORCH_CTC_CUDA_RECURRENCE
// overrides it, and a request the warp kernels cannot hold is refused by name.
TEST(RecurrencePath, ResolvesByStatesAndEnvironment) {
  using ctc::cuda::resolve_recurrence_path;
  EXPECT_EQ(ctc::cuda::warp_states_per_lane(1), 1);
  EXPECT_EQ(ctc::cuda::warp_states_per_lane(33), 2);
  EXPECT_EQ(ctc::cuda::warp_states_per_lane(129), 8);
  EXPECT_EQ(ctc::cuda::warp_states_per_lane(256), 8);
  EXPECT_EQ(ctc::cuda::warp_states_per_lane(257), 0);
  unsetenv("TORCH_CTC_CUDA_RECURRENCE");
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kAuto, 255), RecurrencePath::kWarp);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kAuto, 257), RecurrencePath::kBlock);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kWarp, 255), RecurrencePath::kWarp);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kBlock, 3), RecurrencePath::kBlock);
  setenv("TORCH_CTC_CUDA_RECURRENCE", "block", 1);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kAuto, 3), RecurrencePath::kBlock);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kWarp, 3), RecurrencePath::kWarp);  // an explicit choice wins
  setenv("TORCH_CTC_CUDA_RECURRENCE", "warp", 1);
  EXPECT_EQ(resolve_recurrence_path(RecurrencePath::kAuto, 3), RecurrencePath::kWarp);
  try {
    resolve_recurrence_path(RecurrencePath::kAuto, 257);
    ADD_FAILURE() << "257 states on the warp path";
  } catch (const ctc::Error& e) {
    EXPECT_EQ(e.argument(), "TORCH_CTC_CUDA_RECURRENCE");
    EXPECT_NE(std::string(e.what()).find("257"), std::string::npos) << e.what();
  }
  setenv("TORCH_CTC_CUDA_RECURRENCE", "fast", 1);
  try {
    resolve_recurrence_path(RecurrencePath::kAuto, 3);
    ADD_FAILURE() << "an unknown value was accepted";
  } catch (const ctc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fast'"), std::string::npos) << e.what();
  }
  unsetenv("TORCH_CTC_CUDA_RECURRENCE");
  EXPECT_THROW(resolve_recurrence_path(RecurrencePath::kWarp, 300), ctc::Error);
}

}  // namespace
