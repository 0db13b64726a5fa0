// CPU benchmarks of the core engine: forward, and forward + backward (the
// gradient of a 'sum' reduction, grad_nll = 1), at every named shape in
// float32, plus bfloat16 input on asr-bpe; each with ctc::serial_for and with
// a 2-thread std::thread ParallelFor.
//
// Counters (rates per second of wall time):
//   cells/s          DP cells: sum_n T_n * S'_n for the forward, twice that
//                    for forward + backward (alpha and beta);
//   bytes_per_second nominal memory traffic: the dense (T, N, C) input read
//                    once, plus the dense gradient written for forward + backward.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_data.h"
#include "ctc/cpu_engine.h"
#include "ctc/validate.h"
#include "ctc/workspace.h"
#include "registry.h"

namespace ctc_bench {
namespace {

// Two threads (the calling one and a fresh std::thread) taking the chunks of
// [0, n) one at a time, in order, as the LibTorch binding's parallel_for
// does: the engine orders chunks largest first, so this is LPT scheduling. A
// thread per call costs some tens of microseconds, small next to the
// milliseconds of the named shapes.
void two_thread_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  std::atomic<int64_t> next{0};
  auto run = [&] {
    for (int64_t k = next++; k < n; k = next++) body(k, k + 1);
  };
  if (n <= 1) return run();
  std::thread worker(run);
  try {
    run();
  } catch (...) {
    next = n;
    worker.join();  // never let a joinable std::thread be destroyed
    throw;
  }
  worker.join();
}

struct CpuCase {
  const Shape* shape;
  ctc::DType dtype;
  bool backward;
  int threads;
};

template <typename Storage>
void run_case(benchmark::State& state, const CpuCase& c) {
  const BenchData& data = bench_data(*c.shape);
  const ctc::Problem p = data.problem(c.dtype);
  const ctc::ParallelFor parallel_for = c.threads == 1 ? ctc::ParallelFor(ctc::serial_for) : two_thread_for;

  // Every buffer is allocated here, outside the timed loop: the engine itself never allocates.
  std::vector<float> workspace(
      static_cast<size_t>(ctc::forward_workspace_layout(p.max_time, p.batch, p.target_slots, false).total_elems()));
  std::vector<float> scratch(static_cast<size_t>(ctc::cpu_scratch_elems(p.batch, p.num_classes, p.target_slots)));
  std::vector<float> nll(static_cast<size_t>(p.batch)), grad_nll(static_cast<size_t>(p.batch), 1.0f);
  std::vector<Storage> grad(static_cast<size_t>(p.max_time * p.batch * p.num_classes));
  ctc::GradientOutput out;
  out.data = grad.data();
  out.stride_t = p.stride_t;
  out.stride_n = p.stride_n;
  out.stride_c = p.stride_c;

  try {
    ctc::validate_values(p, -1);
    ctc::cpu_forward(p, workspace.data(), nll.data(), scratch.data(), parallel_for);  // also the warm-up
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (float v : nll) {
    if (!std::isfinite(v)) {
      state.SkipWithError("a sample's loss is not finite: the inputs are broken");
      return;
    }
  }

  for (auto _ : state) {
    ctc::cpu_forward(p, workspace.data(), nll.data(), scratch.data(), parallel_for);
    if (c.backward)
      ctc::cpu_backward(p, workspace.data(), nll.data(), grad_nll.data(), false, scratch.data(), out, parallel_for);
    benchmark::DoNotOptimize(nll.data());
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }

  const int64_t passes = c.backward ? 2 : 1;
  state.counters["cells/s"] =
      benchmark::Counter(static_cast<double>(passes * data.dp_cells()), benchmark::Counter::kIsIterationInvariantRate);
  state.SetBytesProcessed(state.iterations() * dense_bytes(*c.shape, c.dtype) * passes);
  state.SetLabel(std::string(ctc::cpu_kernel_name(ctc::active_cpu_kernel(c.dtype))) + " N=" + std::to_string(c.shape->batch) + " T=" + std::to_string(c.shape->max_time) +
                 " L=" + std::to_string(c.shape->max_target) + " C=" + std::to_string(c.shape->num_classes));
}

void register_case(const CpuCase& c) {
  const std::string name = std::string(c.backward ? "cpu_fwdbwd/" : "cpu_fwd/") + c.shape->name + "/" +
                           (c.dtype == ctc::DType::kBFloat16 ? "bf16" : "f32") + "/threads:" +
                           std::to_string(c.threads);
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [c](benchmark::State& state) {
    if (c.dtype == ctc::DType::kBFloat16)
      run_case<ctc::bfloat16_t>(state, c);
    else
      run_case<float>(state, c);
  });
  // Wall time: with 2 threads the work is not all on the benchmark's own thread.
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

void register_cpu_benchmarks() {
  for (const Shape& shape : named_shapes()) {
    std::vector<ctc::DType> dtypes = {ctc::DType::kFloat32};
    if (shape.name == "asr-bpe") dtypes.push_back(ctc::DType::kBFloat16);
    for (const ctc::DType dtype : dtypes)
      for (const bool backward : {false, true})
        for (const int threads : {1, 2}) register_case({&shape, dtype, backward, threads});
  }
}

}  // namespace ctc_bench
