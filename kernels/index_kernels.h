// Launchers of index_kernels.cu used by the per-dtype engine code.
#pragma once

#include "device.h"

#include <cstdint>

#include "ctc/problem.h"

namespace ctc::cuda {

// Per sample: class_starts[n][c..c+1] bounds the positions of class c among
// its target labels (blank and out-of-range labels are not indexed).
void build_class_index(const Problem& p, int32_t* class_starts, int32_t* class_positions, cudaStream_t stream);

}  // namespace ctc::cuda
