// The CUDA engine for float64 input (computed in double).
#include "engine_impl.cuh"

namespace ctc::cuda {
CTC_INSTANTIATE_CUDA_ENGINE(double, double)
}  // namespace ctc::cuda
