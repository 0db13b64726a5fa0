// The CUDA op end to end in the CUDA simulator: this binary registers the
// CUDA call sequence (bindings/torch/cuda_op.cpp) for CPU tensors
// (op_sim_registration.cpp), so ctc::ctc_loss runs the whole CUDA path --
// argument checks, validation, the index upload and sanitising, buffer sizing
// from the allocator, both engine passes, zero_infinity, the reductions and
// autograd -- and is compared with torch's own at::ctc_loss. What stays
// GPU-only (streams, the caching allocator, device guards, graph capture) is
// listed in docs/gpu-check.md.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ctc/align.h"
#include "ctc/decode.h"
#include "tensor_problem.h"
#include "torch_ctc/alignment.h"
#include "torch_ctc/ctc_loss.h"

namespace {

struct Batch {
  at::Tensor logits, padded, concatenated, input_lengths, target_lengths;
};

// T = 14, N = 4, C = 6, blank `blank`; sample 3 infeasible when asked (6 labels
// with repeats in 5 frames).
Batch make_batch(uint64_t seed, int64_t blank, bool infeasible, at::ScalarType dtype = at::kDouble) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  Batch b;
  b.logits = at::randn({14, 4, 6}, gen, at::TensorOptions().dtype(at::kDouble)).to(dtype);
  std::vector<std::vector<int64_t>> labels = {{1, 2, 3}, {}, {4, 4, 2, 1}, {1, 2}};
  if (infeasible) labels[3] = {1, 1, 2, 2, 3, 3};
  for (auto& l : labels)
    for (auto& v : l) v = v == blank ? 5 : v;  // keep blank out of the labels
  const std::vector<int64_t> il = {14, 9, 12, infeasible ? 5 : 10};
  b.padded = at::full({4, 6}, 0, at::kLong);
  std::vector<int64_t> flat, tl;
  for (size_t n = 0; n < labels.size(); ++n) {
    for (size_t i = 0; i < labels[n].size(); ++i) b.padded[n][i] = labels[n][i];
    flat.insert(flat.end(), labels[n].begin(), labels[n].end());
    tl.push_back(static_cast<int64_t>(labels[n].size()));
  }
  b.concatenated = at::tensor(flat, at::kLong);
  b.input_lengths = at::tensor(il, at::kLong);
  b.target_lengths = at::tensor(tl, at::kLong);
  return b;
}

torch::nn::CTCLossOptions::reduction_t reduction_of(int r) {
  if (r == 0) return torch::kNone;
  if (r == 1) return torch::kMean;
  return torch::kSum;
}

// Loss and d/d logits of `loss_fn(log_softmax(logits))` (weighted for 'none').
std::pair<at::Tensor, at::Tensor> loss_and_logit_grad(const at::Tensor& logits,
                                                      const std::function<at::Tensor(const at::Tensor&)>& loss_fn) {
  at::Tensor x = logits.detach().clone().requires_grad_(true);
  at::Tensor loss = loss_fn(x.log_softmax(2));
  at::Tensor scalar = loss.dim() == 0 ? loss : (loss * at::arange(1, loss.size(0) + 1, loss.options())).sum();
  at::Tensor grad = torch::autograd::grad({scalar}, {x})[0];
  return {loss.detach(), grad};
}

void expect_close(const at::Tensor& a, const at::Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const at::Tensor a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  EXPECT_TRUE(at::equal(a64.isnan(), b64.isnan())) << what << ": NaN in different places";
  const at::Tensor finite = a64.isfinite() & b64.isfinite();
  EXPECT_TRUE(at::equal(a64.isinf(), b64.isinf())) << what << ": inf in different places";
  const double err = finite.any().item<bool>() ? (a64 - b64).abs().masked_select(finite).max().item<double>() : 0.0;
  EXPECT_LE(err, tol) << what;
}

TEST(OpSim, MatchesTorchForEveryReductionAndTargetForm) {
  for (int reduction : {0, 1, 2})
    for (bool zero_infinity : {false, true})
      for (bool padded : {true, false})
        for (at::ScalarType targets_type : {at::kLong, at::kInt}) {
          const Batch b = make_batch(3, 0, /*infeasible=*/zero_infinity);
          const at::Tensor targets = (padded ? b.padded : b.concatenated).to(targets_type);
          const std::string what = "reduction " + std::to_string(reduction) + (zero_infinity ? ", zero_infinity" : "") +
                                   (padded ? ", padded" : ", concatenated");
          auto ours = loss_and_logit_grad(b.logits, [&](const at::Tensor& lp) {
            return ctc::ctc_loss(lp, targets, b.input_lengths, b.target_lengths,
                                 ctc::CTCLossOptions().reduction(reduction_of(reduction)).zero_infinity(zero_infinity));
          });
          auto theirs = loss_and_logit_grad(b.logits, [&](const at::Tensor& lp) {
            return at::ctc_loss(lp, targets, b.input_lengths, b.target_lengths, 0, reduction, zero_infinity);
          });
          expect_close(ours.first, theirs.first, 1e-10, what + ": loss");
          expect_close(ours.second, theirs.second, 1e-10, what + ": gradient");
        }
}

TEST(OpSim, BatchFirstFromLogitsAndBlankAnywhere) {
  for (int64_t blank : {0, 3, 5}) {
    const Batch b = make_batch(5, blank, false);
    auto reference = loss_and_logit_grad(b.logits, [&](const at::Tensor& lp) {
      return at::ctc_loss(lp, b.padded, b.input_lengths, b.target_lengths, blank, 0, false);
    });
    // batch_first, raw logits: the fused log_softmax on an (N, T, C) view.
    at::Tensor x = b.logits.transpose(0, 1).contiguous().requires_grad_(true);
    at::Tensor loss = ctc::ctc_loss(x, b.padded, b.input_lengths, b.target_lengths,
                                    ctc::CTCLossOptions().blank(blank).reduction(torch::kNone).batch_first(true)
                                        .from_logits(true));
    at::Tensor grad = torch::autograd::grad({(loss * at::arange(1, 5, loss.options())).sum()}, {x})[0];
    expect_close(loss.detach(), reference.first, 1e-10, "loss, blank " + std::to_string(blank));
    expect_close(grad.transpose(0, 1), reference.second, 1e-10, "gradient, blank " + std::to_string(blank));
  }
}

TEST(OpSim, HalfTypesAgreeWithFloat32Torch) {
  for (at::ScalarType dtype : {at::kHalf, at::kBFloat16, at::kFloat}) {
    const Batch b = make_batch(8, 0, false, dtype);
    at::Tensor lp = b.logits.to(at::kFloat).log_softmax(2).to(dtype).requires_grad_(true);
    at::Tensor loss = ctc::ctc_loss(lp, b.padded, b.input_lengths, b.target_lengths,
                                    ctc::CTCLossOptions().reduction(torch::kSum));
    at::Tensor grad = torch::autograd::grad({loss}, {lp})[0];
    EXPECT_EQ(grad.scalar_type(), dtype);
    const at::Tensor lp32 = lp.detach().to(at::kFloat).requires_grad_(true);
    at::Tensor ref = at::ctc_loss(lp32, b.padded, b.input_lengths, b.target_lengths, 0, 2, false);
    at::Tensor ref_grad = torch::autograd::grad({ref}, {lp32})[0];
    // torch's gradient w.r.t. log_probs is exp(lp) - posterior on valid frames; ours is -posterior.
    const at::Tensor valid = at::arange(14).unsqueeze(1).lt(b.input_lengths.unsqueeze(0)).unsqueeze(2);
    const at::Tensor exact = ref_grad - lp32.detach().exp() * valid;
    expect_close(loss.detach(), ref.detach(), 1e-3, std::string("loss ") + c10::toString(dtype));
    expect_close(grad, exact, dtype == at::kBFloat16 ? 2e-2 : 3e-3, std::string("gradient ") + c10::toString(dtype));
  }
}

TEST(OpSim, UnbatchedAndListLengths) {
  const Batch b = make_batch(9, 0, false);
  const at::Tensor lp = b.logits.log_softmax(2);
  at::Tensor one = ctc::ctc_loss(lp.select(1, 0), b.padded[0], at::tensor(14), at::tensor(3),
                                 ctc::CTCLossOptions().reduction(torch::kNone));
  at::Tensor ref = at::ctc_loss(lp.slice(1, 0, 1), b.padded.slice(0, 0, 1), at::tensor({14}), at::tensor({3}), 0, 0,
                                false);
  EXPECT_EQ(one.dim(), 0);
  expect_close(one, ref.squeeze(0), 1e-10, "unbatched");
  at::Tensor listed = ctc::ctc_loss(lp, b.padded, std::vector<int64_t>{14, 9, 12, 10}, std::vector<int64_t>{3, 0, 4, 2},
                                    ctc::CTCLossOptions().reduction(torch::kNone));
  expect_close(listed, at::ctc_loss(lp, b.padded, b.input_lengths, b.target_lengths, 0, 0, false), 1e-10, "lists");
}

TEST(OpSim, ValidationOnAndOff) {
  const Batch b = make_batch(11, 0, false);
  const at::Tensor lp = b.logits.log_softmax(2);
  auto none = ctc::CTCLossOptions().reduction(torch::kNone);
  at::Tensor checked = ctc::ctc_loss(lp, b.padded, b.input_lengths, b.target_lengths, none);
  at::Tensor unchecked =
      ctc::ctc_loss(lp, b.padded, b.input_lengths, b.target_lengths, ctc::CTCLossOptions(none).validate(false));
  expect_close(checked, unchecked, 0.0, "validate on and off");
  // The same errors and messages as the CPU op.
  at::Tensor bad = b.padded.clone();
  bad[2][1] = 6;  // C = 6
  try {
    ctc::ctc_loss(lp, bad, b.input_lengths, b.target_lengths, none);
    ADD_FAILURE() << "expected a ValueError";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("targets: sample 2, position 1 holds label 6"), std::string::npos) << e.what();
  }
  // Off, garbage gives NaN or inf, never an out-of-bounds access (ASan builds check).
  at::Tensor garbage = ctc::ctc_loss(lp, bad, at::tensor({99, -1, 14, 3}), b.target_lengths,
                                     ctc::CTCLossOptions(none).validate(false));
  EXPECT_EQ(garbage.size(0), 4);
}

// forced_align through the CUDA op path, against the CPU aligner on the same data.
TEST(OpSim, ForcedAlignMatchesTheCpuAligner) {
  for (bool padded : {true, false})
    for (at::ScalarType dtype : {at::kDouble, at::kFloat, at::kHalf}) {
      const Batch b = make_batch(13, 0, false, dtype);
      const at::Tensor lp = b.logits.to(at::kFloat).log_softmax(2).to(dtype);
      const at::Tensor targets = padded ? b.padded : b.concatenated;
      auto [alignments, scores] = ctc::forced_align(lp, targets, b.input_lengths, b.target_lengths);
      const torch_ctc::HostProblem host =
          torch_ctc::make_host_problem(lp, targets, b.input_lengths, b.target_lengths, 0, false, false);
      at::Tensor want = at::empty({4, 14}, at::kLong);
      at::Tensor want_scores = at::empty({4, 14}, scores.options());
      ctc::cpu_forced_align(host.problem, ctc::AlignMemory::kFull, want.data_ptr<int64_t>(), want_scores.data_ptr());
      EXPECT_TRUE(at::equal(alignments, want)) << c10::toString(dtype);
      EXPECT_TRUE(at::equal(scores, want_scores)) << c10::toString(dtype);
    }
}

TEST(OpSim, ForcedAlignErrorsAndValidationOff) {
  const Batch b = make_batch(14, 0, /*infeasible=*/true);
  const at::Tensor lp = b.logits.log_softmax(2);
  try {
    ctc::forced_align(lp, b.padded, b.input_lengths, b.target_lengths);
    ADD_FAILURE() << "expected a ValueError";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("sample 3 has too few frames"), std::string::npos) << e.what();
  }
  auto [alignments, scores] = ctc::forced_align(lp, b.padded, b.input_lengths, b.target_lengths,
                                                ctc::ForcedAlignOptions().validate(false));
  EXPECT_TRUE(alignments[3].eq(-1).all().item<bool>());  // no path: -1 throughout, no error
  EXPECT_TRUE(alignments[0].ge(0).all().item<bool>());
  try {
    ctc::forced_align(lp, b.padded, b.input_lengths, b.target_lengths,
                      ctc::ForcedAlignOptions().memory(ctc::AlignmentMemory::kCheckpointed));
    ADD_FAILURE() << "expected a ValueError";
  } catch (const c10::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("checkpointed memory mode runs on the CPU only"), std::string::npos);
  }
}

TEST(OpSim, GreedyDecodeMatchesTheCpuDecoder) {
  const Batch b = make_batch(15, 0, false);
  const at::Tensor lp = b.logits.log_softmax(2);
  const ctc::GreedyDecoding got = ctc::greedy_decode(lp, b.input_lengths);
  ctc::Problem p;
  const at::Tensor il = b.input_lengths.contiguous();
  p.max_time = 14, p.batch = 4, p.num_classes = 6, p.input = lp.data_ptr(), p.dtype = ctc::DType::kFloat64;
  p.stride_t = lp.stride(0), p.stride_n = lp.stride(1), p.stride_c = lp.stride(2);
  p.input_lengths = il.data_ptr<int64_t>();
  at::Tensor tokens = at::empty({4, 14}, at::kLong), lengths = at::empty({4}, at::kLong),
             frames = at::empty({4, 14}, at::kLong);
  ctc::cpu_greedy_decode(p, tokens.data_ptr<int64_t>(), lengths.data_ptr<int64_t>(), frames.data_ptr<int64_t>());
  EXPECT_TRUE(at::equal(got.tokens, tokens) && at::equal(got.lengths, lengths) && at::equal(got.frames, frames));
  // On CUDA, lengths on the device are clamped (no sync); on the host they are checked.
  EXPECT_THROW(ctc::greedy_decode(lp, at::tensor({15, 9, 12, 10})), c10::ValueError);
}

}  // namespace
