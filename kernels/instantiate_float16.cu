// The CUDA engine for float16 input (computed in float).
#include "align_impl.cuh"
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(half_t, float)
CTC_INSTANTIATE_CUDA_ALIGN(half_t, float)
}  // namespace ctc::cuda
