// Pieces shared by the CPU engine's scalar and AVX2 translation units: the
// per-sample scratch layout and the workspace bookkeeping. Not a public header.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "ctc/cpu_engine.h"
#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/problem.h"
#include "ctc/workspace.h"

namespace ctc::cpu {

// Scratch rows per sample, each of `row_capacity` floats: enough for the
// AVX2 kernels' padded rows (8 guard lanes on each side, states rounded up to
// 8 lanes) -- previous row, current row, emissions, skip mask, posteriors,
// class offsets. ctc::backward_scratch_elems (workspace.cpp) uses these.
constexpr int64_t kScratchRows = 6;
constexpr int64_t kRowPadding = 24;  // 8 front guard + up to 7 tail lanes + 8 back guard, rounded
constexpr int64_t kGuard = 8;

// Label slots of sample n: L_n for concatenated targets, S for padded ones.
inline int64_t target_slots_of(const Problem& p, int64_t n) {
  const int64_t end = n + 1 < p.batch ? p.target_offsets[n + 1] : p.target_slots;
  return end - p.target_offsets[n];
}

inline int64_t row_capacity(const Problem& p, int64_t n) { return 2 * target_slots_of(p, n) + kRowPadding; }

// Sample n's scratch: kScratchRows rows, then C per-class accumulators (also
// the staging row of a streamed gradient).
template <typename Acc>
Acc* sample_scratch(const Problem& p, Acc* scratch, int64_t n) {
  return scratch + kScratchRows * (2 * p.target_offsets[n] + kRowPadding * n) + n * p.num_classes;
}

template <typename Acc>
Acc* normalisers_of(const Problem& p, Acc* workspace, int64_t n) {
  if (!p.from_logits) return nullptr;
  return workspace + p.max_time * (2 * p.target_slots + p.batch) + n * p.max_time;
}

// logsumexp over the classes of each frame t < frames.
template <typename In, typename Acc>
void frame_normalisers(const Emissions<In, Acc>& in, int64_t frames, Acc* out) {
  for (int64_t t = 0; t < frames; ++t) {
    Acc m = math::neg_inf<Acc>();
    for (int64_t c = 0; c < in.num_classes; ++c) m = math::max_ignoring_nan(m, in.raw(t, c));
    Acc sum = 0;
    for (int64_t c = 0; c < in.num_classes; ++c) sum += math::exp_(in.raw(t, c) - m);
    out[t] = math::logsumexp_finish(m, sum);
  }
}

// The workspace is an op output (kept for backward), so every element must be
// defined: alpha cells past the sample's frames or states become -inf and the
// normalisers of frames past its input length 0.
template <typename Acc>
void fill_unused_workspace(const Problem& p, Acc* workspace, int64_t n, int64_t used_alpha, Acc* normaliser) {
  const int64_t begin = alpha_offset(p.max_time, p.target_offsets[n], n);
  std::fill(workspace + begin + used_alpha, workspace + alpha_block_end(p, n), math::neg_inf<Acc>());
  if (normaliser) std::fill(normaliser + p.input_lengths[n], normaliser + p.max_time, Acc(0));
}

// The start of a sample's forward pass, shared by every CPU kernel: a sample
// with no frames gets its loss at once (returns false, nothing more to do);
// otherwise the frame normalisers of logits input are computed (returns true).
template <typename In, typename Acc>
bool begin_forward_sample(const Problem& p, Acc* workspace, Acc* nll, int64_t n, const Emissions<In, Acc>& in) {
  Acc* normaliser = const_cast<Acc*>(in.normaliser);
  if (p.input_lengths[n] == 0) {
    nll[n] = math::nll_without_frames<Acc>(p.target_lengths[n]);
    fill_unused_workspace(p, workspace, n, 0, normaliser);
    return false;
  }
  if (normaliser) frame_normalisers(in, p.input_lengths[n], normaliser);
  return true;
}

template <typename In, typename Acc>
void fill_gradient_frames(const GradientOutput& g, int64_t n, int64_t from_t, int64_t to_t, int64_t num_classes,
                          Acc value) {
  if (from_t >= to_t) return;  // an empty gradient (T = 0) may have no storage: no pointer arithmetic on it
  In* base = static_cast<In*>(g.data) + n * g.stride_n;
  for (int64_t t = from_t; t < to_t; ++t)
    for (int64_t c = 0; c < num_classes; ++c) store(base[t * g.stride_t + c * g.stride_c], value);
}

template <typename In, typename Acc>
void zero_gradient_frames(const GradientOutput& g, int64_t n, int64_t from_t, int64_t to_t, int64_t num_classes) {
  fill_gradient_frames<In, Acc>(g, n, from_t, to_t, num_classes, Acc(0));
}

// Handles the samples whose gradient needs no recurrence: no frames, or an
// infinite loss (zeroed with zero_infinity, NaN without). Returns true if done.
template <typename In, typename Acc>
bool trivial_gradient(const Problem& p, const GradientOutput& g, int64_t n, Acc nll, bool zero_infinity) {
  const int64_t frames = p.input_lengths[n];
  if (frames == 0 || (zero_infinity && std::isinf(nll))) {
    zero_gradient_frames<In, Acc>(g, n, 0, p.max_time, p.num_classes);
    return true;
  }
  if (math::gradient_undefined(nll, zero_infinity)) {
    fill_gradient_frames<In, Acc>(g, n, 0, frames, p.num_classes, static_cast<Acc>(NAN));
    zero_gradient_frames<In, Acc>(g, n, frames, p.max_time, p.num_classes);
    return true;
  }
  return false;
}

// Per-class posterior sums of one frame -> that frame's gradient row.
template <typename In, typename Acc>
void write_gradient_row(const Emissions<In, Acc>& in, const GradientOutput& g, int64_t n, int64_t t,
                        const Acc* class_posterior, Acc scale) {
  In* row = static_cast<In*>(g.data) + n * g.stride_n + t * g.stride_t;
  for (int64_t c = 0; c < in.num_classes; ++c)
    store(row[c * g.stride_c], math::input_gradient(class_posterior[c], in.softmax_or_zero(t, c)) * scale);
}

// Calls body(n) for every sample, spread over `parallel_for`'s chunks by work
// (frames x states, plus the dense per-class work), each sample whole on one
// thread (cpu_engine.cpp). The loss and the aligner share it.
void for_each_sample_balanced(const Problem& p, const ParallelFor& parallel_for,
                              const std::function<void(int64_t)>& body);

// The same for the decoders, which have no targets: balanced by frames, in the
// input's dtype. Calls body(In{}, Acc{}, p, n), with p the problem as given
// but for its target lengths.
template <typename Body>
void for_each_sample_without_targets(const Problem& problem, const ParallelFor& parallel_for, Body body) {
  const std::vector<int64_t> no_labels(static_cast<size_t>(problem.batch), 0);
  Problem p = problem;
  p.target_lengths = no_labels.data();
  dispatch_dtype(p.dtype, [&](auto in_tag, auto acc_tag) {
    for_each_sample_balanced(p, parallel_for, [&](int64_t n) { body(in_tag, acc_tag, p, n); });
  });
}

// The AVX2 kernels (cpu_engine_avx2.cpp), for float accumulation.
template <typename In>
void forward_sample_avx2(const Problem& p, float* workspace, float* nll, float* scratch, int64_t n);
template <typename In>
void backward_sample_avx2(const Problem& p, const float* workspace, const float* nll, const float* grad_nll,
                          bool zero_infinity, float* scratch, const GradientOutput& g, int64_t n);

}  // namespace ctc::cpu
