// The CUDA engine's index kernels (kernels/index_kernels.cu) on their own, in
// the simulator, against host references: sanitize_indices (clamping, the
// scan of concatenated lengths, cutting samples to the label slots) and the
// per-sample class index the gradient pass gathers through.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "cuda_engine.h"
#include "index_kernels.h"

namespace {

struct Safe {
  std::vector<int64_t> input_lengths, target_lengths, offsets;
};

Safe sanitize(const std::vector<int64_t>& il, const std::vector<int64_t>& tl, int64_t T, int64_t slots,
              int64_t padded_width) {
  const int64_t N = static_cast<int64_t>(il.size());
  Safe out{std::vector<int64_t>(N, -99), std::vector<int64_t>(N, -99), std::vector<int64_t>(N, -99)};
  std::vector<char> temp(ctc::cuda::sanitize_temp_bytes(N));
  ctc::cuda::sanitize_indices(il.data(), tl.data(), N, T, slots, padded_width,
                              {out.input_lengths.data(), out.target_lengths.data(), out.offsets.data()}, temp.data(),
                              temp.size(), nullptr);
  return out;
}

// What sanitize_indices promises, written out on the host.
Safe expected(const std::vector<int64_t>& il, const std::vector<int64_t>& tl, int64_t T, int64_t slots,
              int64_t padded_width) {
  Safe e;
  int64_t offset = 0;
  for (size_t n = 0; n < il.size(); ++n) {
    e.input_lengths.push_back(std::clamp<int64_t>(il[n], 0, T));
    int64_t length = std::clamp<int64_t>(tl[n], 0, padded_width >= 0 ? padded_width : slots);
    if (padded_width >= 0) {
      e.offsets.push_back(static_cast<int64_t>(n) * padded_width);
    } else {
      const int64_t start = std::min(offset, slots);
      offset += length;
      length = std::min(length, slots - start);
      e.offsets.push_back(start);
    }
    e.target_lengths.push_back(length);
  }
  return e;
}

TEST(IndexKernelsSim, SanitizeIndicesClampsAndScans) {
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<int64_t> wild(-5, 40);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t N = 1 + trial % 7, T = trial % 9, slots = trial % 25;
    const int64_t padded_width = trial % 2 ? -1 : trial % 6;
    std::vector<int64_t> il(N), tl(N);
    for (int64_t n = 0; n < N; ++n) il[n] = wild(rng), tl[n] = wild(rng);
    const int64_t slots_used = padded_width >= 0 ? N * padded_width : slots;
    const Safe got = sanitize(il, tl, T, slots_used, padded_width);
    const Safe want = expected(il, tl, T, slots_used, padded_width);
    EXPECT_EQ(got.input_lengths, want.input_lengths) << trial;
    EXPECT_EQ(got.target_lengths, want.target_lengths) << trial;
    EXPECT_EQ(got.offsets, want.offsets) << trial;
    for (int64_t n = 0; n < N; ++n) EXPECT_LE(got.offsets[n] + got.target_lengths[n], slots_used) << trial;
  }
}

TEST(IndexKernelsSim, ClassIndexListsEachClassesPositionsInOrder) {
  const int64_t C = 6, blank = 2;
  // Concatenated labels of three samples, with junk a validation-off call may carry.
  const std::vector<int64_t> targets = {1, 3, 1, 5, /**/ 4, 4, -3, 9, blank, 4, /**/ 0};
  const std::vector<int64_t> lengths = {4, 6, 1}, offsets = {0, 4, 10};
  ctc::Problem p;
  p.batch = 3;
  p.num_classes = C;
  p.blank = blank;
  p.targets = targets.data();
  p.target_offsets = offsets.data();
  p.target_lengths = lengths.data();
  p.target_slots = static_cast<int64_t>(targets.size());
  std::vector<int32_t> starts(ctc::cuda::class_starts_elems(p.batch, C), -1), positions(targets.size(), -1);
  ctc::cuda::build_class_index(p, starts.data(), positions.data(), nullptr);
  for (int64_t n = 0; n < p.batch; ++n) {
    const int32_t* s = &starts[n * (C + 1)];
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int32_t> want, got(positions.begin() + offsets[n] + s[c], positions.begin() + offsets[n] + s[c + 1]);
      for (int64_t i = 0; i < lengths[n]; ++i)
        if (targets[offsets[n] + i] == c && c != blank) want.push_back(static_cast<int32_t>(i));
      EXPECT_EQ(got, want) << "sample " << n << ", class " << c;
    }
  }
}

}  // namespace
