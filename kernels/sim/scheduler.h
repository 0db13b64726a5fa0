// The CUDA simulator's host side: running one kernel launch, thread by
// thread, on the CPU (scheduler.cpp). kernels/launch.h calls run_kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "runtime.h"

namespace ctc::sim {

struct KernelLaunch {
  const char* name;  // the kernel, for errors
  dim3 grid, block;
  size_t shared_bytes = 0;  // dynamic shared memory
};

// Runs `body` once per thread of every block of the grid, each thread a fiber
// with its own built-ins. Blocks run one after another; within a block the
// threads run until each reaches a rendezvous (__syncthreads, a warp
// primitive) or returns. Throws ctc::Error naming the kernel when the launch
// does what a GPU would punish: a __syncthreads() or warp primitive that not
// every thread it waits for reaches, threads of a block at different
// __syncthreads() calls, a warp primitive whose mask leaves out the calling
// lane or names lanes that do not exist.
void run_kernel(const KernelLaunch& launch, const std::function<void()>& body);

// The order in which runnable threads (and blocks) are picked. Seed 0, the
// default, is round robin in thread order; any other seed picks at random
// from it, so a test can run the same launch under different schedules.
// TORCH_CTC_SIM_SEED in the environment sets the initial seed.
void set_schedule_seed(uint64_t seed);
uint64_t schedule_seed();

}  // namespace ctc::sim
