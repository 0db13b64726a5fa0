// CTC_HD marks functions shared by the CPU engine and the CUDA kernels: plain
// inline on the host compiler, __host__ __device__ under nvcc.
#pragma once

#if defined(__CUDACC__)
#define CTC_HD __host__ __device__ __forceinline__
#else
#define CTC_HD inline
#endif
