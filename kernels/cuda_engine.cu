// Dtype dispatch and buffer sizes of the CUDA engine (see cuda_engine.h).
#include "cuda_engine.h"
#include "engine_impl.cuh"

namespace ctc::cuda {

CTC_DECLARE_CUDA_ENGINE(float, float)
CTC_DECLARE_CUDA_ENGINE(double, double)
CTC_DECLARE_CUDA_ENGINE(half_t, float)
CTC_DECLARE_CUDA_ENGINE(bfloat16_t, float)

void forward(const Problem& problem, int64_t max_states, void* workspace, void* nll, cudaStream_t stream,
             RecurrencePath path) {
  const RecurrencePath resolved = resolve_recurrence_path(path, max_states);
  dispatch_dtype(problem.dtype, [&](auto in, auto acc) {
    forward_impl<decltype(in), decltype(acc)>(problem, max_states, resolved, workspace, nll, stream);
  });
}

void backward(const Problem& problem, int64_t max_states, bool zero_infinity, const BackwardBuffers& buffers,
              const GradientOutput& grad, cudaStream_t stream, RecurrencePath path) {
  const RecurrencePath resolved = resolve_recurrence_path(path, max_states);
  dispatch_dtype(problem.dtype, [&](auto in, auto acc) {
    backward_impl<decltype(in), decltype(acc)>(problem, max_states, resolved, zero_infinity, buffers, grad, stream);
  });
}

int64_t posterior_elems(int64_t max_time, int64_t batch, int64_t target_slots) {
  return forward_workspace_layout(max_time, batch, target_slots, false).alpha_elems;
}

int64_t beta_rows_elems(int64_t batch, int64_t target_slots) { return 2 * (2 * target_slots + batch); }

int64_t class_starts_elems(int64_t batch, int64_t num_classes) { return batch * (num_classes + 1); }

}  // namespace ctc::cuda
