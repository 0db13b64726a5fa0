// The CUDA call sequences of _forced_align and _greedy_decode, without the
// CUDA parts of torch (as cuda_op.cpp for the loss): on the given stream,
// buffers from torch's allocator for the input's device. With lengths on the
// device and validate=False, forced_align makes no host sync; greedy_decode
// never does (lengths on the host are checked there, device ones clamped).
#include <ATen/ATen.h>

#include "align_engine.h"
#include "alignment_args.h"
#include "cuda_engine.h"
#include "cuda_op.h"

namespace torch_ctc {

std::tuple<at::Tensor, at::Tensor> cuda_op_forced_align(const at::Tensor& log_probs, const at::Tensor& targets,
                                                        const at::Tensor& input_lengths,
                                                        const at::Tensor& target_lengths, int64_t blank,
                                                        bool batch_first, int64_t memory, bool validate,
                                                        cudaStream_t stream) {
  TORCH_CHECK_VALUE(align_memory(memory) != ctc::AlignMemory::kCheckpointed,
                    "torch_ctc: forced_align: the checkpointed memory mode runs on the CPU only; on CUDA every "
                    "frame's moves are kept (2 bits a state)");
  return rethrowing_core_errors([&] {
    const DeviceProblem d = make_device_problem(log_probs, targets, input_lengths, target_lengths, blank, batch_first,
                                                /*from_logits=*/false, validate, stream);
    if (d.validated) check_alignable(d.host);
    const ctc::Problem& p = d.problem;
    const auto acc = log_probs.options().dtype(accumulate_scalar_type(log_probs.scalar_type()));
    at::Tensor rows = at::empty({ctc::cuda::viterbi_rows_elems(p.batch, p.target_slots)}, acc);
    at::Tensor moves = at::empty({ctc::cuda::viterbi_move_bytes(p.max_time, p.batch, p.target_slots)},
                                 log_probs.options().dtype(at::kByte));
    at::Tensor alignments = at::empty({p.batch, p.max_time}, log_probs.options().dtype(at::kLong));
    at::Tensor scores = at::empty({p.batch, p.max_time}, acc);
    ctc::cuda::forced_align(p, d.max_states, rows.data_ptr(), moves.data_ptr<uint8_t>(),
                            alignments.data_ptr<int64_t>(), scores.data_ptr(), stream);
    if (d.validated && p.max_time > 0) check_aligned(alignments.cpu(), d.host.input_lengths);
    return std::make_tuple(alignments, scores);
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cuda_op_greedy_decode(const at::Tensor& log_probs,
                                                                     const at::Tensor& input_lengths, int64_t blank,
                                                                     bool batch_first, cudaStream_t stream) {
  if (input_lengths.device().is_cpu()) make_host_decode_problem(log_probs, input_lengths, blank, batch_first);
  else check_decode_arguments(log_probs, input_lengths, blank, batch_first);
  return rethrowing_core_errors([&] {
    // sanitize_indices clamps the lengths on the device (no targets: padded (N, 0)).
    const at::Tensor no_targets =
        at::empty({log_probs.size(batch_first ? 0 : 1), 0}, log_probs.options().dtype(at::kLong));
    const DeviceProblem d = make_device_problem(log_probs, no_targets, input_lengths, at::zeros_like(input_lengths),
                                                blank, batch_first, /*from_logits=*/false, /*validate=*/false, stream);
    const ctc::Problem& p = d.problem;
    const auto long_options = log_probs.options().dtype(at::kLong);
    at::Tensor labels = at::empty({ctc::cuda::greedy_labels_elems(p.max_time, p.batch)},
                                  log_probs.options().dtype(at::kInt));
    at::Tensor tokens = at::empty({p.batch, p.max_time}, long_options);
    at::Tensor lengths = at::empty({p.batch}, long_options);
    at::Tensor frames = at::empty({p.batch, p.max_time}, long_options);
    ctc::cuda::greedy_decode(p, labels.data_ptr<int32_t>(), tokens.data_ptr<int64_t>(), lengths.data_ptr<int64_t>(),
                             frames.data_ptr<int64_t>(), stream);
    return std::make_tuple(tokens, lengths, frames);
  });
}

}  // namespace torch_ctc
