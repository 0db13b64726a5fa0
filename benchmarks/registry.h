// What main.cpp registers: the CPU benchmarks always, the CUDA ones when the
// kernels are built in and a GPU is present.
#pragma once

#include <string>

namespace ctc_bench {

void register_cpu_benchmarks();

// Number of usable CUDA devices, 0 when none (or no driver); -1 when this
// binary was built without the CUDA kernels.
int cuda_device_count();
std::string cuda_device_name();
void register_cuda_benchmarks();

}  // namespace ctc_bench
