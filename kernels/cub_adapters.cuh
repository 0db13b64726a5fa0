// The CUB primitives the CUDA engine uses, behind one name each: the real CUB
// under nvcc, the CUDA simulator's stand-ins (kernels/sim/cub.h) in the host
// build. Kernels use these names, never cub:: directly.
//
// BlockReduce<T, kThreads>: as cub::BlockReduce (1-D blocks of exactly
// kThreads threads). Its TempStorage may live in a union; it needs a
// __syncthreads() before it is reused. Reduce and Sum return the result in
// thread 0 only (the simulator gives the other threads NaN or a poison value).
// exclusive_sum: as cub::DeviceScan::ExclusiveSum, a null `temp` is a size query.
#pragma once

#include <cstddef>

#include "device.h"

#if defined(CTC_CUDA_SIM)
#include "sim/cub.h"
#else
#include <cub/block/block_reduce.cuh>
#include <cub/device/device_scan.cuh>
#endif

namespace ctc::cuda {

#if defined(CTC_CUDA_SIM)
template <typename T, int kThreads>
using BlockReduce = sim::BlockReduce<T, kThreads>;
#else
template <typename T, int kThreads>
using BlockReduce = cub::BlockReduce<T, kThreads>;
#endif

template <typename T>
cudaError_t exclusive_sum(void* temp, size_t& temp_bytes, const T* in, T* out, int items, cudaStream_t stream) {
#if defined(CTC_CUDA_SIM)
  return sim::exclusive_sum(temp, temp_bytes, in, out, items, stream);
#else
  return cub::DeviceScan::ExclusiveSum(temp, temp_bytes, in, out, items, stream);
#endif
}

}  // namespace ctc::cuda
