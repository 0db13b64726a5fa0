// The CUDA engine for float32 input (computed in float).
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(float, float)
}  // namespace ctc::cuda
