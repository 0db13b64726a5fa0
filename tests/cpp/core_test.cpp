// Tests of the torch-free core (ctc/): the CPU engine, workspace queries and
// value validation. Problems are built by hand, the way a non-torch binding
// would, and the results are compared with LibTorch's own at::ctc_loss in
// float64. Torch is linked for that reference only.
//
// Our gradient w.r.t. log_probs is the exact derivative, -posterior. Torch's
// is exp(log_probs) - posterior (design.md §2), so the expected value is
// torch's gradient minus exp(log_probs) on the frames a sample uses. Through
// log_softmax both agree, which ChainRuleMatchesTorchLogitsGradient checks
// with autograd on both sides.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ctc/cpu_engine.h"
#include "ctc/error.h"
#include "ctc/validate.h"
#include "ctc/workspace.h"

namespace {

using Labels = std::vector<std::vector<int64_t>>;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

ctc::DType core_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return ctc::DType::kFloat32;
    case at::kDouble: return ctc::DType::kFloat64;
    case at::kHalf: return ctc::DType::kFloat16;
    case at::kBFloat16: return ctc::DType::kBFloat16;
    default: throw std::invalid_argument("unsupported dtype");
  }
}

at::ScalarType accumulate_type(at::ScalarType type) { return type == at::kDouble ? at::kDouble : at::kFloat; }

// ---------------------------------------------------------------------------
// Random data. Every test seeds its own generators, so tests are independent
// of the order they run in.

at::Tensor randn(at::IntArrayRef sizes, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randn(sizes, gen, at::TensorOptions().dtype(at::kDouble));
}

// A label sequence of `length` labels in [0, C) without `blank`. With
// repeat_prob > 0 some labels repeat their predecessor, which needs the
// extra blank frame between them.
std::vector<int64_t> random_labels(std::mt19937_64& rng, int64_t length, int64_t num_classes, int64_t blank,
                                   double repeat_prob = 0.25) {
  std::uniform_int_distribution<int64_t> label(0, num_classes - 2);
  std::bernoulli_distribution repeat(repeat_prob);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < length; ++i) {
    if (i > 0 && repeat(rng)) {
      out.push_back(out.back());
    } else {
      const int64_t l = label(rng);
      out.push_back(l >= blank ? l + 1 : l);  // skip the blank
    }
  }
  return out;
}

int64_t frames_needed(const std::vector<int64_t>& labels) {
  int64_t repeats = 0;
  for (size_t i = 1; i < labels.size(); ++i) repeats += labels[i] == labels[i - 1];
  return static_cast<int64_t>(labels.size()) + repeats;
}

// A feasible batch: ragged target lengths in [0, max_length] and ragged input
// lengths in [frames needed, T], with sample 0 using all T frames.
struct RandomBatch {
  Labels labels;
  std::vector<int64_t> input_lengths;
};

RandomBatch random_batch(uint64_t seed, int64_t T, int64_t N, int64_t C, int64_t blank, int64_t max_length) {
  std::mt19937_64 rng(seed);
  RandomBatch b;
  for (int64_t n = 0; n < N; ++n) {
    std::uniform_int_distribution<int64_t> len(0, max_length);
    std::vector<int64_t> labels = random_labels(rng, len(rng), C, blank);
    while (frames_needed(labels) > T) labels.pop_back();
    std::uniform_int_distribution<int64_t> frames(std::max<int64_t>(frames_needed(labels), 1), T);
    b.input_lengths.push_back(n == 0 ? T : frames(rng));
    b.labels.push_back(std::move(labels));
  }
  return b;
}

// ---------------------------------------------------------------------------
// A ctc::Problem over a (T, N, C) tensor view, owning its index arrays.

class CoreProblem {
 public:
  // Padded targets are laid out (N, S) with S two wider than the longest
  // target and junk labels (-7, outside [0, C)) after each target's length:
  // the engine must never read them.
  CoreProblem(const at::Tensor& input, Labels labels, std::vector<int64_t> input_lengths, int64_t blank,
              bool from_logits, bool padded)
      : input_(input), labels_(std::move(labels)), input_lengths_(std::move(input_lengths)) {
    const int64_t N = input.size(1);
    if (padded) {
      size_t longest = 0;
      for (const auto& l : labels_) longest = std::max(longest, l.size());
      padded_width_ = static_cast<int64_t>(longest) + 2;
      targets_.assign(N * padded_width_, -7);
    }
    for (int64_t n = 0; n < N; ++n) {
      const auto& l = labels_[n];
      const int64_t offset = padded ? n * padded_width_ : static_cast<int64_t>(targets_.size());
      if (padded)
        std::copy(l.begin(), l.end(), targets_.begin() + offset);
      else
        targets_.insert(targets_.end(), l.begin(), l.end());
      offsets_.push_back(offset);
      target_lengths_.push_back(static_cast<int64_t>(l.size()));
    }
    problem_.max_time = input.size(0);
    problem_.batch = N;
    problem_.num_classes = input.size(2);
    problem_.input = input.data_ptr();
    problem_.dtype = core_dtype(input.scalar_type());
    problem_.stride_t = input.stride(0);
    problem_.stride_n = input.stride(1);
    problem_.stride_c = input.stride(2);
    problem_.from_logits = from_logits;
    problem_.blank = blank;
    problem_.targets = targets_.data();
    problem_.target_offsets = offsets_.data();
    problem_.target_slots = static_cast<int64_t>(targets_.size());
    problem_.input_lengths = input_lengths_.data();
    problem_.target_lengths = target_lengths_.data();
  }
  CoreProblem(const CoreProblem&) = delete;  // problem_ points into this object
  CoreProblem& operator=(const CoreProblem&) = delete;

  const ctc::Problem& get() const { return problem_; }
  int64_t padded_width() const { return padded_width_; }
  const at::Tensor& input() const { return input_; }
  const Labels& labels() const { return labels_; }
  const std::vector<int64_t>& input_lengths() const { return input_lengths_; }

 private:
  at::Tensor input_;
  Labels labels_;
  std::vector<int64_t> input_lengths_, targets_, offsets_, target_lengths_;
  int64_t padded_width_ = -1;
  ctc::Problem problem_;
};

struct CoreResult {
  at::Tensor nll;   // (N,) in the accumulate dtype
  at::Tensor grad;  // like the input: d (sum_n weight_n * nll_n) / d input
};

constexpr int64_t kGuard = 64;
constexpr double kGuardValue = 1234.5;

// True when the `kGuard` elements after the first `size` are untouched.
bool guard_intact(const at::Tensor& buffer, int64_t size) {
  return buffer.slice(0, size, size + kGuard).eq(kGuardValue).all().item<bool>();
}

// Runs validation, forward and backward exactly as a binding would. The
// workspace and scratch are allocated with a guard band after the sizes the
// queries return, which must stay untouched; they start filled with the guard
// value, and every workspace cell must be overwritten (the workspace is an op
// output). The gradient buffer starts as NaN, so any element the engine fails
// to write shows up. `grad_out`, if given, is a (T, N, C) view to write into.
CoreResult run_core(const CoreProblem& cp, const std::vector<double>& weights, bool zero_infinity,
                    const ctc::ParallelFor& parallel_for = ctc::serial_for, at::Tensor grad_out = {}) {
  const ctc::Problem& p = cp.get();
  ctc::validate_values(p, cp.padded_width());
  const auto acc = at::TensorOptions().dtype(accumulate_type(cp.input().scalar_type()));

  const ctc::WorkspaceLayout layout =
      ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits);
  const int64_t scratch_elems = ctc::cpu_scratch_elems(p.batch, p.num_classes, p.target_slots);
  at::Tensor workspace = at::full({layout.total_elems() + kGuard}, kGuardValue, acc);
  at::Tensor scratch = at::full({scratch_elems + kGuard}, kGuardValue, acc);
  at::Tensor nll = at::full({p.batch}, kNaN, acc);
  ctc::cpu_forward(p, workspace.data_ptr(), nll.data_ptr(), scratch.data_ptr(), parallel_for);
  EXPECT_TRUE(guard_intact(workspace, layout.total_elems()))
      << "cpu_forward wrote past forward_workspace_layout().total_elems()";
  EXPECT_TRUE(guard_intact(scratch, scratch_elems)) << "cpu_forward wrote past cpu_scratch_elems()";
  EXPECT_FALSE(workspace.slice(0, 0, layout.total_elems()).eq(kGuardValue).any().item<bool>())
      << "cpu_forward left workspace cells undefined";

  scratch.fill_(kGuardValue);
  at::Tensor grad_nll = at::tensor(weights, at::TensorOptions().dtype(at::kDouble)).to(acc.dtype());
  if (!grad_out.defined()) grad_out = at::empty_like(cp.input(), at::MemoryFormat::Contiguous);
  grad_out.fill_(kNaN);
  ctc::GradientOutput out;
  out.data = grad_out.data_ptr();
  out.stride_t = grad_out.stride(0);
  out.stride_n = grad_out.stride(1);
  out.stride_c = grad_out.stride(2);
  ctc::cpu_backward(p, workspace.data_ptr(), nll.data_ptr(), grad_nll.data_ptr(), zero_infinity,
                    scratch.data_ptr(), out, parallel_for);
  EXPECT_TRUE(guard_intact(scratch, scratch_elems)) << "cpu_backward wrote past cpu_scratch_elems()";
  return {nll, grad_out};
}

// ---------------------------------------------------------------------------
// The float64 reference from LibTorch.

at::Tensor concatenated(const Labels& labels) {
  std::vector<int64_t> flat;
  for (const auto& l : labels) flat.insert(flat.end(), l.begin(), l.end());
  return at::tensor(flat, at::TensorOptions().dtype(at::kLong));
}

std::vector<int64_t> lengths_of(const Labels& labels) {
  std::vector<int64_t> out;
  for (const auto& l : labels) out.push_back(static_cast<int64_t>(l.size()));
  return out;
}

// (T, N, 1) mask of the frames each sample uses.
at::Tensor frame_mask(int64_t T, const std::vector<int64_t>& input_lengths) {
  at::Tensor t = at::arange(T, at::TensorOptions().dtype(at::kLong)).view({T, 1, 1});
  at::Tensor len = at::tensor(input_lengths, at::TensorOptions().dtype(at::kLong)).view({1, -1, 1});
  return t < len;
}

struct Reference {
  at::Tensor nll;   // (N,), +inf for infeasible samples (zero_infinity only affects the gradient)
  at::Tensor grad;  // what our engine must write (see the file comment)
};

// `input` holds exactly the values the engine reads (already rounded to the
// dtype under test), as float64. For from_logits, torch gets log_softmax(input)
// and the expected gradient is autograd's gradient w.r.t. the logits.
Reference torch_reference(const at::Tensor& input, const Labels& labels, const std::vector<int64_t>& input_lengths,
                          int64_t blank, bool from_logits, bool zero_infinity, const std::vector<double>& weights) {
  const at::Tensor x = input.to(at::kDouble).detach().clone().requires_grad_(true);
  const at::Tensor lp = from_logits ? at::log_softmax(x, 2) : x;
  const at::Tensor targets = concatenated(labels);
  const std::vector<int64_t> target_lengths = lengths_of(labels);
  const at::Tensor w = at::tensor(weights, at::TensorOptions().dtype(at::kDouble));

  Reference ref;
  ref.nll = at::ctc_loss(lp, targets, input_lengths, target_lengths, blank, at::Reduction::None, false).detach();
  at::Tensor nll = at::ctc_loss(lp, targets, input_lengths, target_lengths, blank, at::Reduction::None, zero_infinity);
  (nll * w).sum().backward();

  const at::Tensor used = frame_mask(input.size(0), input_lengths);
  if (from_logits) {
    // Frames past a sample's length may hold NaN, which log_softmax's backward
    // spreads into them; the engine writes exact zeros there.
    ref.grad = at::where(used, x.grad(), at::zeros({}, x.options()));
  } else {
    // Samples zeroed by zero_infinity get no exp(log_probs) term either.
    at::Tensor counted = used;
    if (zero_infinity) counted = counted & ref.nll.isinf().logical_not().view({1, -1, 1});
    ref.grad = x.grad() - at::where(counted, x.detach().exp() * w.view({1, -1, 1}), at::zeros({}, x.options()));
  }
  return ref;
}

// Elementwise |got - expected| <= atol + rtol * |expected|, with NaN == NaN
// and inf == inf; on failure, says where the worst element is.
::testing::AssertionResult all_close(const at::Tensor& got, const at::Tensor& expected, double rtol, double atol) {
  if (got.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs expected " << expected.sizes();
  const at::Tensor g = got.to(at::kDouble), e = expected.to(at::kDouble);
  const at::Tensor ok = at::isclose(g, e, rtol, atol, /*equal_nan=*/true);
  if (ok.all().item<bool>()) return ::testing::AssertionSuccess();
  const at::Tensor bad = ok.logical_not().nonzero();
  const at::Tensor first = bad[0];
  std::vector<at::indexing::TensorIndex> idx;
  for (int64_t i = 0; i < first.numel(); ++i) idx.emplace_back(first[i].item<int64_t>());
  const at::Tensor err = at::where(ok, at::zeros({}, g.options()), (g - e).abs().nan_to_num(kInf));
  return ::testing::AssertionFailure() << bad.size(0) << " of " << g.numel() << " elements differ; first at "
                                       << first.view({1, -1}) << ": got " << g.index(idx).item<double>()
                                       << ", expected " << e.index(idx).item<double>()
                                       << "; max |error| " << err.max().item<double>();
}

struct Tolerance {
  double rtol, atol;
};

Tolerance tolerance(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return {1e-10, 1e-10};
    // float32 gradients of peaked inputs (logits * 3) are off by ~2e-5 in
    // torch's own float32 kernel too.
    case at::kFloat: return {1e-3, 1e-4};
    case at::kHalf: return {2e-3, 2e-3};  // gradient stored with an 11-bit mantissa
    default: return {1.6e-2, 1.6e-2};     // bfloat16: 8-bit mantissa
  }
}

std::vector<double> ramp_weights(int64_t N) {
  std::vector<double> w;
  for (int64_t n = 0; n < N; ++n) w.push_back(0.5 + static_cast<double>(n) / static_cast<double>(std::max<int64_t>(N, 2) - 1));
  return w;
}

// Runs the core on `cp` and checks losses and gradients against torch.
void expect_matches_torch(const CoreProblem& cp, bool zero_infinity = false) {
  const ctc::Problem& p = cp.get();
  const std::vector<double> w = ramp_weights(p.batch);
  const CoreResult got = run_core(cp, w, zero_infinity);
  const Reference ref =
      torch_reference(cp.input(), cp.labels(), cp.input_lengths(), p.blank, p.from_logits, zero_infinity, w);
  const Tolerance tol = tolerance(cp.input().scalar_type());
  EXPECT_TRUE(all_close(got.nll, ref.nll, tol.rtol, tol.atol)) << "losses";
  EXPECT_TRUE(all_close(got.grad, ref.grad, tol.rtol, tol.atol)) << "gradients";
}

// Selects the CPU kernels for one scope (the choice is process-wide).
class KernelChoice {
 public:
  explicit KernelChoice(ctc::CpuKernel kernel) { ctc::set_cpu_kernel(kernel); }
  ~KernelChoice() { ctc::set_cpu_kernel(ctc::CpuKernel::kAuto); }
  KernelChoice(const KernelChoice&) = delete;
  KernelChoice& operator=(const KernelChoice&) = delete;
};

// The kernel kAuto must pick here: AVX2 for float accumulation on an x86-64
// CPU with AVX2 + FMA, else scalar. Checked so the AVX2 path cannot silently
// go untested.
ctc::CpuKernel expected_auto_kernel(at::ScalarType type) {
#if defined(__x86_64__)
  if (type != at::kDouble && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return ctc::CpuKernel::kAvx2;
#endif
  (void)type;
  return ctc::CpuKernel::kScalar;
}

// ---------------------------------------------------------------------------
// Against torch, over blank position x target layout x input kind x dtype
// (float64 runs the scalar kernels, float32 the AVX2 ones where available).

using LayoutParam = std::tuple<std::string /*blank*/, bool /*padded*/, bool /*from_logits*/, at::ScalarType>;

class CoreVsTorch : public ::testing::TestWithParam<LayoutParam> {};

TEST_P(CoreVsTorch, LossesAndGradientsMatch) {
  const auto& [blank_pos, padded, from_logits, type] = GetParam();
  const int64_t T = 30, N = 5, C = 7;
  const int64_t blank = blank_pos == "first" ? 0 : blank_pos == "middle" ? C / 2 : C - 1;
  const RandomBatch b = random_batch(11, T, N, C, blank, 12);
  const at::Tensor logits = randn({T, N, C}, 12);
  const at::Tensor input = (from_logits ? logits * 3 : at::log_softmax(logits, 2)).to(type);
  const CoreProblem cp(input, b.labels, b.input_lengths, blank, from_logits, padded);
  expect_matches_torch(cp);
}

INSTANTIATE_TEST_SUITE_P(Layouts, CoreVsTorch,
                         ::testing::Combine(::testing::Values("first", "middle", "last"), ::testing::Bool(),
                                            ::testing::Bool(), ::testing::Values(at::kDouble, at::kFloat)),
                         [](const ::testing::TestParamInfo<LayoutParam>& info) {
                           return "blank_" + std::get<0>(info.param) + (std::get<1>(info.param) ? "_padded" : "_concat") +
                                  (std::get<2>(info.param) ? "_logits_" : "_logprobs_") +
                                  std::string(c10::toString(std::get<3>(info.param)));
                         });

// Our exact gradient chained through log_softmax by hand equals torch's
// gradient w.r.t. the logits from autograd.
TEST(Core, ChainRuleMatchesTorchLogitsGradient) {
  const int64_t T = 25, N = 4, C = 6;
  const RandomBatch b = random_batch(21, T, N, C, 0, 10);
  const at::Tensor logits = randn({T, N, C}, 22);
  const at::Tensor lp = at::log_softmax(logits, 2);
  const CoreProblem cp(lp, b.labels, b.input_lengths, 0, false, false);
  const std::vector<double> w = ramp_weights(N);
  const CoreResult got = run_core(cp, w, false);
  const at::Tensor ours = got.grad - at::softmax(logits, 2) * got.grad.sum(2, /*keepdim=*/true);

  const at::Tensor x = logits.clone().requires_grad_(true);
  const at::Tensor nll = at::ctc_loss(at::log_softmax(x, 2), concatenated(b.labels), b.input_lengths,
                                      lengths_of(b.labels), 0, at::Reduction::None, false);
  (nll * at::tensor(w, x.options())).sum().backward();
  EXPECT_TRUE(all_close(ours, x.grad(), 1e-10, 1e-12));
}

// The engine's gradient is the derivative of the loss, checked here by central
// differences on a few elements (log-probs input need not be normalised).
TEST(Core, GradientIsExactDerivative) {
  const int64_t T = 8, N = 2, C = 4;
  const Labels labels = {{1, 2}, {3, 3}};
  const std::vector<int64_t> lengths = {8, 6};
  const at::Tensor input = randn({T, N, C}, 31) - 1.0;  // deliberately unnormalised
  const CoreProblem cp(input, labels, lengths, 0, false, false);
  const CoreResult got = run_core(cp, {1.0, 1.0}, false);
  const double h = 1e-6;
  for (const auto& [t, n, c] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{0, 0, 0}, {3, 0, 2}, {7, 0, 1}, {2, 1, 3}, {5, 1, 0}}) {
    at::Tensor plus = input.clone(), minus = input.clone();
    plus[t][n][c] += h;
    minus[t][n][c] -= h;
    const CoreProblem cp_plus(plus, labels, lengths, 0, false, false), cp_minus(minus, labels, lengths, 0, false, false);
    const double numeric = (run_core(cp_plus, {0, 0}, false).nll[n].item<double>() -
                            run_core(cp_minus, {0, 0}, false).nll[n].item<double>()) / (2 * h);
    EXPECT_NEAR(got.grad[t][n][c].item<double>(), numeric, 1e-6) << "t=" << t << " n=" << n << " c=" << c;
  }
}

// ---------------------------------------------------------------------------
// Edge cases of lengths and labels.

// [1, 1, 2, 2] needs 6 frames (a blank between each equal pair); [3, 3, 3] needs 5.
TEST(Core, RepeatedLabelsFeasibleAndInfeasible) {
  const int64_t T = 6, C = 5;
  const Labels labels = {{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 3}, {3, 3, 3}, {4, 4}};
  const std::vector<int64_t> input_lengths = {6, 5, 5, 4, 1};
  const at::Tensor lp = at::log_softmax(randn({T, 5, C}, 41), 2);
  const CoreProblem cp(lp, labels, input_lengths, 0, false, false);
  const CoreResult got = run_core(cp, ramp_weights(5), false);
  EXPECT_TRUE(std::isfinite(got.nll[0].item<double>()));
  EXPECT_EQ(got.nll[1].item<double>(), kInf);
  EXPECT_TRUE(std::isfinite(got.nll[2].item<double>()));
  EXPECT_EQ(got.nll[3].item<double>(), kInf);
  EXPECT_EQ(got.nll[4].item<double>(), kInf);
  // Feasible samples match torch; infeasible ones have a NaN gradient (as in
  // torch) on the frames they use and zeros after them.
  expect_matches_torch(cp, /*zero_infinity=*/true);
  for (int64_t n : {1, 3, 4}) {
    const int64_t frames = input_lengths[n];
    EXPECT_TRUE(got.grad.slice(0, 0, frames).select(1, n).isnan().any().item<bool>()) << "sample " << n;
    EXPECT_TRUE(got.grad.slice(0, frames).select(1, n).eq(0).all().item<bool>()) << "sample " << n;
  }
  for (int64_t n : {0, 2}) EXPECT_TRUE(got.grad.select(1, n).isfinite().all().item<bool>());
}

// With zero_infinity an infeasible sample's gradient is exactly zero (its nll
// stays +inf in the core; zeroing the loss is the binding's job).
TEST(Core, ZeroInfinityZeroesInfeasibleGradient) {
  const int64_t T = 4, C = 5;
  const Labels labels = {{1, 2, 3}, {2, 2, 2}};  // the second needs 5 frames
  const at::Tensor lp = at::log_softmax(randn({T, 2, C}, 51), 2);
  for (bool from_logits : {false, true}) {
    const CoreProblem cp(from_logits ? lp * 2 : lp, labels, {4, 4}, 0, from_logits, false);
    const CoreResult got = run_core(cp, {1.0, 1.0}, /*zero_infinity=*/true);
    EXPECT_EQ(got.nll[1].item<double>(), kInf);
    EXPECT_TRUE(got.grad.select(1, 1).eq(0).all().item<bool>()) << "from_logits=" << from_logits;
    expect_matches_torch(cp, /*zero_infinity=*/true);
  }
}

// Empty targets: the only path is all blanks, nll = -sum_t lp[t][blank].
TEST(Core, EmptyTargets) {
  const int64_t T = 9, N = 4, C = 5, blank = 2;
  const Labels labels = {{}, {1, 3}, {}, {}};
  const std::vector<int64_t> input_lengths = {9, 7, 4, 1};
  const at::Tensor lp = at::log_softmax(randn({T, N, C}, 61), 2);
  for (bool padded : {false, true}) {
    const CoreProblem cp(lp, labels, input_lengths, blank, false, padded);
    const CoreResult got = run_core(cp, ramp_weights(N), false);
    for (int64_t n : {0, 2, 3}) {
      const double expected = -lp.slice(0, 0, input_lengths[n]).select(1, n).select(1, blank).sum().item<double>();
      EXPECT_NEAR(got.nll[n].item<double>(), expected, 1e-12) << "sample " << n;
    }
    expect_matches_torch(cp);
  }
  // A batch where no sample has a label at all (zero target slots).
  const CoreProblem none(lp, {{}, {}, {}, {}}, input_lengths, blank, false, false);
  EXPECT_EQ(none.get().target_slots, 0);
  expect_matches_torch(none);
}

TEST(Core, SingleFrame) {
  const int64_t C = 4;
  const Labels labels = {{}, {3}, {1, 2}};  // the last needs 2 frames
  const at::Tensor lp = at::log_softmax(randn({1, 3, C}, 71), 2);
  const CoreProblem cp(lp, labels, {1, 1, 1}, 0, false, false);
  const CoreResult got = run_core(cp, {1, 1, 1}, false);
  EXPECT_NEAR(got.nll[0].item<double>(), -lp[0][0][0].item<double>(), 1e-12);
  EXPECT_NEAR(got.nll[1].item<double>(), -lp[0][1][3].item<double>(), 1e-12);
  EXPECT_EQ(got.nll[2].item<double>(), kInf);
  const CoreProblem feasible(lp, {{}, {3}, {2}}, {1, 1, 1}, 0, true, true);
  expect_matches_torch(feasible);
}

// A sample with no frames: loss 0 for an empty target, +inf otherwise, and a
// zero gradient either way (its frames, all of them padding, may hold NaN).
TEST(Core, ZeroInputLength) {
  const int64_t T = 5, C = 4;
  at::Tensor lp = at::log_softmax(randn({T, 3, C}, 81), 2);
  lp.select(1, 0).fill_(kNaN);
  lp.select(1, 1).fill_(kNaN);
  const CoreProblem cp(lp, {{}, {1}, {2, 3}}, {0, 0, 5}, 0, false, false);
  const CoreResult got = run_core(cp, {1, 1, 1}, false);
  EXPECT_EQ(got.nll[0].item<double>(), 0.0);
  EXPECT_EQ(got.nll[1].item<double>(), kInf);
  EXPECT_TRUE(got.grad.select(1, 0).eq(0).all().item<bool>());
  EXPECT_TRUE(got.grad.select(1, 1).eq(0).all().item<bool>());
  EXPECT_TRUE(std::isfinite(got.nll[2].item<double>()));

  // torch agrees on the losses (given finite padding, which it never reads anyway).
  const at::Tensor finite = lp.nan_to_num(0.0);
  const at::Tensor ref = at::ctc_loss(finite, concatenated({{}, {1}, {2, 3}}), std::vector<int64_t>{0, 0, 5},
                                      std::vector<int64_t>{0, 1, 2}, 0, at::Reduction::None, false);
  EXPECT_TRUE(all_close(got.nll, ref, 1e-12, 1e-12));
}

// Frames past each sample's input length hold NaN; they must not leak into
// the loss, and their gradient must be exactly 0.
TEST(Core, RaggedLengthsIgnoreNaNPadding) {
  const int64_t T = 20, N = 4, C = 6;
  const RandomBatch b = random_batch(91, T, N, C, 0, 6);
  for (bool from_logits : {false, true}) {
    at::Tensor input = randn({T, N, C}, 92);
    if (!from_logits) input = at::log_softmax(input, 2);
    const at::Tensor padding = frame_mask(T, b.input_lengths).logical_not().expand({T, N, C});
    input.masked_fill_(padding, kNaN);
    ASSERT_TRUE(input.isnan().any().item<bool>());
    const CoreProblem cp(input, b.labels, b.input_lengths, 0, from_logits, true);
    const CoreResult got = run_core(cp, ramp_weights(N), false);
    EXPECT_TRUE(got.nll.isfinite().all().item<bool>()) << "from_logits=" << from_logits;
    EXPECT_TRUE(got.grad.masked_select(padding).eq(0).all().item<bool>()) << "from_logits=" << from_logits;
    EXPECT_TRUE(got.grad.masked_select(padding.logical_not()).isfinite().all().item<bool>());
    expect_matches_torch(cp);
  }
}

// ---------------------------------------------------------------------------
// Input dtypes and layouts.

using DtypeParam = std::tuple<at::ScalarType, bool /*force scalar kernels*/>;

class CoreDtype : public ::testing::TestWithParam<DtypeParam> {};

// float32, float16 and bfloat16 are computed in float32; the reference is
// float64 on the very same (rounded) input values. Each runs with the scalar
// kernels and with the automatic choice (AVX2 where available).
TEST_P(CoreDtype, MatchesFloat64Reference) {
  const auto& [type, scalar] = GetParam();
  const KernelChoice kernel(scalar ? ctc::CpuKernel::kScalar : ctc::CpuKernel::kAuto);
  EXPECT_EQ(ctc::active_cpu_kernel(core_dtype(type)), scalar ? ctc::CpuKernel::kScalar : expected_auto_kernel(type));
  const int64_t T = 24, N = 6, C = 9;
  const RandomBatch b = random_batch(101, T, N, C, 1, 10);
  const at::Tensor logits = randn({T, N, C}, 102);
  for (bool from_logits : {false, true}) {
    const at::Tensor input = (from_logits ? logits : at::log_softmax(logits, 2)).to(type);
    const CoreProblem cp(input, b.labels, b.input_lengths, 1, from_logits, false);
    const CoreResult got = run_core(cp, ramp_weights(N), false);
    EXPECT_EQ(got.nll.scalar_type(), accumulate_type(type));
    EXPECT_EQ(got.grad.scalar_type(), type);
    expect_matches_torch(cp);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CoreDtype,
                         ::testing::Combine(::testing::Values(at::kDouble, at::kFloat, at::kHalf, at::kBFloat16),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<DtypeParam>& info) {
                           return std::string(c10::toString(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_scalar" : "_auto");
                         });

// The AVX2 kernels work on 8 states at a time; targets of every length from 0
// to 40 cover full vectors, every tail width and long rows, and both kernels
// must agree with torch on them.
TEST(Core, ScalarAndAutoKernelsAgreeOnAllRowWidths) {
  const int64_t T = 90, C = 12, N = 41;
  std::mt19937_64 rng(131);
  Labels labels;
  std::vector<int64_t> input_lengths;
  for (int64_t n = 0; n < N; ++n) {
    labels.push_back(random_labels(rng, n, C, 0));
    input_lengths.push_back(std::max<int64_t>(frames_needed(labels.back()), T - n));
  }
  const at::Tensor input = at::log_softmax(randn({T, N, C}, 132), 2).to(at::kFloat);
  const CoreProblem cp(input, labels, input_lengths, 0, false, false);
  const std::vector<double> w = ramp_weights(N);
  CoreResult scalar, automatic;
  {
    const KernelChoice kernel(ctc::CpuKernel::kScalar);
    scalar = run_core(cp, w, false);
  }
  automatic = run_core(cp, w, false);
  EXPECT_TRUE(all_close(automatic.nll, scalar.nll, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(automatic.grad, scalar.grad, 1e-4, 1e-5));
  expect_matches_torch(cp);
}

// A class masked to -inf (a constrained vocabulary) has zero gradient where
// it is -inf, in targets or not, instead of torch's NaN from (-inf) - (-inf);
// everything else matches torch.
TEST(Core, MaskedClassesHaveZeroGradient) {
  const int64_t T = 12, N = 3, C = 6;
  const Labels labels = {{1, 2, 3}, {2, 2}, {4, 1}};
  const std::vector<int64_t> input_lengths = {12, 10, 8};
  at::Tensor logits = randn({T, N, C}, 141);
  logits.select(2, 5).fill_(-kInf);     // never a label
  logits[0].select(1, 2).fill_(-kInf);  // label 2, but only at frame 0
  const at::Tensor lp = at::log_softmax(logits, 2);
  const at::Tensor masked = lp.isinf();
  for (at::ScalarType type : {at::kDouble, at::kFloat}) {
    for (bool from_logits : {false, true}) {
      SCOPED_TRACE(std::string(c10::toString(type)) + (from_logits ? " logits" : " log-probs"));
      const CoreProblem cp((from_logits ? logits : lp).to(type), labels, input_lengths, 0, from_logits, false);
      const std::vector<double> w = ramp_weights(N);
      const CoreResult got = run_core(cp, w, false);
      EXPECT_TRUE(got.grad.masked_select(masked).eq(0).all().item<bool>());
      EXPECT_TRUE(got.grad.isfinite().all().item<bool>());
      // The reference always goes through log-probs: torch's NaN at a masked
      // class would spread over the whole frame in log_softmax's backward.
      // d/d logits = d/d log_probs + softmax * weight on used frames.
      const at::Tensor x = cp.input().to(at::kDouble);
      const at::Tensor lp64 = from_logits ? at::log_softmax(x, 2) : x;
      const Reference ref = torch_reference(lp64, labels, input_lengths, 0, false, false, w);
      at::Tensor expected = ref.grad;
      if (from_logits)
        expected = expected + at::where(frame_mask(T, input_lengths), lp64.exp() * at::tensor(w, x.options()).view({1, -1, 1}),
                                        at::zeros({}, x.options()));
      expected = at::where(masked, at::zeros({}, x.options()), expected);
      const Tolerance tol = tolerance(type);
      EXPECT_TRUE(all_close(got.nll, ref.nll, tol.rtol, tol.atol));
      EXPECT_TRUE(all_close(got.grad, expected, tol.rtol, tol.atol));
    }
  }
}

// The engine follows arbitrary element strides: input stored batch-first
// with every other class skipped, gradient written into a class-major buffer.
TEST(Core, StridedInputAndGradient) {
  const int64_t T = 15, N = 3, C = 5;
  const RandomBatch b = random_batch(111, T, N, C, 0, 6);
  const at::Tensor storage = randn({N, T, 2 * C}, 112);
  for (bool from_logits : {false, true}) {
    at::Tensor input = storage.slice(2, 0, 2 * C, 2).transpose(0, 1);  // (T, N, C) view, strides (2C, 2TC, 2)
    if (!from_logits) input = at::log_softmax(storage, 2).slice(2, 0, 2 * C, 2).transpose(0, 1);
    ASSERT_FALSE(input.is_contiguous());
    const CoreProblem cp(input, b.labels, b.input_lengths, 0, from_logits, false);
    const std::vector<double> w = ramp_weights(N);
    at::Tensor grad_out = at::empty({C, N, T}, input.options()).permute({2, 1, 0});  // (T, N, C) view
    const CoreResult got = run_core(cp, w, false, ctc::serial_for, grad_out);
    const CoreProblem dense(input.contiguous(), b.labels, b.input_lengths, 0, from_logits, false);
    const CoreResult want = run_core(dense, w, false);
    EXPECT_TRUE(at::equal(got.nll, want.nll));
    EXPECT_TRUE(at::equal(got.grad, want.grad));
    expect_matches_torch(cp);
  }
}

// ---------------------------------------------------------------------------
// Workspace queries.

TEST(Workspace, LayoutMatchesDocumentedSizes) {
  // T = 7, N = 3, 10 target slots: alpha is T * (2 * slots + N).
  ctc::WorkspaceLayout layout = ctc::forward_workspace_layout(7, 3, 10, false);
  EXPECT_EQ(layout.alpha_elems, 7 * (2 * 10 + 3));
  EXPECT_EQ(layout.normaliser_elems, 0);
  EXPECT_EQ(layout.total_elems(), 161);
  // from_logits adds one log-normaliser per (t, n).
  layout = ctc::forward_workspace_layout(7, 3, 10, true);
  EXPECT_EQ(layout.normaliser_elems, 21);
  EXPECT_EQ(layout.total_elems(), 182);
  // The scratch layout is the engine's own (run_core checks it stays inside);
  // the two queries are documented to agree.
  EXPECT_EQ(ctc::cpu_scratch_elems(3, 5, 10), ctc::backward_scratch_elems(3, 5, 10));
  EXPECT_GE(ctc::backward_scratch_elems(3, 5, 10), 3 * 5);  // at least one per-class accumulator per sample
  // Degenerate shapes are fine.
  EXPECT_EQ(ctc::forward_workspace_layout(0, 0, 0, true).total_elems(), 0);
  // The last sample's alpha block ends exactly at alpha_elems (offsets of
  // concatenated targets with lengths 4, 0, 6).
  EXPECT_EQ(ctc::alpha_offset(7, 4, 2) + 7 * (2 * 6 + 1), ctc::forward_workspace_layout(7, 3, 10, false).alpha_elems);
  // Large but representable sizes do not throw: it is a query, not an allocation.
  EXPECT_NO_THROW(ctc::forward_workspace_layout(int64_t{1} << 20, 1024, int64_t{1} << 20, true));
}

void expect_overflow(const std::function<void()>& query) {
  try {
    query();
    ADD_FAILURE() << "expected ctc::Error for an overflowing workspace size";
  } catch (const ctc::Error& e) {
    EXPECT_EQ(e.kind(), ctc::ErrorKind::kResource);
    EXPECT_FALSE(e.argument().empty());
    EXPECT_NE(std::string(e.what()).find("overflow"), std::string::npos) << e.what();
  }
}

TEST(Workspace, OverflowThrowsCtcError) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  expect_overflow([] { ctc::forward_workspace_layout(kMax / 4, 2, 4, false); });    // T * states
  expect_overflow([] { ctc::forward_workspace_layout(2, 1, kMax / 2 + 1, false); });  // 2 * slots
  expect_overflow([] { ctc::forward_workspace_layout(int64_t{1} << 40, int64_t{1} << 30, 0, false); });
  expect_overflow([] { ctc::backward_scratch_elems(2, kMax / 2, 1); });  // N * C
  expect_overflow([] { ctc::backward_scratch_elems(1, 1, kMax / 3); });
}

// ---------------------------------------------------------------------------
// validate_values: each bad value throws ctc::Error naming its argument.

class Validate : public ::testing::Test {
 protected:
  // T = 10, N = 3, C = 5, blank 0, padded (3, 4) targets.
  void SetUp() override {
    input_ = at::zeros({10, 3, 5}, at::TensorOptions().dtype(at::kDouble));
    p_.max_time = 10;
    p_.batch = 3;
    p_.num_classes = 5;
    p_.input = input_.data_ptr();
    p_.dtype = ctc::DType::kFloat64;
    p_.stride_t = 15;
    p_.stride_n = 5;
    p_.stride_c = 1;
    p_.targets = targets_.data();
    p_.target_offsets = offsets_.data();
    p_.target_slots = 12;
    p_.input_lengths = input_lengths_.data();
    p_.target_lengths = target_lengths_.data();
  }

  void expect_error(const std::string& argument, int64_t padded_width = 4) {
    try {
      ctc::validate_values(p_, padded_width);
      ADD_FAILURE() << "expected ctc::Error naming " << argument;
    } catch (const ctc::Error& e) {
      EXPECT_EQ(e.kind(), ctc::ErrorKind::kValue);
      EXPECT_EQ(e.argument(), argument) << e.what();
      EXPECT_NE(std::string(e.what()).find(argument), std::string::npos) << e.what();
    }
  }

  at::Tensor input_;
  ctc::Problem p_;
  std::vector<int64_t> targets_ = {1, 2, 3, -1, 4, 4, -1, -1, 1, 2, 3, 4};
  std::vector<int64_t> offsets_ = {0, 4, 8};
  std::vector<int64_t> input_lengths_ = {10, 8, 9};
  std::vector<int64_t> target_lengths_ = {3, 2, 4};
};

TEST_F(Validate, ValidProblemPasses) {
  EXPECT_NO_THROW(ctc::validate_values(p_, 4));
  // The same labels concatenated.
  targets_ = {1, 2, 3, 4, 4, 1, 2, 3, 4};
  offsets_ = {0, 3, 5};
  p_.target_slots = 9;
  EXPECT_NO_THROW(ctc::validate_values(p_, -1));
}

TEST_F(Validate, NegativeInputLength) {
  input_lengths_[1] = -1;
  expect_error("input_lengths");
}

TEST_F(Validate, InputLengthAboveT) {
  input_lengths_[2] = 11;
  expect_error("input_lengths");
}

TEST_F(Validate, NegativeTargetLength) {
  target_lengths_[0] = -2;
  expect_error("target_lengths");
}

TEST_F(Validate, TargetLengthAbovePaddedWidth) {
  target_lengths_[1] = 5;
  expect_error("target_lengths");
}

TEST_F(Validate, ConcatenatedTotalMismatch) {
  targets_ = {1, 2, 3, 4, 4, 1, 2, 3, 4};
  offsets_ = {0, 3, 5};
  p_.target_slots = 8;  // sum(target_lengths) is 9
  expect_error("targets", -1);
}

TEST_F(Validate, LabelOutOfRange) {
  targets_[9] = 5;  // C = 5
  expect_error("targets");
  targets_[9] = -3;
  expect_error("targets");
}

TEST_F(Validate, LabelEqualsBlank) {
  p_.blank = 4;  // sample 1 is [4, 4]
  expect_error("targets");
}

TEST_F(Validate, BlankOutsideTheClasses) {
  p_.blank = 5;  // C = 5
  expect_error("blank");
  p_.blank = -1;
  expect_error("blank");
}

TEST_F(Validate, NoClasses) {
  p_.num_classes = 0;
  expect_error("log_probs");
}

TEST_F(Validate, PaddingBeyondLengthsIsNotChecked) {
  // The -1 fillers after each target's length are never labels.
  targets_[3] = 77;
  EXPECT_NO_THROW(ctc::validate_values(p_, 4));
}

// ---------------------------------------------------------------------------
// Determinism and threading.

::testing::AssertionResult bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type())
    return ::testing::AssertionFailure() << "shape or dtype differ";
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  if (std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) != 0)
    return ::testing::AssertionFailure() << "bits differ (max |diff| "
                                         << (ac.to(at::kDouble) - bc.to(at::kDouble)).abs().max().item<double>() << ")";
  return ::testing::AssertionSuccess();
}

// Splits [0, n) into `threads` contiguous chunks, each on its own std::thread.
ctc::ParallelFor threaded_for(int64_t threads) {
  return [threads](int64_t n, const std::function<void(int64_t, int64_t)>& body) {
    std::vector<std::thread> pool;
    const int64_t chunk = std::max<int64_t>(1, (n + threads - 1) / threads);
    for (int64_t begin = 0; begin < n; begin += chunk) pool.emplace_back(body, begin, std::min(n, begin + chunk));
    for (auto& t : pool) t.join();
  };
}

// One sample per chunk, in reverse order: results must not depend on chunking.
void reversed_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  for (int64_t i = n - 1; i >= 0; --i) body(i, i + 1);
}

class CoreThreads : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(CoreThreads, BitwiseIdenticalToSerial) {
  const at::ScalarType type = GetParam();
  const int64_t T = 40, N = 7, C = 11;
  const RandomBatch b = random_batch(121, T, N, C, 3, 15);
  const at::Tensor logits = randn({T, N, C}, 122).to(type);
  for (bool from_logits : {false, true}) {
    const at::Tensor input = from_logits ? logits : at::log_softmax(logits, 2);
    const CoreProblem cp(input, b.labels, b.input_lengths, 3, from_logits, true);
    const std::vector<double> w = ramp_weights(N);
    const CoreResult serial = run_core(cp, w, false);
    const CoreResult again = run_core(cp, w, false);
    EXPECT_TRUE(bitwise_equal(serial.nll, again.nll)) << "two serial runs";
    EXPECT_TRUE(bitwise_equal(serial.grad, again.grad)) << "two serial runs";
    for (int64_t threads : {2, 3, 7}) {
      const CoreResult threaded = run_core(cp, w, false, threaded_for(threads));
      EXPECT_TRUE(bitwise_equal(serial.nll, threaded.nll)) << threads << " threads";
      EXPECT_TRUE(bitwise_equal(serial.grad, threaded.grad)) << threads << " threads";
    }
    const CoreResult reversed = run_core(cp, w, false, reversed_for);
    EXPECT_TRUE(bitwise_equal(serial.nll, reversed.nll)) << "reversed chunks";
    EXPECT_TRUE(bitwise_equal(serial.grad, reversed.grad)) << "reversed chunks";
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CoreThreads, ::testing::Values(at::kDouble, at::kFloat, at::kBFloat16),
                         [](const ::testing::TestParamInfo<at::ScalarType>& info) {
                           return std::string(c10::toString(info.param));
                         });

}  // namespace
