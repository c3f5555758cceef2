#include "common/parallel.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace fastcore {
namespace {

thread_local bool t_in_region = false;

struct RegionFlag {
  bool previous;
  RegionFlag() : previous(t_in_region) { t_in_region = true; }
  ~RegionFlag() { t_in_region = previous; }
};

// A pool of persistent workers that run one region at a time. The caller of a region takes part
// in it, so n threads means the caller plus n - 1 workers.
class Pool {
 public:
  // Runs the region on up to n_threads threads. Returns false (and runs nothing) when another
  // thread's region is in progress; the caller then runs the chunks itself.
  bool try_run(std::int64_t n_chunks, FunctionRef<void(std::int64_t)> body, int n_threads) {
    std::unique_lock<std::mutex> region(region_mutex_, std::try_to_lock);
    if (!region.owns_lock()) return false;

    const int helpers = static_cast<int>(
        std::min<std::int64_t>(static_cast<std::int64_t>(n_threads) - 1, n_chunks - 1));
    grow(helpers);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      n_chunks_ = n_chunks;
      next_.store(0, std::memory_order_relaxed);
      failed_.store(false, std::memory_order_relaxed);
      error_ = nullptr;
      participants_ = helpers;
      active_ = 0;
      open_ = true;
      ++generation_;
    }
    wake_.notify_all();

    run_chunks();  // the caller works too

    // Close the region and wait only for the helpers that joined it. A helper that has not been
    // scheduled yet (its core busy with another process, or with another library's spinning
    // threads, e.g. OpenBLAS after a NumPy matmul) must not hold the caller up for a time slice:
    // the chunks are claimed dynamically, so the caller has already run its share.
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;
    done_.wait(lock, [&] { return active_ == 0; });
    body_ = nullptr;
    std::exception_ptr error = error_;
    error_ = nullptr;
    lock.unlock();
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  void grow(int n_workers) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (static_cast<int>(workers_.size()) < n_workers) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id, seen = generation_] { worker_loop(id, seen); });
    }
  }

  void worker_loop(int id, std::uint64_t seen) {
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= participants_ || !open_) continue;  // fewer threads needed, or woke too late
      ++active_;
      lock.unlock();
      run_chunks();
      lock.lock();
      if (--active_ == 0) done_.notify_one();
    }
  }

  void run_chunks() {
    RegionFlag flag;
    for (;;) {
      if (failed_.load(std::memory_order_relaxed)) return;
      const std::int64_t c = next_.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks_) return;
      try {
        (*body_)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
  }

  std::mutex region_mutex_;  // held for the whole of one region
  std::mutex mutex_;         // guards the fields below and the condition variables
  std::mutex error_mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::uint64_t generation_ = 0;
  int participants_ = 0;
  int active_ = 0;     // helpers inside the current region
  bool open_ = false;  // helpers may still join the current region
  const FunctionRef<void(std::int64_t)>* body_ = nullptr;
  std::int64_t n_chunks_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

// The pool is created on first use and deliberately never destroyed: its workers sleep in a
// condition variable at interpreter exit, and joining them from a static destructor can deadlock.
std::atomic<Pool*> g_pool{nullptr};
std::atomic<int> g_num_threads{0};  // 0: not yet initialised

#if defined(__linux__)
// After fork() the child has none of the parent's workers: forget the old pool (leaking it, since
// its mutexes may be held by threads that no longer exist) and build a new one on demand.
void reset_pool_in_child() { g_pool.store(nullptr); }
const int g_atfork_registered = pthread_atfork(nullptr, nullptr, &reset_pool_in_child);
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  Pool* fresh = new Pool();
  if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *p;
}

int parse_positive_env(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*end != '\0' || v < 1 || v > 4096) return 0;  // invalid: ignored (Python warns)
  return static_cast<int>(v);
}

}  // namespace

int default_num_threads() {
  if (const int from_env = parse_positive_env("FASTCORE_NUM_THREADS")) return from_env;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

int get_num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    int expected = 0;
    n = default_num_threads();
    if (!g_num_threads.compare_exchange_strong(expected, n)) n = expected;
  }
  return n;
}

void set_num_threads(int n) {
  if (n < 1) n = 1;
  g_num_threads.store(n, std::memory_order_relaxed);
}

bool in_parallel_region() { return t_in_region; }

void parallel_for_chunks(std::int64_t n_chunks, FunctionRef<void(std::int64_t)> body) {
  if (n_chunks <= 0) return;
  const int threads = get_num_threads();
  if (n_chunks > 1 && threads > 1 && !t_in_region) {
    if (pool().try_run(n_chunks, body, threads)) return;
  }
  RegionFlag flag;  // inline: same chunks in order, nested regions stay inline
  for (std::int64_t c = 0; c < n_chunks; ++c) body(c);
}

}  // namespace fastcore
