// Which kernels run the CUDA engine's serial-in-time recurrences (alpha, and
// beta with the state posteriors). Host-only and torch-free.
//
//   kWarp:  one warp per sample, each lane holding k consecutive states in
//           registers, neighbours through warp shuffles, no block barrier
//           (warp_recurrence_kernels.cuh). For S' = 2L + 1 <= 32 * 8 = 256
//           states, that is target lengths up to 127.
//   kBlock: one thread block per sample, rows in global memory, a barrier
//           every frame (recurrence_kernels.cuh). Any length.
//   kAuto:  kWarp where max_states fits, else kBlock (the cost model of
//           docs/cuda-kernels.md predicts the warp kernels faster at every K;
//           not measured on a GPU yet). The environment variable
//           TORCH_CTC_CUDA_RECURRENCE=block|warp|auto overrides it (how
//           benchmarks/compare.py times the paths against each other).
//
// Both paths write the same alpha rows and posteriors, so a forward on one
// and a backward on the other agree.
#pragma once

#include <cstdint>

namespace ctc::cuda {

enum class RecurrencePath { kAuto, kBlock, kWarp };

// States per lane of the warp kernels: the smallest of 1, 2, 4, 8 with
// 32 * k >= max_states, or 0 when max_states exceeds 256.
int warp_states_per_lane(int64_t max_states);

// The path that runs for `requested` at this max_states: kBlock or kWarp.
// kAuto reads TORCH_CTC_CUDA_RECURRENCE (unset: auto). Throws ctc::Error for
// an unknown value of the variable, and for kWarp (asked for, or set in the
// variable) when max_states does not fit a warp.
RecurrencePath resolve_recurrence_path(RecurrencePath requested, int64_t max_states);

const char* recurrence_path_name(RecurrencePath path);

}  // namespace ctc::cuda
