// The CUDA simulator's stand-ins for the CUB primitives of
// kernels/cub_adapters.cuh, with CUB's rules made checkable.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <type_traits>

#include "runtime.h"

namespace ctc::sim {

// Block-wide reduction over exactly kThreads threads (1-D). Each thread
// writes its value, a barrier, then thread 0 folds them in thread order. As
// in CUB, the storage must not be reused before another __syncthreads():
// thread 0 may still be reading it, and ThreadSanitizer reports the race.
template <typename T, int kThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T values[kThreads];
  };

  explicit BlockReduce(TempStorage& storage) : storage_(storage) {
    if (blockDim.x * blockDim.y * blockDim.z != static_cast<unsigned>(kThreads) || blockDim.y != 1 ||
        blockDim.z != 1) {
      std::fprintf(stderr, "torch_ctc: CUDA simulator: BlockReduce<%d> in a block of (%u, %u, %u) threads\n",
                   kThreads, blockDim.x, blockDim.y, blockDim.z);
      std::abort();
    }
  }

  template <typename Op>
  T Reduce(T input, Op op) {
    storage_.values[threadIdx.x] = input;
    __syncthreads();
    if (threadIdx.x != 0) return poison();  // CUB: the result is only valid in thread 0
    T total = storage_.values[0];
    for (int i = 1; i < kThreads; ++i) total = op(total, storage_.values[i]);
    return total;
  }

  T Sum(T input) {
    return Reduce(input, [](T a, T b) { return a + b; });
  }

 private:
  static T poison() {
    if constexpr (std::is_floating_point_v<T>) return std::numeric_limits<T>::quiet_NaN();
    else return static_cast<T>(0x5a5a5a5a);
  }
  TempStorage& storage_;
};

// Exclusive prefix sum of `items` values, on the host (device memory is host
// memory here, and launches are synchronous).
template <typename T>
cudaError_t exclusive_sum(void* temp, size_t& temp_bytes, const T* in, T* out, int items, cudaStream_t /*stream*/) {
  if (temp == nullptr) {
    temp_bytes = 1;
    return cudaSuccess;
  }
  T running{};
  for (int i = 0; i < items; ++i) {
    const T value = in[i];
    out[i] = running;
    running = running + value;
  }
  return cudaSuccess;
}

}  // namespace ctc::sim
