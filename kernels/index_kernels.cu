// Integer bookkeeping on the device: making lengths safe for the kernels, and
// the per-sample class index (which target positions hold each class) that
// lets the gradient pass gather posteriors without atomics.
#include <algorithm>

#include "cub_adapters.cuh"
#include "cuda_engine.h"
#include "index_kernels.h"
#include "launch.h"

namespace ctc::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t items) { return static_cast<int>(std::max<int64_t>((items + kThreads - 1) / kThreads, 1)); }

__device__ int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

__global__ void clamp_lengths_kernel(const int64_t* input_lengths, const int64_t* target_lengths, int64_t batch,
                                     int64_t max_time, int64_t target_slots, int64_t padded_width, SafeIndices out) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= batch) return;
  out.input_lengths[n] = clamp64(input_lengths[n], 0, max_time);
  out.target_lengths[n] = clamp64(target_lengths[n], 0, padded_width >= 0 ? padded_width : target_slots);
  if (padded_width >= 0) out.target_offsets[n] = n * padded_width;
}

// After the exclusive scan: samples that would run past the label slots are
// cut short (only possible when validation is off and the lengths are wrong).
__global__ void fit_concatenated_kernel(int64_t batch, int64_t target_slots, SafeIndices out) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= batch) return;
  const int64_t offset = out.target_offsets[n] < target_slots ? out.target_offsets[n] : target_slots;
  out.target_offsets[n] = offset;
  const int64_t room = target_slots - offset;
  if (out.target_lengths[n] > room) out.target_lengths[n] = room;
}

// One thread per sample: a stable counting sort of its labels. On return
// class_starts[n][c] .. class_starts[n][c + 1] index the positions of class c
// in class_positions[target_offsets[n] + k], ascending.
__global__ void class_index_kernel(Problem p, int32_t* class_starts, int32_t* class_positions) {
  const int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (n >= p.batch) return;
  const int64_t classes = p.num_classes;
  int32_t* starts = class_starts + n * (classes + 1);
  const int64_t* target = p.targets + p.target_offsets[n];
  int32_t* positions = class_positions + p.target_offsets[n];
  const int64_t length = p.target_lengths[n];
  auto indexed = [&](int64_t label) { return label >= 0 && label < classes && label != p.blank; };

  for (int64_t c = 0; c <= classes; ++c) starts[c] = 0;
  for (int64_t i = 0; i < length; ++i)
    if (indexed(target[i])) ++starts[target[i] + 1];
  for (int64_t c = 1; c <= classes; ++c) starts[c] += starts[c - 1];
  for (int64_t i = 0; i < length; ++i)
    if (indexed(target[i])) positions[starts[target[i]]++] = static_cast<int32_t>(i);
  // Each starts[c] now holds the end of class c, i.e. the start of class c + 1.
  for (int64_t c = classes; c >= 1; --c) starts[c] = starts[c - 1];
  starts[0] = 0;
}

}  // namespace

size_t sanitize_temp_bytes(int64_t batch) {
  size_t bytes = 0;
  check_cuda(exclusive_sum(nullptr, bytes, static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr),
                           static_cast<int>(batch), nullptr),
             "cub::DeviceScan::ExclusiveSum (size query)");
  return std::max<size_t>(bytes, 1);
}

void sanitize_indices(const int64_t* input_lengths, const int64_t* target_lengths, int64_t batch, int64_t max_time,
                      int64_t target_slots, int64_t padded_width, const SafeIndices& out, void* temp,
                      size_t temp_bytes, cudaStream_t stream) {
  if (batch == 0) return;
  launch({"clamp_lengths_kernel", blocks_for(batch), kThreads, 0, stream}, clamp_lengths_kernel, input_lengths,
         target_lengths, batch, max_time, target_slots, padded_width, out);
  if (padded_width >= 0) return;
  check_cuda(exclusive_sum(temp, temp_bytes, static_cast<const int64_t*>(out.target_lengths), out.target_offsets,
                           static_cast<int>(batch), stream),
             "cub::DeviceScan::ExclusiveSum");
  launch({"fit_concatenated_kernel", blocks_for(batch), kThreads, 0, stream}, fit_concatenated_kernel, batch,
         target_slots, out);
}

void build_class_index(const Problem& p, int32_t* class_starts, int32_t* class_positions, cudaStream_t stream) {
  launch({"class_index_kernel", blocks_for(p.batch), kThreads, 0, stream}, class_index_kernel, p, class_starts,
         class_positions);
}

}  // namespace ctc::cuda
