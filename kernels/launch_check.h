// Turns a failed CUDA launch or call into a ctc::Error naming the kernel.
#pragma once

#include "device.h"

#include <string>

#include "ctc/error.h"

namespace ctc::cuda {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(ErrorKind::kResource, what,
                std::string("torch_ctc: CUDA error in ") + what + ": " + cudaGetErrorString(status));
}

inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

}  // namespace ctc::cuda
