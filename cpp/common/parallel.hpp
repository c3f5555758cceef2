// The project thread pool.
//
// Determinism contract: work is cut into chunks by a *fixed partition* that depends only on the
// problem size and the grain the kernel chooses — never on the number of threads. Threads pick
// chunks dynamically, but a chunk's result does not depend on which thread ran it, so a kernel
// whose chunks write disjoint outputs (and that combines per-chunk partials in chunk order) is
// bitwise identical for 1 or N threads.
//
//   parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) { ... rows [lo, hi) ... });
//   parallel_for_chunks(n, [&](int64_t c) { partial[c] = ...; });   then reduce partial[] in order
//
// Nested calls, and calls made while another Python thread is using the pool, run inline on the
// calling thread (same chunks, same results). Exceptions thrown by a chunk are re-thrown in the
// caller after every started chunk has finished; remaining chunks are skipped.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace fastcore {

// A non-owning reference to a callable (cheaper than std::function; never stored).
template <class Signature>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f) noexcept  // NOLINT: implicit by design
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// Threads the next parallel region may use (>= 1). Initialised from FASTCORE_NUM_THREADS when
// it holds a positive integer, otherwise from the CPUs this process may run on.
int get_num_threads();
// Takes effect for regions started after the call; safe while other threads run regions.
void set_num_threads(int n);
// The default above, ignoring set_num_threads.
int default_num_threads();
// True on a pool worker (or the caller) while it runs a chunk.
bool in_parallel_region();

// Runs body(c) exactly once for every c in [0, n_chunks).
void parallel_for_chunks(std::int64_t n_chunks, FunctionRef<void(std::int64_t)> body);

// Number of chunks parallel_for makes of [begin, end) with this grain.
inline std::int64_t chunk_count(std::int64_t begin, std::int64_t end, std::int64_t grain) {
  if (end <= begin) return 0;
  if (grain < 1) grain = 1;
  return (end - begin + grain - 1) / grain;
}

// Splits [begin, end) into consecutive chunks of `grain` items (the last may be shorter) and
// calls body(lo, hi) for each. The partition depends only on (begin, end, grain).
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& body) {
  if (grain < 1) grain = 1;
  const std::int64_t n = chunk_count(begin, end, grain);
  if (n == 0) return;
  if (n == 1) {
    body(begin, end);
    return;
  }
  parallel_for_chunks(n, [&](std::int64_t c) {
    const std::int64_t lo = begin + c * grain;
    const std::int64_t hi = (end - lo) > grain ? lo + grain : end;
    body(lo, hi);
  });
}

// A grain for `n` items costing about `cost_per_item` (arbitrary units ~ bytes touched) such that
// chunks are big enough to amortise scheduling (>= ~64 KiB of work) yet give every thread of a
// large machine several chunks. Depends only on its arguments (the fixed-partition contract).
inline std::int64_t grain_for(std::int64_t n, std::int64_t cost_per_item,
                              std::int64_t min_chunk_cost = 1 << 16,
                              std::int64_t max_chunks = 1024) {
  if (n <= 0) return 1;
  if (cost_per_item < 1) cost_per_item = 1;
  std::int64_t grain = (min_chunk_cost + cost_per_item - 1) / cost_per_item;
  if (grain < 1) grain = 1;
  const std::int64_t for_max_chunks = (n + max_chunks - 1) / max_chunks;
  return grain > for_max_chunks ? grain : for_max_chunks;
}

}  // namespace fastcore
