// Compile-time proof that ctc/math.h and ctc/dtype.h build as device code
// for every architecture we ship (sm_80, sm_90, PTX). The real kernels of the
// CUDA backend will live beside this file and include the same headers.
#include "ctc/dtype.h"
#include "ctc/math.h"

namespace ctc::kernels {

template <typename T>
__global__ void math_device_check_kernel(const T* prev, const int64_t* target, int64_t states, T emission, T* out) {
  const int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= states) return;
  const T alpha = math::alpha_cell(prev, target, s, emission);
  const T beta = math::beta_cell(prev, target, s, states, emission);
  out[s] = math::input_gradient(math::state_posterior(alpha, beta, emission, T(0)),
                                load<T>(to_bfloat16(static_cast<float>(emission))) +
                                    load<T>(to_half(static_cast<float>(emission))));
}

template __global__ void math_device_check_kernel<float>(const float*, const int64_t*, int64_t, float, float*);
template __global__ void math_device_check_kernel<double>(const double*, const int64_t*, int64_t, double, double*);

}  // namespace ctc::kernels
