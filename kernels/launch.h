// Every kernel launch of the CUDA engine goes through launch(). It checks the
// limits a GPU enforces up front, so a bad configuration is a clear error
// naming the kernel on either build; opts into more than 48 KiB of dynamic
// shared memory; launches on the caller's stream; and checks the launch.
// Under the CUDA simulator the same call runs the kernel on the CPU
// (kernels/sim). This is the only place a <<<...>>> launch is written.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "ctc/error.h"
#include "device.h"
#include "launch_check.h"
#if defined(CTC_CUDA_SIM)
#include "sim/scheduler.h"
#endif

namespace ctc::cuda {

struct LaunchConfig {
  const char* kernel;  // its name, for errors
  dim3 grid, block;
  size_t shared_bytes = 0;  // dynamic shared memory per block
  cudaStream_t stream = nullptr;
  int max_threads = 1024;  // the kernel's __launch_bounds__, where it declares one
};

// Blocks for a grid-stride loop over `items`: enough for one item a thread,
// capped at 2^20 blocks (the loop covers the rest).
inline int grid_stride_blocks(int64_t items, int threads) {
  const int64_t wanted = (items + threads - 1) / threads;
  return static_cast<int>(std::clamp<int64_t>(wanted, 1, int64_t{1} << 20));
}

// Per-block shared memory: what every kernel may use, and the most sm_90 grants
// on opt-in (227 KiB; sm_80 grants 163 KiB, so more needs a check of the device).
constexpr size_t kDefaultSharedBytes = size_t{48} << 10;
constexpr size_t kMaxOptInSharedBytes = 232448;

inline void check_launch_config(const LaunchConfig& c) {
  auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kResource, c.kernel, std::string("torch_ctc: launch of ") + c.kernel + ": " + what);
  };
  const uint64_t threads = uint64_t{c.block.x} * c.block.y * c.block.z;
  if (threads == 0 || uint64_t{c.grid.x} * c.grid.y * c.grid.z == 0) fail("an empty grid or block");
  if (c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64 || threads > 1024)
    fail("a block of " + std::to_string(threads) + " threads; the limit is 1024 (and 64 in z)");
  if (threads > static_cast<uint64_t>(c.max_threads))
    fail("a block of " + std::to_string(threads) + " threads; its __launch_bounds__ allow " +
         std::to_string(c.max_threads));
  if (c.grid.x > 2147483647u || c.grid.y > 65535 || c.grid.z > 65535)
    fail("a grid of (" + std::to_string(c.grid.x) + ", " + std::to_string(c.grid.y) + ", " +
         std::to_string(c.grid.z) + ") blocks; the limits are 2^31 - 1 in x and 65535 in y and z");
  if (c.shared_bytes > kMaxOptInSharedBytes)
    fail(std::to_string(c.shared_bytes) + " bytes of shared memory per block; the most a GPU grants is " +
         std::to_string(kMaxOptInSharedBytes));
}

template <typename... Params, typename... Args>
void launch(const LaunchConfig& c, void (*kernel)(Params...), Args&&... args) {
  check_launch_config(c);
#if defined(CTC_CUDA_SIM)
  sim::run_kernel({c.kernel, c.grid, c.block, c.shared_bytes}, [&] { kernel(args...); });
#else
  if (c.shared_bytes > kDefaultSharedBytes)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(c.shared_bytes)),
               c.kernel);
  kernel<<<c.grid, c.block, c.shared_bytes, c.stream>>>(std::forward<Args>(args)...);
#endif
  check_launch(c.kernel);
}

}  // namespace ctc::cuda
