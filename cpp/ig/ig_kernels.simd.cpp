// Element-wise IG loops, compiled once per ISA. Every element is computed by the same sequence of
// IEEE operations (no reassociation, no contraction: -ffp-contract=off), so all ISAs agree bitwise.
#include "ig/ig.hpp"

namespace fastcore {
namespace ig {
namespace FASTCORE_ISA_NS {

namespace {

template <class T>
inline void interp_row(const T* __restrict x, const T* __restrict xb, double a, T* __restrict out,
                       std::int64_t n) {
  const double b = 1.0 - a;  // (1 - a) * x' + a * x: exact at both ends (notes §7a)
  for (std::int64_t j = 0; j < n; ++j)
    out[j] = static_cast<T>(b * static_cast<double>(xb[j]) + a * static_cast<double>(x[j]));
}

// With a baseline of +0.0 everywhere (the default baselines=None) and 0 <= 1 - a < inf the sum is
// (+0) + a * x: the product b * (+0) is +0, and adding +0 changes nothing but the sign of a zero
// (-0 -> +0). Same bits as interp_row, with half the conversions and no second product.
template <class T>
inline void interp_row_zero_base(const T* __restrict x, double a, T* __restrict out, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) out[j] = static_cast<T>(a * static_cast<double>(x[j]) + 0.0);
}

// acc += w * g in double; returns 1 when g holds a NaN or +-Inf (g - g is 0 only for finite g).
template <class T>
inline int accum_row(double* __restrict acc, const T* __restrict g, double w, std::int64_t n) {
  unsigned bad = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const T v = g[j];
    bad |= static_cast<unsigned>(!(v - v == T(0)));
    acc[j] += w * static_cast<double>(v);
  }
  return bad != 0;
}

}  // namespace

void interp_row_f32(const float* x, const float* xb, double a, float* out, std::int64_t n) {
  interp_row(x, xb, a, out, n);
}
void interp_row_f64(const double* x, const double* xb, double a, double* out, std::int64_t n) {
  interp_row(x, xb, a, out, n);
}
void interp_row_zero_base_f32(const float* x, double a, float* out, std::int64_t n) {
  interp_row_zero_base(x, a, out, n);
}
void interp_row_zero_base_f64(const double* x, double a, double* out, std::int64_t n) {
  interp_row_zero_base(x, a, out, n);
}
int accum_row_f32(double* acc, const float* g, double w, std::int64_t n) { return accum_row(acc, g, w, n); }
int accum_row_f64(double* acc, const double* g, double w, std::int64_t n) { return accum_row(acc, g, w, n); }

}  // namespace FASTCORE_ISA_NS
}  // namespace ig
}  // namespace fastcore
