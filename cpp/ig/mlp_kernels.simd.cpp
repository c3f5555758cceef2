// The fused model kernel (mlp.hpp), compiled once per ISA. Bitwise identical on every ISA:
// matrix products are fma chains per output element in ascending k (vmath::fma is correctly
// rounded in every build), exp is vmath's, the rest are single IEEE operations.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#if FASTCORE_ISA_LEVEL >= 1
#include <immintrin.h>
#endif

#include "common/parallel.hpp"
#include "common/vmath.hpp"
#include "ig/mlp.hpp"

namespace fastcore {
namespace ig {
namespace FASTCORE_ISA_NS {

namespace {

// ---------------------------------------------------------------- matrix product
// C (M x Nc, ldc) = bias + A (M x K, lda) · B (K x Nc, ldb); bias null means 0. Register tiles of
// MR x NR outputs (NR = 2 vectors of this ISA); each output element is bias (or 0) followed by
// fma(a_ik, b_kj, .) for k = 0..K-1, one correctly rounded fma per step in every build (explicit
// intrinsics here, vmath::fma in the scalar build), so tiles, ISAs and threads give the same bits.
template <class T>
struct Vec;

#if FASTCORE_ISA_LEVEL >= 2
template <>
struct Vec<float> {
  using V = __m512;
  static constexpr int lanes = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
template <>
struct Vec<double> {
  using V = __m512d;
  static constexpr int lanes = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double a) { return _mm512_set1_pd(a); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};
#elif FASTCORE_ISA_LEVEL == 1
template <>
struct Vec<float> {
  using V = __m256;
  static constexpr int lanes = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct Vec<double> {
  using V = __m256d;
  static constexpr int lanes = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double a) { return _mm256_set1_pd(a); }
  static V zero() { return _mm256_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
};
#else
template <class T>
struct Vec {
  using V = T;
  static constexpr int lanes = 1;
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V set1(T a) { return a; }
  static V zero() { return T(0); }
  static V fma(V a, V b, V c) { return vmath::fma(a, b, c); }
};
#endif

template <class T>
struct Tiles {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * Vec<T>::lanes;
};

template <class T, int MR>
inline void micro_full(std::int64_t K, const T* __restrict A, std::int64_t lda, const T* __restrict B,
                       std::int64_t ldb, T* __restrict C, std::int64_t ldc, const T* bias, bool from_c) {
  using Vt = Vec<T>;
  using V = typename Vt::V;
  constexpr int L = Vt::lanes;
  V c0[MR], c1[MR];
  if (from_c) {  // continue the chains of an earlier K block
    for (int r = 0; r < MR; ++r) {
      c0[r] = Vt::load(C + r * ldc);
      c1[r] = Vt::load(C + r * ldc + L);
    }
  } else {
    const V i0 = bias ? Vt::load(bias) : Vt::zero();
    const V i1 = bias ? Vt::load(bias + L) : Vt::zero();
    for (int r = 0; r < MR; ++r) {
      c0[r] = i0;
      c1[r] = i1;
    }
  }
  const T* a[MR];
  for (int r = 0; r < MR; ++r) a[r] = A + r * lda;
  for (std::int64_t k = 0; k < K; ++k) {
    const V b0 = Vt::load(B + k * ldb), b1 = Vt::load(B + k * ldb + L);
    for (int r = 0; r < MR; ++r) {
      const V av = Vt::set1(a[r][k]);
      c0[r] = Vt::fma(av, b0, c0[r]);
      c1[r] = Vt::fma(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    Vt::store(C + r * ldc, c0[r]);
    Vt::store(C + r * ldc + L, c1[r]);
  }
}

template <class T>
inline void micro_rows(int mr, std::int64_t K, const T* a, std::int64_t lda, const T* B, std::int64_t ldb, T* c,
                       std::int64_t ldc, const T* bias, bool from_c) {
  switch (mr) {
    case 6: micro_full<T, 6>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
    case 5: micro_full<T, 5>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
    case 4: micro_full<T, 4>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
    case 3: micro_full<T, 3>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
    case 2: micro_full<T, 2>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
    default: micro_full<T, 1>(K, a, lda, B, ldb, c, ldc, bias, from_c); break;
  }
}

// K is cut into blocks of kKBlock (the A block stays in L2); a later block resumes each element's
// chain from C, so the operation sequence per element is unchanged. For each NR-column panel the
// kc x NR slice of B is first copied into a contiguous buffer: B's rows are ldb apart (1 KiB for a
// 256-wide layer, 12 KiB for the attribution product), and a column slice at such a power-of-two
// stride maps to a handful of L1 sets, so unpacked the micro-kernel reloads B from L2 on every k
// (measured with the head's 72 x 256 x 256 products: 81 -> 90 GFLOP/s on one AVX2 core). A narrow
// last panel is zero-padded to NR columns; its padded lanes compute 0 · a products that are
// discarded (the kept lanes run the same fma chain as everywhere else).
constexpr std::int64_t kKBlock = 384;

template <class T>
void gemm(std::int64_t M, std::int64_t Nc, std::int64_t K, const T* A, std::int64_t lda, const T* B,
          std::int64_t ldb, T* C, std::int64_t ldc, const T* bias) {
  constexpr int MR = Tiles<T>::MR, NR = Tiles<T>::NR;
  alignas(64) T panel[kKBlock * NR];  // 24 KiB (AVX2 float) to 48 KiB (AVX-512 double)
  alignas(64) T tile[MR * NR];
  alignas(64) T pbias[NR];
  for (std::int64_t k0 = 0; k0 < K || k0 == 0; k0 += kKBlock) {
    const std::int64_t kc = std::min(kKBlock, K - k0);
    const bool from_c = k0 > 0;
    const T* Ak = A + k0;
    const T* Bk = B + k0 * ldb;
    for (std::int64_t j0 = 0; j0 < Nc; j0 += NR) {
      const int nr = static_cast<int>(std::min<std::int64_t>(NR, Nc - j0));
      if (nr == NR) {
        for (std::int64_t k = 0; k < kc; ++k) {  // constant width: a few vector moves per k
          const T* src = Bk + k * ldb + j0;
          for (int j = 0; j < NR; ++j) panel[k * NR + j] = src[j];
        }
      } else {
        for (std::int64_t k = 0; k < kc; ++k)
          for (int j = 0; j < NR; ++j) panel[k * NR + j] = j < nr ? Bk[k * ldb + j0 + j] : T(0);
      }
      if (nr == NR) {
        const T* bj = bias ? bias + j0 : nullptr;
        for (std::int64_t i0 = 0; i0 < M; i0 += MR) {
          const int mr = static_cast<int>(std::min<std::int64_t>(MR, M - i0));
          micro_rows<T>(mr, kc, Ak + i0 * lda, lda, panel, NR, C + i0 * ldc + j0, ldc, bj, from_c);
        }
        continue;
      }
      if (bias) {
        for (int j = 0; j < NR; ++j) pbias[j] = j < nr ? bias[j0 + j] : T(0);
      }
      for (std::int64_t i0 = 0; i0 < M; i0 += MR) {
        const int mr = static_cast<int>(std::min<std::int64_t>(MR, M - i0));
        for (int r = 0; r < mr && from_c; ++r)
          for (int j = 0; j < nr; ++j) tile[r * NR + j] = C[(i0 + r) * ldc + j0 + j];
        micro_rows<T>(mr, kc, Ak + i0 * lda, lda, panel, NR, tile, NR, bias ? pbias : nullptr, from_c);
        for (int r = 0; r < mr; ++r)
          for (int j = 0; j < nr; ++j) C[(i0 + r) * ldc + j0 + j] = tile[r * NR + j];
      }
    }
    if (K == 0) break;
  }
}

// ---------------------------------------------------------------- activations
inline float vexp(float v) { return vmath::exp_f32(v); }
inline double vexp(double v) { return vmath::exp_f64(v); }

// tanh: odd Taylor series below |z| = 1/8, else sign(z) (1 − e) / (1 + e) with e = exp(−2|z|)
// (no overflow, exact saturation). double: terms to z^15 (truncation < 1e-18 relative).
inline double tanh_of(double z) {
  const double a = z < 0.0 ? -z : z;
  const double e = vexp(-2.0 * a);
  const double big = (1.0 - e) / (1.0 + e);
  const double z2 = z * z;
  double p = -929569.0 / 638512875.0;
  p = p * z2 + 21844.0 / 6081075.0;
  p = p * z2 + -1382.0 / 155925.0;
  p = p * z2 + 62.0 / 2835.0;
  p = p * z2 + -17.0 / 315.0;
  p = p * z2 + 2.0 / 15.0;
  p = p * z2 + -1.0 / 3.0;
  const double small = z + z * (z2 * p);
  const double t = z < 0.0 ? -big : big;
  return a < 0.125 ? small : t;
}

// float: terms to z^7 suffice below 1/8 (the z^9 term is < 1.3e-9 relative, 2 % of an ulp), and
// e comes from the non-positive exp (no overflow clamp; a NaN gives e = 0 and is restored at the
// end), so about half the instructions of the double form — the head's activations are about a
// tenth of the fused path's time.
inline float tanh_of(float z) {
  const float a = z < 0.0f ? -z : z;
  const float e = vmath::exp_f32_nonpositive(-2.0f * a);
  const float big = (1.0f - e) / (1.0f + e);
  const float z2 = z * z;
  float p = -17.0f / 315.0f;
  p = p * z2 + 2.0f / 15.0f;
  p = p * z2 + -1.0f / 3.0f;
  const float small = z + z * (z2 * p);
  const float t = z < 0.0f ? -big : big;
  const float r = a < 0.125f ? small : t;
  return z == z ? r : z;
}

// erfc for GELU's Φ(z) = erfc(−z/√2)/2. double: the C library's (correctly rounded to ~1 ulp).
// float: erfc(a) = exp(−a²)·t·Q(t), t = 1/(1 + a/2), Q a degree-8 polynomial fitted to
// erfcx(a)/t on [0, 12] by tools/fit_erfcx.py (relative error 4.4e-8; 3.2e-7 evaluated in float32),
// with exp(−a²) = exp(−z²/2) from exp_minus_half_square on z itself, so the tail keeps its
// relative accuracy: Abramowitz & Stegun 7.1.26 (absolute error 1.5e-7) was 5e-5 off at a = 2.1
// and 1 % at a = 5.7 (gelu(−3), gelu(−8)); the exponent from a = |z|/√2 rounded to float carried
// that rounding (relative ~2a²·2^-24 of erfc: 4e-6 at z = −9), while a enters t·Q(t) only
// weakly. Branch-free, so the loop vectorises; erfc(−a) = 2 − erfc(a).
inline double erfc_of(double v) { return std::erfc(v); }
// exp(−x²/2) for x >= 0 with x² = hi + lo exact (Dekker's split: 12-bit halves multiply exactly;
// the build never contracts to FMA) and the halving exact: exp(−hi/2)·(1 − lo/2).
inline float exp_minus_half_square(float x) {
  const float hi = x * x;
  const float split = x * 4097.0f;  // 2^12 + 1 (finite: callers clamp x)
  const float x_hi = split - (split - x), x_lo = x - x_hi;
  const float lo = ((x_hi * x_hi - hi) + 2.0f * x_hi * x_lo) + x_lo * x_lo;
  return vmath::exp_f32(-0.5f * hi) * (1.0f - 0.5f * lo);
}
// |z| clamped to 16, where exp(−z²/2) is 0 in float (a NaN stays NaN): the split's x·4097
// overflowed for |z| > ~8e34, and inf − inf made gelu(±1e36) NaN.
inline float clamped_abs(float z) {
  const float x = z < 0.0f ? -z : z;
  return x > 16.0f ? 16.0f : x;
}
// erfc(a) = exp(−a²)·t·Q(t) for a >= 0, given e = exp(−a²) (see above).
inline float erfc_abs_from(float a, float e) {
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = -5.936396489e-02f;
  q = q * t + 2.860142991e-01f;
  q = q * t - 4.901795929e-01f;
  q = q * t + 2.814743758e-01f;
  q = q * t - 2.897075344e-02f;
  q = q * t + 2.036776828e-01f;
  q = q * t + 2.428538880e-01f;
  q = q * t + 2.824095470e-01f;
  q = q * t + 2.820844745e-01f;
  return t * q * e;
}
// GELU's Φ(z) = erfc(−z/√2)/2.
inline double normal_cdf(double z) { return 0.5 * erfc_of(-z * 0.70710678118654752440); }
inline float normal_cdf(float z) {
  const float x = clamped_abs(z);
  const float c = erfc_abs_from(x * 0.70710678118654752440f, exp_minus_half_square(x));  // erfc(|z|/√2)
  return 0.5f * (z > 0.0f ? 2.0f - c : c);
}

// GELU's Φ(v) and φ(v) for the backward. double: the C library's erfc and vmath's exp. float:
// both from one exponential, exp(−v²/2) (one exp per entry, not two).
struct NormalCdfPdf {
  double cdf, pdf;
};
inline NormalCdfPdf normal_cdf_pdf(double v) {
  return {normal_cdf(v), vexp(-0.5 * v * v) * 0.39894228040143267794};
}
struct NormalCdfPdfF {
  float cdf, pdf;
};
inline NormalCdfPdfF normal_cdf_pdf(float v) {
  const float x = clamped_abs(v);
  const float e = exp_minus_half_square(x);
  const float c = erfc_abs_from(x * 0.70710678118654752440f, e);  // erfc(|v|/√2)
  return {0.5f * (v > 0.0f ? 2.0f - c : c), e * 0.39894228040143267794f};
}

// GELU-tanh's 1 + tanh(u) and 1 - tanh(u)^2 without cancellation (1 + tanh(u) for u << 0 is a
// difference of nearly equal numbers: in float32 tanh(-8.45) rounds to -1 + 6e-8 for a true
// -1 + 9.2e-8, so gelu_tanh(-5) was 35 % off). With e = exp(-2|u|): 1 + tanh u = 2/(1 + e) for
// u >= 0 and 2e/(1 + e) for u < 0; 1 - tanh^2 u = 4e/(1 + e)^2. A NaN u gives a NaN (double) or
// e = 0 (float's non-positive exp); gelu_tanh multiplies by z, which restores the NaN.
inline double exp_minus_twice_abs(double u) { return vexp(-2.0 * (u < 0.0 ? -u : u)); }
inline float exp_minus_twice_abs(float u) { return vmath::exp_f32_nonpositive(-2.0f * (u < 0.0f ? -u : u)); }
template <class T>
struct TanhTerms {
  T one_plus, one_minus_sq;  // 1 + tanh u, 1 - tanh^2 u
};
template <class T>
inline TanhTerms<T> tanh_terms(T u) {
  const T e = exp_minus_twice_abs(u);
  const T inv = T(1) / (T(1) + e);
  const T one_plus = T(2) * (u < T(0) ? e : T(1)) * inv;
  return {one_plus, T(4) * e * inv * inv};
}

template <class T>
inline void act_forward(Act act, const T* z, T* h, std::int64_t n) {
  switch (act) {
    case Act::relu:
      for (std::int64_t j = 0; j < n; ++j) h[j] = z[j] > T(0) ? z[j] : T(0);
      break;
    case Act::tanh:
      for (std::int64_t j = 0; j < n; ++j) h[j] = tanh_of(z[j]);
      break;
    case Act::gelu:  // z Φ(z), Φ(z) = erfc(−z/√2)/2
      for (std::int64_t j = 0; j < n; ++j) h[j] = z[j] * normal_cdf(z[j]);
      break;
    case Act::gelu_tanh:  // ½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))
      for (std::int64_t j = 0; j < n; ++j) {
        const T v = z[j];
        const T u = T(0.79788456080286535588) * (v + T(0.044715) * v * v * v);
        h[j] = T(0.5) * v * tanh_terms(u).one_plus;
      }
      break;
  }
}

// d[j] *= act'(z[j])  (ReLU'(0) = 0 as in PyTorch)
template <class T>
inline void act_backward(Act act, const T* z, const T* hval, T* d, std::int64_t n) {
  switch (act) {
    case Act::relu:
      for (std::int64_t j = 0; j < n; ++j) d[j] = z[j] > T(0) ? d[j] : T(0);
      break;
    case Act::tanh:
      for (std::int64_t j = 0; j < n; ++j) d[j] = d[j] * (T(1) - hval[j] * hval[j]);  // tanh' = 1 − h²
      break;
    case Act::gelu:  // Φ(z) + z φ(z)
      for (std::int64_t j = 0; j < n; ++j) {
        const T v = z[j];
        const auto n = normal_cdf_pdf(v);
        d[j] = d[j] * (static_cast<T>(n.cdf) + v * static_cast<T>(n.pdf));
      }
      break;
    case Act::gelu_tanh:
      for (std::int64_t j = 0; j < n; ++j) {
        const T v = z[j];
        const T c = T(0.79788456080286535588);
        const TanhTerms<T> t = tanh_terms(c * (v + T(0.044715) * v * v * v));
        const T du = c * (T(1) + T(3 * 0.044715) * v * v);
        // where |u| overflowed (|z| past ~7e12 in float32), 1 - tanh^2 u = 0 and du = inf: the
        // slope term is 0, not NaN
        const T slope = t.one_minus_sq > T(0) ? v * t.one_minus_sq * du : T(0);
        d[j] = d[j] * (T(0.5) * t.one_plus + T(0.5) * slope);
      }
      break;
  }
}

// F of one row of logits and, when dz is non-null, dF/dlogits (softmax: p_c (e_c − p);
// log-softmax: e_c − p). Stable: shifts by the maximum.
template <class T>
inline T output_row(Output out, const T* z, std::int64_t C, std::int64_t c, T* dz) {
  if (out == Output::logit) {
    if (dz) {
      for (std::int64_t j = 0; j < C; ++j) dz[j] = T(0);
      dz[c] = T(1);
    }
    return z[c];
  }
  T m = z[0];
  for (std::int64_t j = 1; j < C; ++j) m = z[j] > m ? z[j] : m;
  T s = T(0);
  for (std::int64_t j = 0; j < C; ++j) s += vexp(z[j] - m);
  const T inv = T(1) / s;
  const T pc = vexp(z[c] - m) * inv;
  const T F = out == Output::softmax ? pc : (z[c] - m) - std::log(s);
  if (dz) {
    // dF/dz = scale (e_c - p); its c entry 1 - p_c is formed as the sum of the other p_j: for a
    // confident prediction (p_c near 1) 1 - p_c cancels (float32 p_c = 1 - 1e-6: 6 % off)
    const T scale = out == Output::softmax ? pc : T(1);
    T others = T(0);
    for (std::int64_t j = 0; j < C; ++j) {
      const T pj = vexp(z[j] - m) * inv;
      dz[j] = -scale * pj;
      others += j == c ? T(0) : pj;
    }
    dz[c] = scale * others;
  }
  return F;
}

// ---------------------------------------------------------------- the driver
template <class T>
void run(const MlpArgs& a) {
  const int L = a.n_layers;
  const std::int64_t D = a.dims[0], H1 = a.dims[1], C = a.dims[L], N = a.N, S = a.S;
  const T* x = static_cast<const T*>(a.x);
  const T* xb = static_cast<const T*>(a.xb);
  const T* W0 = static_cast<const T*>(a.W[0]);
  const T* W0T = static_cast<const T*>(a.WT[0]);
  const T* b0 = static_cast<const T*>(a.b[0]);
  std::int64_t maxw = 0;
  for (int l = 0; l <= L; ++l) maxw = std::max(maxw, a.dims[l] > 0 ? a.dims[l] : 1);
  // A baseline row shared by every example: its first-layer product is computed once.
  // Phase 1: first-layer products for all examples, a1 = W1 x + b1 and a1' = W1 x' + b1 (a shared
  // baseline row once), parallel over column panels of H1 so W1 is streamed once, not per block.
  std::vector<T> A1all(static_cast<std::size_t>(N * H1)), A1ball;
  const std::int64_t b_rows = !xb ? 0 : (a.xb_row_stride == 0 ? 1 : N);
  if (b_rows) A1ball.resize(static_cast<std::size_t>(b_rows * H1));
  {
    const std::int64_t panel = kColumnPanel;
    parallel_for(0, (H1 + panel - 1) / panel, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t p = lo; p < hi; ++p) {
        const std::int64_t j0 = p * panel, nc = std::min(panel, H1 - j0);
        gemm<T>(N, nc, D, x, D, W0T + j0, H1, A1all.data() + j0, H1, b0 + j0);
        if (b_rows) gemm<T>(b_rows, nc, D, xb, D, W0T + j0, H1, A1ball.data() + j0, H1, b0 + j0);
      }
    });
  }
  // Phase 2: the head on the path rows, per block of examples; δ̄1 into dbar_all (N x H1, double).
  std::vector<double> dbar_all(static_cast<std::size_t>(N * H1), 0.0);
  const std::int64_t blocks = (N + kExampleBlock - 1) / kExampleBlock;
  parallel_for_chunks(blocks, [&](std::int64_t blk) {
    const std::int64_t e0 = blk * kExampleBlock, ne = std::min(kExampleBlock, N - e0);
    const T* A1p = A1all.data() + e0 * H1;
    const T* a1b = A1p;  // no baseline: a1' = a1
    std::int64_t a1b_stride = H1;
    if (b_rows == N) {
      a1b = A1ball.data() + e0 * H1;
    } else if (b_rows == 1) {
      a1b = A1ball.data();
      a1b_stride = 0;
    }
    // Workspace for one tile, one uninitialised allocation (every element is written before it is
    // read; value-initialised vectors cost a memset of ~0.4 MB per block): pre-activations of every
    // layer (kept for the backward pass), the activations of each hidden layer and two gradient
    // buffers.
    std::int64_t work_len = 2 * kTileRows * maxw;
    for (int l = 0; l < L; ++l) work_len += kTileRows * a.dims[l + 1] + (l > 0 ? kTileRows * a.dims[l] : 0);
    const std::unique_ptr<T[]> work(new T[static_cast<std::size_t>(work_len)]);
    T* Zl[kMaxLayers] = {};
    T* Hl[kMaxLayers] = {};
    T* next_free = work.get();
    for (int l = 0; l < L; ++l) {
      Zl[l] = next_free;
      next_free += kTileRows * a.dims[l + 1];
      if (l > 0) {
        Hl[l] = next_free;
        next_free += kTileRows * a.dims[l];
      }
    }
    T* const G1 = next_free;
    T* const G2 = G1 + kTileRows * maxw;
    double* dbar = dbar_all.data() + e0 * H1;
    std::int64_t row_e[kTileRows];
    std::int64_t row_c[kTileRows];

    // Forward through the head for `rows` rows whose first-layer pre-activations are in Zl[0];
    // leaves the logits in Zl[L-1].
    auto forward = [&](std::int64_t rows) {
      for (int l = 1; l < L; ++l) {
        const std::int64_t din = a.dims[l], dout = a.dims[l + 1];
        T* H = Hl[l];
        act_forward<T>(a.act, Zl[l - 1], H, rows * din);
        gemm<T>(rows, dout, din, H, din, static_cast<const T*>(a.WT[l]), dout,
                Zl[l], dout, static_cast<const T*>(a.b[l]));
      }
    };
    auto target_of = [&](std::int64_t e) -> std::int64_t { return a.target ? a.target[e0 + e] : 0; };

    // 1. Path rows q = s*ne + e (step-major inside the block), in tiles of kTileRows.
    const std::int64_t total = S * ne;
    for (std::int64_t q0 = 0; q0 < total; q0 += kTileRows) {
      const std::int64_t rows = std::min(kTileRows, total - q0);
      T* z1 = Zl[0];
      for (std::int64_t t = 0; t < rows; ++t) {
        const std::int64_t s = (q0 + t) / ne, e = (q0 + t) % ne;
        const double al = a.alphas[s], be = 1.0 - al;
        const T* p = A1p + e * H1;
        const T* pb = a1b + e * a1b_stride;
        for (std::int64_t h = 0; h < H1; ++h)  // (1 − α) a1' + α a1, rounded once
          z1[t * H1 + h] = static_cast<T>(be * static_cast<double>(pb[h]) + al * static_cast<double>(p[h]));
        row_e[t] = e;
        row_c[t] = target_of(e);
      }
      forward(rows);
      // dF/dlogits into G1 (rows x C), then back to the first layer's pre-activations.
      const T* logits = Zl[L - 1];
      for (std::int64_t t = 0; t < rows; ++t) output_row<T>(a.output, logits + t * C, C, row_c[t], G1 + t * C);
      T* cur = G1;
      T* nxt = G2;
      for (int l = L - 1; l >= 1; --l) {
        const std::int64_t din = a.dims[l], dout = a.dims[l + 1];
        // δ_l = (δ_{l+1} W_{l+1}) ⊙ act'(a_l): B = W (dout x din) row-major
        gemm<T>(rows, din, dout, cur, dout, static_cast<const T*>(a.W[l]), din, nxt, din, nullptr);
        act_backward<T>(a.act, Zl[l - 1], Hl[l], nxt,
                        rows * din);
        std::swap(cur, nxt);
      }
      // δ̄1[e] += w_s δ1 in double; rows are in ascending step order for each example.
      for (std::int64_t t = 0; t < rows; ++t) {
        const double w = a.weights[(q0 + t) / ne];
        double* db = dbar + row_e[t] * H1;
        const T* d1 = cur + t * H1;
        for (std::int64_t h = 0; h < H1; ++h) db[h] += w * static_cast<double>(d1[h]);
      }
    }

    // 2. F at the ends (α = 0: baseline, α = 1: input), forward only.
    if (a.f_ends) {
      for (int end = 0; end < 2; ++end) {
        for (std::int64_t e_start = 0; e_start < ne; e_start += kTileRows) {
          const std::int64_t rows = std::min(kTileRows, ne - e_start);
          for (std::int64_t t = 0; t < rows; ++t) {
            const T* src = end ? A1p + (e_start + t) * H1 : a1b + (e_start + t) * a1b_stride;
            std::copy(src, src + H1, Zl[0] + t * H1);
          }
          forward(rows);
          const T* logits = Zl[L - 1];
          for (std::int64_t t = 0; t < rows; ++t) {
            const std::int64_t e = e_start + t;
            a.f_ends[(e0 + e) * 2 + end] =
                static_cast<double>(output_row<T>(a.output, logits + t * C, C, target_of(e), nullptr));
          }
        }
      }
    }

  });

  // Phase 3: attributions (δ̄1 W1) ⊙ (x − x'): one (N x H1)·(H1 x D) product, parallel over
  // column panels of D, then the element-wise factor in double, rounded once.
  T* out = static_cast<T*>(a.attr);
  if (!out) return;
  if (S == 0) {
    std::fill(out, out + N * D, T(0));
    return;
  }
  std::vector<T> dbT(static_cast<std::size_t>(N * H1));
  for (std::size_t j = 0; j < dbT.size(); ++j) dbT[j] = static_cast<T>(dbar_all[j]);
  const std::int64_t panel = kColumnPanel;
  parallel_for(0, (D + panel - 1) / panel, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t p = lo; p < hi; ++p) {
      const std::int64_t j0 = p * panel, nc = std::min(panel, D - j0);
      gemm<T>(N, nc, H1, dbT.data(), H1, W0 + j0, D, out + j0, D, nullptr);
      if (!a.multiply) continue;
      for (std::int64_t e = 0; e < N; ++e) {
        const T* xr = x + e * D + j0;
        const T* br = xb ? xb + (a.xb_row_stride ? e * D : 0) + j0 : xr;
        T* o = out + e * D + j0;
        for (std::int64_t j = 0; j < nc; ++j)
          o[j] = static_cast<T>(static_cast<double>(o[j]) * (static_cast<double>(xr[j]) - static_cast<double>(br[j])));
      }
    }
  });
}

}  // namespace

void mlp_ig_f32(const MlpArgs& a) { run<float>(a); }
void mlp_ig_f64(const MlpArgs& a) { run<double>(a); }

}  // namespace FASTCORE_ISA_NS
}  // namespace ig
}  // namespace fastcore
