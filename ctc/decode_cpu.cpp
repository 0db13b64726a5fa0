#include "ctc/decode.h"

#include <algorithm>
#include <vector>

#include "ctc/cpu_engine_internal.h"
#include "ctc/greedy.h"

namespace ctc {

void cpu_greedy_decode(const Problem& problem, int64_t* tokens, int64_t* lengths, int64_t* first_frames,
                       const ParallelFor& parallel_for) {
  cpu::for_each_sample_without_targets(problem, parallel_for, [&](auto in_tag, auto acc_tag, const Problem& p,
                                                                  int64_t n) {
    int64_t* row = tokens + n * p.max_time;
    int64_t* frames = first_frames + n * p.max_time;
    const Emissions<decltype(in_tag), decltype(acc_tag)> in(p, n, nullptr);
    const auto argmax = [&](int64_t t) { return frame_argmax(in, t); };
    lengths[n] = collapse_best_path(argmax, p.input_lengths[n], p.blank, row, frames);
    std::fill(row + lengths[n], row + p.max_time, int64_t{-1});
    std::fill(frames + lengths[n], frames + p.max_time, int64_t{-1});
  });
}

}  // namespace ctc
