// Greedy decoding on the GPU: each frame's argmax (one thread per frame; this
// file, per dtype), then each sample's collapse (one thread per sample;
// align_engine.cu), with ctc/greedy.h's functions, shared with the CPU.
#pragma once

#include "ctc/emissions.h"
#include "ctc/greedy.h"
#include "ctc/problem.h"
#include "device.h"

namespace ctc::cuda {

template <typename In, typename Acc>
__global__ void frame_argmax_kernel(Problem p, int32_t* labels /* N x T */) {
  const int64_t rows = p.batch * p.max_time;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = row / p.max_time, t = row % p.max_time;
    if (t >= p.input_lengths[n]) continue;
    labels[row] = static_cast<int32_t>(frame_argmax(Emissions<In, Acc>(p, n, nullptr), t));
  }
}

}  // namespace ctc::cuda
