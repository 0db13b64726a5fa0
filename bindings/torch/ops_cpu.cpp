// CPU kernels of _ctc_forward and _ctc_backward: thin wrappers that allocate
// the outputs and workspace and hand a ctc::Problem to the core CPU engine.
#include <ATen/ATen.h>
#include <torch/library.h>


#include "ctc/cpu_engine.h"
#include "ctc/workspace.h"
#include "host_cache.h"
#include "parallel.h"
#include "tensor_problem.h"

namespace torch_ctc {
namespace {

ctc::WorkspaceLayout workspace_layout(const ctc::Problem& p) {
  try {
    return ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits);
  } catch (const std::exception& e) {
    rethrow_core_error(e);
  }
}

// Scratch of the running pass (not kept), checked against the machine's memory.
int64_t scratch_elems(const ctc::Problem& p) {
  int64_t elems = 0;
  try {
    elems = ctc::cpu_scratch_elems(p.batch, p.num_classes, p.target_slots);
  } catch (const std::exception& e) {
    rethrow_core_error(e);
  }
  check_host_allocation(elems, p.dtype == ctc::DType::kFloat64 ? 8 : 4, "the CPU scratch (recurrence rows)");
  return elems;
}

std::tuple<at::Tensor, at::Tensor> ctc_forward_cpu(const at::Tensor& log_probs, const at::Tensor& targets,
                                                   const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                   int64_t blank, bool batch_first, bool from_logits,
                                                   bool /*validate: the CPU always validates, it costs no sync*/) {
  const HostProblem host =
      make_host_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits);
  const auto acc = log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type()));
  const int64_t elems = workspace_layout(host.problem).total_elems();
  check_host_allocation(elems, at::elementSize(acc.dtype().toScalarType()), "the forward workspace (alpha)");
  // Large buffers come from the host cache (see host_cache.h): no fresh page faults per call.
  at::Tensor workspace = empty_cached_host({elems}, {1}, acc.dtype().toScalarType());
  at::Tensor nll = at::empty({host.problem.batch}, acc);
  at::Tensor scratch = at::empty({scratch_elems(host.problem)}, acc);
  ctc::cpu_forward(host.problem, workspace.data_ptr(), nll.data_ptr(), scratch.data_ptr(), torch_parallel_for);
  return {nll, workspace};
}

at::Tensor ctc_backward_cpu(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                            const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                            const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                            bool from_logits) {
  const HostProblem host =
      make_host_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first, from_logits);
  const ctc::Problem& p = host.problem;
  const at::ScalarType acc = accumulate_scalar_type(log_probs.scalar_type());
  TORCH_CHECK_VALUE(workspace.scalar_type() == acc && workspace.numel() == workspace_layout(p).total_elems(),
                    "torch_ctc: workspace does not come from _ctc_forward for these arguments");
  TORCH_CHECK_VALUE(nll.numel() == p.batch && grad_nll.numel() == p.batch,
                    "torch_ctc: nll and grad_nll must have one value per sample (N = ", p.batch, ")");

  check_host_allocation(log_probs.numel(), log_probs.element_size(), "the gradient w.r.t. log_probs");
  at::Tensor grad = empty_cached_host_like(log_probs);
  at::Tensor scratch = at::empty({scratch_elems(p)}, log_probs.options().dtype(acc));
  const at::Tensor nll_acc = nll.to(acc).contiguous();
  const at::Tensor grad_nll_acc = grad_nll.to(acc).contiguous();
  const at::Tensor workspace_c = workspace.contiguous();
  ctc::cpu_backward(p, workspace_c.data_ptr(), nll_acc.data_ptr(), grad_nll_acc.data_ptr(), zero_infinity,
                    scratch.data_ptr(), gradient_output(grad, batch_first), torch_parallel_for);
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, CPU, m) {
  m.impl("_ctc_forward", &ctc_forward_cpu);
  m.impl("_ctc_backward", &ctc_backward_cpu);
}

}  // namespace torch_ctc
