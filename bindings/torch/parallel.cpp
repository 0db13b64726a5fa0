// torch_parallel_for: the ctc::ParallelFor the CPU ops hand to the engine.
#include "parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace torch_ctc {

// Spreads the engine's work chunks over torch.get_num_threads() threads. Chunks
// are handed out one at a time, in order, to whichever thread is free (the
// engine orders them largest first); each is computed by one thread, so
// results do not depend on the thread count. Inside another parallel region
// this runs serially.
//
// With OpenMP (torch's Linux builds), the threads are torch's own OpenMP pool,
// through at::parallel_for: this file is compiled with -fopenmp and links
// libgomp.so.1, the soname torch's wheel ships too, so the process keeps one
// runtime. That matters: after a torch op, torch's workers spin-wait for a
// while, and threads of our own would compete with them for the cores
// (measured: a 2-thread htr-s call took 3.5 ms right after a matmul against
// 1.4 ms alone). Without OpenMP, it starts std::threads.
void torch_parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t threads = std::min<int64_t>(n, at::in_parallel_region() ? 1 : at::get_num_threads());
  if (threads <= 1) {
    if (n > 0) body(0, n);
    return;
  }
  std::atomic<int64_t> next{0};
  auto take_chunks = [&] {
    try {
      for (int64_t k = next++; k < n; k = next++) body(k, k + 1);
    } catch (...) {
      next = n;  // the others stop after their current chunk
      throw;
    }
  };
#ifdef _OPENMP
  // One task per thread; at::parallel_for rethrows the first exception here.
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) take_chunks();
  });
#else
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&] {
    try {
      take_chunks();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (int64_t k = 1; k < threads; ++k) workers.emplace_back(run);
  run();
  for (auto& worker : workers) worker.join();
  if (error) std::rethrow_exception(error);
#endif
}

}  // namespace torch_ctc
