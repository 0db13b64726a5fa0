#include "bench_data.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <random>

namespace ctc_bench {

const std::vector<Shape>& named_shapes() {
  static const std::vector<Shape> shapes = {
      {"htr-s", 32, 128, 40, 80},      {"htr-l", 64, 256, 100, 100}, {"asr-char", 16, 500, 100, 32},
      {"asr-bpe", 16, 1000, 200, 1000}, {"long", 4, 2500, 1000, 64},
  };
  return shapes;
}

namespace {

// FNV-1a: a seed from the shape's name that is the same with every standard library.
uint64_t name_seed(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

BenchData make_data(const Shape& s) {
  BenchData d;
  d.shape = s;
  // One seed per shape so adding a shape never changes another's inputs.
  std::mt19937_64 rng(name_seed(s.name));

  const int64_t frame_count = s.max_time * s.batch;
  d.log_probs.resize(static_cast<size_t>(frame_count * s.num_classes));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<double> logits(static_cast<size_t>(s.num_classes));
  for (int64_t f = 0; f < frame_count; ++f) {
    // log_softmax in double so the float inputs are correctly rounded.
    double top = -INFINITY;
    for (double& x : logits) top = std::max(top, x = normal(rng));
    double sum = 0;
    for (double x : logits) sum += std::exp(x - top);
    const double log_norm = top + std::log(sum);
    float* row = d.log_probs.data() + f * s.num_classes;
    for (int64_t c = 0; c < s.num_classes; ++c) row[c] = static_cast<float>(logits[c] - log_norm);
  }
  d.log_probs_bf16.reserve(d.log_probs.size());
  for (float x : d.log_probs) d.log_probs_bf16.push_back(ctc::to_bfloat16(x));

  std::uniform_int_distribution<int64_t> length_dist(s.max_target / 2, s.max_target);
  std::uniform_int_distribution<int64_t> label_dist(1, s.num_classes - 1);
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t length = length_dist(rng);
    d.target_offsets.push_back(static_cast<int64_t>(d.targets.size()));
    d.target_lengths.push_back(length);
    d.input_lengths.push_back(s.max_time);
    d.max_target_length = std::max(d.max_target_length, length);
    for (int64_t i = 0; i < length; ++i) d.targets.push_back(label_dist(rng));
  }
  return d;
}

}  // namespace

int64_t BenchData::dp_cells() const {
  int64_t cells = 0;
  for (int64_t n = 0; n < shape.batch; ++n) cells += input_lengths[n] * (2 * target_lengths[n] + 1);
  return cells;
}

ctc::Problem BenchData::problem(ctc::DType dtype) const {
  ctc::Problem p;
  p.max_time = shape.max_time;
  p.batch = shape.batch;
  p.num_classes = shape.num_classes;
  p.dtype = dtype;
  p.input = dtype == ctc::DType::kBFloat16 ? static_cast<const void*>(log_probs_bf16.data())
                                           : static_cast<const void*>(log_probs.data());
  p.stride_t = shape.batch * shape.num_classes;
  p.stride_n = shape.num_classes;
  p.stride_c = 1;
  p.blank = 0;
  p.targets = targets.data();
  p.target_offsets = target_offsets.data();
  p.target_slots = static_cast<int64_t>(targets.size());
  p.input_lengths = input_lengths.data();
  p.target_lengths = target_lengths.data();
  return p;
}

const BenchData& bench_data(const Shape& shape) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<BenchData>> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[shape.name];
  if (!slot) slot = std::make_unique<BenchData>(make_data(shape));
  return *slot;
}

int64_t dense_bytes(const Shape& shape, ctc::DType dtype) {
  return shape.max_time * shape.batch * shape.num_classes * ctc::dtype_size(dtype);
}

}  // namespace ctc_bench
