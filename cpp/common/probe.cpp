#include "common/probe.hpp"

#include <atomic>
#include <cstring>
#include <vector>

#include "common/errors.hpp"

#include "common/parallel.hpp"

namespace fastcore {
namespace {

template <class T, class Kernel>
void exp_parallel_impl(const T* x, T* y, std::int64_t n, Kernel kernel) {
  // exp costs ~ a few dozen flops per element: chunks of 16K elements keep scheduling negligible.
  parallel_for(0, n, grain_for(n, 4 * static_cast<std::int64_t>(sizeof(T))),
               [&](std::int64_t lo, std::int64_t hi) { kernel(x + lo, y + lo, hi - lo); });
}

}  // namespace

void exp_array_parallel(const float* x, float* y, std::int64_t n) {
  exp_parallel_impl(x, y, n, FASTCORE_ISA_DISPATCH(exp_array_f32));
}
void exp_array_parallel(const double* x, double* y, std::int64_t n) {
  exp_parallel_impl(x, y, n, FASTCORE_ISA_DISPATCH(exp_array_f64));
}
void exp_nonpositive_array_parallel(const float* x, float* y, std::int64_t n) {
  exp_parallel_impl(x, y, n, FASTCORE_ISA_DISPATCH(exp_nonpositive_array_f32));
}
void exp_nonpositive_array_parallel(const double* x, double* y, std::int64_t n) {
  exp_parallel_impl(x, y, n, FASTCORE_ISA_DISPATCH(exp_nonpositive_array_f64));
}

void log_array_parallel(const double* x, double* y, std::int64_t n) {
  exp_parallel_impl(x, y, n, FASTCORE_ISA_DISPATCH(log_array_f64));
}
void pow_array_parallel(const double* x, double b, double* y, std::int64_t n) {
  auto kernel = FASTCORE_ISA_DISPATCH(pow_array_f64);
  exp_parallel_impl(x, y, n,
                    [&](const double* xs, double* ys, std::int64_t count) { kernel(xs, b, ys, count); });
}

void copy_parallel(const void* src, void* dst, std::size_t nbytes) {
  constexpr std::int64_t kChunk = 1 << 20;
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  parallel_for(0, static_cast<std::int64_t>(nbytes), kChunk, [&](std::int64_t lo, std::int64_t hi) {
    std::memcpy(d + lo, s + lo, static_cast<std::size_t>(hi - lo));
  });
}

double fma_peak_run(std::int64_t iterations_per_thread) {
  const int threads = get_num_threads();
  auto burn = FASTCORE_ISA_DISPATCH(fma_burn);
  auto per_iteration = FASTCORE_ISA_DISPATCH(fma_flops_per_iteration);
  std::atomic<double> sink{0.0};
  parallel_for_chunks(threads, [&](std::int64_t c) {
    const double v = burn(iterations_per_thread, 1.0f + static_cast<float>(c));
    double old = sink.load();
    while (!sink.compare_exchange_weak(old, old + v)) {
    }
  });
  if (sink.load() == -1.0) return 0.0;  // never true; keeps the result observable
  return static_cast<double>(per_iteration()) * static_cast<double>(iterations_per_thread) * threads;
}

}  // namespace fastcore

namespace fastcore {

double chunked_sum(const double* x, std::int64_t n, std::int64_t grain) {
  std::vector<double> partial(static_cast<std::size_t>(chunk_count(0, n, grain)), 0.0);
  parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) {
    double s = 0.0;
    for (std::int64_t i = lo; i < hi; ++i) s += x[i];
    partial[static_cast<std::size_t>(lo / grain)] = s;
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

std::int64_t run_chunks_failing_at(std::int64_t n_chunks, std::int64_t failing_chunk) {
  std::atomic<std::int64_t> ran{0};
  parallel_for_chunks(n_chunks, [&](std::int64_t c) {
    if (c == failing_chunk) throw_value_error("chunk ", c, " failed on purpose");
    ran.fetch_add(1);
  });
  return ran.load();
}

std::int64_t nested_regions(std::int64_t outer, std::int64_t inner) {
  std::vector<std::int64_t> per_outer(static_cast<std::size_t>(outer), 0);
  parallel_for_chunks(outer, [&](std::int64_t c) {
    if (!in_parallel_region()) throw_value_error("outer chunk not marked as in a region");
    std::atomic<std::int64_t> count{0};
    parallel_for_chunks(inner, [&](std::int64_t) { count.fetch_add(1); });
    per_outer[static_cast<std::size_t>(c)] = c * count.load();
  });
  std::int64_t total = 0;
  for (auto v : per_outer) total += v;
  return total;
}

}  // namespace fastcore
