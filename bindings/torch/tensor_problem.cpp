#include "tensor_problem.h"

#include <unistd.h>

#include <ATen/ATen.h>
#include <c10/core/SymBool.h>

#include <cstdio>

#include "ctc/error.h"
#include "ctc/validate.h"

namespace torch_ctc {
namespace {

bool is_index_type(at::ScalarType t) { return t == at::kLong || t == at::kInt; }

// A size condition that may be symbolic (fake tensors under torch.compile):
// concrete sizes give a plain bool, symbolic ones install a guard.
bool holds(const c10::SymBool& condition) { return condition.guard_bool(__FILE__, __LINE__); }

void check_lengths(const at::Tensor& lengths, const char* name, const c10::SymInt& batch) {
  TORCH_CHECK_TYPE(is_index_type(lengths.scalar_type()), "torch_ctc: ", name,
                   " must be an int32 or int64 tensor (or a list of ints), got dtype ", lengths.scalar_type());
  TORCH_CHECK_VALUE(lengths.dim() == 1, "torch_ctc: ", name, " must be 1-D with one length per sample, got shape ",
                    lengths.sym_sizes());
  TORCH_CHECK_VALUE(holds(lengths.sym_size(0).sym_eq(batch)), "torch_ctc: ", name, " has ", lengths.sym_size(0),
                  " entries but log_probs has a batch of N = ", batch);
}

std::string gib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

ctc::DType to_ctc_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return ctc::DType::kFloat32;
    case at::kDouble: return ctc::DType::kFloat64;
    case at::kHalf: return ctc::DType::kFloat16;
    case at::kBFloat16: return ctc::DType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, "torch_ctc: log_probs must be float32, float64, float16 or bfloat16, got dtype ",
                       type);
  }
}

at::ScalarType accumulate_scalar_type(at::ScalarType input_type) {
  return input_type == at::kDouble ? at::kDouble : at::kFloat;
}

void check_arguments(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                     const at::Tensor& target_lengths, int64_t blank, bool batch_first) {
  to_ctc_dtype(log_probs.scalar_type());
  TORCH_CHECK_VALUE(log_probs.dim() == 3, "torch_ctc: log_probs must be 3-D ",
                    batch_first ? "(N, T, C)" : "(T, N, C)", " (or 2-D (T, C) unbatched), got shape ",
                    log_probs.sym_sizes());
  const c10::SymInt batch = log_probs.sym_size(batch_first ? 0 : 1);
  const c10::SymInt classes = log_probs.sym_size(2);
  // torch refuses empty log_probs; an empty batch has no loss to reduce ('mean' would be NaN).
  // T = 0 with samples is fine: each sample then has input length 0.
  TORCH_CHECK_VALUE(holds(batch.sym_gt(0)), "torch_ctc: log_probs has an empty batch (N = 0, shape ",
                    log_probs.sym_sizes(), "); it needs at least one sample");
  TORCH_CHECK_VALUE(holds(classes.sym_gt(0)), "torch_ctc: log_probs has C = 0 classes; it needs at least the blank class");
  TORCH_CHECK_VALUE(blank >= 0, "torch_ctc: blank = ", blank, " must be in [0, C) with C = ", classes);
  TORCH_CHECK_VALUE(holds(classes.sym_gt(blank)), "torch_ctc: blank = ", blank, " must be in [0, C) with C = ", classes,
                  " classes in log_probs");

  TORCH_CHECK_TYPE(is_index_type(targets.scalar_type()), "torch_ctc: targets must be an int32 or int64 tensor, got dtype ",
                   targets.scalar_type());
  TORCH_CHECK_VALUE(targets.dim() == 1 || targets.dim() == 2,
                    "torch_ctc: targets must be 1-D (concatenated) or 2-D (N, S) (padded), got shape ",
                    targets.sym_sizes());
  if (targets.dim() == 2)
    TORCH_CHECK_VALUE(holds(targets.sym_size(0).sym_eq(batch)), "torch_ctc: padded targets have ", targets.sym_size(0),
                    " rows but log_probs has a batch of N = ", batch);
  check_lengths(input_lengths, "input_lengths", batch);
  check_lengths(target_lengths, "target_lengths", batch);

  if (log_probs.device().is_cpu()) {
    TORCH_CHECK_VALUE(targets.device().is_cpu(), "torch_ctc: targets must be on the CPU like log_probs, got ",
                      targets.device());
    TORCH_CHECK_VALUE(input_lengths.device().is_cpu(), "torch_ctc: input_lengths must be on the CPU like log_probs, got ",
                      input_lengths.device());
    TORCH_CHECK_VALUE(target_lengths.device().is_cpu(),
                      "torch_ctc: target_lengths must be on the CPU like log_probs, got ", target_lengths.device());
  }
}

ctc::Problem problem_for_input(const at::Tensor& log_probs, int64_t blank, bool batch_first, bool from_logits) {
  ctc::Problem p;
  p.max_time = log_probs.size(batch_first ? 1 : 0);
  p.batch = log_probs.size(batch_first ? 0 : 1);
  p.num_classes = log_probs.size(2);
  p.input = log_probs.data_ptr();
  p.dtype = to_ctc_dtype(log_probs.scalar_type());
  p.stride_t = log_probs.stride(batch_first ? 1 : 0);
  p.stride_n = log_probs.stride(batch_first ? 0 : 1);
  p.stride_c = log_probs.stride(2);
  p.from_logits = from_logits;
  p.blank = blank;
  return p;
}

ctc::GradientOutput gradient_output(const at::Tensor& grad, bool batch_first) {
  ctc::GradientOutput out;
  out.data = grad.data_ptr();
  out.stride_t = grad.stride(batch_first ? 1 : 0);
  out.stride_n = grad.stride(batch_first ? 0 : 1);
  out.stride_c = grad.stride(2);
  return out;
}

HostProblem make_host_problem(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& input_lengths,
                              const at::Tensor& target_lengths, int64_t blank, bool batch_first, bool from_logits) {
  check_arguments(log_probs, targets, input_lengths, target_lengths, blank, batch_first);
  HostProblem host;
  const auto cpu_long = at::TensorOptions().dtype(at::kLong).device(at::kCPU);
  host.targets = targets.to(cpu_long).contiguous();
  host.input_lengths = input_lengths.to(cpu_long).contiguous();
  host.target_lengths = target_lengths.to(cpu_long).contiguous();

  const int64_t batch = log_probs.size(batch_first ? 0 : 1);
  host.target_offsets = at::empty({batch}, cpu_long);
  int64_t* offsets = host.target_offsets.data_ptr<int64_t>();
  const int64_t* lengths = host.target_lengths.data_ptr<int64_t>();
  if (targets.dim() == 2) {
    host.padded_width = targets.size(1);
    for (int64_t n = 0; n < batch; ++n) offsets[n] = n * host.padded_width;
  } else {
    int64_t offset = 0;
    for (int64_t n = 0; n < batch; ++n) {
      offsets[n] = offset;
      offset += std::max<int64_t>(lengths[n], 0);  // negative lengths are reported by validation
    }
  }

  host.problem = problem_for_input(log_probs, blank, batch_first, from_logits);
  ctc::Problem& p = host.problem;
  p.targets = host.targets.data_ptr<int64_t>();
  p.target_offsets = offsets;
  p.target_slots = targets.numel();
  p.input_lengths = host.input_lengths.data_ptr<int64_t>();
  p.target_lengths = lengths;
  try {
    ctc::validate_values(p, host.padded_width);
  } catch (const ctc::Error& e) {
    rethrow_core_error(e);
  }
  return host;
}

void rethrow_core_error(const std::exception& error) {
  if (const auto* core = dynamic_cast<const ctc::Error*>(&error)) {
    switch (core->kind()) {
      case ctc::ErrorKind::kValue: TORCH_CHECK_VALUE(false, core->what());
      case ctc::ErrorKind::kType: TORCH_CHECK_TYPE(false, core->what());
      case ctc::ErrorKind::kResource: TORCH_CHECK(false, core->what());
    }
  }
  TORCH_CHECK(false, "torch_ctc: ", error.what());
}

void check_host_allocation(int64_t elems, int64_t elem_size, const char* what) {
  const double bytes = static_cast<double>(elems) * static_cast<double>(elem_size);
  // Read once: sysconf(_SC_PHYS_PAGES) is a sysinfo() system call, and this runs
  // several times a call (it was most of a tiny problem's system time).
  static const double physical =
      static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  TORCH_CHECK(physical <= 0 || bytes <= physical, "torch_ctc: ", what, " needs ", gib(bytes), " (", elems,
              " elements), more than this machine's ", gib(physical),
              " of memory; reduce the batch size, the number of frames T or the target length");
}

}  // namespace torch_ctc
