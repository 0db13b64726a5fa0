// The CUDA simulator itself (kernels/sim): built-ins, barriers, warp
// primitives, atomics and the schedule, and the errors it reports for what a
// GPU would punish. The kernels here are test kernels, launched through the
// engine's own launch helper (kernels/launch.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "ctc/error.h"
#include "launch.h"
#include "sim/scheduler.h"

namespace {

using ctc::cuda::launch;
using ctc::cuda::LaunchConfig;

// Runs `fn` and returns the message of the ctc::Error it throws ("" if none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ctc::Error& e) {
    return e.what();
  }
  return "";
}

__global__ void write_indices(int* out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[block * blockDim.x * blockDim.y * blockDim.z + thread] = static_cast<int>(block * 1000 + thread);
}

TEST(SimRuntime, BuiltinsCoverEveryThreadOfEveryBlock) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<int> out(12 * 24, -1);
  launch({"write_indices", grid, block}, write_indices, out.data());
  for (int b = 0; b < 12; ++b)
    for (int t = 0; t < 24; ++t) EXPECT_EQ(out[b * 24 + t], b * 1000 + t);
}

constexpr int kReverseThreads = 96;

__global__ void reverse_in_shared(const int* in, int* out) {
  __shared__ int tile[kReverseThreads];
  const int t = static_cast<int>(threadIdx.x);
  tile[t] = in[blockIdx.x * kReverseThreads + t];
  __syncthreads();
  out[blockIdx.x * kReverseThreads + t] = tile[kReverseThreads - 1 - t];
}

TEST(SimRuntime, SyncthreadsOrdersSharedMemory) {
  std::vector<int> in(2 * kReverseThreads), out(in.size());
  std::iota(in.begin(), in.end(), 0);
  for (uint64_t seed : {0, 1, 2}) {
    ctc::sim::set_schedule_seed(seed);
    launch({"reverse_in_shared", 2, kReverseThreads}, reverse_in_shared, in.data(), out.data());
    for (int b = 0; b < 2; ++b)
      for (int t = 0; t < kReverseThreads; ++t)
        EXPECT_EQ(out[b * kReverseThreads + t], b * kReverseThreads + kReverseThreads - 1 - t);
  }
  ctc::sim::set_schedule_seed(0);
}

__global__ void warp_primitives(int* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const unsigned full = 0xffffffffu;
  int* row = out + threadIdx.x * 8;
  row[0] = __shfl_sync(full, lane * 10, 3);             // broadcast lane 3
  row[1] = __shfl_up_sync(full, lane, 2);               // lane - 2, own value below 2
  row[2] = __shfl_down_sync(full, lane, 5, 16);         // lane + 5 within halves of 16
  int sum = lane;
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(full, sum, offset);
  row[3] = sum;                                          // butterfly sum of 0..31
  row[4] = static_cast<int>(__ballot_sync(full, lane % 3 == 0));
  row[5] = __any_sync(full, lane == 7);
  row[6] = __all_sync(full, lane < 31);
  __syncwarp();
  row[7] = static_cast<int>(__activemask());  // the lanes that have not returned: all, before the next __syncwarp
  __syncwarp();
}

TEST(SimRuntime, WarpPrimitivesFollowCudaSemantics) {
  std::vector<int> out(64 * 8);
  launch({"warp_primitives", 1, 64}, warp_primitives, out.data());
  unsigned every_third = 0;
  for (int lane = 0; lane < 32; lane += 3) every_third |= 1u << lane;
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    const int* row = &out[t * 8];
    EXPECT_EQ(row[0], 30);
    EXPECT_EQ(row[1], lane >= 2 ? lane - 2 : lane);
    EXPECT_EQ(row[2], lane % 16 + 5 < 16 ? lane + 5 : lane);
    EXPECT_EQ(row[3], 31 * 32 / 2);
    EXPECT_EQ(static_cast<unsigned>(row[4]), every_third);
    EXPECT_EQ(row[5], 1);
    EXPECT_EQ(row[6], 0);
    EXPECT_EQ(static_cast<unsigned>(row[7]), 0xffffffffu);
  }
}

__global__ void half_warp_shuffles(int* out) {
  // Two disjoint groups of one warp, each with its own mask.
  const int lane = static_cast<int>(threadIdx.x);
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  out[lane] = __shfl_sync(mask, lane, lane < 16 ? 0 : 16);
}

TEST(SimRuntime, DisjointMasksInOneWarp) {
  std::vector<int> out(32);
  launch({"half_warp_shuffles", 1, 32}, half_warp_shuffles, out.data());
  for (int lane = 0; lane < 32; ++lane) EXPECT_EQ(out[lane], lane < 16 ? 0 : 16);
}

__global__ void count_with_atomics(int* counter, float* total, unsigned long long* big) {
  atomicAdd(counter, 1);
  atomicAdd(total, 0.5f);
  atomicMax(big, static_cast<unsigned long long>(blockIdx.x * blockDim.x + threadIdx.x));
}

TEST(SimRuntime, Atomics) {
  int counter = 0;
  float total = 0;
  unsigned long long big = 0;
  launch({"count_with_atomics", 3, 100}, count_with_atomics, &counter, &total, &big);
  EXPECT_EQ(counter, 300);
  EXPECT_EQ(total, 150.0f);
  EXPECT_EQ(big, 299u);
}

__global__ void take_tickets(int* counter, int* tickets) {
  tickets[threadIdx.x] = atomicAdd(counter, 1);
}

TEST(SimRuntime, ScheduleSeedChangesTheOrderThreadsRunIn) {
  std::vector<int> tickets(64);
  int counter = 0;
  launch({"take_tickets", 1, 64}, take_tickets, &counter, tickets.data());
  std::vector<int> in_order(64);
  std::iota(in_order.begin(), in_order.end(), 0);
  EXPECT_EQ(tickets, in_order);  // seed 0: round robin
  ctc::sim::set_schedule_seed(12345);
  counter = 0;
  launch({"take_tickets", 1, 64}, take_tickets, &counter, tickets.data());
  ctc::sim::set_schedule_seed(0);
  EXPECT_NE(tickets, in_order);
  std::sort(tickets.begin(), tickets.end());
  EXPECT_EQ(tickets, in_order);
}

__global__ void noop() {}

TEST(SimRuntime, LaunchLimitsAreErrorsNamingTheKernel) {
  EXPECT_NE(error_of([] { launch({"noop", 1, 1025}, noop); }).find("launch of noop: a block of 1025 threads"),
            std::string::npos);
  EXPECT_NE(error_of([] { launch({"noop", 1, dim3(1, 1, 65)}, noop); }).find("noop"), std::string::npos);
  LaunchConfig bounded{"noop", 1, 256};
  bounded.max_threads = 128;
  EXPECT_NE(error_of([&] { launch(bounded, noop); }).find("its __launch_bounds__ allow 128"), std::string::npos);
  EXPECT_NE(error_of([] { launch({"noop", dim3(1, 70000), 32}, noop); }).find("65535"), std::string::npos);
  LaunchConfig big_shared{"noop", 1, 32, size_t{300} << 10};
  EXPECT_NE(error_of([&] { launch(big_shared, noop); }).find("shared memory"), std::string::npos);
  EXPECT_NE(error_of([] { launch({"noop", 0, 32}, noop); }).find("empty"), std::string::npos);
}

__global__ void barrier_after_early_return() {
  if (threadIdx.x >= 16) return;
  __syncthreads();
}

__global__ void barrier_then_early_return() {
  if (threadIdx.x < 16) __syncthreads();
}

__global__ void barriers_at_two_sites() {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
}

TEST(SimRuntime, DivergentBarriersAreReported) {
  std::string e = error_of([] { launch({"barrier_after_early_return", 1, 32}, barrier_after_early_return); });
  EXPECT_NE(e.find("barrier_after_early_return"), std::string::npos) << e;
  EXPECT_NE(e.find("can never"), std::string::npos) << e;
  e = error_of([] { launch({"barrier_then_early_return", 1, 32}, barrier_then_early_return); });
  EXPECT_NE(e.find("can never pass it"), std::string::npos) << e;
  e = error_of([] { launch({"barriers_at_two_sites", 1, 32}, barriers_at_two_sites); });
  EXPECT_NE(e.find("divergent"), std::string::npos) << e;
}

__global__ void shuffle_leaving_out_the_caller(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1, 0); }
__global__ void shuffle_with_missing_lanes(int* out) { out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0); }
__global__ void shuffle_reading_outside_the_mask(int* out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1, 20);  // width 32: lane 20 is not in the mask
}
__global__ void warp_and_block_deadlock(int* out) {
  if (threadIdx.x == 0) out[0] = __shfl_sync(0x3u, 1, 0);  // lane 1 never comes
  else __syncthreads();
}

TEST(SimRuntime, WarpPrimitiveMisuseIsReported) {
  std::vector<int> out(32);
  std::string e = error_of([&] { launch({"shuffle_leaving_out_the_caller", 1, 32}, shuffle_leaving_out_the_caller, out.data()); });
  EXPECT_NE(e.find("leaves out the calling lane"), std::string::npos) << e;
  e = error_of([&] { launch({"shuffle_with_missing_lanes", 1, 16}, shuffle_with_missing_lanes, out.data()); });
  EXPECT_NE(e.find("do not exist"), std::string::npos) << e;
  e = error_of([&] { launch({"shuffle_reading_outside_the_mask", 1, 16}, shuffle_reading_outside_the_mask, out.data()); });
  EXPECT_NE(e.find("not in the mask"), std::string::npos) << e;
  e = error_of([&] { launch({"warp_and_block_deadlock", 1, 32}, warp_and_block_deadlock, out.data()); });
  EXPECT_NE(e.find("deadlock"), std::string::npos) << e;
}

TEST(SimRuntime, BlockOfMaximumSizeRuns) {
  std::vector<int> out(1024, -1);
  launch({"write_indices", 1, 1024}, write_indices, out.data());
  for (int t = 0; t < 1024; ++t) EXPECT_EQ(out[t], t);
}

}  // namespace
