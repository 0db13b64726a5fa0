// The CUDA op's call sequence, without the CUDA parts of torch: argument
// checks, the index upload and sanitising, buffer sizing from torch's
// allocator (through the tensors' own options), and the engine calls on the
// given stream. ops_cuda.cpp wraps these with the device guard and torch's
// current stream; the CUDA simulator suite registers them for CPU tensors
// instead (tests/cuda_sim/op_sim_test.cpp), so all of this runs in CI.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

#include "device.h"

namespace torch_ctc {

std::tuple<at::Tensor, at::Tensor> cuda_op_forward(const at::Tensor& log_probs, const at::Tensor& targets,
                                                   const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                   int64_t blank, bool batch_first, bool from_logits, bool validate,
                                                   cudaStream_t stream);

at::Tensor cuda_op_backward(const at::Tensor& grad_nll, const at::Tensor& log_probs, const at::Tensor& targets,
                            const at::Tensor& input_lengths, const at::Tensor& target_lengths, const at::Tensor& nll,
                            const at::Tensor& workspace, int64_t blank, bool zero_infinity, bool batch_first,
                            bool from_logits, cudaStream_t stream);

}  // namespace torch_ctc
