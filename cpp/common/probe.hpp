// Machine probes and whole-array helpers used by tests and benchmarks: the vectorised exp applied
// to arrays (so its accuracy can be tested per ISA), a multi-threaded copy (the memory-bandwidth
// floor every memory-bound kernel is compared with) and an FMA loop (the compute floor).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {

FASTCORE_ISA_DECLARE(
    void exp_array_f32(const float* x, float* y, std::int64_t n);
    void exp_array_f64(const double* x, double* y, std::int64_t n);
    // vmath::exp_*_nonpositive (the softmax exp) on arrays, for its tests.
    void exp_nonpositive_array_f32(const float* x, float* y, std::int64_t n);
    void exp_nonpositive_array_f64(const double* x, double* y, std::int64_t n);
    // vmath::log_f64 and vmath::pow_f64(x, b) on arrays, for their tests.
    void log_array_f64(const double* x, double* y, std::int64_t n);
    void pow_array_f64(const double* x, double b, double* y, std::int64_t n);
    // Runs `iterations` rounds of independent FMA chains; returns a value that depends on all of
    // them (so nothing is optimised away). flops_per_iteration() says how many flops one round is.
    double fma_burn(std::int64_t iterations, float seed);
    std::int64_t fma_flops_per_iteration();)

// y = exp(x) elementwise on the thread pool with the active ISA. x and y may be the same array.
void exp_array_parallel(const float* x, float* y, std::int64_t n);
void exp_array_parallel(const double* x, double* y, std::int64_t n);
// y = log(x) and y = x^b (vmath::log_f64 / pow_f64), likewise.
void log_array_parallel(const double* x, double* y, std::int64_t n);
void pow_array_parallel(const double* x, double b, double* y, std::int64_t n);
// The same for vmath::exp_*_nonpositive.
void exp_nonpositive_array_parallel(const float* x, float* y, std::int64_t n);
void exp_nonpositive_array_parallel(const double* x, double* y, std::int64_t n);

// memcpy of nbytes on the thread pool (1 MiB chunks).
void copy_parallel(const void* src, void* dst, std::size_t nbytes);

// Runs the FMA loop on every pool thread (iterations each); returns the flops executed.
double fma_peak_run(std::int64_t iterations_per_thread);

}  // namespace fastcore

namespace fastcore {
// Thread-pool self-tests (used by tests/test_parallel.py).
// Sums x in chunks of `grain` and adds the chunk sums in chunk order: bitwise identical for any
// thread count by the fixed-partition contract.
double chunked_sum(const double* x, std::int64_t n, std::int64_t grain);
// Runs n_chunks chunks; chunk `failing_chunk` throws ValueError. Returns the number of chunks
// that ran if none failed.
std::int64_t run_chunks_failing_at(std::int64_t n_chunks, std::int64_t failing_chunk);
// Runs an outer region whose chunks each run an inner region: the inner ones run inline.
// Returns the sum over chunks of (chunk index * inner chunk count), checked by the caller.
std::int64_t nested_regions(std::int64_t outer, std::int64_t inner);
}  // namespace fastcore
