// Generic-path drivers (see ig.hpp): fixed partitions over (row, column block) items.
#include "ig/ig.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/errors.hpp"
#include "common/parallel.hpp"

namespace fastcore {
namespace ig {

namespace {

inline void interp_row(const float* x, const float* xb, double a, float* out, std::int64_t n) {
  FASTCORE_ISA_DISPATCH(interp_row_f32)(x, xb, a, out, n);
}
inline void interp_row(const double* x, const double* xb, double a, double* out, std::int64_t n) {
  FASTCORE_ISA_DISPATCH(interp_row_f64)(x, xb, a, out, n);
}
inline void interp_row_zero_base(const float* x, double a, float* out, std::int64_t n) {
  FASTCORE_ISA_DISPATCH(interp_row_zero_base_f32)(x, a, out, n);
}
inline void interp_row_zero_base(const double* x, double a, double* out, std::int64_t n) {
  FASTCORE_ISA_DISPATCH(interp_row_zero_base_f64)(x, a, out, n);
}
inline int accum_row(double* acc, const float* g, double w, std::int64_t n) {
  return FASTCORE_ISA_DISPATCH(accum_row_f32)(acc, g, w, n);
}
inline int accum_row(double* acc, const double* g, double w, std::int64_t n) {
  return FASTCORE_ISA_DISPATCH(accum_row_f64)(acc, g, w, n);
}

// True when the n values are all +0.0 (bit pattern zero).
template <class T>
bool all_positive_zero(const T* v, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j)
    if (!(v[j] == T(0)) || std::signbit(v[j])) return false;
  return true;
}

}  // namespace

template <class T>
void interpolate(const T* x, const T* xb, std::int64_t xb_row_stride, std::int64_t N, std::int64_t D,
                 const double* alphas, std::int64_t S, std::int64_t r0, std::int64_t m, T* out) {
  FASTCORE_CHECK(N > 0 && D >= 0 && S > 0 && r0 >= 0 && m >= 0 && r0 + m <= checked_mul(S, N),
                 "ig.interpolate: rows [", r0, ", ", r0 + m, ") outside the ", S, " x ", N, " path");
  if (m == 0 || D == 0) return;
  const std::int64_t nb = (D + kColumnBlock - 1) / kColumnBlock;
  const std::int64_t items = checked_mul(m, nb);
  const std::int64_t grain = grain_for(items, std::min(D, kColumnBlock) * 2 * static_cast<std::int64_t>(sizeof(T)));
  // The default baseline (one shared row of +0.0) takes the cheaper kernel, same bits (ig_kernels).
  const bool zero_base = xb_row_stride == 0 && all_positive_zero(xb, D);
  parallel_for(0, items, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t it = lo; it < hi; ++it) {
      const std::int64_t row = it / nb, c0 = (it % nb) * kColumnBlock;
      const std::int64_t r = r0 + row, k = r / N, i = r % N;
      const std::int64_t n = std::min(kColumnBlock, D - c0);
      const double a = alphas[k];
      if (zero_base && 1.0 - a >= 0.0 && 1.0 - a < std::numeric_limits<double>::infinity())
        interp_row_zero_base(x + i * D + c0, a, out + row * D + c0, n);
      else
        interp_row(x + i * D + c0, xb + i * xb_row_stride + c0, a, out + row * D + c0, n);
    }
  });
}

template <class T>
std::int64_t accumulate(double* acc, const T* g, std::int64_t N, std::int64_t D, const double* weights,
                        std::int64_t S, std::int64_t r0, std::int64_t m) {
  FASTCORE_CHECK(N > 0 && D >= 0 && S > 0 && r0 >= 0 && m >= 0 && r0 + m <= checked_mul(S, N),
                 "ig.accumulate: rows [", r0, ", ", r0 + m, ") outside the ", S, " x ", N, " path");
  if (m == 0 || D == 0) return -1;
  // Examples touched by the chunk: rows r0 .. r0+m-1 cover min(N, m) distinct i = r % N.
  const std::int64_t n_ex = std::min(N, m);
  const std::int64_t nb = (D + kColumnBlock - 1) / kColumnBlock;
  const std::int64_t items = checked_mul(n_ex, nb);
  std::vector<std::int64_t> first_bad(static_cast<std::size_t>(items), -1);
  const std::int64_t rows_per_ex = (m + N - 1) / N;
  const std::int64_t grain =
      grain_for(items, std::min(D, kColumnBlock) * rows_per_ex * 8 + 1);
  parallel_for(0, items, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t it = lo; it < hi; ++it) {
      // The j-th example touched is i = (r0 + j) % N; its rows are r0 + j, r0 + j + N, ...
      const std::int64_t j = it / nb, c0 = (it % nb) * kColumnBlock;
      const std::int64_t n = std::min(kColumnBlock, D - c0);
      const std::int64_t i = (r0 + j) % N;
      double* a = acc + i * D + c0;
      for (std::int64_t row = j; row < m; row += N) {  // ascending row = ascending step
        const std::int64_t k = (r0 + row) / N;
        const T* gr = g + row * D + c0;
        if (accum_row(a, gr, weights[k], n)) {
          std::int64_t col = 0;
          while (col < n && gr[col] - gr[col] == T(0)) ++col;
          first_bad[static_cast<std::size_t>(it)] = row * D + c0 + col;
          break;  // the caller raises: the rest of this item does not matter
        }
      }
    }
  });
  std::int64_t best = -1;
  for (std::int64_t v : first_bad)
    if (v >= 0 && (best < 0 || v < best)) best = v;
  return best;
}

template void interpolate<float>(const float*, const float*, std::int64_t, std::int64_t, std::int64_t,
                                 const double*, std::int64_t, std::int64_t, std::int64_t, float*);
template void interpolate<double>(const double*, const double*, std::int64_t, std::int64_t, std::int64_t,
                                  const double*, std::int64_t, std::int64_t, std::int64_t, double*);
template std::int64_t accumulate<float>(double*, const float*, std::int64_t, std::int64_t, const double*,
                                        std::int64_t, std::int64_t, std::int64_t);
template std::int64_t accumulate<double>(double*, const double*, std::int64_t, std::int64_t, const double*,
                                         std::int64_t, std::int64_t, std::int64_t);

}  // namespace ig
}  // namespace fastcore
