#include "sim_problem.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "ctc/cpu_engine.h"
#include "ctc/dtype.h"
#include "common/unwritten.h"
#include "ctc/workspace.h"
#include "cuda_engine.h"

namespace ctc::sim_test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

int64_t frames_needed(const std::vector<int64_t>& labels) {
  int64_t repeats = 0;
  for (size_t i = 1; i < labels.size(); ++i) repeats += labels[i] == labels[i - 1];
  return static_cast<int64_t>(labels.size()) + repeats;
}

std::vector<int64_t> draw_labels(std::mt19937_64& rng, int64_t length, const CaseSpec& s) {
  std::uniform_int_distribution<int64_t> label(0, s.C - 2);
  std::vector<int64_t> out;
  while (static_cast<int64_t>(out.size()) < length) {
    int64_t l = label(rng);
    l = l >= s.blank ? l + 1 : l;  // skip the blank
    if (s.no_repeats && !out.empty() && l == out.back() && s.C > 2) continue;
    out.push_back(l);
  }
  return out;
}

// Element strides of the logical (t, n, c) dims, and the buffer size they need.
int64_t lay_out(Case& c) {
  const int64_t T = c.spec.T, N = c.spec.N, C = c.spec.C;
  switch (c.spec.layout) {
    case Layout::kTimeMajor: c.stride_t = N * C, c.stride_n = C, c.stride_c = 1; break;
    case Layout::kBatchFirst: c.stride_n = T * C, c.stride_t = C, c.stride_c = 1; break;
    case Layout::kClassStride: c.stride_t = N * 2 * C, c.stride_n = 2 * C, c.stride_c = 2; break;
    case Layout::kChannelsFirst: c.stride_c = T * N, c.stride_t = N, c.stride_n = 1; break;
  }
  if (T == 0 || N == 0) return 0;
  return (T - 1) * c.stride_t + (N - 1) * c.stride_n + (C - 1) * c.stride_c + 1;
}

template <typename In>
void store_values(const Case& c, std::vector<In>& out, int64_t elems) {
  out.assign(static_cast<size_t>(elems), In{});
  for (int64_t t = 0; t < c.spec.T; ++t)
    for (int64_t n = 0; n < c.spec.N; ++n)
      for (int64_t k = 0; k < c.spec.C; ++k) {
        using Acc = std::conditional_t<std::is_same_v<In, double>, double, float>;
        store(out[t * c.stride_t + n * c.stride_n + k * c.stride_c],
              static_cast<Acc>(c.values[(t * c.spec.N + n) * c.spec.C + k]));
      }
}

// The gradient as the bindings allocate it: like the input when that is dense
// (time-major, batch-first, channels-first), contiguous time-major otherwise.
struct GradientLayout {
  int64_t stride_t, stride_n, stride_c, elems;
};

GradientLayout gradient_layout(const Case& c) {
  const int64_t T = c.spec.T, N = c.spec.N, C = c.spec.C;
  if (c.spec.layout == Layout::kClassStride) return {N * C, C, 1, T * N * C};
  return {c.stride_t, c.stride_n, c.stride_c, T * N * C};
}

template <typename In>
void read_gradient(const Case& c, const std::vector<In>& grad, const GradientLayout& g, Result& r) {
  const int64_t T = c.spec.T, N = c.spec.N, C = c.spec.C;
  r.grad.assign(static_cast<size_t>(T * N * C), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < C; ++k) {
        const In v = grad[t * g.stride_t + n * g.stride_n + k * g.stride_c];
        if (ctc::test::is_unwritten(v)) r.every_gradient_element_written = false;
        r.grad[(t * N + n) * C + k] = load<double>(v);
      }
}

template <typename Acc>
std::vector<Acc> as_acc(const std::vector<double>& v) {
  return std::vector<Acc>(v.begin(), v.end());
}

template <typename In, typename Acc>
Result run_cpu_typed(const Case& c) {
  const Problem p = c.problem();
  const WorkspaceLayout layout = forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits);
  std::vector<Acc> workspace(static_cast<size_t>(layout.total_elems()));
  std::vector<Acc> scratch(static_cast<size_t>(cpu_scratch_elems(p.batch, p.num_classes, p.target_slots)));
  std::vector<Acc> nll(static_cast<size_t>(p.batch));
  set_cpu_kernel(CpuKernel::kScalar);
  cpu_forward(p, workspace.data(), nll.data(), scratch.data());
  const GradientLayout g = gradient_layout(c);
  std::vector<In> grad(static_cast<size_t>(g.elems), ctc::test::unwritten<In>());
  const std::vector<Acc> weights = as_acc<Acc>(sample_weights(p.batch));
  cpu_backward(p, workspace.data(), nll.data(), weights.data(), c.spec.zero_infinity, scratch.data(),
               GradientOutput{grad.data(), g.stride_t, g.stride_n, g.stride_c});
  set_cpu_kernel(CpuKernel::kAuto);
  Result r;
  r.nll.assign(nll.begin(), nll.end());
  r.alpha.assign(workspace.begin(), workspace.begin() + layout.alpha_elems);
  read_gradient(c, grad, g, r);
  return r;
}

template <typename In, typename Acc>
Result run_cuda_typed(const Case& c, bool validated) {
  Problem p = c.problem();
  const int64_t N = p.batch;
  // "Device" copies of what the binding uploads, and the safe indices.
  const std::vector<int64_t> targets = c.targets, raw_input_lengths = c.input_lengths,
                             raw_target_lengths = c.target_lengths;
  std::vector<int64_t> safe_input(N), safe_target(N), safe_offsets(N);
  const cuda::SafeIndices safe{safe_input.data(), safe_target.data(), safe_offsets.data()};
  std::vector<char> temp(cuda::sanitize_temp_bytes(N));
  cuda::sanitize_indices(raw_input_lengths.data(), raw_target_lengths.data(), N, p.max_time, p.target_slots,
                         c.padded_width, safe, temp.data(), temp.size(), nullptr);
  p.targets = targets.data();
  p.input_lengths = safe.input_lengths;
  p.target_lengths = safe.target_lengths;
  p.target_offsets = safe.target_offsets;
  const int64_t max_states =
      validated ? c.max_states() : 2 * (c.padded_width >= 0 ? c.padded_width : p.target_slots) + 1;

  const WorkspaceLayout layout = forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits);
  std::vector<Acc> workspace(static_cast<size_t>(layout.total_elems()));
  std::vector<Acc> nll(static_cast<size_t>(N));
  cuda::forward(p, max_states, workspace.data(), nll.data(), nullptr, c.spec.forward_path);

  std::vector<Acc> posterior(static_cast<size_t>(cuda::posterior_elems(p.max_time, N, p.target_slots)));
  std::vector<Acc> beta_rows(static_cast<size_t>(cuda::beta_rows_elems(N, p.target_slots)));
  std::vector<int32_t> class_starts(static_cast<size_t>(cuda::class_starts_elems(N, p.num_classes)));
  std::vector<int32_t> class_positions(static_cast<size_t>(std::max<int64_t>(p.target_slots, 1)));
  const std::vector<Acc> weights = as_acc<Acc>(sample_weights(N));
  cuda::BackwardBuffers buffers;
  buffers.workspace = workspace.data();
  buffers.nll = nll.data();
  buffers.grad_nll = weights.data();
  buffers.posterior = posterior.data();
  buffers.beta_rows = beta_rows.data();
  buffers.class_starts = class_starts.data();
  buffers.class_positions = class_positions.data();
  const GradientLayout g = gradient_layout(c);
  std::vector<In> grad(static_cast<size_t>(g.elems), ctc::test::unwritten<In>());
  cuda::backward(p, max_states, c.spec.zero_infinity, buffers,
                 GradientOutput{grad.data(), g.stride_t, g.stride_n, g.stride_c}, nullptr, c.spec.backward_path);
  Result r;
  r.nll.assign(nll.begin(), nll.end());
  r.alpha.assign(workspace.begin(), workspace.begin() + layout.alpha_elems);
  read_gradient(c, grad, g, r);
  return r;
}

}  // namespace

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::kTimeMajor: return "time-major";
    case Layout::kBatchFirst: return "batch-first";
    case Layout::kClassStride: return "class-stride-2";
    case Layout::kChannelsFirst: return "channels-first";
  }
  return "?";
}

std::string CaseSpec::describe() const {
  return std::string(dtype_name(dtype)) + ", " + layout_name(layout) + ", T " + std::to_string(T) + ", N " +
         std::to_string(N) + ", C " + std::to_string(C) + ", blank " + std::to_string(blank) +
         (padded ? ", padded" : ", concatenated") + (from_logits ? ", from_logits" : "") +
         (zero_infinity ? ", zero_infinity" : "") + (infeasible ? ", infeasible" : "") +
         (nan_padding ? ", NaN padding" : "") + ", recurrence " + cuda::recurrence_path_name(forward_path) + "/" +
         cuda::recurrence_path_name(backward_path) + ", seed " + std::to_string(seed);
}

std::vector<double> sample_weights(int64_t batch) {
  std::vector<double> w;
  for (int64_t n = 0; n < batch; ++n) w.push_back(0.5 + 0.25 * static_cast<double>(n % 5));
  return w;
}

Case make_case(const CaseSpec& spec) {
  Case c;
  c.spec = spec;
  std::mt19937_64 rng(spec.seed);
  for (int64_t n = 0; n < spec.N; ++n) {
    const int64_t length = std::uniform_int_distribution<int64_t>(spec.min_length, spec.max_length)(rng);
    std::vector<int64_t> labels = draw_labels(rng, length, spec);
    const bool make_infeasible = spec.infeasible && n == spec.N - 1;
    if (make_infeasible) {
      labels = draw_labels(rng, spec.T + 1, spec);  // more labels than frames
    } else {
      while (frames_needed(labels) > spec.T) labels.pop_back();
    }
    const int64_t need = std::min(frames_needed(labels), spec.T);
    c.input_lengths.push_back(n == 0 ? spec.T : std::uniform_int_distribution<int64_t>(need, spec.T)(rng));
    c.target_lengths.push_back(static_cast<int64_t>(labels.size()));
    c.labels.push_back(std::move(labels));
  }
  if (spec.padded) {
    int64_t longest = 0;
    for (int64_t l : c.target_lengths) longest = std::max(longest, l);
    c.padded_width = longest + 2;
    c.targets.assign(static_cast<size_t>(spec.N * c.padded_width), -7);  // junk past each length
  }
  for (int64_t n = 0; n < spec.N; ++n) {
    const int64_t offset = spec.padded ? n * c.padded_width : static_cast<int64_t>(c.targets.size());
    if (spec.padded) std::copy(c.labels[n].begin(), c.labels[n].end(), c.targets.begin() + offset);
    else c.targets.insert(c.targets.end(), c.labels[n].begin(), c.labels[n].end());
    c.offsets.push_back(offset);
  }
  std::normal_distribution<double> normal(0.0, 1.0);
  c.values.resize(static_cast<size_t>(spec.T * spec.N * spec.C));
  for (int64_t t = 0; t < spec.T; ++t)
    for (int64_t n = 0; n < spec.N; ++n) {
      double* row = &c.values[(t * spec.N + n) * spec.C];
      for (int64_t k = 0; k < spec.C; ++k) row[k] = normal(rng) * 2.0;
      if (!spec.from_logits) {  // log_softmax
        double m = -INFINITY, sum = 0;
        for (int64_t k = 0; k < spec.C; ++k) m = std::max(m, row[k]);
        for (int64_t k = 0; k < spec.C; ++k) sum += std::exp(row[k] - m);
        for (int64_t k = 0; k < spec.C; ++k) row[k] -= m + std::log(sum);
      }
      if (spec.nan_padding && t >= c.input_lengths[n])
        for (int64_t k = 0; k < spec.C; ++k) row[k] = kNaN;
    }
  const int64_t elems = lay_out(c);
  switch (spec.dtype) {
    case DType::kFloat64: store_values(c, c.storage64, elems); break;
    case DType::kFloat32: store_values(c, c.storage32, elems); break;
    case DType::kFloat16: store_values(c, c.storage_half, elems); break;
    case DType::kBFloat16: store_values(c, c.storage_bf16, elems); break;
  }
  return c;
}

const void* Case::input() const {
  switch (spec.dtype) {
    case DType::kFloat64: return storage64.data();
    case DType::kFloat32: return storage32.data();
    case DType::kFloat16: return storage_half.data();
    case DType::kBFloat16: return storage_bf16.data();
  }
  return nullptr;
}

Problem Case::problem() const {
  Problem p;
  p.max_time = spec.T;
  p.batch = spec.N;
  p.num_classes = spec.C;
  p.input = input();
  p.dtype = spec.dtype;
  p.stride_t = stride_t;
  p.stride_n = stride_n;
  p.stride_c = stride_c;
  p.from_logits = spec.from_logits;
  p.blank = spec.blank;
  p.targets = targets.data();
  p.target_offsets = offsets.data();
  p.target_slots = static_cast<int64_t>(targets.size());
  p.input_lengths = input_lengths.data();
  p.target_lengths = target_lengths.data();
  return p;
}

int64_t Case::max_states() const {
  int64_t longest = 0;
  for (int64_t l : target_lengths) longest = std::max(longest, l);
  return 2 * longest + 1;
}

Result run_cpu(const Case& c) {
  Result r;
  dispatch_dtype(c.spec.dtype, [&](auto in, auto acc) { r = run_cpu_typed<decltype(in), decltype(acc)>(c); });
  return r;
}

Result run_cuda(const Case& c, bool validated) {
  Result r;
  dispatch_dtype(c.spec.dtype, [&](auto in, auto acc) { r = run_cuda_typed<decltype(in), decltype(acc)>(c, validated); });
  return r;
}

}  // namespace ctc::sim_test
