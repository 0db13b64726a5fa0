// CPU kernels of _ctc_forward and _ctc_backward: thin wrappers that allocate
// the outputs and workspace and hand a ctc::Problem to the core CPU engine.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "ctc/cpu_engine.h"
#include "ctc/workspace.h"
#include "host_cache.h"
#include "tensor_problem.h"

namespace torch_ctc {
namespace {

// Spreads the engine's work chunks over torch.get_num_threads() threads. Chunks
// are handed out one at a time, in order, to whichever thread is free (the
// engine orders them largest first); each is computed by one thread, so
// results do not depend on the thread count. Inside another parallel region
// this runs serially.
//
// With OpenMP (torch's Linux builds), the threads are torch's own OpenMP pool,
// through at::parallel_for: this file is compiled with -fopenmp and links
// libgomp.so.1, the soname torch's wheel ships too, so the process keeps one
// runtime. That matters: after a torch op, torch's workers spin-wait for a
// while, and threads of our own would compete with them for the cores
// (measured: a 2-thread htr-s call took 3.5 ms right after a matmul against
// 1.4 ms alone). Without OpenMP, it starts std::threads.
void torch_parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t threads = std::min<int64_t>(n, at::in_parallel_region() ? 1 : at::get_num_threads());
  if (threads <= 1) {
    if (n > 0) body(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  auto take_chunks = [&] {
    try {
      for (int64_t k = next++; k < n; k = next++) body(k, k + 1);
    } catch (...) {
      next = n;  // the others stop after their current chunk
      throw;
    }
  };
#ifdef _OPENMP
  // One task per thread; at::parallel_for rethrows the first exception here.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) take_chunks();
  });
#else
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&] {
    try {
      take_chunks();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (int64_t k = 1; k < threads; ++k) workers.emplace_back(run);
  run();
  for (auto& worker : workers) worker.join();
  if (error) std::rethrow_exception(error);
#endif
}

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
