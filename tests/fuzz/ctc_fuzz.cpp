// libFuzzer target over the core's public API (ctc/: no torch): a problem is
// decoded from the fuzz input -- shapes, the input's and the gradient's strides
// (any memory order, padding, a stride-0 dimension), lengths, labels, blank,
// dtype, from_logits, zero_infinity, values with -inf, inf and NaN -- and then
//  1. ctc::validate_values must refuse it exactly when an independent check
//     here says it is invalid (and with a ctc::Error naming an argument);
//  2. a valid problem runs forward and backward on the scalar kernels and,
//     for float accumulation on an AVX2 machine, on the AVX2 kernels; every
//     buffer is its own exactly-sized heap block, so ASan sees any access
//     outside it, and every gradient element must be written;
//  3. where the valid frames hold no NaN or +inf, the two kernels must agree
//     within the float32 error of a log-space recurrence (NaN for NaN, inf
//     for inf).
// Built with clang -fsanitize=fuzzer,address,undefined by scripts/fuzz.sh.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "ctc/cpu_engine.h"
#include "ctc/error.h"
#include "ctc/validate.h"
#include "ctc/workspace.h"
#include "common/unwritten.h"

namespace {

// Reads the fuzz input front to back; past its end every read is 0, so any
// input decodes to some problem.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return byte() & 1; }
  // A value in [lo, hi].
  int64_t range(int64_t lo, int64_t hi) {
    const uint32_t raw = static_cast<uint32_t>(byte()) | static_cast<uint32_t>(byte()) << 8;
    return lo + static_cast<int64_t>(raw % static_cast<uint32_t>(hi - lo + 1));
  }
  // An input value: mostly small finite numbers, sometimes the special ones.
  double value() {
    const uint8_t kind = byte();
    const int8_t magnitude = static_cast<int8_t>(byte());
    switch (kind % 32) {  // past the end of the input: 0, a uniform distribution
      case 28: return magnitude * 1e6;  // far beyond float16's range
      case 29: return -std::numeric_limits<double>::infinity();
      case 30: return std::numeric_limits<double>::infinity();
      case 31: return std::numeric_limits<double>::quiet_NaN();
      default: return magnitude / 16.0;
    }
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Logical dims (t, n, c) laid out in memory in some order, with each dim's
// extent padded and, for the input only, possibly one dim of stride 0.
struct Layout {
  int64_t stride[3] = {0, 0, 0};
  int64_t elems = 0;  // the buffer size the strides need (exactly)
};

Layout draw_layout(Reader& in, const int64_t size[3], bool allow_broadcast) {
  static const int kOrders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  const int* order = kOrders[in.range(0, 5)];  // order[0] is outermost
  const int broadcast = allow_broadcast && in.range(0, 7) == 0 ? static_cast<int>(in.range(0, 2)) : -1;
  Layout layout;
  int64_t step = 1;
  for (int i = 2; i >= 0; --i) {
    const int dim = order[i];
    if (dim == broadcast) continue;
    layout.stride[dim] = step;
    step *= size[dim] + in.range(0, 2);
  }
  bool empty = false;
  int64_t last = 0;
  for (int d = 0; d < 3; ++d) {
    empty = empty || size[d] == 0;
    last += (size[d] - 1) * layout.stride[d];
  }
  layout.elems = empty ? 0 : last + 1;
  return layout;
}

struct Drawn {
  ctc::Problem shape;  // sizes, strides, dtype, blank, from_logits; the pointers come from problem()
  int64_t padded_width = -1;
  int64_t target_slots = 0;
  bool zero_infinity = false;
  std::vector<int64_t> targets, offsets, input_lengths, target_lengths;
  std::vector<double> values;  // the input buffer's values, before conversion to the dtype
  Layout input, gradient;
  std::vector<double> grad_nll;

  ctc::Problem problem() const {
    ctc::Problem p = shape;
    p.targets = targets.data();
    p.target_offsets = offsets.data();
    p.target_slots = target_slots;
    p.input_lengths = input_lengths.data();
    p.target_lengths = target_lengths.data();
    return p;
  }
  int64_t at(const Layout& layout, int64_t t, int64_t n, int64_t c) const {
    return t * layout.stride[0] + n * layout.stride[1] + c * layout.stride[2];
  }
};

Drawn draw_problem(Reader& in) {
  Drawn d;
  ctc::Problem& p = d.shape;
  p.dtype = static_cast<ctc::DType>(in.range(0, 3));
  p.from_logits = in.flag();
  d.zero_infinity = in.flag();
  p.max_time = in.range(0, 24);
  p.batch = in.range(1, 5);
  p.num_classes = in.range(1, 40);
  p.blank = in.range(0, 31) == 0 ? (in.flag() ? -1 : p.num_classes) : in.range(0, p.num_classes - 1);
  const int64_t size[3] = {p.max_time, p.batch, p.num_classes};
  d.input = draw_layout(in, size, true);
  d.gradient = draw_layout(in, size, false);
  p.stride_t = d.input.stride[0];
  p.stride_n = d.input.stride[1];
  p.stride_c = d.input.stride[2];

  // Lengths and labels, mostly valid; the reads below make invalid ones possible.
  const bool padded = in.flag();
  if (padded) d.padded_width = in.range(0, 12);
  for (int64_t n = 0; n < p.batch; ++n) {
    d.input_lengths.push_back(in.range(0, 15) == 0 ? in.range(-1, 1) + (in.flag() ? p.max_time : 0)
                                                   : in.range(0, p.max_time));
    const int64_t most = padded ? d.padded_width : 12;
    d.target_lengths.push_back(in.range(0, 15) == 0 ? in.range(-1, most + 1) : in.range(0, most));
  }
  int64_t slots = 0;
  for (int64_t n = 0; n < p.batch; ++n) {
    d.offsets.push_back(padded ? n * d.padded_width : slots);
    slots += padded ? d.padded_width : std::max<int64_t>(d.target_lengths[n], 0);
  }
  if (!padded && in.range(0, 15) == 0) slots += in.flag() ? 1 : -std::min<int64_t>(slots, 1);  // a wrong total
  d.target_slots = slots;
  for (int64_t i = 0; i < slots; ++i) {
    const uint8_t kind = in.byte();
    if (kind % 32 == 0) d.targets.push_back(p.blank);
    else if (kind % 32 == 1) d.targets.push_back(in.flag() ? -1 : p.num_classes);
    else d.targets.push_back((p.blank + 1 + in.range(0, std::max<int64_t>(p.num_classes - 2, 0))) % p.num_classes);
  }
  for (int64_t i = 0; i < d.input.elems; ++i) d.values.push_back(in.value());
  for (int64_t n = 0; n < p.batch; ++n) d.grad_nll.push_back(in.range(0, 7) == 0 ? 0.0 : in.range(1, 16) / 8.0);
  return d;
}

// The rules of ctc/validate.h, written again independently.
bool is_valid(const Drawn& d) {
  const ctc::Problem& p = d.shape;
  if (p.blank < 0 || p.blank >= p.num_classes) return false;
  int64_t total = 0;
  for (int64_t n = 0; n < p.batch; ++n) {
    const int64_t frames = d.input_lengths[n], length = d.target_lengths[n];
    if (frames < 0 || frames > p.max_time || length < 0) return false;
    if (d.padded_width >= 0 && length > d.padded_width) return false;
    total += length;
  }
  if (d.padded_width < 0 && total != d.target_slots) return false;
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t i = 0; i < d.target_lengths[n]; ++i) {
      const int64_t label = d.targets[d.offsets[n] + i];
      if (label < 0 || label >= p.num_classes || label == p.blank) return false;
    }
  return true;
}

// Prints the problem (so a crash report says what was run) and aborts.
[[noreturn]] void fail(const Drawn& d, const char* what) {
  const ctc::Problem& p = d.shape;
  std::fprintf(stderr, "ctc_fuzz: %s\n  dtype %s, T %lld, N %lld, C %lld, blank %lld, from_logits %d, zero_infinity %d\n",
               what, ctc::dtype_name(p.dtype), static_cast<long long>(p.max_time), static_cast<long long>(p.batch),
               static_cast<long long>(p.num_classes), static_cast<long long>(p.blank), p.from_logits, d.zero_infinity);
  std::fprintf(stderr, "  input strides (%lld, %lld, %lld), gradient strides (%lld, %lld, %lld), padded width %lld\n",
               static_cast<long long>(d.input.stride[0]), static_cast<long long>(d.input.stride[1]),
               static_cast<long long>(d.input.stride[2]), static_cast<long long>(d.gradient.stride[0]),
               static_cast<long long>(d.gradient.stride[1]), static_cast<long long>(d.gradient.stride[2]),
               static_cast<long long>(d.padded_width));
  for (int64_t n = 0; n < p.batch; ++n) {
    std::fprintf(stderr, "  sample %lld: input length %lld, labels", static_cast<long long>(n),
                 static_cast<long long>(d.input_lengths[n]));
    for (int64_t i = 0; i < d.target_lengths[n] && d.offsets[n] + i < d.target_slots; ++i)
      std::fprintf(stderr, " %lld", static_cast<long long>(d.targets[d.offsets[n] + i]));
    std::fprintf(stderr, " (length %lld)\n", static_cast<long long>(d.target_lengths[n]));
  }
  std::abort();
}

void check_validation(const Drawn& d, bool valid) {
  try {
    ctc::validate_values(d.problem(), d.padded_width);
  } catch (const ctc::Error& e) {
    if (valid) fail(d, "validate_values refused a valid problem");
    if (e.kind() != ctc::ErrorKind::kValue || e.argument().empty()) fail(d, "validation error without an argument");
    return;
  }
  if (!valid) fail(d, "validate_values accepted an invalid problem");
}

// One dtype's buffers, each its own heap block of exactly the size it needs.
template <typename In, typename Acc>
struct Run {
  std::vector<Acc> nll;
  std::vector<In> grad;
};

template <typename In, typename Acc>
Run<In, Acc> run(const Drawn& d, const std::vector<In>& input, ctc::CpuKernel kernel) {
  ctc::set_cpu_kernel(kernel);
  ctc::Problem p = d.problem();
  p.input = input.data();
  const ctc::WorkspaceLayout layout =
      ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, p.from_logits);
  std::vector<Acc> workspace(static_cast<size_t>(layout.total_elems()));
  std::vector<Acc> scratch(static_cast<size_t>(ctc::cpu_scratch_elems(p.batch, p.num_classes, p.target_slots)));
  Run<In, Acc> out;
  out.nll.resize(static_cast<size_t>(p.batch));
  ctc::cpu_forward(p, workspace.data(), out.nll.data(), scratch.data());

  std::vector<Acc> grad_nll(d.grad_nll.begin(), d.grad_nll.end());
  out.grad.assign(static_cast<size_t>(d.gradient.elems), ctc::test::unwritten<In>());
  ctc::GradientOutput g{out.grad.data(), d.gradient.stride[0], d.gradient.stride[1], d.gradient.stride[2]};
  ctc::cpu_backward(p, workspace.data(), out.nll.data(), grad_nll.data(), d.zero_infinity, scratch.data(), g);
  for (int64_t t = 0; t < p.max_time; ++t)
    for (int64_t n = 0; n < p.batch; ++n)
      for (int64_t c = 0; c < p.num_classes; ++c) {
        const int64_t i = d.at(d.gradient, t, n, c);
        if (ctc::test::is_unwritten(out.grad[i])) fail(d, "a gradient element was not written");
      }
  ctc::set_cpu_kernel(ctc::CpuKernel::kAuto);
  return out;
}

// True when no valid frame of any sample holds NaN or +inf (after the
// conversion to the input dtype, which overflows float16), nor, for logits,
// only -inf (its log_softmax is NaN): the inputs whose results the kernels
// promise to agree on. With NaN log-probs they may not: the AVX2 kernels
// skip the states no complete path visits, so a NaN there is not seen
// (docs/semantics.md).
template <typename In>
bool finite_or_masked(const Drawn& d, const std::vector<In>& input) {
  const ctc::Problem& p = d.shape;
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t t = 0; t < d.input_lengths[n]; ++t) {
      bool any_finite = false;
      for (int64_t c = 0; c < p.num_classes; ++c) {
        const double v = ctc::load<double>(input[d.at(d.input, t, n, c)]);
        if (std::isnan(v) || v == std::numeric_limits<double>::infinity()) return false;
        any_finite = any_finite || std::isfinite(v);
      }
      if (p.from_logits && !any_finite) return false;
    }
  return true;
}

bool agree(double a, double b, double tolerance) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= tolerance;
}

// The float32 error budget of sample n's log-space values: a few ulp of the
// largest magnitude a forward or backward variable can reach, bounded by the
// sum over its frames of the largest |log-prob|.
template <typename In>
double log_space_error(const Drawn& d, const std::vector<In>& input, int64_t n, double nll) {
  const ctc::Problem& p = d.shape;
  double magnitude = std::isfinite(nll) ? std::fabs(nll) : 0.0;
  for (int64_t t = 0; t < d.input_lengths[n]; ++t) {
    double largest = 0;
    for (int64_t c = 0; c < p.num_classes; ++c) {
      const double v = ctc::load<double>(input[d.at(d.input, t, n, c)]);
      if (std::isfinite(v)) largest = std::max(largest, std::fabs(v));
    }
    magnitude += p.from_logits ? 2 * largest + std::log(static_cast<double>(p.num_classes)) : largest;
  }
  return 16 * std::numeric_limits<float>::epsilon() * (magnitude + static_cast<double>(d.input_lengths[n]) + 1);
}

template <typename In, typename Acc>
void compare_kernels(const Drawn& d, const std::vector<In>& input, const Run<In, Acc>& scalar,
                     const Run<In, Acc>& avx2) {
  const ctc::Problem& p = d.shape;
  // Half-type gradients are rounded on output (bfloat16: 8 bits of mantissa).
  const double rounding = sizeof(In) == 2 ? 1.0 / 128 : 0.0;
  for (int64_t n = 0; n < p.batch; ++n) {
    const double nll = scalar.nll[n];
    const double error = log_space_error(d, input, n, nll);
    if (!agree(nll, avx2.nll[n], error)) {
      std::fprintf(stderr, "sample %lld: scalar nll %.9g, AVX2 nll %.9g\n", static_cast<long long>(n), nll, avx2.nll[n]);
      fail(d, "the AVX2 and scalar losses differ");
    }
    // A posterior's relative error is about the log-space error; past a few
    // percent (inputs of magnitude ~1e5 and more) float32 resolves none.
    if (error > 0.05) continue;
    for (int64_t t = 0; t < p.max_time; ++t)
      for (int64_t c = 0; c < p.num_classes; ++c) {
        const int64_t i = d.at(d.gradient, t, n, c);
        const double a = ctc::load<double>(scalar.grad[i]), b = ctc::load<double>(avx2.grad[i]);
        // |gradient| <= 2 |grad_nll| (a class's posteriors sum to at most 1, as does softmax).
        if (!agree(a, b, 2 * error * d.grad_nll[n] + rounding * std::fabs(a) + 1e-7)) {
          std::fprintf(stderr, "(t %lld, n %lld, c %lld): scalar %.9g, AVX2 %.9g; nll %.9g\n", static_cast<long long>(t),
                       static_cast<long long>(n), static_cast<long long>(c), a, b, nll);
          fail(d, "the AVX2 and scalar gradients differ");
        }
      }
  }
}

template <typename In, typename Acc>
void run_engine(const Drawn& d) {
  std::vector<In> input(d.values.size());
  for (size_t i = 0; i < d.values.size(); ++i) ctc::store(input[i], static_cast<Acc>(d.values[i]));
  const Run<In, Acc> scalar = run<In, Acc>(d, input, ctc::CpuKernel::kScalar);
  if (ctc::active_cpu_kernel(d.shape.dtype) == ctc::CpuKernel::kScalar) return;  // float64, or no AVX2 here
  const Run<In, Acc> avx2 = run<In, Acc>(d, input, ctc::CpuKernel::kAvx2);
  if (finite_or_masked(d, input)) compare_kernels(d, input, scalar, avx2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const Drawn d = draw_problem(in);
  const bool valid = is_valid(d);
  check_validation(d, valid);
  if (!valid) return 0;
  ctc::dispatch_dtype(d.shape.dtype, [&](auto in_tag, auto acc_tag) {
    run_engine<decltype(in_tag), decltype(acc_tag)>(d);
  });
  return 0;
}
