// The CUDA engine for float32 input (computed in float).
#include "align_impl.cuh"
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(float, float)
CTC_INSTANTIATE_CUDA_ALIGN(float, float)
}  // namespace ctc::cuda
