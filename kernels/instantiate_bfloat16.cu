// The CUDA engine for bfloat16 input (computed in float).
#include "align_impl.cuh"
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(bfloat16_t, float)
CTC_INSTANTIATE_CUDA_ALIGN(bfloat16_t, float)
}  // namespace ctc::cuda
