// Dtype dispatch, buffer sizes and the dtype-independent collapse kernel of
// the CUDA aligner and greedy decoder (align_engine.h).
#include "align_engine.h"
#include "align_impl.cuh"
#include "ctc/dtype.h"
#include "ctc/greedy.h"

namespace ctc::cuda {
namespace {

struct FrameLabels {
  const int32_t* row;
  CTC_HD int64_t operator()(int64_t t) const { return row[t]; }
};

__global__ void collapse_kernel(Problem p, const int32_t* labels, int64_t* tokens, int64_t* lengths,
                                int64_t* first_frames) {
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; n < p.batch;
       n += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t* row = tokens + n * p.max_time;
    int64_t* frames = first_frames + n * p.max_time;
    const int64_t count =
        collapse_best_path(FrameLabels{labels + n * p.max_time}, p.input_lengths[n], p.blank, row, frames);
    lengths[n] = count;
    for (int64_t k = count; k < p.max_time; ++k) row[k] = frames[k] = -1;
  }
}

}  // namespace

CTC_DECLARE_CUDA_ALIGN(float, float)
CTC_DECLARE_CUDA_ALIGN(double, double)
CTC_DECLARE_CUDA_ALIGN(half_t, float)
CTC_DECLARE_CUDA_ALIGN(bfloat16_t, float)

void launch_collapse(const Problem& p, const int32_t* labels, int64_t* tokens, int64_t* lengths,
                     int64_t* first_frames, cudaStream_t stream) {
  launch({"collapse_kernel", grid_stride_blocks(p.batch, kPerSampleThreads), kPerSampleThreads, 0, stream},
         collapse_kernel, p, labels, tokens, lengths, first_frames);
}

int64_t viterbi_rows_elems(int64_t batch, int64_t target_slots) { return 2 * (2 * target_slots + batch); }

int64_t viterbi_move_bytes(int64_t max_time, int64_t batch, int64_t target_slots) {
  return max_time * (target_slots + 2 * batch);
}

int64_t greedy_labels_elems(int64_t max_time, int64_t batch) { return max_time * batch; }

void forced_align(const Problem& problem, int64_t max_states, void* rows, uint8_t* moves, int64_t* alignments,
                  void* scores, cudaStream_t stream) {
  dispatch_dtype(problem.dtype, [&](auto in, auto acc) {
    forced_align_impl<decltype(in), decltype(acc)>(problem, max_states, rows, moves, alignments, scores, stream);
  });
}

void greedy_decode(const Problem& problem, int32_t* labels, int64_t* tokens, int64_t* lengths, int64_t* first_frames,
                   cudaStream_t stream) {
  dispatch_dtype(problem.dtype, [&](auto in, auto acc) {
    greedy_decode_impl<decltype(in), decltype(acc)>(problem, labels, tokens, lengths, first_frames, stream);
  });
}

}  // namespace ctc::cuda
