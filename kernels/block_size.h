// Thread-block size for the per-sample recurrence kernels: one thread per
// state up to 1024, rounded to whole warps; larger targets loop over states.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ctc::cuda {

inline int recurrence_block_size(int64_t max_states) {
  const int64_t warps = (std::max<int64_t>(max_states, 1) + 31) / 32;
  return static_cast<int>(std::min<int64_t>(warps, 32) * 32);
}

}  // namespace ctc::cuda
