// Greedy (best-path) decoding, shared by the CPU and the CUDA kernels
// (host/device): the argmax label of every frame, repeats merged, blanks
// removed.
#pragma once

#include <cstdint>

#include "ctc/emissions.h"
#include "ctc/hd.h"

namespace ctc {

// The class with the largest value in frame t: the first of equal maxima,
// and the first NaN if there is one (as torch.argmax).
template <typename In, typename Acc>
CTC_HD int64_t frame_argmax(const Emissions<In, Acc>& in, int64_t t) {
  int64_t best = 0;
  Acc best_value = in.raw(t, 0);
  for (int64_t c = 1; c < in.num_classes && best_value == best_value; ++c) {
    const Acc v = in.raw(t, c);
    if (v > best_value || v != v) {
      best = c;
      best_value = v;
    }
  }
  return best;
}

// One sample's output from its frames' argmax labels (`labels(t)` for t <
// frames): a label is emitted where it differs from the previous frame's and
// is not blank. tokens[k] and first_frames[k] get the k-th token and the frame
// it starts at; returns the number of tokens.
template <typename Labels>
CTC_HD int64_t collapse_best_path(const Labels& labels, int64_t frames, int64_t blank, int64_t* tokens,
                                  int64_t* first_frames) {
  int64_t count = 0, previous = -1;
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t label = labels(t);
    if (label != previous && label != blank) {
      tokens[count] = label;
      first_frames[count] = t;
      ++count;
    }
    previous = label;
  }
  return count;
}

}  // namespace ctc
