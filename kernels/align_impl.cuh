// The launch sequences of forced alignment and greedy decoding for one input
// dtype, instantiated by instantiate_<dtype>.cu with the loss's.
#pragma once

#include "align_engine.h"
#include "align_kernels.cuh"
#include "block_size.h"
#include "greedy_kernels.cuh"
#include "launch.h"

namespace ctc::cuda {

constexpr int kPerSampleThreads = 128;
constexpr int kArgmaxThreads = 256;

// Defined in align_engine.cu (not per dtype).
void launch_collapse(const Problem& p, const int32_t* labels, int64_t* tokens, int64_t* lengths,
                     int64_t* first_frames, cudaStream_t stream);

template <typename In, typename Acc>
void forced_align_impl(const Problem& p, int64_t max_states, void* rows, uint8_t* moves, int64_t* alignments,
                       void* scores, cudaStream_t stream) {
  if (p.batch == 0 || p.max_time == 0) return;
  // Four states a thread (one byte of moves each).
  launch({"viterbi_kernel", static_cast<unsigned>(p.batch), recurrence_block_size((max_states + 3) / 4), 0, stream},
         viterbi_kernel<In, Acc>, p, static_cast<Acc*>(rows), moves);
  launch({"backtrack_kernel", grid_stride_blocks(p.batch, kPerSampleThreads), kPerSampleThreads, 0, stream},
         backtrack_kernel<In, Acc>, p, static_cast<const Acc*>(rows), static_cast<const uint8_t*>(moves), alignments,
         static_cast<Acc*>(scores));
}

template <typename In, typename Acc>
void greedy_decode_impl(const Problem& p, int32_t* labels, int64_t* tokens, int64_t* lengths, int64_t* first_frames,
                        cudaStream_t stream) {
  if (p.batch == 0) return;
  if (p.max_time > 0)
    launch({"frame_argmax_kernel", grid_stride_blocks(p.batch * p.max_time, kArgmaxThreads), kArgmaxThreads, 0,
            stream},
           frame_argmax_kernel<In, Acc>, p, labels);
  launch_collapse(p, labels, tokens, lengths, first_frames, stream);
}

#define CTC_DECLARE_CUDA_ALIGN(In, Acc)                                                                         \
  extern template void forced_align_impl<In, Acc>(const Problem&, int64_t, void*, uint8_t*, int64_t*, void*,    \
                                                  cudaStream_t);                                                \
  extern template void greedy_decode_impl<In, Acc>(const Problem&, int32_t*, int64_t*, int64_t*, int64_t*,      \
                                                   cudaStream_t);
#define CTC_INSTANTIATE_CUDA_ALIGN(In, Acc)                                                                     \
  template void forced_align_impl<In, Acc>(const Problem&, int64_t, void*, uint8_t*, int64_t*, void*,           \
                                           cudaStream_t);                                                       \
  template void greedy_decode_impl<In, Acc>(const Problem&, int32_t*, int64_t*, int64_t*, int64_t*, cudaStream_t);

}  // namespace ctc::cuda
