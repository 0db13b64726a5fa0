// Tests of the LibTorch operators through the C++ API (torch_ctc/ctc_loss.h),
// against LibTorch's own torch::nn::CTCLoss / at::ctc_loss in float64.
//
// Gradients are compared w.r.t. logits with log_softmax in front, where ours
// (the exact derivative) and torch's (exp(log_probs) - posterior) agree; see
// design.md §2. ExactGradientDiffersFromTorchByExpLogProbs pins down the raw
// difference.
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch_ctc/ctc_loss.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

namespace F = torch::nn::functional;
using Labels = std::vector<std::vector<int64_t>>;
using Reduction = ctc::CTCLossOptions::reduction_t;
constexpr double kInf = std::numeric_limits<double>::infinity();

const auto kDouble = torch::TensorOptions().dtype(torch::kDouble);
const auto kLong = torch::TensorOptions().dtype(torch::kLong);

// ---------------------------------------------------------------------------
// Data. Every test seeds its own generators.

torch::Tensor randn(at::IntArrayRef sizes, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return torch::randn(sizes, gen, kDouble);
}

// N label sequences of ragged length in [0, max_length], labels in [0, C)
// without the blank, with some repeats; input lengths in [frames needed, T],
// sample 0 using all T frames.
struct Batch {
  Labels labels;
  std::vector<int64_t> input_lengths;

  std::vector<int64_t> target_lengths() const {
    std::vector<int64_t> out;
    for (const auto& l : labels) out.push_back(static_cast<int64_t>(l.size()));
    return out;
  }
  torch::Tensor concatenated(torch::ScalarType type = torch::kLong) const {
    std::vector<int64_t> flat;
    for (const auto& l : labels) flat.insert(flat.end(), l.begin(), l.end());
    return torch::tensor(flat, kLong).to(type);
  }
  // (N, S) with S one wider than the longest target; the padding is 0, which
  // is a legal filler even when 0 is the blank.
  torch::Tensor padded(torch::ScalarType type = torch::kLong) const {
    int64_t width = 0;
    for (const auto& l : labels) width = std::max<int64_t>(width, static_cast<int64_t>(l.size()));
    torch::Tensor out = torch::zeros({static_cast<int64_t>(labels.size()), width + 1}, kLong);
    for (size_t n = 0; n < labels.size(); ++n)
      for (size_t i = 0; i < labels[n].size(); ++i) out[n][i] = labels[n][i];
    return out.to(type);
  }
  torch::Tensor input_lengths_tensor(torch::ScalarType type = torch::kLong) const {
    return torch::tensor(input_lengths, kLong).to(type);
  }
  torch::Tensor target_lengths_tensor(torch::ScalarType type = torch::kLong) const {
    return torch::tensor(target_lengths(), kLong).to(type);
  }
};

Batch random_batch(uint64_t seed, int64_t T, int64_t N, int64_t C, int64_t blank, int64_t max_length,
                   double repeat_prob = 0.25) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> label(0, C - 2);
  std::bernoulli_distribution repeat(repeat_prob);
  Batch b;
  for (int64_t n = 0; n < N; ++n) {
    std::uniform_int_distribution<int64_t> len(0, max_length);
    std::vector<int64_t> labels;
    int64_t needed = 0;
    for (int64_t i = 0, L = len(rng); i < L; ++i) {
      int64_t l = label(rng);
      l = l >= blank ? l + 1 : l;
      if (i > 0 && repeat(rng)) l = labels.back();
      const int64_t cost = 1 + (i > 0 && l == labels.back());
      if (needed + cost > T) break;
      needed += cost;
      labels.push_back(l);
    }
    std::uniform_int_distribution<int64_t> frames(std::max<int64_t>(needed, 1), T);
    b.input_lengths.push_back(n == 0 ? T : frames(rng));
    b.labels.push_back(std::move(labels));
  }
  return b;
}

// ---------------------------------------------------------------------------
// Comparison.

::testing::AssertionResult all_close(const torch::Tensor& got, const torch::Tensor& expected, double rtol,
                                     double atol) {
  if (got.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs expected " << expected.sizes();
  const torch::Tensor g = got.detach().to(torch::kDouble), e = expected.detach().to(torch::kDouble);
  const torch::Tensor ok = torch::isclose(g, e, rtol, atol, /*equal_nan=*/true);
  if (ok.all().item<bool>()) return ::testing::AssertionSuccess();
  const torch::Tensor err = torch::where(ok, torch::zeros({}, g.options()), (g - e).abs().nan_to_num(kInf));
  const int64_t worst = err.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure() << ok.logical_not().sum().item<int64_t>() << " of " << g.numel()
                                       << " elements differ; worst at flat index " << worst << ": got "
                                       << g.flatten()[worst].item<double>() << ", expected "
                                       << e.flatten()[worst].item<double>();
}

// Weights for reduction 'none' so that every sample's gradient is scaled differently.
torch::Tensor weighted(const torch::Tensor& loss) {
  if (loss.dim() == 0) return loss;
  return (loss * torch::linspace(0.5, 1.5, loss.size(0), loss.options())).sum();
}

// Logits leaf + the gradient a loss gives them.
struct LossAndGrad {
  torch::Tensor loss, grad;
};

LossAndGrad loss_and_grad(const torch::Tensor& logits, const std::function<torch::Tensor(const torch::Tensor&)>& f) {
  torch::Tensor x = logits.detach().clone().requires_grad_(true);
  torch::Tensor loss = f(x);
  weighted(loss).backward();
  return {loss.detach(), x.grad()};
}

void expect_same(const LossAndGrad& ours, const LossAndGrad& ref, double rtol = 1e-10, double atol = 1e-10) {
  EXPECT_TRUE(all_close(ours.loss, ref.loss, rtol, atol)) << "losses";
  EXPECT_TRUE(all_close(ours.grad, ref.grad, rtol, atol)) << "gradients";
}

std::string reduction_name(const Reduction& r) { return torch::enumtype::get_enum_name(r); }

Reduction reduction_named(const std::string& name) {
  if (name == "none") return torch::kNone;
  if (name == "sum") return torch::kSum;
  return torch::kMean;
}

// ---------------------------------------------------------------------------
// Every reduction, both target layouts, both index dtypes.

// (reduction by name, so gtest can print it; padded targets; index dtype)
using ReductionParam = std::tuple<std::string, bool, torch::ScalarType>;

class OpVsTorch : public ::testing::TestWithParam<ReductionParam> {};

TEST_P(OpVsTorch, LossAndGradientMatch) {
  const auto& [reduction_str, padded, index_type] = GetParam();
  const Reduction reduction = reduction_named(reduction_str);
  const int64_t T = 20, N = 5, C = 7, blank = 2;
  const Batch b = random_batch(1, T, N, C, blank, 9);
  const torch::Tensor logits = randn({T, N, C}, 2);
  const torch::Tensor targets = padded ? b.padded(index_type) : b.concatenated(index_type);
  const torch::Tensor il = b.input_lengths_tensor(index_type), tl = b.target_lengths_tensor(index_type);

  const LossAndGrad ours = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x.log_softmax(2), targets, il, tl, ctc::CTCLossOptions().blank(blank).reduction(reduction));
  });
  const LossAndGrad ref = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2), targets, il, tl, F::CTCLossFuncOptions().blank(blank).reduction(reduction));
  });
  expect_same(ours, ref);
  EXPECT_EQ(ours.loss.scalar_type(), torch::kDouble);
}

INSTANTIATE_TEST_SUITE_P(Reductions, OpVsTorch,
                         ::testing::Combine(::testing::Values("none", "mean", "sum"),
                                            ::testing::Bool(), ::testing::Values(torch::kLong, torch::kInt)),
                         [](const ::testing::TestParamInfo<ReductionParam>& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) ? "_padded_" : "_concat_") +
                                  std::string(c10::toString(std::get<2>(info.param)));
                         });

// ---------------------------------------------------------------------------
// zero_infinity: an infeasible sample's loss and gradient become 0.

TEST(Op, ZeroInfinity) {
  const int64_t T = 6, C = 5;
  const Labels labels = {{1, 2, 3}, {2, 2, 2, 2}, {4}};  // sample 1 needs 7 frames
  const Batch b{labels, {6, 6, 3}};
  const torch::Tensor logits = randn({T, 3, C}, 11);
  for (const Reduction& reduction : {Reduction(torch::kNone), Reduction(torch::kMean), Reduction(torch::kSum)}) {
    SCOPED_TRACE(reduction_name(reduction));
    const auto ours = loss_and_grad(logits, [&](const torch::Tensor& x) {
      return ctc::ctc_loss(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                           ctc::CTCLossOptions().reduction(reduction).zero_infinity(true));
    });
    const auto ref = loss_and_grad(logits, [&](const torch::Tensor& x) {
      return F::ctc_loss(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                         F::CTCLossFuncOptions().reduction(reduction).zero_infinity(true));
    });
    expect_same(ours, ref);
    EXPECT_TRUE(ours.loss.isfinite().all().item<bool>());
    EXPECT_TRUE(ours.grad.select(1, 1).eq(0).all().item<bool>());
  }
  // Without zero_infinity the loss is +inf, as in torch.
  const torch::Tensor lp = logits.log_softmax(2);
  const torch::Tensor none = ctc::ctc_loss(lp, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                                           ctc::CTCLossOptions().reduction(torch::kNone));
  EXPECT_EQ(none[1].item<double>(), kInf);
  EXPECT_TRUE(std::isfinite(none[0].item<double>()));
  EXPECT_EQ(ctc::ctc_loss(lp, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor()).item<double>(), kInf);
}

// ---------------------------------------------------------------------------
// Argument forms.

TEST(Op, IntArrayRefLengths) {
  const int64_t T = 15, N = 4, C = 6;
  const Batch b = random_batch(21, T, N, C, 0, 7);
  const torch::Tensor logits = randn({T, N, C}, 22);
  const std::vector<int64_t> tl = b.target_lengths();
  const auto opts = ctc::CTCLossOptions().reduction(torch::kSum);
  const auto with_lists = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x.log_softmax(2), b.concatenated(), b.input_lengths, tl, opts);
  });
  const auto with_tensors = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x.log_softmax(2), b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                         opts);
  });
  EXPECT_TRUE(torch::equal(with_lists.loss, with_tensors.loss));
  EXPECT_TRUE(torch::equal(with_lists.grad, with_tensors.grad));
  const auto ref = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2), b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                       F::CTCLossFuncOptions().reduction(torch::kSum));
  });
  expect_same(with_lists, ref);
  // Default options are torch's: blank 0, mean reduction, no zero_infinity.
  const auto mean_ours = ctc::ctc_loss(logits.log_softmax(2), b.concatenated(), b.input_lengths, tl);
  const auto mean_ref = F::ctc_loss(logits.log_softmax(2), b.concatenated(), b.input_lengths_tensor(),
                                    b.target_lengths_tensor());
  EXPECT_TRUE(all_close(mean_ours, mean_ref, 1e-12, 1e-12));
}

TEST(Op, BatchFirst) {
  const int64_t T = 18, N = 4, C = 6;
  const Batch b = random_batch(31, T, N, C, C - 1, 8);
  const torch::Tensor logits_nt = randn({N, T, C}, 32);
  const auto ours = loss_and_grad(logits_nt, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                         ctc::CTCLossOptions().blank(C - 1).batch_first(true).reduction(torch::kNone));
  });
  const auto ref = loss_and_grad(logits_nt, [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2).transpose(0, 1), b.padded(), b.input_lengths_tensor(),
                       b.target_lengths_tensor(), F::CTCLossFuncOptions().blank(C - 1).reduction(torch::kNone));
  });
  expect_same(ours, ref);
}

// (T, C) input with 1-D targets; lengths as 0-d or one-element tensors.
TEST(Op, Unbatched) {
  const int64_t T = 12, C = 5;
  const torch::Tensor logits = randn({T, C}, 41);
  const torch::Tensor targets = torch::tensor({1, 3, 3, 2}, kLong);
  for (const Reduction& reduction : {Reduction(torch::kNone), Reduction(torch::kMean), Reduction(torch::kSum)}) {
    for (bool scalar_lengths : {true, false}) {
      SCOPED_TRACE(reduction_name(reduction) + (scalar_lengths ? " 0-d lengths" : " 1-element lengths"));
      const torch::Tensor il = scalar_lengths ? torch::tensor(int64_t{10}) : torch::tensor({int64_t{10}});
      const torch::Tensor tl = scalar_lengths ? torch::tensor(int64_t{4}) : torch::tensor({int64_t{4}});
      const auto ours = loss_and_grad(logits, [&](const torch::Tensor& x) {
        return ctc::ctc_loss(x.log_softmax(1), targets, il, tl, ctc::CTCLossOptions().reduction(reduction));
      });
      const auto ref = loss_and_grad(logits, [&](const torch::Tensor& x) {
        return F::ctc_loss(x.log_softmax(1), targets, torch::tensor(int64_t{10}), torch::tensor(int64_t{4}),
                           F::CTCLossFuncOptions().reduction(reduction));
      });
      EXPECT_EQ(ours.loss.dim(), 0);
      expect_same(ours, ref);
      EXPECT_TRUE(ours.grad.slice(0, 10).eq(0).all().item<bool>()) << "frames past the input length";
    }
  }
}

// Permuted and sliced views reach the kernel without a copy; results must not change.
TEST(Op, NonContiguousInput) {
  const int64_t T = 16, N = 3, C = 6;
  const Batch b = random_batch(51, T, N, C, 0, 7);
  const torch::Tensor storage = randn({N, 2 * C, T}, 52);  // class-major, twice as many classes
  auto view = [&](const torch::Tensor& s) { return s.slice(1, 0, 2 * C, 2).permute({2, 0, 1}); };  // (T, N, C)
  ASSERT_FALSE(view(storage).is_contiguous());
  const auto ours = loss_and_grad(storage, [&](const torch::Tensor& s) {
    const torch::Tensor lp = view(s).log_softmax(2).transpose(0, 2).contiguous().transpose(0, 2);  // still strided
    EXPECT_FALSE(lp.is_contiguous());
    return ctc::ctc_loss(lp, b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                         ctc::CTCLossOptions().reduction(torch::kNone));
  });
  const auto ref = loss_and_grad(storage, [&](const torch::Tensor& s) {
    return F::ctc_loss(view(s).log_softmax(2), b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                       F::CTCLossFuncOptions().reduction(torch::kNone));
  });
  expect_same(ours, ref);
}

// from_logits fuses log_softmax; the gradient is then w.r.t. the raw logits.
TEST(Op, FromLogits) {
  const int64_t T = 20, N = 4, C = 8;
  const Batch b = random_batch(61, T, N, C, 3, 8);
  const torch::Tensor logits = randn({T, N, C}, 62) * 4;
  const auto ours = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                         ctc::CTCLossOptions().blank(3).from_logits(true).reduction(torch::kNone));
  });
  const auto ref = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                       F::CTCLossFuncOptions().blank(3).reduction(torch::kNone));
  });
  expect_same(ours, ref);
}

// Our raw gradient w.r.t. log_probs is the exact derivative: torch's minus
// exp(log_probs) on the frames each sample uses.
TEST(Op, ExactGradientDiffersFromTorchByExpLogProbs) {
  const int64_t T = 10, N = 3, C = 5;
  const Batch b = random_batch(71, T, N, C, 0, 4);
  const torch::Tensor lp = randn({T, N, C}, 72).log_softmax(2);
  const auto ours = loss_and_grad(lp, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x, b.concatenated(), b.input_lengths, b.target_lengths(),
                         ctc::CTCLossOptions().reduction(torch::kSum));
  });
  const auto ref = loss_and_grad(lp, [&](const torch::Tensor& x) {
    return F::ctc_loss(x, b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                       F::CTCLossFuncOptions().reduction(torch::kSum));
  });
  const torch::Tensor used =
      torch::arange(T, kLong).view({T, 1, 1}) < b.input_lengths_tensor().view({1, N, 1});
  EXPECT_TRUE(all_close(ours.grad, ref.grad - lp.exp() * used, 1e-10, 1e-12));
}

// One long target: L = 1000 labels over T = 2500 frames, in float64 and in
// float32 (the vectorised kernels on long rows); the reference is float64 on
// the same rounded values.
using LongParam = std::tuple<int64_t /*N*/, torch::ScalarType>;

class OpLongTarget : public ::testing::TestWithParam<LongParam> {};

TEST_P(OpLongTarget, MatchesTorch) {
  const auto& [N, type] = GetParam();
  const int64_t T = 2500, C = 20, L = 1000;
  std::mt19937_64 rng(81 + N);
  std::uniform_int_distribution<int64_t> label(1, C - 1);
  Batch b;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<int64_t> labels;
    for (int64_t i = 0; i < L - n * 37; ++i) labels.push_back(label(rng));  // ragged lengths when N = 2
    b.labels.push_back(labels);
    b.input_lengths.push_back(T - n * 111);
  }
  const torch::Tensor logits = randn({T, N, C}, 82).to(type);
  const auto ours = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ctc::ctc_loss(x.log_softmax(2), b.concatenated(), b.input_lengths, b.target_lengths(),
                         ctc::CTCLossOptions().reduction(torch::kNone));
  });
  const auto ref = loss_and_grad(logits.to(torch::kDouble), [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2).to(type).to(torch::kDouble), b.concatenated(), b.input_lengths_tensor(),
                       b.target_lengths_tensor(), F::CTCLossFuncOptions().reduction(torch::kNone));
  });
  EXPECT_TRUE(ours.loss.isfinite().all().item<bool>());
  if (type == torch::kDouble) {
    expect_same(ours, ref, 1e-9, 1e-9);
    return;
  }
  // float32: the posteriors exp(alpha + beta + nll) cancel log-likelihoods of
  // ~5000, so float32 gradients are only good to ~1e-2 here; torch's own
  // float32 kernel is the yardstick for how close they must be.
  const auto torch32 = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return F::ctc_loss(x.log_softmax(2), b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                       F::CTCLossFuncOptions().reduction(torch::kNone));
  });
  const double torch_error = (torch32.grad.to(torch::kDouble) - ref.grad).abs().max().item<double>();
  const double our_error = (ours.grad.to(torch::kDouble) - ref.grad).abs().max().item<double>();
  EXPECT_TRUE(all_close(ours.loss, ref.loss, 1e-5, 1e-5)) << "losses";
  EXPECT_LE(our_error, 3 * torch_error + 1e-5) << "max |grad error| vs float64: ours " << our_error << ", torch float32 "
                                               << torch_error;
}

INSTANTIATE_TEST_SUITE_P(Batch, OpLongTarget,
                         ::testing::Combine(::testing::Values(1, 2), ::testing::Values(torch::kDouble, torch::kFloat)),
                         [](const ::testing::TestParamInfo<LongParam>& info) {
                           return "N" + std::to_string(std::get<0>(info.param)) + "_" +
                                  std::string(c10::toString(std::get<1>(info.param)));
                         });

// ctc_nll: per-sample losses, like reduction 'none' but never squeezed.
TEST(Op, CtcNll) {
  const int64_t T = 10, N = 3, C = 5;
  const Batch b = random_batch(141, T, N, C, 0, 4);
  const torch::Tensor lp = randn({T, N, C}, 142).log_softmax(2);
  const torch::Tensor nll = ctc::ctc_nll(lp, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor());
  const torch::Tensor none = ctc::ctc_loss(lp, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                                           ctc::CTCLossOptions().reduction(torch::kNone));
  EXPECT_TRUE(torch::equal(nll, none));
  const torch::Tensor unbatched = ctc::ctc_nll(lp.select(1, 0).unsqueeze(1), b.padded().slice(0, 0, 1),
                                               b.input_lengths_tensor().slice(0, 0, 1),
                                               b.target_lengths_tensor().slice(0, 0, 1));
  EXPECT_EQ(unbatched.sizes(), torch::IntArrayRef({1}));
  EXPECT_TRUE(torch::equal(unbatched[0], nll[0]));
}

// The kernels run on torch's intra-op pool; the thread count must not change a bit.
TEST(Op, ThreadCountInvariant) {
  const int64_t T = 30, N = 9, C = 8;
  const Batch b = random_batch(151, T, N, C, 0, 12);
  const int original = at::get_num_threads();
  for (torch::ScalarType type : {torch::kDouble, torch::kFloat, torch::kBFloat16}) {
    const torch::Tensor logits = randn({T, N, C}, 152).to(type);
    auto run = [&](int threads) {
      at::set_num_threads(threads);
      return loss_and_grad(logits, [&](const torch::Tensor& x) {
        return ctc::ctc_loss(x, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                             ctc::CTCLossOptions().from_logits(true).reduction(torch::kNone));
      });
    };
    const LossAndGrad one = run(1), several = run(3);
    EXPECT_TRUE(torch::equal(one.loss, several.loss)) << c10::toString(type);
    EXPECT_TRUE(torch::equal(one.grad, several.grad)) << c10::toString(type);
  }
  at::set_num_threads(original);
}

// Half types run in float32 and return float32 losses; the reference is
// float64 on the same rounded inputs, hence the loose tolerances.
class OpDtype : public ::testing::TestWithParam<torch::ScalarType> {};

TEST_P(OpDtype, MatchesFloat64Reference) {
  const torch::ScalarType type = GetParam();
  const int64_t T = 20, N = 4, C = 7;
  const Batch b = random_batch(91, T, N, C, 0, 8);
  const torch::Tensor lp = randn({T, N, C}, 92).log_softmax(2).to(type);
  torch::Tensor x = lp.clone().requires_grad_(true);
  const torch::Tensor loss = ctc::ctc_loss(x, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                                           ctc::CTCLossOptions().reduction(torch::kNone));
  EXPECT_EQ(loss.scalar_type(), type == torch::kDouble ? torch::kDouble : torch::kFloat);
  weighted(loss).backward();
  EXPECT_EQ(x.grad().scalar_type(), type);

  torch::Tensor x64 = lp.to(torch::kDouble).requires_grad_(true);
  const torch::Tensor ref = F::ctc_loss(x64, b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor(),
                                        F::CTCLossFuncOptions().reduction(torch::kNone));
  weighted(ref).backward();
  const torch::Tensor used = torch::arange(T, kLong).view({T, 1, 1}) < b.input_lengths_tensor().view({1, N, 1});
  const torch::Tensor w = torch::linspace(0.5, 1.5, N, kDouble).view({1, N, 1});
  const torch::Tensor exact = x64.grad() - x64.detach().exp() * w * used;  // see ExactGradientDiffersFrom...

  const double tol = type == torch::kBFloat16 ? 1.6e-2 : type == torch::kHalf ? 2e-3 : 1e-5;
  EXPECT_TRUE(all_close(loss, ref, type == torch::kDouble ? 1e-12 : 1e-5, 1e-5)) << "losses";
  EXPECT_TRUE(all_close(x.grad(), exact, tol, tol)) << "gradients";
}

INSTANTIATE_TEST_SUITE_P(Dtypes, OpDtype, ::testing::Values(torch::kFloat, torch::kHalf, torch::kBFloat16),
                         [](const ::testing::TestParamInfo<torch::ScalarType>& info) {
                           return std::string(c10::toString(info.param));
                         });

// ---------------------------------------------------------------------------
// The module.

TEST(Module, FromTorchOptions) {
  const auto torch_options = torch::nn::CTCLossOptions().blank(4).reduction(torch::kSum).zero_infinity(true);
  ctc::CTCLoss ours(torch_options);  // implicit conversion keeps torch code compiling
  torch::nn::CTCLoss ref(torch_options);
  EXPECT_EQ(ours->options.blank(), 4);
  EXPECT_TRUE(std::holds_alternative<torch::enumtype::kSum>(ours->options.reduction()));
  EXPECT_TRUE(ours->options.zero_infinity());
  EXPECT_FALSE(ours->options.batch_first());
  EXPECT_FALSE(ours->options.from_logits());

  const int64_t T = 8, C = 5;
  const Batch b{{{1, 2, 3}, {3, 3, 3, 3, 3}, {}, {2}}, {8, 7, 5, 1}};  // sample 1 needs 9 frames: infeasible
  const torch::Tensor logits = randn({T, 4, C}, 101);
  const auto got = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ours(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor());
  });
  const auto want = loss_and_grad(logits, [&](const torch::Tensor& x) {
    return ref(x.log_softmax(2), b.padded(), b.input_lengths_tensor(), b.target_lengths_tensor());
  });
  expect_same(got, want);

  // It is a regular module: printable, clonable, usable from a Sequential-style holder.
  std::ostringstream printed;
  printed << *ours;
  EXPECT_NE(printed.str().find("blank=4"), std::string::npos) << printed.str();
  auto copy = std::dynamic_pointer_cast<ctc::CTCLossImpl>(ours->clone());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->options.blank(), 4);
}

TEST(Module, OwnOptions) {
  const int64_t T = 10, N = 3, C = 6;
  const Batch b = random_batch(111, T, N, C, 5, 5);
  const torch::Tensor logits_nt = randn({N, T, C}, 112);
  ctc::CTCLoss ours(ctc::CTCLossOptions().blank(5).batch_first(true).from_logits(true).reduction(torch::kMean));
  torch::nn::CTCLoss ref(torch::nn::CTCLossOptions().blank(5));
  const auto got = loss_and_grad(logits_nt, [&](const torch::Tensor& x) {
    return ours->forward(x, b.concatenated(), b.input_lengths_tensor(), b.target_lengths_tensor());
  });
  const auto want = loss_and_grad(logits_nt, [&](const torch::Tensor& x) {
    return ref(x.log_softmax(2).transpose(0, 1), b.concatenated(), b.input_lengths_tensor(),
               b.target_lengths_tensor());
  });
  expect_same(got, want);
}

// ---------------------------------------------------------------------------
// Errors: bad input raises the c10 error type that Python maps to
// ValueError / TypeError / RuntimeError, and the message names the argument.

struct Args {
  torch::Tensor log_probs, targets, input_lengths, target_lengths;
  ctc::CTCLossOptions options;
};

// T = 10, N = 3, C = 5, padded targets, blank 0: valid.
Args valid_args() {
  return {randn({10, 3, 5}, 121).log_softmax(2), torch::tensor({1, 2, 3, 0, 4, 4, 0, 0, 1, 2, 3, 4}).view({3, 4}),
          torch::tensor({10, 8, 9}), torch::tensor({3, 2, 4}), ctc::CTCLossOptions()};
}

enum class Kind { kValue, kType, kAny };

struct ErrorCase {
  std::string name;
  std::function<void(Args&)> mutate;
  Kind kind;
  std::string argument;  // must appear in the message
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

class OpErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(OpErrors, RaisesNamingTheArgument) {
  const ErrorCase& c = GetParam();
  Args a = valid_args();
  c.mutate(a);
  std::string message;
  Kind thrown = Kind::kAny;
  try {
    ctc::ctc_loss(a.log_probs, a.targets, a.input_lengths, a.target_lengths, a.options);
    FAIL() << "no error for " << c.name;
  } catch (const c10::ValueError& e) {
    thrown = Kind::kValue;
    message = e.what_without_backtrace();
  } catch (const c10::TypeError& e) {
    thrown = Kind::kType;
    message = e.what_without_backtrace();
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  }
  if (c.kind != Kind::kAny) {
    EXPECT_EQ(static_cast<int>(thrown), static_cast<int>(c.kind)) << message;
  }
  EXPECT_NE(message.find(c.argument), std::string::npos) << "message does not name " << c.argument << ": " << message;
}

const ErrorCase kErrorCases[] = {
    {"LabelOutOfRange", [](Args& a) { a.targets[2][1] = 5; }, Kind::kValue, "targets"},
    {"NegativeLabel", [](Args& a) { a.targets[0][0] = -1; }, Kind::kValue, "targets"},
    {"LabelIsBlank", [](Args& a) { a.options.blank(4); }, Kind::kValue, "targets"},
    // The CPU validates labels even when validation is switched off (it costs no sync).
    {"LabelOutOfRangeWithoutValidate", [](Args& a) { a.targets[2][1] = 5; a.options.validate(false); }, Kind::kValue,
     "targets"},
    {"FloatTargets", [](Args& a) { a.targets = a.targets.to(torch::kFloat); }, Kind::kType, "targets"},
    {"ThreeDimTargets", [](Args& a) { a.targets = a.targets.unsqueeze(0); }, Kind::kValue, "targets"},
    {"ConcatenatedSumMismatch", [](Args& a) { a.targets = torch::tensor({1, 2, 3, 4, 4, 1, 2, 3}); }, Kind::kValue,
     "targets"},
    {"PaddedTooNarrow", [](Args& a) { a.targets = a.targets.slice(1, 0, 3); }, Kind::kValue, "target_lengths"},
    {"IntLogProbs", [](Args& a) { a.log_probs = a.log_probs.to(torch::kLong); }, Kind::kType, "log_probs"},
    {"FourDimLogProbs", [](Args& a) { a.log_probs = a.log_probs.unsqueeze(0); }, Kind::kValue, "log_probs"},
    {"FloatInputLengths", [](Args& a) { a.input_lengths = a.input_lengths.to(torch::kFloat); }, Kind::kType,
     "input_lengths"},
    {"InputLengthAboveT", [](Args& a) { a.input_lengths[1] = 11; }, Kind::kValue, "input_lengths"},
    {"NegativeInputLength", [](Args& a) { a.input_lengths[0] = -1; }, Kind::kValue, "input_lengths"},
    {"NegativeTargetLength", [](Args& a) { a.target_lengths[1] = -1; }, Kind::kValue, "target_lengths"},
    {"TargetLengthsWrongCount", [](Args& a) { a.target_lengths = torch::tensor({3, 2}); }, Kind::kAny,
     "target_lengths"},
    {"InputLengthsTwoDim", [](Args& a) { a.input_lengths = a.input_lengths.view({3, 1}); }, Kind::kValue,
     "input_lengths"},
    {"BlankNegative", [](Args& a) { a.options.blank(-1); }, Kind::kValue, "blank"},
    {"BlankTooLarge", [](Args& a) { a.options.blank(5); }, Kind::kAny, "blank"},
    {"UnbatchedWithPaddedTargets", [](Args& a) { a.log_probs = a.log_probs.select(1, 0); }, Kind::kValue,
     "targets"},
};

INSTANTIATE_TEST_SUITE_P(BadInput, OpErrors, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

// The operators are registered under their schema names, and the op itself
// rejects a reduction code the C++ enum cannot express.
TEST(Op, RegisteredSchemas) {
  for (const char* name : {"torch_ctc::ctc_loss", "torch_ctc::ctc_nll", "torch_ctc::_ctc_forward",
                           "torch_ctc::_ctc_backward"})
    EXPECT_TRUE(c10::Dispatcher::singleton().findSchema({name, ""}).has_value()) << name;

  const Args a = valid_args();
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("torch_ctc::ctc_loss", "")
                .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  int64_t, int64_t, bool, bool, bool, bool)>();
  const at::Tensor sum = op.call(a.log_probs, a.targets, a.input_lengths, a.target_lengths, 0, 2, false, false,
                                 false, true);
  EXPECT_TRUE(all_close(sum, F::ctc_loss(a.log_probs, a.targets, a.input_lengths, a.target_lengths,
                                          F::CTCLossFuncOptions().reduction(torch::kSum)),
                        1e-12, 1e-12));
  try {
    op.call(a.log_probs, a.targets, a.input_lengths, a.target_lengths, 0, 7, false, false, false, true);
    ADD_FAILURE() << "no error for reduction = 7";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("reduction"), std::string::npos) << e.what();
  }
}

}  // namespace
