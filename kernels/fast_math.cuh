// The exp and log policy of the CUDA warp kernels (math::log_add_with,
// combine_moves, state_posterior_with): for float, the special-function
// unit's approximations __expf and __logf (MUFU.EX2 / MUFU.LG2 and a
// multiply: 2 instructions each, against about 10 for expf and 20-30 for
// logf); for double, the accurate ones, as math::PreciseMath.
//
// Error (CUDA C++ Programming Guide, intrinsic functions): __expf(x) is
// within 2 + floor(|1.173 x|) ulp; __logf(x) within 2^-21.41 absolute for x
// in [0.5, 2], 3 ulp elsewhere. In log-sum-exp the largest term is exp(0) = 1
// (exact) and the sum is in [1, 3], so one step adds at most about 1e-6 of
// absolute error to a cell. float32 itself rounds a cell of magnitude 16 or
// more by 1e-6 or more (its ulp), and alpha and beta reach hundreds: the
// approximations add less than the accumulator's own rounding. In the CUDA
// simulator both are exact (kernels/sim/runtime.h), so it tests the kernels'
// logic, and the GPU tests (tests/python/test_cuda.py) their numerics.
#pragma once

#include "ctc/math.h"
#include "device.h"

namespace ctc::cuda {

struct FastMath {
  __device__ static float exp(float x) { return __expf(x); }
  __device__ static float log(float x) { return __logf(x); }
  __device__ static double exp(double x) { return math::exp_(x); }
  __device__ static double log(double x) { return math::log_(x); }
};

}  // namespace ctc::cuda
