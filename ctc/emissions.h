// Reading one sample's emissions lp[t][c] from the caller's strided input,
// with the optional fused log_softmax (lp = x - logsumexp_c x). Shared by the
// CPU engine and the CUDA kernels.
#pragma once

#include <cstdint>

#include "ctc/dtype.h"
#include "ctc/hd.h"
#include "ctc/math.h"
#include "ctc/problem.h"

namespace ctc {

template <typename In, typename Acc>
struct Emissions {
  const In* base = nullptr;  // element (t = 0, n, c = 0)
  int64_t stride_t = 0, stride_c = 0, num_classes = 0;
  const Acc* normaliser = nullptr;  // logsumexp of each frame, or nullptr for log-probs input

  CTC_HD Emissions(const Problem& p, int64_t sample, const Acc* frame_normalisers)
      // An empty input (T = 0) may have no storage: offsetting a null pointer is undefined.
      : base(p.input == nullptr ? nullptr : static_cast<const In*>(p.input) + sample * p.stride_n),
        stride_t(p.stride_t),
        stride_c(p.stride_c),
        num_classes(p.num_classes),
        normaliser(frame_normalisers) {}

  // The input value itself (a logit or a log-prob).
  CTC_HD Acc raw(int64_t t, int64_t c) const { return load<Acc>(base[t * stride_t + c * stride_c]); }

  // log p(c | frame t). A label outside [0, C) can only arrive when the caller
  // switched validation off; it reads nothing and yields NaN.
  CTC_HD Acc operator()(int64_t t, int64_t c) const {
    const In* col = column(c);
    return col == nullptr ? static_cast<Acc>(NAN) : at(col, t, frame_normaliser(t));
  }

  // The same in parts, for a reader that takes many classes at each of many
  // frames (the CUDA warp kernels): each class's column once (nullptr for a
  // label outside [0, C), which reads as NaN), the frame's normaliser once
  // per frame, then each value.
  CTC_HD const In* column(int64_t c) const { return c < 0 || c >= num_classes ? nullptr : base + c * stride_c; }
  CTC_HD Acc frame_normaliser(int64_t t) const { return normaliser ? normaliser[t] : Acc(0); }
  CTC_HD Acc at(const In* column, int64_t t, Acc frame_normaliser) const {
    return load<Acc>(column[t * stride_t]) - frame_normaliser;  // x - 0 is x, also for -inf and NaN
  }

  // softmax(x)[t][c] for logits input, 0 for log-probs input: the first term
  // of the gradient (see math::input_gradient).
  CTC_HD Acc softmax_or_zero(int64_t t, int64_t c) const {
    return normaliser ? math::exp_(raw(t, c) - normaliser[t]) : Acc(0);
  }
};

}  // namespace ctc
