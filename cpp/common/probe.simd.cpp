// Compiled once per ISA (see cmake/FastcoreIsa.cmake); FASTCORE_ISA_NS names the variant.
#include "common/probe.hpp"
#include "common/vmath.hpp"

#if FASTCORE_ISA_LEVEL >= 1
#include <immintrin.h>
#endif

namespace fastcore {
namespace FASTCORE_ISA_NS {

void exp_array_f32(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::exp_f32(x[i]);
}

void exp_array_f64(const double* x, double* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::exp_f64(x[i]);
}

void exp_nonpositive_array_f32(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::exp_f32_nonpositive(x[i]);
}

void exp_nonpositive_array_f64(const double* x, double* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::exp_f64_nonpositive(x[i]);
}

void log_array_f64(const double* x, double* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::log_f64(x[i]);
}

void pow_array_f64(const double* x, double b, double* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vmath::pow_f64(x[i], b);
}

// Twelve independent accumulators hide the FMA latency (4 cycles) on two FMA ports.
constexpr int kChains = 12;

#if FASTCORE_ISA_LEVEL == 2
std::int64_t fma_flops_per_iteration() { return 2 * 16 * kChains; }
double fma_burn(std::int64_t iterations, float seed) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + 0.01f * static_cast<float>(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 total = acc[0];
  for (int c = 1; c < kChains; ++c) total = _mm512_add_ps(total, acc[c]);
  float lanes[16];  // (not _mm512_reduce_add_ps: GCC 12 warns inside it)
  _mm512_storeu_ps(lanes, total);
  double s = 0;
  for (float v : lanes) s += v;
  return s;
}
#elif FASTCORE_ISA_LEVEL == 1
std::int64_t fma_flops_per_iteration() { return 2 * 8 * kChains; }
double fma_burn(std::int64_t iterations, float seed) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + 0.01f * static_cast<float>(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  float lanes[8];
  __m256 total = acc[0];
  for (int c = 1; c < kChains; ++c) total = _mm256_add_ps(total, acc[c]);
  _mm256_storeu_ps(lanes, total);
  double s = 0;
  for (float v : lanes) s += v;
  return s;
}
#else
// Scalar: a multiply and an add per chain and round (2 flops), no vector units.
std::int64_t fma_flops_per_iteration() { return 2 * kChains; }
double fma_burn(std::int64_t iterations, float seed) {
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = seed + 0.01f * static_cast<float>(c);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * 0.999999f + 1e-7f;
  double s = 0;
  for (float v : acc) s += v;
  return s;
}
#endif

}  // namespace FASTCORE_ISA_NS
}  // namespace fastcore
