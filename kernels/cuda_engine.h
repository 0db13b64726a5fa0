// Host API of the CUDA backend. Like the CPU engine it knows nothing of torch:
// the caller passes a ctc::Problem whose pointers are device pointers, plus
// buffers it allocated (sizes from the *_elems functions below), and a stream.
// Every launch is checked; failures throw ctc::Error.
//
// Passes:
//   forward:  [frame normalisers (from_logits)] -> alpha (loop over t; one
//             warp per sample with the states in registers up to 256 states,
//             else one block per sample: recurrence_path.h) -> per-sample nll.
//   backward: class index (labels -> target positions, per sample)
//             -> beta + state posteriors (loop over t, the same two paths)
//             -> dense gradient (one thread per (t, n, c), fully parallel,
//                no atomics: each element sums its own states' posteriors in
//                a fixed order, so results are bitwise deterministic).
#pragma once

#include "device.h"

#include <cstdint>

#include "ctc/problem.h"
#include "recurrence_path.h"

namespace ctc::cuda {

// Lengths and offsets made safe for the kernels whatever the caller's lengths
// hold (validation may be off): input lengths clamped to [0, T], target
// lengths and offsets clamped so every sample stays inside its label slots.
struct SafeIndices {
  int64_t* input_lengths = nullptr;   // N
  int64_t* target_lengths = nullptr;  // N
  int64_t* target_offsets = nullptr;  // N
};

// Temporary bytes sanitize_indices needs (CUB's scan of the target lengths).
size_t sanitize_temp_bytes(int64_t batch);

// Fills `out` from the raw int64 device lengths. `padded_width` is S for
// padded (N, S) targets, -1 for concatenated ones.
void sanitize_indices(const int64_t* input_lengths, const int64_t* target_lengths, int64_t batch, int64_t max_time,
                      int64_t target_slots, int64_t padded_width, const SafeIndices& out, void* temp,
                      size_t temp_bytes, cudaStream_t stream);

// `max_states` bounds 2 * max(target_lengths) + 1; it picks the recurrence
// path (`path`, see recurrence_path.h) and sizes its thread blocks.
void forward(const Problem& problem, int64_t max_states, void* workspace, void* nll, cudaStream_t stream,
             RecurrencePath path = RecurrencePath::kAuto);

struct BackwardBuffers {
  const void* workspace = nullptr;  // from forward
  const void* nll = nullptr;        // N, accumulate dtype
  const void* grad_nll = nullptr;   // N, accumulate dtype
  void* posterior = nullptr;        // posterior_elems, accumulate dtype
  void* beta_rows = nullptr;        // beta_rows_elems, accumulate dtype
  int32_t* class_starts = nullptr;  // class_starts_elems
  int32_t* class_positions = nullptr;  // max(target_slots, 1)
};

int64_t posterior_elems(int64_t max_time, int64_t batch, int64_t target_slots);
int64_t beta_rows_elems(int64_t batch, int64_t target_slots);
int64_t class_starts_elems(int64_t batch, int64_t num_classes);

void backward(const Problem& problem, int64_t max_states, bool zero_infinity, const BackwardBuffers& buffers,
              const GradientOutput& grad, cudaStream_t stream, RecurrencePath path = RecurrencePath::kAuto);

}  // namespace ctc::cuda
