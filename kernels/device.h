// The one header through which the CUDA engine meets its platform: the CUDA
// runtime under nvcc, or the CUDA simulator's stand-ins (kernels/sim) when
// the same sources are compiled by the host compiler with CTC_CUDA_SIM.
// Together with launch.h (kernel launches) and cub_adapters.cuh (CUB), this
// is the whole difference between the two builds: no kernel logic depends on
// which one it is.
#pragma once

#if defined(CTC_CUDA_SIM)
#include "sim/runtime.h"
#else
#include <cuda_runtime_api.h>
#endif
