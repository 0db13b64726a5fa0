// The CUDA aligner and greedy decoder (kernels/align_kernels.cuh,
// greedy_kernels.cuh), run in the CUDA simulator, against the CPU aligner
// and decoder: every dtype and layout, padded and concatenated targets, blank
// anywhere, ragged lengths, infeasible samples, long targets; bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "align_engine.h"
#include "ctc/align.h"
#include "ctc/decode.h"
#include "cuda_engine.h"
#include "sim/scheduler.h"
#include "sim_problem.h"

namespace {

using ctc::DType;
using ctc::sim_test::CaseSpec;
using ctc::sim_test::Layout;

struct Alignment {
  std::vector<int64_t> labels;
  std::vector<double> scores;
};

// The problem as the CUDA binding hands it over: lengths through sanitize_indices.
struct DeviceCase {
  explicit DeviceCase(const ctc::sim_test::Case& c)
      : targets(c.targets), input_lengths(c.input_lengths), target_lengths(c.target_lengths),
        safe_input(c.spec.N), safe_target(c.spec.N), safe_offsets(c.spec.N) {
    problem = c.problem();
    std::vector<char> temp(ctc::cuda::sanitize_temp_bytes(c.spec.N));
    ctc::cuda::sanitize_indices(input_lengths.data(), target_lengths.data(), c.spec.N, c.spec.T, problem.target_slots,
                                c.padded_width, {safe_input.data(), safe_target.data(), safe_offsets.data()},
                                temp.data(), temp.size(), nullptr);
    problem.targets = targets.data();
    problem.input_lengths = safe_input.data();
    problem.target_lengths = safe_target.data();
    problem.target_offsets = safe_offsets.data();
  }
  ctc::Problem problem;
  std::vector<int64_t> targets, input_lengths, target_lengths, safe_input, safe_target, safe_offsets;
};

template <typename Acc>
Alignment read(const std::vector<int64_t>& labels, const std::vector<Acc>& scores) {
  return {labels, std::vector<double>(scores.begin(), scores.end())};
}

Alignment align_cpu(const ctc::sim_test::Case& c, ctc::AlignMemory mode) {
  const ctc::Problem p = c.problem();
  std::vector<int64_t> labels(static_cast<size_t>(p.batch * p.max_time));
  Alignment out;
  ctc::dispatch_dtype(p.dtype, [&](auto, auto acc) {
    std::vector<decltype(acc)> scores(labels.size());
    ctc::cpu_forced_align(p, mode, labels.data(), scores.data());
    out = read(labels, scores);
  });
  return out;
}

Alignment align_sim(const ctc::sim_test::Case& c) {
  DeviceCase d(c);
  const ctc::Problem& p = d.problem;
  std::vector<int64_t> labels(static_cast<size_t>(p.batch * p.max_time));
  std::vector<uint8_t> moves(static_cast<size_t>(ctc::cuda::viterbi_move_bytes(p.max_time, p.batch, p.target_slots)));
  Alignment out;
  ctc::dispatch_dtype(p.dtype, [&](auto, auto acc) {
    using Acc = decltype(acc);
    std::vector<Acc> rows(static_cast<size_t>(ctc::cuda::viterbi_rows_elems(p.batch, p.target_slots)));
    std::vector<Acc> scores(labels.size());
    ctc::cuda::forced_align(p, c.max_states(), rows.data(), moves.data(), labels.data(), scores.data(), nullptr);
    out = read(labels, scores);
  });
  return out;
}

void expect_same_alignment(const CaseSpec& spec) {
  SCOPED_TRACE(spec.describe());
  const ctc::sim_test::Case c = ctc::sim_test::make_case(spec);
  ctc::sim::set_schedule_seed(spec.seed * 31 + 7);
  const Alignment sim = align_sim(c);
  ctc::sim::set_schedule_seed(0);
  for (ctc::AlignMemory mode : {ctc::AlignMemory::kFull, ctc::AlignMemory::kCheckpointed}) {
    const Alignment cpu = align_cpu(c, mode);
    EXPECT_EQ(sim.labels, cpu.labels);
    EXPECT_EQ(sim.scores, cpu.scores);
  }
}

const DType kDtypes[] = {DType::kFloat64, DType::kFloat32, DType::kFloat16, DType::kBFloat16};
const Layout kLayouts[] = {Layout::kTimeMajor, Layout::kBatchFirst, Layout::kClassStride, Layout::kChannelsFirst};

TEST(AlignSim, MatchesTheCpuAligner) {
  uint64_t seed = 11;
  for (DType dtype : kDtypes)
    for (Layout layout : kLayouts)
      for (bool padded : {true, false}) {
        CaseSpec s;
        s.seed = seed++;
        s.dtype = dtype;
        s.layout = layout;
        s.padded = padded;
        s.T = 2 + static_cast<int64_t>(s.seed % 17);
        s.N = 1 + static_cast<int64_t>(s.seed % 4);
        s.C = 2 + static_cast<int64_t>(s.seed % 9);
        s.blank = static_cast<int64_t>(s.seed % s.C);
        s.max_length = 1 + static_cast<int64_t>(s.seed % 6);
        s.infeasible = s.seed % 5 == 0;
        s.nan_padding = s.seed % 3 == 0;
        expect_same_alignment(s);
      }
}

TEST(AlignSim, LongTargetsLoopOverStateGroups) {
  CaseSpec s;
  s.seed = 5;
  s.dtype = DType::kFloat32;
  s.T = 2200;
  s.N = 1;
  s.C = 6;
  s.max_length = 2100;  // S' > 4096: each thread loops over several groups of four states
  s.no_repeats = true;
  expect_same_alignment(s);
}

struct Decoding {
  std::vector<int64_t> tokens, lengths, frames;
  bool operator==(const Decoding& o) const { return tokens == o.tokens && lengths == o.lengths && frames == o.frames; }
};

TEST(GreedySim, MatchesTheCpuDecoder) {
  uint64_t seed = 40;
  for (DType dtype : kDtypes)
    for (Layout layout : kLayouts) {
      CaseSpec s;
      s.seed = seed++;
      s.dtype = dtype;
      s.layout = layout;
      s.T = static_cast<int64_t>(s.seed % 23);
      s.N = 1 + static_cast<int64_t>(s.seed % 5);
      s.C = 2 + static_cast<int64_t>(s.seed % 11);
      s.blank = static_cast<int64_t>(s.seed % s.C);
      s.nan_padding = true;
      SCOPED_TRACE(s.describe());
      const ctc::sim_test::Case c = ctc::sim_test::make_case(s);
      const size_t cells = static_cast<size_t>(s.N * s.T);
      Decoding cpu{std::vector<int64_t>(cells), std::vector<int64_t>(s.N), std::vector<int64_t>(cells)};
      Decoding sim = cpu;
      ctc::cpu_greedy_decode(c.problem(), cpu.tokens.data(), cpu.lengths.data(), cpu.frames.data());
      DeviceCase d(c);
      std::vector<int32_t> labels(static_cast<size_t>(ctc::cuda::greedy_labels_elems(s.T, s.N)));
      ctc::cuda::greedy_decode(d.problem, labels.data(), sim.tokens.data(), sim.lengths.data(), sim.frames.data(),
                               nullptr);
      EXPECT_TRUE(sim == cpu);
    }
}

}  // namespace
