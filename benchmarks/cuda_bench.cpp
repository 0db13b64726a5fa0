// CUDA benchmarks of the kernels: forward, and forward + backward, at every
// named shape in float32, plus bfloat16 input on asr-bpe. Timed with CUDA
// events around the launches on one stream (UseManualTime), so host work
// outside the launches is not counted. Index sanitising (sanitize_indices),
// which the torch op runs on each call, is done once in the set-up: it is
// input preparation, not the loss.
// Counters as in cpu_bench.cpp.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench_data.h"
#include "ctc/workspace.h"
#include "kernels/cuda_engine.h"
#include "registry.h"

namespace ctc_bench {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// One device allocation, freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) { check(cudaMalloc(&ptr_, bytes ? bytes : 1), "cudaMalloc"); }
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() { cudaFree(ptr_); }
  template <typename T = void>
  T* get() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

template <typename T>
DeviceBuffer upload(const std::vector<T>& host) {
  DeviceBuffer d(host.size() * sizeof(T));
  check(cudaMemcpy(d.get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  return d;
}

// A stream and two events, destroyed on scope exit.
struct Timing {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  Timing() {
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  Timing(const Timing&) = delete;
  Timing& operator=(const Timing&) = delete;
  ~Timing() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaStreamDestroy(stream);
  }
};

struct CudaCase {
  const Shape* shape;
  ctc::DType dtype;
  bool backward;
};

void run_case(benchmark::State& state, const CudaCase& c) {
  const BenchData& data = bench_data(*c.shape);
  const int64_t N = c.shape->batch, T = c.shape->max_time, C = c.shape->num_classes;
  const int64_t slots = static_cast<int64_t>(data.targets.size());
  const int64_t max_states = 2 * data.max_target_length + 1;
  Timing timing;

  const DeviceBuffer input = c.dtype == ctc::DType::kBFloat16 ? upload(data.log_probs_bf16) : upload(data.log_probs);
  const DeviceBuffer targets = upload(data.targets);
  const DeviceBuffer raw_input_lengths = upload(data.input_lengths);
  const DeviceBuffer raw_target_lengths = upload(data.target_lengths);
  const DeviceBuffer safe(3 * N * sizeof(int64_t));
  const ctc::cuda::SafeIndices indices{safe.get<int64_t>(), safe.get<int64_t>() + N, safe.get<int64_t>() + 2 * N};
  const size_t temp_bytes = ctc::cuda::sanitize_temp_bytes(N);
  const DeviceBuffer temp(temp_bytes);
  ctc::cuda::sanitize_indices(raw_input_lengths.get<int64_t>(), raw_target_lengths.get<int64_t>(), N, T, slots, -1,
                              indices, temp.get(), temp_bytes, timing.stream);

  ctc::Problem p = data.problem(c.dtype);  // host pointers replaced by device ones below
  p.input = input.get();
  p.targets = targets.get<int64_t>();
  p.target_offsets = indices.target_offsets;
  p.input_lengths = indices.input_lengths;
  p.target_lengths = indices.target_lengths;

  const DeviceBuffer workspace(
      ctc::forward_workspace_layout(T, N, slots, false).total_elems() * sizeof(float));
  const DeviceBuffer nll(N * sizeof(float));
  const DeviceBuffer grad_nll = upload(std::vector<float>(static_cast<size_t>(N), 1.0f));
  const DeviceBuffer posterior(ctc::cuda::posterior_elems(T, N, slots) * sizeof(float));
  const DeviceBuffer beta_rows(ctc::cuda::beta_rows_elems(N, slots) * sizeof(float));
  const DeviceBuffer class_starts(ctc::cuda::class_starts_elems(N, C) * sizeof(int32_t));
  const DeviceBuffer class_positions(std::max<int64_t>(slots, 1) * sizeof(int32_t));
  const DeviceBuffer grad(dense_bytes(*c.shape, c.dtype));

  ctc::cuda::BackwardBuffers buffers;
  buffers.workspace = workspace.get();
  buffers.nll = nll.get();
  buffers.grad_nll = grad_nll.get();
  buffers.posterior = posterior.get();
  buffers.beta_rows = beta_rows.get();
  buffers.class_starts = class_starts.get<int32_t>();
  buffers.class_positions = class_positions.get<int32_t>();
  ctc::GradientOutput out;
  out.data = grad.get();
  out.stride_t = p.stride_t;
  out.stride_n = p.stride_n;
  out.stride_c = p.stride_c;

  auto launch = [&] {
    ctc::cuda::forward(p, max_states, workspace.get(), nll.get(), timing.stream);
    if (c.backward) ctc::cuda::backward(p, max_states, false, buffers, out, timing.stream);
  };
  launch();  // warm-up: module loading, first-launch costs
  check(cudaStreamSynchronize(timing.stream), "warm-up");

  for (auto _ : state) {
    check(cudaEventRecord(timing.start, timing.stream), "cudaEventRecord");
    launch();
    check(cudaEventRecord(timing.stop, timing.stream), "cudaEventRecord");
    check(cudaEventSynchronize(timing.stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, timing.start, timing.stop), "cudaEventElapsedTime");
    state.SetIterationTime(ms * 1e-3);
  }

  const int64_t passes = c.backward ? 2 : 1;
  state.counters["cells/s"] =
      benchmark::Counter(static_cast<double>(passes * data.dp_cells()), benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(state.iterations() * dense_bytes(*c.shape, c.dtype) * passes);
}

void register_case(const CudaCase& c) {
  const std::string name = std::string(c.backward ? "cuda_fwdbwd/" : "cuda_fwd/") + c.shape->name + "/" +
                           (c.dtype == ctc::DType::kBFloat16 ? "bf16" : "f32");
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& state) {
    // Google Benchmark does not catch exceptions: report them as a skipped run.
    try {
      run_case(state, c);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  });
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  // No driver or no device reads as 0; clear the sticky error it leaves.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string cuda_device_name() {
  cudaDeviceProp prop{};
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess) return "?";
  return prop.name;
}

void register_cuda_benchmarks() {
  for (const Shape& shape : named_shapes()) {
    std::vector<ctc::DType> dtypes = {ctc::DType::kFloat32};
    if (shape.name == "asr-bpe") dtypes.push_back(ctc::DType::kBFloat16);
    for (const ctc::DType dtype : dtypes)
      for (const bool backward : {false, true}) register_case({&shape, dtype, backward});
  }
}

}  // namespace ctc_bench
