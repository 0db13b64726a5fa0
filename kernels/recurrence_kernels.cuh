// The serial-in-time kernels: alpha (forward) and beta + state posteriors
// (backward). One thread block per sample; threads cover the states of the
// extended target (looping when S' exceeds the block); a barrier separates
// time steps. The cell formulas come from ctc/math.h, shared with the CPU.
#pragma once

#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/problem.h"
#include "ctc/workspace.h"
#include "device.h"

namespace ctc::cuda {

template <typename Acc>
__device__ inline const Acc* sample_normalisers(const Problem& p, const Acc* workspace, int64_t alpha_elems,
                                                int64_t n) {
  return p.from_logits ? workspace + alpha_elems + n * p.max_time : nullptr;
}

// alpha_t(s) for every t < input_length, stored row by row in the workspace
// (the backward pass reads it back), then the sample's nll.
template <typename In, typename Acc>
__global__ void alpha_kernel(Problem p, Acc* workspace, int64_t alpha_elems, Acc* nll) {
  const int64_t n = blockIdx.x;
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t states = math::num_states(length);
  Acc* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  // The workspace is an op output: cells past this sample's frames are -inf, never garbage.
  const int64_t block_size = alpha_block_end(p, n) - alpha_offset(p.max_time, p.target_offsets[n], n);
  for (int64_t i = frames * states + threadIdx.x; i < block_size; i += blockDim.x) alpha[i] = math::neg_inf<Acc>();
  if (frames == 0) {
    if (threadIdx.x == 0) nll[n] = math::nll_without_frames<Acc>(length);
    return;
  }
  const int64_t* target = p.targets + p.target_offsets[n];
  const Emissions<In, Acc> emission(p, n, sample_normalisers(p, workspace, alpha_elems, n));

  for (int64_t s = threadIdx.x; s < states; s += blockDim.x)
    alpha[s] = math::alpha_initial(s, emission(0, math::state_label(target, s, p.blank)));
  for (int64_t t = 1; t < frames; ++t) {
    __syncthreads();  // row t-1 complete (global writes are visible block-wide after the barrier)
    const Acc* prev = alpha + (t - 1) * states;
    Acc* row = alpha + t * states;
    for (int64_t s = threadIdx.x; s < states; s += blockDim.x)
      row[s] = math::alpha_cell(prev, target, s, emission(t, math::state_label(target, s, p.blank)));
  }
  __syncthreads();
  if (threadIdx.x == 0) nll[n] = math::nll_from_last_alpha(alpha + (frames - 1) * states, states);
}

// beta_t(s) from t = input_length - 1 down to 0 in two rolling rows, and the
// posterior occupancy exp(alpha + beta - emission + nll) of every (t, s),
// stored with alpha's layout for the dense gradient pass.
template <typename In, typename Acc>
__global__ void beta_posterior_kernel(Problem p, const Acc* workspace, int64_t alpha_elems, const Acc* nll_all,
                                      Acc* posterior_all, Acc* beta_rows_all) {
  const int64_t n = blockIdx.x;
  const int64_t frames = p.input_lengths[n];
  const Acc nll = nll_all[n];
  if (frames == 0 || !isfinite(nll)) return;  // the gradient pass writes 0 or NaN (math::gradient_undefined)
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  const Emissions<In, Acc> emission(p, n, sample_normalisers(p, workspace, alpha_elems, n));
  const int64_t states = math::num_states(length);
  const int64_t block_offset = alpha_offset(p.max_time, p.target_offsets[n], n);
  const Acc* alpha = workspace + block_offset;
  Acc* posterior = posterior_all + block_offset;
  Acc* rows = beta_rows_all + 2 * (2 * p.target_offsets[n] + n);

  for (int64_t t = frames - 1; t >= 0; --t) {
    Acc* row = rows + (t & 1) * states;
    const Acc* next = rows + ((t + 1) & 1) * states;
    for (int64_t s = threadIdx.x; s < states; s += blockDim.x) {
      const Acc e = emission(t, math::state_label(target, s, p.blank));
      const Acc beta = t == frames - 1 ? math::beta_initial(s, states, e) : math::beta_cell(next, target, s, states, e);
      row[s] = beta;
      posterior[t * states + s] = math::state_posterior(alpha[t * states + s], beta, e, nll);
    }
    __syncthreads();  // row t complete before step t-1 reads it and overwrites row t+1
  }
}

}  // namespace ctc::cuda
