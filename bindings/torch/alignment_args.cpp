#include "alignment_args.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "ctc/math.h"
#include "ctc/validate.h"

namespace torch_ctc {

ctc::AlignMemory align_memory(int64_t code) {
  TORCH_CHECK_VALUE(code >= 0 && code <= 2, "torch_ctc: memory = ", code,
                    " is not one of 0 (auto), 1 (full), 2 (checkpointed)");
  return code == 0 ? ctc::AlignMemory::kAuto : code == 1 ? ctc::AlignMemory::kFull : ctc::AlignMemory::kCheckpointed;
}

void check_alignable(const HostProblem& host) {
  const ctc::Problem& p = host.problem;
  const std::vector<int64_t> bad = ctc::infeasible_samples(p);
  if (bad.empty()) return;
  const int64_t n = bad.front();
  const int64_t length = p.target_lengths[n];
  const int64_t need = ctc::math::min_frames_needed(p.targets + p.target_offsets[n], length);
  TORCH_CHECK_VALUE(false, "torch_ctc: forced_align: sample", bad.size() > 1 ? "s " : " ", ctc::list_samples(bad),
                    bad.size() > 1 ? " have" : " has", " too few frames for ", bad.size() > 1 ? "their" : "its",
                    " targets (sample ", n, ": input_lengths[", n, "] = ", p.input_lengths[n], ", but ", length,
                    " labels with ", need - length, " repeat(s) need ", need, " frames)");
}

void check_aligned(const at::Tensor& alignments, const at::Tensor& input_lengths) {
  const at::Tensor first = alignments.select(1, 0).contiguous();  // alignments has T >= 1 here
  const at::Tensor lengths = input_lengths.to(at::kLong).contiguous();
  const int64_t* label = first.data_ptr<int64_t>();
  const int64_t* frames = lengths.data_ptr<int64_t>();
  std::vector<int64_t> bad;
  for (int64_t n = 0; n < first.numel(); ++n)
    if (frames[n] > 0 && label[n] < 0) bad.push_back(n);
  TORCH_CHECK_VALUE(bad.empty(), "torch_ctc: forced_align: no path of finite score for sample",
                    bad.size() > 1 ? "s " : " ", ctc::list_samples(bad),
                    ": every path passes through a -inf or NaN log-prob (masked classes, or NaN in log_probs)");
}

void check_decode_arguments(const at::Tensor& log_probs, const at::Tensor& input_lengths, int64_t blank,
                            bool batch_first) {
  // ctc_loss's checks of log_probs, blank and input_lengths, with placeholder targets.
  const at::Tensor no_targets = at::empty({0}, log_probs.options().dtype(at::kLong));
  check_arguments(log_probs, no_targets, input_lengths, input_lengths, blank, batch_first);
}

HostDecodeProblem make_host_decode_problem(const at::Tensor& log_probs, const at::Tensor& input_lengths,
                                           int64_t blank, bool batch_first) {
  check_decode_arguments(log_probs, input_lengths, blank, batch_first);
  HostDecodeProblem host;
  host.input_lengths = input_lengths.to(at::TensorOptions().dtype(at::kLong).device(at::kCPU)).contiguous();
  host.problem = problem_for_input(log_probs, blank, batch_first, /*from_logits=*/false);
  host.problem.input_lengths = host.input_lengths.data_ptr<int64_t>();
  const int64_t* lengths = host.problem.input_lengths;
  for (int64_t n = 0; n < host.problem.batch; ++n) {
    TORCH_CHECK_VALUE(lengths[n] >= 0, "torch_ctc: input_lengths[", n, "] = ", lengths[n], " is negative");
    TORCH_CHECK_VALUE(lengths[n] <= host.problem.max_time, "torch_ctc: input_lengths[", n, "] = ", lengths[n],
                      " is greater than the number of frames in log_probs (T = ", host.problem.max_time, ")");
  }
  return host;
}

}  // namespace torch_ctc
