// The CUDA engine for float64 input (computed in double).
#include "align_impl.cuh"
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(double, double)
CTC_INSTANTIATE_CUDA_ALIGN(double, double)
}  // namespace ctc::cuda
