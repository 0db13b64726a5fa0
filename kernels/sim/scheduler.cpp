// The CUDA simulator's scheduler: every CUDA thread of a block is a fiber
// (ucontext) on the calling host thread. Fibers rather than OS threads,
// because:
//  - a switch costs a fraction of a microsecond, where a recurrence kernel
//    meets a barrier every time step (OS threads on 2 cores spend that in the
//    kernel's scheduler);
//  - the order threads run in is ours to choose: round robin, or seeded at
//    random, so a test can replay or vary it, and a rendezvous no thread can
//    complete is seen at once and reported instead of hanging;
//  - ThreadSanitizer still sees each simulated thread as a thread of its own
//    (its fiber API, switching without synchronisation), with happens-before
//    only where CUDA has it: __syncthreads(), __syncwarp(), and the launch
//    boundaries. So a missing barrier is a data race TSan reports.
// ASan is told about every stack switch, so its stack checks stay exact.
//
// This file's own bookkeeping is shared by all fibers of a block by design;
// under TSan it is built without instrumentation and with CTC_SIM_TSAN
// (kernels/sim/CMakeLists.txt), so that only the kernels' accesses are checked.
#include "scheduler.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ctc/error.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTC_SIM_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CTC_SIM_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CTC_SIM_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define CTC_SIM_TSAN 1
#endif
#if defined(CTC_SIM_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CTC_SIM_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace ctc::sim {
namespace {

constexpr size_t kStackBytes = size_t{256} << 10;
constexpr int kWarpSize = 32;

// ---------------------------------------------------------------------------
// Sanitizer annotations (no-ops in a plain build).

void tsan_release(void* sync) {
#if defined(CTC_SIM_TSAN)
  __tsan_release(sync);
#else
  (void)sync;
#endif
}

void tsan_acquire(void* sync) {
#if defined(CTC_SIM_TSAN)
  __tsan_acquire(sync);
#else
  (void)sync;
#endif
}

// ---------------------------------------------------------------------------
// Fiber stacks: mmap'ed, with a guard page below, reused across blocks and
// launches, each with its TSan fiber (creating one per block took most of a
// TSan run's time). Reuse orders nothing new: blocks already run in order,
// and the host synchronises with every block's start and end.

struct Stack {
  char* base = nullptr;  // lowest usable byte
  size_t size = 0;
  bool dirty = false;  // a fiber was abandoned on it: ASan's poison may remain
  void* tsan_fiber = nullptr;
};

Stack new_stack() {
  const size_t page = 4096;
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error(ErrorKind::kResource, "simulator", "torch_ctc: CUDA simulator: out of memory for stacks");
  mprotect(p, page, PROT_NONE);
  Stack s{static_cast<char*>(p) + page, kStackBytes, false, nullptr};
#if defined(CTC_SIM_TSAN)
  s.tsan_fiber = __tsan_create_fiber(0);
#endif
  return s;
}

thread_local std::vector<Stack> stack_pool;

// ---------------------------------------------------------------------------
// The state of one block while it runs.

enum class State { kReady, kAtBarrier, kAtWarp, kDone, kFailed };

struct Block;

struct SimThread {
  ThreadContext builtins{};
  ucontext_t context{};
  Stack stack;
  Block* block = nullptr;
  int linear = 0, warp = 0, lane = 0;
  State state = State::kReady;
  const char* file = "";  // where it waits
  int line = 0;
  uint64_t result = 0;  // what its last warp exchange returned
  void* tsan_fiber = nullptr;
  void* asan_fake_stack = nullptr;
};

// Lanes of one warp that wait at the same warp primitive (same mask).
struct WarpGroup {
  unsigned mask = 0, arrived = 0;
  WarpOp op = WarpOp::kIndex;
  bool sync = false;  // __syncwarp
  int width = kWarpSize;
  const char* file = "";
  int line = 0;
  uint64_t value[kWarpSize] = {};
  int arg[kWarpSize] = {};
};

struct Warp {
  unsigned members = 0;  // lanes that exist
  unsigned exited = 0;
  std::vector<WarpGroup> pending;
  char sync[2] = {};  // TSan sync objects of __syncwarp, by generation parity
  unsigned generation = 0;
};

// The runnable threads, first in first out, in storage allocated before any
// thread runs: an allocation by one fiber freed by another would be a race
// to ThreadSanitizer.
class ReadyQueue {
 public:
  void reset(size_t capacity) {
    slots_.assign(capacity + 1, nullptr);
    head_ = tail_ = 0;
  }
  bool empty() const { return head_ == tail_; }
  size_t size() const { return (tail_ + slots_.size() - head_) % slots_.size(); }
  void push(SimThread* t) {
    slots_[tail_] = t;
    tail_ = (tail_ + 1) % slots_.size();
  }
  // Removes and returns the k-th runnable thread (0: the oldest).
  SimThread* take(size_t k) {
    SimThread*& picked = slots_[(head_ + k) % slots_.size()];
    std::swap(picked, slots_[head_]);
    SimThread* t = slots_[head_];
    head_ = (head_ + 1) % slots_.size();
    return t;
  }

 private:
  std::vector<SimThread*> slots_;
  size_t head_ = 0, tail_ = 0;
};

struct Block {
  const KernelLaunch* launch = nullptr;
  uint3 index{};
  std::vector<SimThread*> threads;
  std::vector<Warp> warps;
  ReadyQueue ready;
  std::mt19937_64* rng = nullptr;  // null: round robin
  const std::function<void()>* body = nullptr;
  int at_barrier = 0, done = 0;
  const char* barrier_file = "";
  int barrier_line = 0;
  unsigned barrier_generation = 0;
  char barrier_sync[2] = {};  // TSan sync objects of __syncthreads, by generation parity
  char start_sync = 0, exit_sync = 0;  // the block's start (host -> threads) and end (threads -> host)
  std::string error;
  ucontext_t main_context{};
  void* main_tsan_fiber = nullptr;
  void* main_fake_stack = nullptr;
  const void* main_stack_bottom = nullptr;
  size_t main_stack_size = 0;
};

thread_local SimThread* running = nullptr;
uint64_t seed_from_environment() {
  const char* env = std::getenv("TORCH_CTC_SIM_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 0;
}
uint64_t g_seed = seed_from_environment();

std::string site(const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

std::string dims(uint3 v) {
  return "(" + std::to_string(v.x) + ", " + std::to_string(v.y) + ", " + std::to_string(v.z) + ")";
}

// ---------------------------------------------------------------------------
// Switching between the scheduler and a thread.

void resume(Block& b, SimThread& t) {
  running = &t;
#if defined(CTC_SIM_TSAN)
  __tsan_switch_to_fiber(t.tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(CTC_SIM_ASAN)
  __sanitizer_start_switch_fiber(&b.main_fake_stack, t.stack.base, t.stack.size);
#endif
  swapcontext(&b.main_context, &t.context);
#if defined(CTC_SIM_ASAN)
  __sanitizer_finish_switch_fiber(b.main_fake_stack, nullptr, nullptr);
#endif
  running = nullptr;
}

// Back to the scheduler; `final` when the thread will never run again.
void yield(Block& b, SimThread& t, bool final) {
#if defined(CTC_SIM_TSAN)
  __tsan_switch_to_fiber(b.main_tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
#if defined(CTC_SIM_ASAN)
  __sanitizer_start_switch_fiber(final ? nullptr : &t.asan_fake_stack, b.main_stack_bottom, b.main_stack_size);
#else
  (void)final;
#endif
  swapcontext(&t.context, &b.main_context);
#if defined(CTC_SIM_ASAN)
  __sanitizer_finish_switch_fiber(t.asan_fake_stack, &b.main_stack_bottom, &b.main_stack_size);
#endif
}

SimThread& current() {
  if (running == nullptr) {
    std::fprintf(stderr, "torch_ctc: CUDA simulator: a device built-in was used outside a kernel launch\n");
    std::abort();
  }
  return *running;
}

// Thrown through a failing thread's own stack (so its temporaries are
// destroyed), caught at the bottom of its fiber, which then parks for good.
struct KernelFault {};

// Records what went wrong (the first error of the block wins); the launch
// then throws it as a ctc::Error.
void record_error(SimThread& t, const std::string& what) {
  Block& b = *t.block;
  if (b.error.empty())
    b.error = "thread " + dims(t.builtins.thread_idx) + " of block " + dims(b.index) + ": " + what;
  tsan_release(&b.exit_sync);  // the host reads the message
}

[[noreturn]] void fail(SimThread& t, const std::string& what) {
  record_error(t, what);
  throw KernelFault{};
}

[[noreturn]] void park_failed(SimThread& t) {
  t.state = State::kFailed;
  yield(*t.block, t, true);
  std::abort();  // never resumed
}

void make_ready(Block& b, SimThread& t) {
  t.state = State::kReady;
  b.ready.push(&t);
}

// A thread may return unless others wait for it at a rendezvous.
bool leaving_is_allowed(const Block& b, const SimThread& t) {
  if (b.at_barrier > 0) return false;
  for (const WarpGroup& g : b.warps[t.warp].pending)
    if (g.mask & (1u << t.lane)) return false;
  return true;
}

std::string leaving_error(const Block& b, const SimThread& t) {
  if (b.at_barrier > 0)
    return "returned while " + std::to_string(b.at_barrier) + " thread(s) of the block wait at __syncthreads() at " +
           site(b.barrier_file, b.barrier_line) + ": they can never pass it";
  for (const WarpGroup& g : b.warps[t.warp].pending)
    if (g.mask & (1u << t.lane))
      return "returned while lanes of its warp wait for it at the warp primitive at " + site(g.file, g.line);
  return "";
}

void fiber_entry(unsigned high, unsigned low) {
  SimThread& t = *reinterpret_cast<SimThread*>((static_cast<uintptr_t>(high) << 32) | low);
  Block& b = *t.block;
#if defined(CTC_SIM_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &b.main_stack_bottom, &b.main_stack_size);
#endif
  tsan_acquire(&b.start_sync);
  bool faulted = false;
  try {
    (*b.body)();
  } catch (const KernelFault&) {
    faulted = true;
  } catch (const std::exception& e) {
    record_error(t, std::string("the kernel threw: ") + e.what());
    faulted = true;
  }
  if (faulted) park_failed(t);  // outside the handlers: the exception object is freed
  tsan_release(&b.exit_sync);
  t.state = State::kDone;
  ++b.done;
  b.warps[t.warp].exited |= 1u << t.lane;
  if (!leaving_is_allowed(b, t)) {
    record_error(t, leaving_error(b, t));  // the message is freed at the ';'
    park_failed(t);
  }
  yield(b, t, true);
  std::abort();  // never resumed
}

// ---------------------------------------------------------------------------
// Running a block.

void start_threads(Block& b) {
  const dim3 block = b.launch->block;
  const int count = static_cast<int>(block.x * block.y * block.z);
  b.warps.assign((count + kWarpSize - 1) / kWarpSize, Warp{});
  for (Warp& w : b.warps) w.pending.reserve(kWarpSize);  // no allocation once the threads run
  b.ready.reset(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    SimThread& t = *b.threads[i];
    t = SimThread{};
    if (stack_pool.size() <= static_cast<size_t>(i)) stack_pool.push_back(new_stack());
    t.stack = stack_pool[i];
#if defined(CTC_SIM_ASAN)
    if (t.stack.dirty) ASAN_UNPOISON_MEMORY_REGION(t.stack.base, t.stack.size);
#endif
    stack_pool[i].dirty = false;
    t.block = &b;
    t.linear = i;
    t.warp = i / kWarpSize;
    t.lane = i % kWarpSize;
    b.warps[t.warp].members |= 1u << t.lane;
    t.builtins.thread_idx = {static_cast<unsigned>(i) % block.x, (static_cast<unsigned>(i) / block.x) % block.y,
                             static_cast<unsigned>(i) / (block.x * block.y)};
    t.builtins.block_idx = b.index;
    t.builtins.block_dim = block;
    t.builtins.grid_dim = b.launch->grid;
    t.tsan_fiber = t.stack.tsan_fiber;
    getcontext(&t.context);
    t.context.uc_stack.ss_sp = t.stack.base;
    t.context.uc_stack.ss_size = t.stack.size;
    t.context.uc_link = nullptr;
    const uintptr_t address = reinterpret_cast<uintptr_t>(&t);
    makecontext(&t.context, reinterpret_cast<void (*)()>(fiber_entry), 2, static_cast<unsigned>(address >> 32),
                static_cast<unsigned>(address & 0xffffffffu));
    b.ready.push(&t);
  }
}

SimThread* next_ready(Block& b) {
  if (b.ready.empty()) return nullptr;
  size_t pick = 0;
  if (b.rng != nullptr) pick = std::uniform_int_distribution<size_t>(0, b.ready.size() - 1)(*b.rng);
  return b.ready.take(pick);
}

// Where the threads that cannot go on wait, for the deadlock report.
std::string waiting_threads(const Block& b) {
  std::string out;
  int listed = 0;
  for (const SimThread* t : b.threads) {
    if (t->state != State::kAtBarrier && t->state != State::kAtWarp) continue;
    if (listed++ == 4) {
      out += ", ...";
      break;
    }
    out += (out.empty() ? "" : ", ") + dims(t->builtins.thread_idx) + " at " + site(t->file, t->line);
  }
  return out;
}

// After the block: threads left parked by an error are abandoned. Their
// stacks may hold ASan poison. For TSan, a synchronising switch into each and
// back orders what it did before the host reuses the memory, and its fiber is
// replaced (its shadow call stack still holds the abandoned frames).
void finish_threads(Block& b) {
  for (SimThread* t : b.threads) {
    if (t->state == State::kDone) continue;
    Stack& stack = stack_pool[t->linear];
    stack.dirty = true;
#if defined(CTC_SIM_TSAN)
    __tsan_switch_to_fiber(t->tsan_fiber, 0);
    __tsan_switch_to_fiber(b.main_tsan_fiber, 0);
    __tsan_destroy_fiber(stack.tsan_fiber);
    stack.tsan_fiber = __tsan_create_fiber(0);
#endif
  }
}

void run_block(Block& b) {
  start_threads(b);
#if defined(CTC_SIM_TSAN)
  b.main_tsan_fiber = __tsan_get_current_fiber();
#endif
  tsan_release(&b.start_sync);
  while (b.error.empty()) {
    SimThread* t = next_ready(b);
    if (t == nullptr) break;
    resume(b, *t);
  }
  tsan_acquire(&b.exit_sync);
  const int count = static_cast<int>(b.threads.size());
  if (b.error.empty() && b.done < count)
    b.error = "deadlock in block " + dims(b.index) + ": " + std::to_string(count - b.done) +
              " thread(s) wait at a rendezvous no other thread will reach: " + waiting_threads(b);
  finish_threads(b);
}

// ---------------------------------------------------------------------------
// Warp primitives.

// The lane whose value lane `lane` reads, or -1 if that lane reads its own.
int source_lane(const WarpGroup& g, int lane) {
  const int base = lane / g.width * g.width;
  const int arg = g.arg[lane];
  switch (g.op) {
    case WarpOp::kIndex: return base + ((arg % g.width) + g.width) % g.width;
    case WarpOp::kUp: return lane - arg >= base ? lane - arg : lane;
    case WarpOp::kDown: return lane + arg < base + g.width ? lane + arg : lane;
    case WarpOp::kXor: {
      const int source = lane ^ arg;
      return source / g.width == lane / g.width ? source : lane;
    }
    default: return lane;
  }
}

// All lanes of the group have arrived: each gets its result and runs on.
// Returns an error instead when a lane would read one outside the group.
std::string complete(Block& b, Warp& w, const WarpGroup& g) {
  const int first = static_cast<int>(&w - b.warps.data()) * kWarpSize;
  uint64_t votes = 0;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (!((g.mask >> lane) & 1u)) continue;
    votes |= static_cast<uint64_t>(g.value[lane] != 0) << lane;
    const int source = source_lane(g, lane);
    if (!((g.mask >> source) & 1u))
      return "lane " + std::to_string(lane) + " reads lane " + std::to_string(source) + ", which is not in the mask";
  }
  for (int lane = 0; lane < kWarpSize; ++lane) {
    if (!((g.mask >> lane) & 1u)) continue;
    SimThread& t = *b.threads[first + lane];
    switch (g.op) {
      case WarpOp::kBallot: t.result = votes; break;
      case WarpOp::kAny: t.result = votes != 0; break;
      case WarpOp::kAll: t.result = votes == g.mask; break;
      default: t.result = g.value[source_lane(g, lane)];
    }
    make_ready(b, t);
  }
  return "";
}

const char* op_name(WarpOp op, bool sync) {
  if (sync) return "__syncwarp";
  switch (op) {
    case WarpOp::kIndex: return "__shfl_sync";
    case WarpOp::kUp: return "__shfl_up_sync";
    case WarpOp::kDown: return "__shfl_down_sync";
    case WarpOp::kXor: return "__shfl_xor_sync";
    case WarpOp::kBallot: return "__ballot_sync";
    case WarpOp::kAny: return "__any_sync";
    case WarpOp::kAll: return "__all_sync";
  }
  return "a warp primitive";
}

uint64_t rendezvous(WarpOp op, bool sync, unsigned mask, uint64_t bits, int arg, int width, const char* file,
                    int line) {
  SimThread& t = current();
  Block& b = *t.block;
  Warp& w = b.warps[t.warp];
  const unsigned me = 1u << t.lane;
  const char* name = op_name(op, sync);
  if (!(mask & me)) fail(t, std::string(name) + " at " + site(file, line) + " with a mask that leaves out the calling lane");
  if (mask & ~w.members)
    fail(t, std::string(name) + " at " + site(file, line) + ": the mask names lanes that do not exist (the block has " +
                std::to_string(b.threads.size()) + " threads)");
  if (mask & w.exited) fail(t, std::string(name) + " at " + site(file, line) + ": the mask names lanes that have returned");
  if (width < 1 || width > kWarpSize || (width & (width - 1)))
    fail(t, std::string(name) + " at " + site(file, line) + ": width " + std::to_string(width) + " is not a power of 2 up to 32");
  WarpGroup* group = nullptr;
  for (WarpGroup& g : w.pending) {
    if (g.mask == mask) group = &g;
    else if (g.mask & mask)
      fail(t, std::string(name) + " at " + site(file, line) + " with a mask that overlaps, without equalling, that of lanes waiting at " +
                  site(g.file, g.line));
  }
  if (group == nullptr) {
    w.pending.push_back(WarpGroup{});
    group = &w.pending.back();
    group->mask = mask;
    group->op = op;
    group->sync = sync;
    group->width = width;
    group->file = file;
    group->line = line;
  } else if (group->op != op || group->sync != sync || group->width != width || group->line != line ||
             std::strcmp(group->file, file) != 0) {
    fail(t, std::string(name) + " at " + site(file, line) + " while other lanes of its mask wait at " +
                op_name(group->op, group->sync) + " at " + site(group->file, group->line));
  }
  group->value[t.lane] = bits;
  group->arg[t.lane] = arg;
  group->arrived |= me;
  t.state = State::kAtWarp;
  t.file = file;
  t.line = line;
  const unsigned generation = w.generation;
  if (sync) tsan_release(&w.sync[generation & 1]);
  if (group->arrived == group->mask) {
    const WarpGroup done = *group;
    w.pending.erase(w.pending.begin() + (group - w.pending.data()));
    ++w.generation;
    const std::string error = complete(b, w, done);
    if (!error.empty()) fail(t, std::string(name) + " at " + site(file, line) + ": " + error);
  }
  yield(b, t, false);
  if (sync) tsan_acquire(&w.sync[generation & 1]);
  return t.result;
}

}  // namespace

// ---------------------------------------------------------------------------
// The device built-ins (runtime.h).

const ThreadContext& current_thread() { return current().builtins; }

void syncthreads(const char* file, int line) {
  SimThread& t = current();
  Block& b = *t.block;
  if (b.done > 0)
    fail(t, "__syncthreads() at " + site(file, line) + " after " + std::to_string(b.done) +
                " thread(s) of the block returned: they can never reach it");
  if (b.at_barrier == 0) {
    b.barrier_file = file;
    b.barrier_line = line;
  } else if (b.barrier_line != line || std::strcmp(b.barrier_file, file) != 0) {
    fail(t, "__syncthreads() at " + site(file, line) + " while other threads of the block wait at " +
                site(b.barrier_file, b.barrier_line) + " (a barrier in divergent code)");
  }
  const unsigned generation = b.barrier_generation;
  tsan_release(&b.barrier_sync[generation & 1]);
  t.state = State::kAtBarrier;
  t.file = file;
  t.line = line;
  if (++b.at_barrier == static_cast<int>(b.threads.size())) {
    b.at_barrier = 0;
    ++b.barrier_generation;
    for (SimThread* other : b.threads) make_ready(b, *other);
  }
  yield(b, t, false);
  tsan_acquire(&b.barrier_sync[generation & 1]);
}

void syncwarp(unsigned mask, const char* file, int line) { rendezvous(WarpOp::kIndex, true, mask, 0, 0, 32, file, line); }

uint64_t warp_exchange(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line) {
  return rendezvous(op, false, mask, bits, arg, width, file, line);
}

unsigned activemask() {
  SimThread& t = current();
  const Warp& w = t.block->warps[t.warp];
  return w.members & ~w.exited;
}

// ---------------------------------------------------------------------------
// Launches.

void set_schedule_seed(uint64_t seed) { g_seed = seed; }
uint64_t schedule_seed() { return g_seed; }

void run_kernel(const KernelLaunch& launch, const std::function<void()>& body) {
  if (running != nullptr) throw Error(ErrorKind::kResource, launch.name, "torch_ctc: CUDA simulator: a launch from inside a kernel");
  const dim3 grid = launch.grid, block = launch.block;
  const int count = static_cast<int>(block.x * block.y * block.z);
  std::vector<std::unique_ptr<SimThread>> storage;
  std::vector<SimThread*> threads;
  for (int i = 0; i < count; ++i) {
    storage.push_back(std::make_unique<SimThread>());
    threads.push_back(storage.back().get());
  }
  std::vector<uint3> order;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) order.push_back({x, y, z});
  std::mt19937_64 rng(g_seed);
  if (g_seed != 0) std::shuffle(order.begin(), order.end(), rng);
  for (const uint3& index : order) {
    Block b;
    b.launch = &launch;
    b.index = index;
    b.threads = threads;
    b.body = &body;
    b.rng = g_seed != 0 ? &rng : nullptr;
    run_block(b);
    if (!b.error.empty())
      throw Error(ErrorKind::kResource, launch.name,
                  std::string("torch_ctc: CUDA simulator: ") + launch.name + ": " + b.error);
  }
}

}  // namespace ctc::sim
