// Random CTC problems for the simulator suite, without torch: labels,
// lengths and values, laid out in any of the layouts the engines read, plus
// runners for the CPU engine (the reference) and the CUDA engine in the
// simulator, both driven exactly as the bindings drive them.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "ctc/dtype.h"
#include "ctc/problem.h"
#include "recurrence_path.h"

namespace ctc::sim_test {

enum class Layout { kTimeMajor, kBatchFirst, kClassStride, kChannelsFirst };
const char* layout_name(Layout layout);

struct CaseSpec {
  uint64_t seed = 0;
  DType dtype = DType::kFloat32;
  Layout layout = Layout::kTimeMajor;
  int64_t T = 8, N = 3, C = 6, blank = 0;
  int64_t max_length = 4;  // target lengths drawn in [min_length, max_length]
  int64_t min_length = 0;
  bool padded = true, from_logits = false, zero_infinity = false;
  bool infeasible = false;     // one sample gets more labels than frames allow
  bool nan_padding = false;    // frames past each input length hold NaN
  bool no_repeats = false;     // adjacent labels differ (long targets fit T = L)
  // The CUDA recurrence kernels of each pass (recurrence_path.h); kAuto: by max_states.
  cuda::RecurrencePath forward_path = cuda::RecurrencePath::kAuto;
  cuda::RecurrencePath backward_path = cuda::RecurrencePath::kAuto;
  std::string describe() const;
};

// A problem and the buffers that hold it (host memory: the simulator's
// device memory is host memory too).
struct Case {
  CaseSpec spec;
  std::vector<std::vector<int64_t>> labels;
  std::vector<int64_t> input_lengths, target_lengths, targets, offsets;
  int64_t padded_width = -1;
  std::vector<double> values;      // logical (t, n, c), time-major, before rounding to the dtype
  // The input in its dtype, laid out per spec.layout (one of these is used).
  std::vector<half_t> storage_half;
  std::vector<bfloat16_t> storage_bf16;
  std::vector<float> storage32;
  std::vector<double> storage64;
  int64_t stride_t = 0, stride_n = 0, stride_c = 0;

  const void* input() const;
  Problem problem() const;  // host pointers throughout
  int64_t max_states() const;
};

Case make_case(const CaseSpec& spec);

// What a backend computed: the per-sample losses and d(sum_n w_n nll_n)/d input
// as doubles, the gradient time-major (T, N, C); the workspace's alpha part.
struct Result {
  std::vector<double> nll, grad, alpha;
  bool every_gradient_element_written = true;
};

std::vector<double> sample_weights(int64_t batch);

// The CPU engine's scalar kernels.
Result run_cpu(const Case& c);

// The CUDA engine in the simulator, through sanitize_indices with the raw
// lengths, as bindings/torch/ops_cuda.cpp does. `validated`: max_states from
// the longest target (validation on) or the bound the padded width or the
// number of labels gives (validation off).
Result run_cuda(const Case& c, bool validated = true);

}  // namespace ctc::sim_test
