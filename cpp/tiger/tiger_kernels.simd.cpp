// Tiger inner loops, compiled once per ISA (cmake/FastcoreIsa.cmake). Every loop is element-wise
// (or, for the sum of squares, a fixed 8-lane order), written so the compiler vectorises it
// without reassociating anything: the scalar, AVX2 and AVX-512 builds give the same bits.
#include "tiger/tiger.hpp"

namespace fastcore {
namespace tiger {
namespace FASTCORE_ISA_NS {

namespace {

// sign(x): +1 / -1 for positive / negative, x itself for +-0 and NaN (TF/NumPy: sign(0) = 0).
template <class T>
inline T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}

// Sum of squares in double in 8 fixed lanes (element i goes to lane i % 8), lanes combined as a
// balanced tree. A float's square is exact in double, so only the additions round.
template <class T>
double sumsq(const T* p, std::int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      const double v = static_cast<double>(p[i + j]);
      acc[j] += v * v;
    }
  }
  for (int j = 0; i + j < n; ++j) {
    const double v = static_cast<double>(p[i + j]);
    acc[j] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// 1 when g holds a NaN (nan_only) or a NaN/+-Inf. x - x is 0 for finite x and NaN otherwise.
template <class T>
int nonfinite(const T* g, std::int64_t n, int nan_only) {
  unsigned bad = 0;
  if (nan_only) {
    for (std::int64_t i = 0; i < n; ++i) bad |= static_cast<unsigned>(g[i] != g[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) bad |= static_cast<unsigned>(!(g[i] - g[i] == T(0)));
  }
  return bad != 0;
}

// Accumulation micro-step: only m moves (theta is neither read nor written).
template <class T>
void momentum(T* __restrict m, const T* __restrict g, std::int64_t n, T b1, T b2) {
  for (std::int64_t i = 0; i < n; ++i) m[i] = b1 * m[i] + b2 * g[i];
}

// Last micro-step of a cycle: m' = b1*m + b2*g; theta' = theta - eta*(sign(m') + wd*theta).
template <class T>
void update(T* __restrict p, T* __restrict m, const T* __restrict g, std::int64_t n, T b1, T b2, T eta,
            T wd) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T mn = b1 * m[i] + b2 * g[i];
    m[i] = mn;
    const T pv = p[i];
    p[i] = pv - eta * (sign_of(mn) + wd * pv);
  }
}

// Lion (Chen et al. 2023, Alg. 2): direction from c = b1*m + b2*g, then m' = c1*m + c2*g.
template <class T>
void update_lion(T* __restrict p, T* __restrict m, const T* __restrict g, std::int64_t n, T b1, T b2,
                 T c1, T c2, T eta, T wd) {
  for (std::int64_t i = 0; i < n; ++i) {
    const T mv = m[i], gv = g[i];
    const T c = b1 * mv + b2 * gv;
    m[i] = c1 * mv + c2 * gv;
    const T pv = p[i];
    p[i] = pv - eta * (sign_of(c) + wd * pv);
  }
}

template <class T>
void shrink(T* __restrict p, std::int64_t n, T s, T c) {
  for (std::int64_t i = 0; i < n; ++i) p[i] = (p[i] - c) * s + c;
}

template <class T>
void scale(T* __restrict m, std::int64_t n, T b) {
  for (std::int64_t i = 0; i < n; ++i) m[i] = b * m[i];
}

}  // namespace

double sumsq_f32(const float* p, std::int64_t n) { return sumsq(p, n); }
double sumsq_f64(const double* p, std::int64_t n) { return sumsq(p, n); }
int nonfinite_f32(const float* g, std::int64_t n, int nan_only) { return nonfinite(g, n, nan_only); }
int nonfinite_f64(const double* g, std::int64_t n, int nan_only) { return nonfinite(g, n, nan_only); }
void momentum_f32(float* m, const float* g, std::int64_t n, float b1, float b2) { momentum(m, g, n, b1, b2); }
void momentum_f64(double* m, const double* g, std::int64_t n, double b1, double b2) { momentum(m, g, n, b1, b2); }
void update_f32(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float eta, float wd) {
  update(p, m, g, n, b1, b2, eta, wd);
}
void update_f64(double* p, double* m, const double* g, std::int64_t n, double b1, double b2, double eta,
                double wd) {
  update(p, m, g, n, b1, b2, eta, wd);
}
void update_lion_f32(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float c1, float c2,
                     float eta, float wd) {
  update_lion(p, m, g, n, b1, b2, c1, c2, eta, wd);
}
void update_lion_f64(double* p, double* m, const double* g, std::int64_t n, double b1, double b2, double c1,
                     double c2, double eta, double wd) {
  update_lion(p, m, g, n, b1, b2, c1, c2, eta, wd);
}
void shrink_f32(float* p, std::int64_t n, float s, float c) { shrink(p, n, s, c); }
void shrink_f64(double* p, std::int64_t n, double s, double c) { shrink(p, n, s, c); }
void scale_f32(float* m, std::int64_t n, float b) { scale(m, n, b); }
void scale_f64(double* m, std::int64_t n, double b) { scale(m, n, b); }

}  // namespace FASTCORE_ISA_NS
}  // namespace tiger
}  // namespace fastcore
