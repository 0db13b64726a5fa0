// The engine's chunks on torch's intra-op threads (parallel.cpp).
#pragma once

#include <cstdint>
#include <functional>

namespace torch_ctc {

// Spreads chunks over torch.get_num_threads() threads, in order, to whichever
// is free; serial inside another parallel region. See parallel.cpp.
void torch_parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body);

}  // namespace torch_ctc
