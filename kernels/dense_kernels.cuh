// The fully parallel passes over N x T x C: the per-frame logsumexp of the
// fused log_softmax (before alpha), and the gradient (after beta). Neither
// sits inside the serial time loop; both are bound by memory bandwidth.
#pragma once

#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/problem.h"
#include "ctc/workspace.h"
#include "cub_adapters.cuh"
#include "device.h"

namespace ctc::cuda {

constexpr int kNormaliserThreads = 128;
constexpr int kGradientThreads = 256;

template <typename Acc>
struct MaxIgnoringNan {
  __device__ Acc operator()(Acc a, Acc b) const { return math::max_ignoring_nan(a, b); }
};

// One block per frame row (n, t), grid-stride over rows: logsumexp over C with
// CUB block reductions (fixed order for a fixed block size: deterministic).
template <typename In, typename Acc>
__global__ void __launch_bounds__(kNormaliserThreads)
    frame_normaliser_kernel(Problem p, Acc* normalisers /* N x T */) {
  using Reduce = BlockReduce<Acc, kNormaliserThreads>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ Acc row_max;
  const int64_t rows = p.batch * p.max_time;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t n = row / p.max_time, t = row % p.max_time;
    if (t >= p.input_lengths[n]) {  // never read, but the workspace is an op output: define it
      if (threadIdx.x == 0) normalisers[row] = Acc(0);
      continue;
    }
    const Emissions<In, Acc> emission(p, n, nullptr);
    Acc m = math::neg_inf<Acc>();
    for (int64_t c = threadIdx.x; c < p.num_classes; c += blockDim.x) m = math::max_ignoring_nan(m, emission.raw(t, c));
    m = Reduce(temp).Reduce(m, MaxIgnoringNan<Acc>{});
    if (threadIdx.x == 0) row_max = m;
    __syncthreads();
    m = row_max;
    Acc sum = 0;
    for (int64_t c = threadIdx.x; c < p.num_classes; c += blockDim.x) sum += math::exp_(emission.raw(t, c) - m);
    sum = Reduce(temp).Sum(sum);
    if (threadIdx.x == 0) normalisers[row] = math::logsumexp_finish(m, sum);
    __syncthreads();  // temp and row_max are reused by the next row
  }
}

// One thread per gradient element (t, n, c), grid-stride. The element sums the
// posteriors of its own states in ascending order (blank: the even states;
// a label: the positions listed by the class index), so there are no atomics
// and the result is bitwise reproducible.
template <typename In, typename Acc>
__global__ void __launch_bounds__(kGradientThreads)
    gradient_kernel(Problem p, const Acc* workspace, int64_t alpha_elems, const Acc* nll_all, const Acc* grad_nll,
                    bool zero_infinity, const Acc* posterior_all, const int32_t* class_starts,
                    const int32_t* class_positions, GradientOutput grad, bool batch_varies_fastest) {
  const int64_t total = p.max_time * p.batch * p.num_classes;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = idx % p.num_classes;
    const int64_t r = idx / p.num_classes;
    // Walk the output in its memory order (time-major or batch-first) for coalesced writes.
    const int64_t n = batch_varies_fastest ? r % p.batch : r / p.max_time;
    const int64_t t = batch_varies_fastest ? r / p.batch : r % p.max_time;
    In& out = static_cast<In*>(grad.data)[t * grad.stride_t + n * grad.stride_n + c * grad.stride_c];
    const Acc nll = nll_all[n];
    if (t >= p.input_lengths[n] || (zero_infinity && isinf(nll))) {
      store(out, Acc(0));
      continue;
    }
    if (math::gradient_undefined(nll, zero_infinity)) {
      store(out, static_cast<Acc>(NAN));
      continue;
    }
    const int64_t offset = p.target_offsets[n];
    const int64_t states = math::num_states(p.target_lengths[n]);
    const Acc* post = posterior_all + alpha_offset(p.max_time, offset, n) + t * states;
    Acc occupancy = 0;
    if (c == p.blank) {
      for (int64_t s = 0; s < states; s += 2) occupancy += post[s];
    } else {
      const int32_t* starts = class_starts + n * (p.num_classes + 1);
      for (int32_t k = starts[c]; k < starts[c + 1]; ++k) occupancy += post[2 * int64_t(class_positions[offset + k]) + 1];
    }
    const Emissions<In, Acc> emission(p, n, p.from_logits ? workspace + alpha_elems + n * p.max_time : nullptr);
    store(out, math::input_gradient(occupancy, emission.softmax_or_zero(t, c)) * grad_nll[n]);
  }
}

}  // namespace ctc::cuda
