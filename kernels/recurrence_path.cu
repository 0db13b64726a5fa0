// Choosing the recurrence kernels (see recurrence_path.h).
#include "recurrence_path.h"

#include <cstdlib>
#include <string>

#include "ctc/error.h"

namespace ctc::cuda {

namespace {

constexpr int64_t kMaxWarpStates = 32 * 8;
constexpr const char* kVariable = "TORCH_CTC_CUDA_RECURRENCE";

RecurrencePath path_from_environment() {
  const char* value = std::getenv(kVariable);
  if (value == nullptr || *value == '\0') return RecurrencePath::kAuto;
  const std::string v(value);
  if (v == "auto") return RecurrencePath::kAuto;
  if (v == "block") return RecurrencePath::kBlock;
  if (v == "warp") return RecurrencePath::kWarp;
  throw Error(ErrorKind::kValue, kVariable,
              std::string(kVariable) + "='" + v + "': expected 'auto' (the default), 'block' or 'warp'");
}

}  // namespace

int warp_states_per_lane(int64_t max_states) {
  for (int k = 1; k <= 8; k *= 2)
    if (max_states <= 32 * k) return k;
  return 0;
}

RecurrencePath resolve_recurrence_path(RecurrencePath requested, int64_t max_states) {
  const bool from_environment = requested == RecurrencePath::kAuto;
  const RecurrencePath path = from_environment ? path_from_environment() : requested;
  const bool fits = warp_states_per_lane(max_states) > 0;
  if (path == RecurrencePath::kAuto) return fits ? RecurrencePath::kWarp : RecurrencePath::kBlock;
  if (path == RecurrencePath::kWarp && !fits)
    throw Error(ErrorKind::kValue, from_environment ? kVariable : "path",
                "the warp recurrence kernels hold at most " + std::to_string(kMaxWarpStates) +
                    " states (target length 127); this problem has up to " + std::to_string(max_states) +
                    (from_environment ? std::string(": unset ") + kVariable + " or set it to 'auto'" : std::string()));
  return path;
}

const char* recurrence_path_name(RecurrencePath path) {
  switch (path) {
    case RecurrencePath::kAuto: return "auto";
    case RecurrencePath::kBlock: return "block";
    case RecurrencePath::kWarp: return "warp";
  }
  return "?";
}

}  // namespace ctc::cuda
