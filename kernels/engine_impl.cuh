// The forward and backward launch sequences for one input dtype. Each
// instantiate_<dtype>.cu file compiles them for its dtype (split so nvcc
// builds the dtypes in parallel), and cuda_engine.cu dispatches.
#pragma once

#include <algorithm>

#include "block_size.h"
#include "cuda_engine.h"
#include "dense_kernels.cuh"
#include "index_kernels.h"
#include "launch.h"
#include "recurrence_kernels.cuh"
#include "recurrence_path.h"
#include "warp_recurrence_kernels.cuh"

namespace ctc::cuda {

// One warp per sample, kSamplesPerBlock samples a block.
inline LaunchConfig warp_recurrence_launch(const char* name, int64_t batch, cudaStream_t stream) {
  return {name, static_cast<unsigned>((batch + kSamplesPerBlock - 1) / kSamplesPerBlock), kWarpRecurrenceThreads, 0,
          stream, kWarpRecurrenceThreads};
}

// The warp kernels for K states per lane (warp_states_per_lane).
template <typename In, typename Acc>
auto* warp_alpha_kernel_for(int k) {
  return k == 1 ? warp_alpha_kernel<In, Acc, 1>
       : k == 2 ? warp_alpha_kernel<In, Acc, 2>
       : k == 4 ? warp_alpha_kernel<In, Acc, 4>
                : warp_alpha_kernel<In, Acc, 8>;
}

template <typename In, typename Acc>
auto* warp_beta_posterior_kernel_for(int k) {
  return k == 1 ? warp_beta_posterior_kernel<In, Acc, 1>
       : k == 2 ? warp_beta_posterior_kernel<In, Acc, 2>
       : k == 4 ? warp_beta_posterior_kernel<In, Acc, 4>
                : warp_beta_posterior_kernel<In, Acc, 8>;
}

template <typename In, typename Acc>
void forward_impl(const Problem& p, int64_t max_states, RecurrencePath path, void* workspace_raw, void* nll_raw,
                  cudaStream_t stream) {
  if (p.batch == 0) return;
  Acc* workspace = static_cast<Acc*>(workspace_raw);
  const int64_t alpha_elems = forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits).alpha_elems;
  if (p.from_logits && p.max_time > 0) {
    launch({"frame_normaliser_kernel", grid_stride_blocks(p.batch * p.max_time, 1), kNormaliserThreads, 0, stream,
            kNormaliserThreads},
           frame_normaliser_kernel<In, Acc>, p, workspace + alpha_elems);
  }
  if (path == RecurrencePath::kWarp) {
    launch(warp_recurrence_launch("warp_alpha_kernel", p.batch, stream),
           warp_alpha_kernel_for<In, Acc>(warp_states_per_lane(max_states)), p, workspace, alpha_elems,
           static_cast<Acc*>(nll_raw));
    return;
  }
  launch({"alpha_kernel", static_cast<unsigned>(p.batch), recurrence_block_size(max_states), 0, stream},
         alpha_kernel<In, Acc>, p, workspace, alpha_elems, static_cast<Acc*>(nll_raw));
}

template <typename In, typename Acc>
void backward_impl(const Problem& p, int64_t max_states, RecurrencePath path, bool zero_infinity,
                   const BackwardBuffers& b, const GradientOutput& grad, cudaStream_t stream) {
  const int64_t total = p.max_time * p.batch * p.num_classes;
  if (total == 0) return;
  const Acc* workspace = static_cast<const Acc*>(b.workspace);
  const Acc* nll = static_cast<const Acc*>(b.nll);
  Acc* posterior = static_cast<Acc*>(b.posterior);
  const int64_t alpha_elems = forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits).alpha_elems;

  build_class_index(p, b.class_starts, b.class_positions, stream);
  if (path == RecurrencePath::kWarp) {
    launch(warp_recurrence_launch("warp_beta_posterior_kernel", p.batch, stream),
           warp_beta_posterior_kernel_for<In, Acc>(warp_states_per_lane(max_states)), p, workspace, alpha_elems, nll,
           posterior);
  } else {
    launch({"beta_posterior_kernel", static_cast<unsigned>(p.batch), recurrence_block_size(max_states), 0, stream},
           beta_posterior_kernel<In, Acc>, p, workspace, alpha_elems, nll, posterior, static_cast<Acc*>(b.beta_rows));
  }
  const bool batch_varies_fastest = grad.stride_n <= grad.stride_t;
  launch({"gradient_kernel", grid_stride_blocks(total, kGradientThreads), kGradientThreads, 0, stream,
          kGradientThreads},
         gradient_kernel<In, Acc>, p, workspace, alpha_elems, nll, static_cast<const Acc*>(b.grad_nll), zero_infinity,
         posterior, b.class_starts, b.class_positions, grad, batch_varies_fastest);
}

// Declared here, defined by instantiate_<dtype>.cu.
#define CTC_DECLARE_CUDA_ENGINE(In, Acc)                                                                          \
  extern template void forward_impl<In, Acc>(const Problem&, int64_t, RecurrencePath, void*, void*, cudaStream_t); \
  extern template void backward_impl<In, Acc>(const Problem&, int64_t, RecurrencePath, bool, const BackwardBuffers&, \
                                              const GradientOutput&, cudaStream_t);
#define CTC_INSTANTIATE_CUDA_ENGINE(In, Acc)                                                                      \
  template void forward_impl<In, Acc>(const Problem&, int64_t, RecurrencePath, void*, void*, cudaStream_t);        \
  template void backward_impl<In, Acc>(const Problem&, int64_t, RecurrencePath, bool, const BackwardBuffers&,      \
                                       const GradientOutput&, cudaStream_t);

}  // namespace ctc::cuda
