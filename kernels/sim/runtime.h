// The CUDA simulator's device side: what nvcc provides implicitly, for the
// host compiler. kernels/device.h includes this instead of the CUDA runtime
// when CTC_CUDA_SIM is defined; the kernels themselves are unchanged.
//
// Each CUDA thread of a block is a fiber (scheduler.cpp): threadIdx and the
// other built-ins read the running fiber's context, __syncthreads() and the
// warp primitives are rendezvous points where the fiber yields until every
// thread they wait for has arrived. The rules these enforce, and how races
// and out-of-bounds accesses are caught, are in docs/cuda-sim.md.
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

// Qualifiers. __shared__ variables are per block on a GPU; blocks run one at
// a time here, so a function-level static is the block's shared storage.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// The CUDA runtime API, as far as the engine uses it.
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
struct CUstream_st;
using cudaStream_t = CUstream_st*;
inline cudaError_t cudaGetLastError() { return cudaSuccess; }  // launches report their errors by throwing
inline const char* cudaGetErrorString(cudaError_t status) { return status == cudaSuccess ? "no error" : "error"; }

namespace ctc::sim {

// The built-in variables of the running simulated thread.
struct ThreadContext {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
const ThreadContext& current_thread();

// Rendezvous points (scheduler.cpp). `file` and `line` name the call site.
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
// The lanes of the calling warp that have not returned. (Threads run
// independently here, so there is no narrower notion of converged lanes.)
unsigned activemask();

enum class WarpOp { kIndex, kUp, kDown, kXor, kBallot, kAny, kAll };
// Every lane in `mask` passes its value; returns the value this lane reads
// (for the vote operations, the vote).
uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line);

template <typename T>
T warp_shuffle(WarpOp op, unsigned mask, T value, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move types of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_exchange(op, mask, bits, arg, width, file, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace ctc::sim

#define threadIdx (::ctc::sim::current_thread().thread_idx)
#define blockIdx (::ctc::sim::current_thread().block_idx)
#define blockDim (::ctc::sim::current_thread().block_dim)
#define gridDim (::ctc::sim::current_thread().grid_dim)
#define warpSize 32

#define __syncthreads() ::ctc::sim::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::ctc::sim::syncwarp(::ctc::sim::detail::full_mask_or(__VA_ARGS__), __FILE__, __LINE__)
#define __activemask() ::ctc::sim::activemask()
#define __shfl_sync(mask, value, lane, ...) \
  ::ctc::sim::warp_shuffle(::ctc::sim::WarpOp::kIndex, mask, value, lane, ::ctc::sim::detail::width_or(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, value, delta, ...) \
  ::ctc::sim::warp_shuffle(::ctc::sim::WarpOp::kUp, mask, value, delta, ::ctc::sim::detail::width_or(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, value, delta, ...) \
  ::ctc::sim::warp_shuffle(::ctc::sim::WarpOp::kDown, mask, value, delta, ::ctc::sim::detail::width_or(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, value, lane_mask, ...) \
  ::ctc::sim::warp_shuffle(::ctc::sim::WarpOp::kXor, mask, value, lane_mask, ::ctc::sim::detail::width_or(__VA_ARGS__), __FILE__, __LINE__)
#define __ballot_sync(mask, predicate) \
  static_cast<unsigned>(::ctc::sim::warp_exchange(::ctc::sim::WarpOp::kBallot, mask, (predicate) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, predicate) \
  static_cast<int>(::ctc::sim::warp_exchange(::ctc::sim::WarpOp::kAny, mask, (predicate) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, predicate) \
  static_cast<int>(::ctc::sim::warp_exchange(::ctc::sim::WarpOp::kAll, mask, (predicate) ? 1 : 0, 0, 32, __FILE__, __LINE__))

namespace ctc::sim::detail {
constexpr int width_or() { return 32; }
constexpr int width_or(int width) { return width; }
constexpr unsigned full_mask_or() { return 0xffffffffu; }
constexpr unsigned full_mask_or(unsigned mask) { return mask; }
}  // namespace ctc::sim::detail

// Atomics: relaxed, as device atomics are without a fence, and visible to
// ThreadSanitizer as atomics.
template <typename T>
T atomicAdd(T* address, T value) {
  if constexpr (std::is_floating_point_v<T>) {
    T old, desired;
    __atomic_load(address, &old, __ATOMIC_RELAXED);
    do {
      desired = old + value;
    } while (!__atomic_compare_exchange(address, &old, &desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
  } else {
    return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
  }
}
template <typename T>
T atomicSub(T* address, T value) { return __atomic_fetch_sub(address, value, __ATOMIC_RELAXED); }
template <typename T>
T atomicExch(T* address, T value) { return __atomic_exchange_n(address, value, __ATOMIC_RELAXED); }
template <typename T>
T atomicCAS(T* address, T compare, T value) {
  __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
template <typename T>
T atomicMax(T* address, T value) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (old < value && !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T>
T atomicMin(T* address, T value) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (value < old && !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <typename T>
T atomicAnd(T* address, T value) { return __atomic_fetch_and(address, value, __ATOMIC_RELAXED); }
template <typename T>
T atomicOr(T* address, T value) { return __atomic_fetch_or(address, value, __ATOMIC_RELAXED); }
template <typename T>
T atomicXor(T* address, T value) { return __atomic_fetch_xor(address, value, __ATOMIC_RELAXED); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// Device math the kernels may use. The fast intrinsics are exact here: the
// simulator cannot show their error on a GPU (docs/cuda-sim.md).
inline float __expf(float x) { return ::expf(x); }
inline float __logf(float x) { return ::logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
