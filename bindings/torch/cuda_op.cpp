// The CUDA op's call sequence (cuda_op.h). Everything runs on the given
// stream and every buffer comes from torch's allocator for the input's
// device. With validate=False and lengths already on the device there is no
// host synchronisation, so the op can be captured in a CUDA graph.
#include "cuda_op.h"

#include <ATen/ATen.h>

#include "ctc/error.h"
#include "ctc/workspace.h"
#include "cuda_engine.h"
#include "tensor_problem.h"

namespace torch_ctc {

DeviceProblem make_device_problem(const at::Tensor& log_probs, const at::Tensor& targets,
                                  const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank,
                                  bool batch_first, bool from_logits, bool validate, cudaStream_t stream) {
  check_arguments(log_probs, targets, input_lengths, target_lengths, blank, batch_first);
  DeviceProblem d;
  const int64_t batch = log_probs.size(batch_first ? 0 : 1);
  const int64_t padded_width = targets.dim() == 2 ? targets.size(1) : -1;
  if (validate) {
    // Same checks and messages as the CPU; costs a device-to-host copy and a sync.
    d.host = make_host_problem(log_probs, targets.cpu(), input_lengths.cpu(), target_lengths.cpu(), blank, batch_first,
                               from_logits);
    d.validated = true;
    const int64_t longest = batch ? d.host.target_lengths.max().item<int64_t>() : 0;
    d.max_states = 2 * longest + 1;
  } else {
    d.max_states = 2 * (padded_width >= 0 ? padded_width : targets.numel()) + 1;
  }

  const auto device_long = log_probs.options().dtype(at::kLong);
  d.targets = targets.to(device_long).contiguous();
  d.raw_input_lengths = input_lengths.to(device_long).contiguous();
  d.raw_target_lengths = target_lengths.to(device_long).contiguous();
  d.safe_indices = at::empty({3, batch}, device_long);
  const ctc::cuda::SafeIndices safe{d.safe_indices[0].data_ptr<int64_t>(), d.safe_indices[1].data_ptr<int64_t>(),
                                    d.safe_indices[2].data_ptr<int64_t>()};
  const size_t temp_bytes = ctc::cuda::sanitize_temp_bytes(batch);
  at::Tensor temp = at::empty({static_cast<int64_t>(temp_bytes)}, log_probs.options().dtype(at::kByte));
  ctc::cuda::sanitize_indices(d.raw_input_lengths.data_ptr<int64_t>(), d.raw_target_lengths.data_ptr<int64_t>(),
                              batch, log_probs.size(batch_first ? 1 : 0), targets.numel(), padded_width, safe,
                              temp.data_ptr(), temp_bytes, stream);

  d.problem = problem_for_input(log_probs, blank, batch_first, from_logits);
  ctc::Problem& p = d.problem;
  p.targets = d.targets.data_ptr<int64_t>();
  p.target_offsets = safe.target_offsets;
  p.target_slots = targets.numel();
  p.input_lengths = safe.input_lengths;
  p.target_lengths = safe.target_lengths;
  return d;
}


std::tuple<at::Tensor, at::Tensor> cuda_op_forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                                   const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                   int64_t blank, bool batch_first, bool from_logits, bool validate,
                                                   cudaStream_t stream) {
  return rethrowing_core_errors([&] {
    const DeviceProblem d = make_device_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first,
                                                from_logits, validate, stream);
    const ctc::Problem& p = d.problem;
    const auto acc = log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type()));
    const int64_t elems = ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, from_logits).total_elems();
    at::Tensor workspace = at::empty({elems}, acc);
    at::Tensor nll = at::empty({p.batch}, acc);
    ctc::cuda::forward(p, d.max_states, workspace.data_ptr(), nll.data_ptr(), stream);
    return std::make_tuple(nll, workspace);
  });
}

at::Tensor cuda_op_backward(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                            const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                            const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                            bool from_logits, cudaStream_t stream) {
  return rethrowing_core_errors([&] {
    // The forward pass already validated these arguments; no sync here.
    const DeviceProblem d = make_device_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first,
                                                from_logits, /*validate=*/false, stream);
    const ctc::Problem& p = d.problem;
    const at::ScalarType acc = accumulate_scalar_type(log_probs.scalar_type());
    TORCH_CHECK_VALUE(workspace.scalar_type() == acc && workspace.device() == log_probs.device() &&
                          workspace.numel() ==
                              ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, from_logits)
                                  .total_elems(),
                      "torch_ctc: workspace does not come from _ctc_forward for these arguments");
    TORCH_CHECK_VALUE(nll.numel() == p.batch && grad_nll.numel() == p.batch,
                      "torch_ctc: nll and grad_nll must have one value per sample (N = ", p.batch, ")");
    const auto acc_options = log_probs.options().dtype(acc);
    const auto int_options = log_probs.options().dtype(at::kInt);
    at::Tensor grad = at::empty_like(log_probs);
    at::Tensor posterior = at::empty({ctc::cuda::posterior_elems(p.max_time, p.batch, p.target_slots)}, acc_options);
    at::Tensor beta_rows = at::empty({ctc::cuda::beta_rows_elems(p.batch, p.target_slots)}, acc_options);
    at::Tensor class_starts = at::empty({ctc::cuda::class_starts_elems(p.batch, p.num_classes)}, int_options);
    at::Tensor class_positions = at::empty({std::max<int64_t>(p.target_slots, 1)}, int_options);
    const at::Tensor nll_acc = nll.to(acc).contiguous();
    const at::Tensor grad_nll_acc = grad_nll.to(log_probs.device(), acc).contiguous();
    const at::Tensor workspace_c = workspace.contiguous();

    ctc::cuda::BackwardBuffers buffers;
    buffers.workspace = workspace_c.data_ptr();
    buffers.nll = nll_acc.data_ptr();
    buffers.grad_nll = grad_nll_acc.data_ptr();
    buffers.posterior = posterior.data_ptr();
    buffers.beta_rows = beta_rows.data_ptr();
    buffers.class_starts = class_starts.data_ptr<int32_t>();
    buffers.class_positions = class_positions.data_ptr<int32_t>();
    ctc::cuda::backward(p, d.max_states, zero_infinity, buffers, gradient_output(grad, batch_first), stream);
    return grad;
  });
}

}  // namespace torch_ctc
