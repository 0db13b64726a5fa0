// The CPU operators' cache of large host buffers.
//
// The CPU forward pass allocates a workspace (alpha, kept for backward) and
// the backward pass a gradient as large as the input. Fresh large blocks come
// from mmap, so every call used to pay a page fault per 4 KiB and an munmap
// afterwards -- a quarter of the op's time at the benchmark shapes. Blocks of
// at least 1 MiB therefore come from a small cache instead: when their tensor
// is freed they are kept (up to a byte limit) and handed to the next call of a
// similar size, already mapped. Fresh blocks are 2 MiB aligned and advised as
// transparent huge pages, so even a first call faults 512 times less often.
//
// The limit is 1 GiB by default; the environment variable
// TORCH_CTC_HOST_CACHE_MB (read once, at the first allocation) changes it, and
// 0 turns the cache off. Python: torch_ctc.empty_host_cache(),
// torch_ctc.host_cache_info().
#pragma once

#include <cstdint>

namespace ctc {

struct HostCacheInfo {
  int64_t cached_bytes = 0;  // held for reuse now (not in any tensor)
  int64_t limit_bytes = 0;   // most that is ever held for reuse
  int64_t hits = 0;          // allocations served from the cache
  int64_t misses = 0;        // allocations that needed fresh memory
};

// Returns every cached block to the system.
void empty_host_cache();
HostCacheInfo host_cache_info();

}  // namespace ctc
