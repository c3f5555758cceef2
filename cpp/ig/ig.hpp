// Integrated gradients (Sundararajan, Taly & Yan 2017; notes/ig.md): the compiled parts.
//
// Generic path (any gradient callable, driven from Python):
//   interpolate: path rows r in [r0, r0 + m), step-major (r = k*N + i, notes §7a):
//                P[r - r0] = (1 - a_k) * x'_i + a_k * x_i        (exact at a = 0 and a = 1)
//                evaluated in double and rounded once to the storage type.
//   accumulate:  acc_i += w_k * g[r - r0]   (acc in double), rows in ascending r, so every
//                acc element sees its steps in ascending k whatever the chunking: the result is
//                bitwise independent of the chunk size (notes §7b).
// Fused built-in models (ig_mlp.cpp): first-layer affine trick, head per step, see mlp.hpp.
#pragma once

#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {
namespace ig {

// x: (N, D); xb: baseline rows, row i at xb + i * xb_row_stride (0: one shared row, D: per
// example); alphas (S,). Writes m rows of D into out. Thread pool over (row, column block).
template <class T>
void interpolate(const T* x, const T* xb, std::int64_t xb_row_stride, std::int64_t N, std::int64_t D,
                 const double* alphas, std::int64_t S, std::int64_t r0, std::int64_t m, T* out);

// acc: (N, D) double; g: m rows of D (rows r0 .. r0+m-1 of the step-major path); weights (S,).
// Returns -1, or the smallest flat index (row - r0) * D + col of a non-finite g element (acc may
// then be partly updated; the caller raises). Thread pool over (example, column block); each
// item walks its example's rows in ascending step order.
template <class T>
std::int64_t accumulate(double* acc, const T* g, std::int64_t N, std::int64_t D, const double* weights,
                        std::int64_t S, std::int64_t r0, std::int64_t m);

// Columns per work item of the element-wise kernels (fixed: the partition never depends on the
// thread count).
constexpr std::int64_t kColumnBlock = 4096;

FASTCORE_ISA_DECLARE(
  void interp_row_f32(const float* x, const float* xb, double a, float* out, std::int64_t n);
  void interp_row_f64(const double* x, const double* xb, double a, double* out, std::int64_t n);
  void interp_row_zero_base_f32(const float* x, double a, float* out, std::int64_t n);
  void interp_row_zero_base_f64(const double* x, double a, double* out, std::int64_t n);
  int accum_row_f32(double* acc, const float* g, double w, std::int64_t n);
  int accum_row_f64(double* acc, const double* g, double w, std::int64_t n);
)

}  // namespace ig
}  // namespace fastcore
