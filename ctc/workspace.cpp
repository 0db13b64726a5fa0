#include "ctc/workspace.h"

#include <string>

#include "ctc/cpu_engine_internal.h"
#include "ctc/error.h"

namespace ctc {
namespace {

int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t out;
  if (__builtin_mul_overflow(a, b, &out))
    throw Error(ErrorKind::kResource, what,
                std::string("torch_ctc: the workspace for ") + what + " overflows 64-bit sizes (" +
                    std::to_string(a) + " x " + std::to_string(b) + " elements)");
  return out;
}

int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out))
    throw Error(ErrorKind::kResource, what,
                std::string("torch_ctc: the workspace for ") + what + " overflows 64-bit sizes");
  return out;
}

}  // namespace

WorkspaceLayout forward_workspace_layout(int64_t max_time, int64_t batch, int64_t target_slots, bool from_logits) {
  WorkspaceLayout layout;
  const int64_t states_total = checked_add(checked_mul(2, target_slots, "targets"), batch, "targets");
  layout.alpha_elems = checked_mul(max_time, states_total, "log_probs and targets");
  layout.normaliser_elems = from_logits ? checked_mul(max_time, batch, "log_probs") : 0;
  checked_add(layout.alpha_elems, layout.normaliser_elems, "log_probs and targets");
  return layout;
}

int64_t backward_scratch_elems(int64_t batch, int64_t num_classes, int64_t target_slots) {
  // Per sample: kScratchRows padded rows of 2 * slots + kRowPadding, and C class sums.
  const int64_t row_elems = checked_add(checked_mul(2, target_slots, "targets"),
                                        checked_mul(cpu::kRowPadding, batch, "targets"), "targets");
  return checked_add(checked_mul(cpu::kScratchRows, row_elems, "targets"), checked_mul(batch, num_classes, "log_probs"),
                     "log_probs and targets");
}

}  // namespace ctc
