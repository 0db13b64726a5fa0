// Kernels that are wrong on purpose, one per mode, to show that the
// sanitizer builds of the simulator catch them (tests/cuda_sim/CMakeLists.txt
// registers each with the report it must produce):
//   out_of_bounds   a thread writes one element past the end of a heap buffer (ASan)
//   race            a shared-memory write and a read by another thread with no
//                   barrier between them (ThreadSanitizer)
//   missing_barrier the same race through global memory, as a recurrence with
//                   its per-step __syncthreads() removed would have it (ThreadSanitizer)
//   clean           the racy kernels with their barriers: no report, exit 0
#include <cstdio>
#include <cstring>
#include <vector>

#include "launch.h"

namespace {

using ctc::cuda::launch;

__global__ void write_past_the_end(float* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;  // should be i < n
}

template <bool kBarrier>
__global__ void publish_in_shared(int* out) {
  __shared__ int value;
  if (threadIdx.x == 0) value = 42;
  if (kBarrier) __syncthreads();
  if (threadIdx.x == 1) out[0] = value;
}

// Each step reads the neighbours' values of the previous step from global memory.
template <bool kBarrier>
__global__ void rows_without_barrier(float* rows, int steps) {
  const int s = static_cast<int>(threadIdx.x), width = static_cast<int>(blockDim.x);
  rows[s] = static_cast<float>(s);
  for (int t = 1; t < steps; ++t) {
    if (kBarrier) __syncthreads();
    const float* prev = rows + (t - 1) * width;
    rows[t * width + s] = prev[s] + (s > 0 ? prev[s - 1] : 0.0f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "out_of_bounds") == 0) {
    std::vector<float> out(100);
    launch({"write_past_the_end", 1, 128}, write_past_the_end, out.data(), 100);
  } else if (std::strcmp(mode, "race") == 0) {
    int out = 0;
    launch({"publish_in_shared<false>", 1, 32}, publish_in_shared<false>, &out);
  } else if (std::strcmp(mode, "missing_barrier") == 0) {
    std::vector<float> rows(8 * 64);
    launch({"rows_without_barrier<false>", 1, 64}, rows_without_barrier<false>, rows.data(), 8);
  } else if (std::strcmp(mode, "clean") == 0) {
    int out = 0;
    launch({"publish_in_shared<true>", 1, 32}, publish_in_shared<true>, &out);
    std::vector<float> rows(8 * 64);
    launch({"rows_without_barrier<true>", 1, 64}, rows_without_barrier<true>, rows.data(), 8);
    if (out != 42) return 1;
  } else {
    std::fprintf(stderr, "usage: sim_probe out_of_bounds|race|missing_barrier|clean\n");
    return 2;
  }
  std::puts("sim_probe: done");
  return 0;
}
