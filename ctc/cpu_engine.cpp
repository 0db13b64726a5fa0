#include "ctc/cpu_engine.h"

#include <algorithm>
#include <cmath>

#include "ctc/emissions.h"
#include "ctc/math.h"
#include "ctc/workspace.h"

namespace ctc {
namespace {

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

template <typename Acc>
Acc* normalisers_of(const Problem& p, Acc* workspace, int64_t n) {
  if (!p.from_logits) return nullptr;
  const WorkspaceLayout layout = forward_workspace_layout(p.max_time, p.batch, p.target_slots, true);
  return workspace + layout.alpha_elems + n * p.max_time;
}

// The workspace is an op output (kept for backward), so every element must be
// defined: alpha cells past the sample's frames or states become -inf and the
// normalisers of frames past its input length 0.
template <typename Acc>
void fill_unused_workspace(const Problem& p, Acc* workspace, int64_t n, int64_t used_alpha, Acc* normaliser) {
  const int64_t begin = alpha_offset(p.max_time, p.target_offsets[n], n);
  const int64_t end = alpha_block_end(p, n);
  std::fill(workspace + begin + used_alpha, workspace + end, math::neg_inf<Acc>());
  if (normaliser) std::fill(normaliser + p.input_lengths[n], normaliser + p.max_time, Acc(0));
}

template <typename In, typename Acc>
void forward_sample(const Problem& p, Acc* workspace, Acc* nll, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  Acc* normaliser = normalisers_of(p, workspace, n);
  if (frames == 0) {
    nll[n] = math::nll_without_frames<Acc>(length);
    fill_unused_workspace(p, workspace, n, 0, normaliser);
    return;
  }
  const Emissions<In, Acc> in(p, n, normaliser);
  if (normaliser) frame_normalisers(in, frames, normaliser);

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
void zero_gradient_frames(const GradientOutput& g, int64_t n, int64_t from_t, int64_t to_t, int64_t num_classes) {
  In* base = static_cast<In*>(g.data) + n * g.stride_n;
  for (int64_t t = from_t; t < to_t; ++t)
    for (int64_t c = 0; c < num_classes; ++c) store(base[t * g.stride_t + c * g.stride_c], Acc(0));
}

template <typename In, typename Acc>
void backward_sample(const Problem& p, const Acc* workspace, const Acc* nll_all, const Acc* grad_nll,
                     bool zero_infinity, Acc* scratch_all, const GradientOutput& g, int64_t n) {
  const int64_t frames = p.input_lengths[n];
  const int64_t length = p.target_lengths[n];
  const int64_t* target = p.targets + p.target_offsets[n];
  const Acc nll = nll_all[n];
  if (frames == 0 || (zero_infinity && std::isinf(nll))) {
    zero_gradient_frames<In, Acc>(g, n, 0, p.max_time, p.num_classes);
    return;
  }
  const Acc scale = grad_nll[n];
  const Emissions<In, Acc> in(p, n, normalisers_of(p, const_cast<Acc*>(workspace), n));
  const int64_t states = math::num_states(length);
  const Acc* alpha = workspace + alpha_offset(p.max_time, p.target_offsets[n], n);
  Acc* scratch = scratch_all + beta_scratch_offset(p.num_classes, p.target_offsets[n], n);
  Acc* beta_next = scratch;
  Acc* beta = scratch + states;
  Acc* posterior = scratch + 2 * states;  // per class, for the current frame
  In* grad_base = static_cast<In*>(g.data) + n * g.stride_n;

  for (int64_t t = frames - 1; t >= 0; --t) {
    std::fill(posterior, posterior + p.num_classes, Acc(0));
    const Acc* alpha_row = alpha + t * states;
    for (int64_t s = 0; s < states; ++s) {
      const int64_t label = math::state_label(target, s, p.blank);
      const Acc e = in(t, label);
      beta[s] = t == frames - 1 ? math::beta_initial(s, states, e) : math::beta_cell(beta_next, target, s, states, e);
      posterior[label] += math::state_posterior(alpha_row[s], beta[s], e, nll);
    }
    In* grad_row = grad_base + t * g.stride_t;
    for (int64_t c = 0; c < p.num_classes; ++c) {
      store(grad_row[c * g.stride_c], math::input_gradient(posterior[c], in.softmax_or_zero(t, c)) * scale);
    }
    std::swap(beta, beta_next);
  }
  zero_gradient_frames<In, Acc>(g, n, frames, p.max_time, p.num_classes);
}

// Calls fn.template operator()<In, Acc>() for the problem's dtype.
template <typename Fn>
void dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{}, float{});
    case DType::kFloat64: return fn(double{}, double{});
    case DType::kFloat16: return fn(half_t{}, float{});
    case DType::kBFloat16: return fn(bfloat16_t{}, float{});
  }
}

}  // namespace

void serial_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n > 0) body(0, n);
}

void cpu_forward(const Problem& problem, void* workspace, void* nll, const ParallelFor& parallel_for) {
  dispatch_dtype(problem.dtype, [&](auto in_tag, auto acc_tag) {
    using In = decltype(in_tag);
    using Acc = decltype(acc_tag);
    parallel_for(problem.batch, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n)
        forward_sample<In, Acc>(problem, static_cast<Acc*>(workspace), static_cast<Acc*>(nll), n);
    });
  });
}

void cpu_backward(const Problem& problem, const void* workspace, const void* nll, const void* grad_nll,
                  bool zero_infinity, void* scratch, const GradientOutput& grad, const ParallelFor& parallel_for) {
  dispatch_dtype(problem.dtype, [&](auto in_tag, auto acc_tag) {
    using In = decltype(in_tag);
    using Acc = decltype(acc_tag);
    parallel_for(problem.batch, [&](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n)
        backward_sample<In, Acc>(problem, static_cast<const Acc*>(workspace), static_cast<const Acc*>(nll),
                                 static_cast<const Acc*>(grad_nll), zero_infinity, static_cast<Acc*>(scratch), grad,
                                 n);
    });
  });
}

}  // namespace ctc
