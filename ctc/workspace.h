// Workspace sizes. The caller allocates; the engine never allocates in the hot
// path. Sizes depend only on shapes (T, N, C, target slots), never on lengths
// or label values, so a fake/meta kernel can compute them without data.
//
// Forward workspace (kept for the backward pass), in the accumulate dtype:
//   [ alpha | frame log-normalisers ]
//   alpha of sample n: T rows of S'_n states, at offset T * (2 * target_offsets[n] + n).
//   The blocks never overlap because target_offsets[n+1] >= target_offsets[n] + L_n.
//   frame log-normalisers (from_logits only): logsumexp over C of each (t, n), N * T values.
// CPU scratch (not kept), in the accumulate dtype, used by both passes:
//   per sample six padded rows (see ctc/cpu_engine_internal.h) and one
//   per-class accumulator (C).
#pragma once

#include <cstdint>

#include "ctc/dtype.h"
#include "ctc/hd.h"
#include "ctc/problem.h"

namespace ctc {

struct WorkspaceLayout {
  int64_t alpha_elems = 0;
  int64_t normaliser_elems = 0;
  int64_t total_elems() const { return alpha_elems + normaliser_elems; }
};

// Throws ctc::Error (naming the sizes) if the count overflows int64.
WorkspaceLayout forward_workspace_layout(int64_t max_time, int64_t batch, int64_t target_slots,
                                         bool from_logits);
int64_t backward_scratch_elems(int64_t batch, int64_t num_classes, int64_t target_slots);

// Offsets of one sample's pieces, shared by every backend (host and device).
CTC_HD int64_t alpha_offset(int64_t max_time, int64_t target_offset, int64_t sample) {
  return max_time * (2 * target_offset + sample);
}
// End of sample n's alpha block: the next block's start, or the alpha total.
CTC_HD int64_t alpha_block_end(const Problem& p, int64_t sample) {
  return sample + 1 < p.batch ? alpha_offset(p.max_time, p.target_offsets[sample + 1], sample + 1)
                              : p.max_time * (2 * p.target_slots + p.batch);
}

}  // namespace ctc
