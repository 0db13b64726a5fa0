#include "ctc/cpu_engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <vector>

#include "ctc/cpu_engine_internal.h"
#include "ctc/workspace.h"

namespace ctc {
namespace cpu {
namespace {

// The portable kernels: one state at a time, any accumulate type. They are
// the reference for the AVX2 kernels and the only path for float64.
template <typename In, typename Acc>
void forward_sample_scalar(const Problem& p, Acc* workspace, Acc* nll, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  Acc* normaliser = normalisers_of(p, workspace, n);
  const Emissions<In, Acc> in(p, n, normaliser);
  if (!begin_forward_sample(p, workspace, nll, n, in)) return;

  const int64_t states = math::num_states(length);
  Acc* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  for (int64_t s = 0; s < states; ++s)
    alpha[s] = math::alpha_initial(s, in(0, math::state_label(target, s, p.blank)));
  for (int64_t t = 1; t < frames; ++t) {
    const Acc* prev = alpha + (t - 1) * states;
    Acc* row = alpha + t * states;
    for (int64_t s = 0; s < states; ++s)
      row[s] = math::alpha_cell(prev, target, s, in(t, math::state_label(target, s, p.blank)));
  }
  nll[n] = math::nll_from_last_alpha(alpha + (frames - 1) * states, states);
  fill_unused_workspace(p, workspace, n, frames * states, normaliser);
}

template <typename In, typename Acc>
void backward_sample_scalar(const Problem& p, const Acc* workspace, const Acc* nll_all, const Acc* grad_nll,
                            bool zero_infinity, Acc* scratch, const GradientOutput& g, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  const Acc nll = nll_all[n];
  if (trivial_gradient<In, Acc>(p, g, n, nll, zero_infinity)) return;
  const Acc scale = grad_nll[n];
  const Emissions<In, Acc> in(p, n, normalisers_of(p, const_cast<Acc*>(workspace), n));
  const int64_t states = math::num_states(length);
  const Acc* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  Acc* rows = sample_scratch(p, scratch, n);
  Acc* beta_next = rows;
  Acc* beta = rows + row_capacity(p, n);
  Acc* class_posterior = rows + kScratchRows * row_capacity(p, n);

  for (int64_t t = frames - 1; t >= 0; --t) {
    std::fill(class_posterior, class_posterior + p.num_classes, Acc(0));
    const Acc* alpha_row = alpha + t * states;
    for (int64_t s = 0; s < states; ++s) {
      const int64_t label = math::state_label(target, s, p.blank);
      const Acc e = in(t, label);
      beta[s] = t == frames - 1 ? math::beta_initial(s, states, e) : math::beta_cell(beta_next, target, s, states, e);
      class_posterior[label] += math::state_posterior(alpha_row[s], beta[s], e, nll);
    }
    write_gradient_row(in, g, n, t, class_posterior, scale);
    std::swap(beta, beta_next);
  }
  zero_gradient_frames<In, Acc>(g, n, frames, p.max_time, p.num_classes);
}

std::atomic<CpuKernel> requested_kernel{CpuKernel::kAuto};

bool cpu_has_avx2() {
#if defined(CTC_HAVE_AVX2_KERNELS)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

template <typename In, typename Acc>
constexpr bool has_avx2_kernel() {
#if defined(CTC_HAVE_AVX2_KERNELS)
  return std::is_same_v<Acc, float>;
#else
  return false;
#endif
}

}  // namespace

// Spreads the samples over `parallel_for`'s chunks by work (T_n * S'_n plus
// the dense C work per frame), not by count, so threads finish together when
// lengths are ragged. Each sample is still computed whole by one thread, so
// results do not depend on the split.
//  - Small batches (at most kSingleSampleGroups samples): one chunk per sample,
//    largest first. A parallel_for that hands out chunks in order as threads
//    become free (the LibTorch binding's does) then schedules them
//    longest-processing-time first, within 4/3 of the best split.
//  - Larger batches: kGroupsPerBatch contiguous groups of similar total work.
//  - Below kMinParallelWork, everything runs on the calling thread.
void for_each_sample_balanced(const Problem& p, const ParallelFor& parallel_for,
                              const std::function<void(int64_t)>& body) {
  const int64_t batch = p.batch;
  std::vector<double> work(batch);
  double total = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const double frames = static_cast<double>(std::max<int64_t>(p.input_lengths[n], 0));
    const double states = static_cast<double>(math::num_states(std::max<int64_t>(p.target_lengths[n], 0)));
    work[n] = frames * (states + static_cast<double>(p.num_classes) / 4.0) + 1.0;
    total += work[n];
  }
  // Below this (about 0.1 ms of work) starting a thread costs more than it saves.
  constexpr double kMinParallelWork = 5e4;
  if (batch <= 1 || total < kMinParallelWork) {
    for (int64_t n = 0; n < batch; ++n) body(n);
    return;
  }
  constexpr int64_t kSingleSampleGroups = 64;
  if (batch <= kSingleSampleGroups) {
    std::vector<int64_t> order(batch);
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return work[a] > work[b]; });
    parallel_for(batch, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) body(order[k]);
    });
    return;
  }
  constexpr int64_t kGroupsPerBatch = 32;
  std::vector<int64_t> bounds(kGroupsPerBatch + 1, batch);
  bounds[0] = 0;
  double prefix = 0.0;
  int64_t n = 0;
  for (int64_t k = 1; k < kGroupsPerBatch; ++k) {
    const double goal = total * static_cast<double>(k) / static_cast<double>(kGroupsPerBatch);
    while (n < batch && prefix + work[n] <= goal) prefix += work[n++];
    bounds[k] = std::max(bounds[k - 1], n);
  }
  parallel_for(kGroupsPerBatch, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k)
      for (int64_t i = bounds[k]; i < bounds[k + 1]; ++i) body(i);
  });
}

}  // namespace cpu

void serial_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n > 0) body(0, n);
}

void set_cpu_kernel(CpuKernel kernel) { cpu::requested_kernel.store(kernel); }

CpuKernel active_cpu_kernel(DType dtype) {
  const CpuKernel requested = cpu::requested_kernel.load();
  const bool avx2_possible = cpu::cpu_has_avx2() && accumulate_dtype(dtype) == DType::kFloat32;
  if (requested == CpuKernel::kScalar || !avx2_possible) return CpuKernel::kScalar;
  return CpuKernel::kAvx2;
}

const char* cpu_kernel_name(CpuKernel kernel) {
  switch (kernel) {
    case CpuKernel::kAuto: return "auto";
    case CpuKernel::kScalar: return "scalar";
    case CpuKernel::kAvx2: return "avx2";
  }
  return "unknown";
}

int64_t cpu_scratch_elems(int64_t batch, int64_t num_classes, int64_t target_slots) {
  return backward_scratch_elems(batch, num_classes, target_slots);
}

void cpu_forward(const Problem& p, void* workspace, void* nll, void* scratch, const ParallelFor& parallel_for) {
  const bool avx2 = active_cpu_kernel(p.dtype) == CpuKernel::kAvx2;
  dispatch_dtype(p.dtype, [&](auto in_tag, auto acc_tag) {
    using In = decltype(in_tag);
    using Acc = decltype(acc_tag);
    Acc* ws = static_cast<Acc*>(workspace);
    Acc* out = static_cast<Acc*>(nll);
    cpu::for_each_sample_balanced(p, parallel_for, [&](int64_t n) {
      if constexpr (cpu::has_avx2_kernel<In, Acc>()) {
        if (avx2) return cpu::forward_sample_avx2<In>(p, ws, out, static_cast<float*>(scratch), n);
      }
      cpu::forward_sample_scalar<In, Acc>(p, ws, out, n);
    });
  });
}

void cpu_backward(const Problem& p, const void* workspace, const void* nll, const void* grad_nll, bool zero_infinity,
                  void* scratch, const GradientOutput& grad, const ParallelFor& parallel_for) {
  const bool avx2 = active_cpu_kernel(p.dtype) == CpuKernel::kAvx2;
  dispatch_dtype(p.dtype, [&](auto in_tag, auto acc_tag) {
    using In = decltype(in_tag);
    using Acc = decltype(acc_tag);
    const Acc* ws = static_cast<const Acc*>(workspace);
    const Acc* nll_acc = static_cast<const Acc*>(nll);
    const Acc* grad_nll_acc = static_cast<const Acc*>(grad_nll);
    Acc* scr = static_cast<Acc*>(scratch);
    cpu::for_each_sample_balanced(p, parallel_for, [&](int64_t n) {
      if constexpr (cpu::has_avx2_kernel<In, Acc>()) {
        if (avx2)
          return cpu::backward_sample_avx2<In>(p, ws, nll_acc, grad_nll_acc, zero_infinity, scr, grad, n);
      }
      cpu::backward_sample_scalar<In, Acc>(p, ws, nll_acc, grad_nll_acc, zero_infinity, scr, grad, n);
    });
  });
}

void cpu_forward(const Problem& p, void* workspace, void* nll, const ParallelFor& parallel_for) {
  std::vector<double> scratch(static_cast<size_t>(cpu_scratch_elems(p.batch, p.num_classes, p.target_slots)));
  cpu_forward(p, workspace, nll, scratch.data(), parallel_for);
}

}  // namespace ctc
