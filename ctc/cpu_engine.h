// The CPU engine: forward (alpha, loss) and backward (beta, gradient) for a
// batch of CTC problems. Samples are independent; `parallel_for` decides how
// they are spread over threads (the LibTorch binding passes one that runs
// chunks on torch.get_num_threads() threads, handing them out in order as
// threads become free). Each sample is computed whole by exactly one thread,
// so results are bitwise identical whatever the thread count.
#pragma once

#include <cstdint>
#include <functional>

#include "ctc/dtype.h"
#include "ctc/problem.h"

namespace ctc {

// Calls body(begin, end) over disjoint chunks covering [0, n).
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t, int64_t)>& body)>;

// Runs every chunk on the calling thread.
void serial_for(int64_t n, const std::function<void(int64_t, int64_t)>& body);

// Which CPU kernels run. kAuto (the default) picks AVX2 + FMA for float
// accumulation (float32, float16, bfloat16 inputs) when the CPU has them, and
// the portable scalar kernels otherwise (always for float64). kScalar forces
// the scalar kernels, e.g. to compare the two.
enum class CpuKernel { kAuto, kScalar, kAvx2 };
void set_cpu_kernel(CpuKernel kernel);
// The kernel a problem of this input dtype will use now.
CpuKernel active_cpu_kernel(DType dtype);
const char* cpu_kernel_name(CpuKernel kernel);

// Elements (accumulate dtype) of the scratch both passes use while running; it
// is not kept between them.
int64_t cpu_scratch_elems(int64_t batch, int64_t num_classes, int64_t target_slots);

// Computes per-sample negative log likelihoods into `nll` (N values of the
// accumulate dtype) and fills `workspace` (forward_workspace_layout elements
// of the accumulate dtype), which the backward pass reads.
void cpu_forward(const Problem& problem, void* workspace, void* nll, void* scratch,
                 const ParallelFor& parallel_for = serial_for);

// Convenience form that allocates its own scratch (not for hot loops).
void cpu_forward(const Problem& problem, void* workspace, void* nll, const ParallelFor& parallel_for = serial_for);

// Writes d loss / d input for every (t, n, c) of the input, zero for frames
// t >= input_lengths[n]. `grad_nll` holds d loss / d nll[n] (accumulate dtype).
// With zero_infinity, samples whose nll is +inf get zero gradient; without it
// their gradient is NaN, as in torch. `scratch` has cpu_scratch_elems
// (== backward_scratch_elems) elements of the accumulate dtype.
void cpu_backward(const Problem& problem, const void* workspace, const void* nll, const void* grad_nll,
                  bool zero_infinity, void* scratch, const GradientOutput& grad,
                  const ParallelFor& parallel_for = serial_for);

}  // namespace ctc
