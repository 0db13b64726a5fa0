// CPU kernels of _forced_align and _greedy_decode: thin wrappers around the
// core's aligner (ctc/align.h) and decoder (ctc/decode.h).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "alignment_args.h"
#include "ctc/align.h"
#include "ctc/decode.h"
#include "parallel.h"
#include "tensor_problem.h"

namespace torch_ctc {
namespace {

std::tuple<at::Tensor, at::Tensor> forced_align_cpu(const at::Tensor& log_probs, const at::Tensor& targets,
                                                    const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                    int64_t blank, bool batch_first, int64_t memory,
                                                    bool /*validate: the CPU always validates*/) {
  const ctc::AlignMemory mode = align_memory(memory);
  const HostProblem host =
      make_host_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first, false);
  check_alignable(host);
  const ctc::Problem& p = host.problem;
  at::Tensor alignments = at::empty({p.batch, p.max_time}, log_probs.options().dtype(at::kLong));
  at::Tensor scores =
      at::empty({p.batch, p.max_time}, log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type())));
  ctc::cpu_forced_align(p, mode, alignments.data_ptr<int64_t>(), scores.data_ptr(), torch_parallel_for);
  if (p.max_time > 0) check_aligned(alignments, host.input_lengths);
  return {alignments, scores};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> greedy_decode_cpu(const at::Tensor& log_probs,
                                                                 const at::Tensor& input_lengths, int64_t blank,
                                                                 bool batch_first) {
  const HostDecodeProblem host = make_host_decode_problem(log_probs, input_lengths, blank, batch_first);
  const ctc::Problem& p = host.problem;
  const auto long_options = log_probs.options().dtype(at::kLong);
  at::Tensor tokens = at::empty({p.batch, p.max_time}, long_options);
  at::Tensor lengths = at::empty({p.batch}, long_options);
  at::Tensor frames = at::empty({p.batch, p.max_time}, long_options);
  ctc::cpu_greedy_decode(p, tokens.data_ptr<int64_t>(), lengths.data_ptr<int64_t>(), frames.data_ptr<int64_t>(),
                         torch_parallel_for);
  return {tokens, lengths, frames};
}

}  // namespace

TORCH_LIBRARY_IMPL(torch_ctc, CPU, m) {
  m.impl("_forced_align", &forced_align_cpu);
  m.impl("_greedy_decode", &greedy_decode_cpu);
}

}  // namespace torch_ctc
