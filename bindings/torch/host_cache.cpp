// A size-keyed cache of large host blocks for the CPU operators' workspace and
// gradient (why: torch_ctc/host_cache.h). It is a c10::Allocator, so tensors
// built on it are ordinary CPU tensors whose storage returns its block here
// when the last reference goes.
#include "host_cache.h"

#include <ATen/EmptyTensor.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <c10/util/strides.h>
#include <pthread.h>
#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace torch_ctc {
namespace {

// Smaller blocks come from torch's CPU allocator: glibc's heap already reuses
// them without fresh page faults.
constexpr size_t kMinCachedBytes = size_t{1} << 20;
// Cached blocks are whole, aligned transparent huge pages.
constexpr size_t kHugePage = size_t{2} << 20;
constexpr int64_t kDefaultLimitMiB = 1024;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

int64_t limit_from_environment() {
  const char* value = std::getenv("TORCH_CTC_HOST_CACHE_MB");
  if (value == nullptr || *value == '\0') return kDefaultLimitMiB << 20;
  char* end = nullptr;
  const long long mib = std::strtoll(value, &end, 10);
  TORCH_CHECK_VALUE(end != value && *end == '\0' && mib >= 0,
                    "torch_ctc: TORCH_CTC_HOST_CACHE_MB must be a whole number of MiB >= 0 (0 turns the host "
                    "cache off), got '", value, "'");
  return static_cast<int64_t>(mib) << 20;
}

struct Block {
  void* data;
  size_t bytes;
};

class HostBlockCache final : public c10::Allocator {
 public:
  // Never destroyed: tensors may free their blocks during static destruction.
  static HostBlockCache& instance() {
    static HostBlockCache* cache = new HostBlockCache();
    return *cache;
  }

  // A fork while another thread holds the mutex (a DataLoader forking its
  // workers while a CTC call frees a block) would leave the child's copy
  // locked forever. The fork handlers hold it across the fork, so both
  // processes start with it free.
  HostBlockCache() : limit_(limit_from_environment()) {
    pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                   [] { instance().mutex_.unlock(); });
  }

  bool enabled() const { return limit_ > 0; }

  c10::DataPtr allocate(size_t bytes) override {
    if (bytes < kMinCachedBytes) return c10::GetCPUAllocator()->allocate(bytes);
    const size_t wanted = round_up(bytes, kHugePage);
    void* data = take(wanted);
    if (data == nullptr) data = fresh_block(wanted);
    return {data, new Block{data, wanted}, &HostBlockCache::release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  void empty() {
    std::multimap<size_t, void*> blocks;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_bytes_ = 0;
    }
    for (const auto& entry : blocks) std::free(entry.second);
  }

  ctc::HostCacheInfo info() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return {cached_bytes_, limit_, hits_, misses_};
  }

 private:
  // The smallest cached block that fits, unless it is more than twice the
  // request (a huge block is not tied up by a small tensor).
  void* take(size_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first > 2 * bytes) {
      ++misses_;
      return nullptr;
    }
    void* data = it->second;
    cached_bytes_ -= static_cast<int64_t>(it->first);
    free_.erase(it);
    ++hits_;
    return data;
  }

  void* fresh_block(size_t bytes) {
    void* data = nullptr;
    if (posix_memalign(&data, kHugePage, bytes) != 0) {
      empty();  // what we hold may be what the system lacks
      if (posix_memalign(&data, kHugePage, bytes) != 0)
        TORCH_CHECK_WITH(OutOfMemoryError, false, "torch_ctc: out of host memory allocating ", bytes, " bytes");
    }
    // Advice only: without transparent huge pages this is a no-op.
    madvise(data, bytes, MADV_HUGEPAGE);
    return data;
  }

  static void release(void* context) {
    Block* block = static_cast<Block*>(context);
    instance().keep_or_free(block->data, block->bytes);
    delete block;
  }

  void keep_or_free(void* data, size_t bytes) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + static_cast<int64_t>(bytes) <= limit_) {
        free_.emplace(bytes, data);
        cached_bytes_ += static_cast<int64_t>(bytes);
        return;
      }
    }
    std::free(data);
  }

 private:
  const int64_t limit_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  int64_t cached_bytes_ = 0;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace

at::Tensor empty_cached_host(at::IntArrayRef sizes, at::IntArrayRef strides, at::ScalarType dtype) {
  HostBlockCache& cache = HostBlockCache::instance();
  if (!cache.enabled()) return at::detail::empty_strided_cpu(sizes, strides, dtype);
  return at::detail::empty_strided_generic(sizes, strides, &cache, c10::DispatchKeySet(c10::DispatchKey::CPU), dtype);
}

at::Tensor empty_cached_host_like(const at::Tensor& like) {
  if (like.is_non_overlapping_and_dense()) return empty_cached_host(like.sizes(), like.strides(), like.scalar_type());
  return empty_cached_host(like.sizes(), c10::contiguous_strides(like.sizes()), like.scalar_type());
}

}  // namespace torch_ctc

namespace ctc {

void empty_host_cache() { torch_ctc::HostBlockCache::instance().empty(); }

HostCacheInfo host_cache_info() { return torch_ctc::HostBlockCache::instance().info(); }

}  // namespace ctc
