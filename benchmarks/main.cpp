// ctc_bench entry point: registers the benchmarks (the CUDA ones only when a
// GPU is there), records the setup in the JSON context, then runs Google
// Benchmark with its usual flags (--benchmark_filter, --benchmark_out, ...).
#include <benchmark/benchmark.h>

#include <cstdio>

#include "ctc/cpu_engine.h"
#include "registry.h"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  ctc_bench::register_cpu_benchmarks();
  const int devices = ctc_bench::cuda_device_count();
  if (devices > 0) {
    ctc_bench::register_cuda_benchmarks();
    benchmark::AddCustomContext("ctc_cuda", "on: " + ctc_bench::cuda_device_name());
  } else {
    const char* why = devices < 0 ? "off: built without the CUDA kernels" : "off: no CUDA device at run time";
    std::fprintf(stderr, "ctc_bench: CUDA benchmarks %s\n", why);
    benchmark::AddCustomContext("ctc_cuda", why);
  }
  benchmark::AddCustomContext("ctc_cpu_kernel", ctc::cpu_kernel_name(ctc::active_cpu_kernel(ctc::DType::kFloat32)));
  benchmark::AddCustomContext("ctc_inputs", "log_softmax of N(0,1) logits, (T, N, C), input lengths = T, "
                                            "target lengths in [L/2, L], seeded per shape");

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#ifndef CTC_BENCH_WITH_CUDA
// Built without the CUDA kernels: nothing to register.
namespace ctc_bench {
int cuda_device_count() { return -1; }
std::string cuda_device_name() { return {}; }
void register_cuda_benchmarks() {}
}  // namespace ctc_bench
#endif
