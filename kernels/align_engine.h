// Host API of the CUDA aligner and greedy decoder (no torch). As with the
// loss engine (cuda_engine.h), the problem's pointers are device pointers
// with lengths made safe by sanitize_indices, the caller allocates every
// buffer (sizes below), and everything runs on `stream` with no host sync.
#pragma once

#include <cstdint>

#include "ctc/problem.h"
#include "device.h"

namespace ctc::cuda {

// Scratch of forced_align: Viterbi score rows (accumulate dtype) and moves (bytes).
int64_t viterbi_rows_elems(int64_t batch, int64_t target_slots);
int64_t viterbi_move_bytes(int64_t max_time, int64_t batch, int64_t target_slots);

// `max_states` bounds 2 * max(target_lengths) + 1; it only sizes thread
// blocks. Writes (N, T) alignments (int64; -1 past each input length, and in
// every frame of a sample with no finite path) and scores (accumulate dtype; 0
// where the alignment is -1). The caller checks feasibility beforehand.
void forced_align(const Problem& problem, int64_t max_states, void* rows, uint8_t* moves, int64_t* alignments,
                  void* scores, cudaStream_t stream);

// Scratch of greedy_decode: each frame's argmax label.
int64_t greedy_labels_elems(int64_t max_time, int64_t batch);

// (N, T) tokens and first frames (-1 after the last token) and (N,) lengths.
void greedy_decode(const Problem& problem, int32_t* labels, int64_t* tokens, int64_t* lengths, int64_t* first_frames,
                   cudaStream_t stream);

}  // namespace ctc::cuda
