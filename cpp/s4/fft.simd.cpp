// In-house FFTs (see fft.hpp for the algorithms and conventions).
// GCC 12 fuses complex a*b -/+ c*d patterns into vfmaddsub even under -ffp-contract=off,
// which would make the AVX2/AVX-512 builds round differently from the scalar one: no FMA
// instructions in these files (vectorisation otherwise unchanged).
// The AVX-512 build forwards to the AVX2 one (s4_kernels.simd.cpp): with AVX-512 enabled GCC
// emits EVEX FMAs regardless, so this file is empty there.
#if FASTCORE_ISA_LEVEL != 2
#if defined(__FMA__)
#pragma GCC target("no-fma")
#endif
#include "s4/fft.hpp"

#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/errors.hpp"

namespace fastcore {
namespace s4 {
namespace FASTCORE_ISA_NS {

namespace {

constexpr double kPi = 3.14159265358979323846264338327950288;

// e^{-2 pi i num/den} in double, with the angle reduced to the first octant by symmetry so that
// the values are correctly rounded to within an ulp or so for every den.
inline void unit_root(std::int64_t num, std::int64_t den, double& re, double& im) {
  num %= den;
  if (num < 0) num += den;
  // angle = 2 pi num/den in [0, 2 pi); use 8*num against den to pick the octant exactly
  const double a = 2.0 * kPi * static_cast<double>(num) / static_cast<double>(den);
  // symmetric reduction: compute with the smaller of a and 2 pi - a (cos even, sin odd)
  if (2 * num > den) {
    const double b = 2.0 * kPi * static_cast<double>(den - num) / static_cast<double>(den);
    re = std::cos(b);
    im = std::sin(b);  // e^{-i a} = e^{+i b}
    return;
  }
  re = std::cos(a);
  im = -std::sin(a);
}

template <class T>
std::unique_ptr<FftPlan<T>> make_plan(std::int64_t n) {
  auto p = std::make_unique<FftPlan<T>>();
  p->n = n;
  for (std::int64_t len = n; len >= 4; len /= 4) {
    for (std::int64_t q = 0; q < len / 4; ++q) {
      for (std::int64_t k = 1; k <= 3; ++k) {
        double re, im;
        unit_root(k * q, len, re, im);
        p->tw.push_back(static_cast<T>(re));
        p->tw.push_back(static_cast<T>(im));
      }
    }
  }
  p->rtw.resize(static_cast<std::size_t>(2 * (n + 1)));
  for (std::int64_t k = 0; k <= n; ++k) {
    double re, im;
    unit_root(k, 2 * n, re, im);
    p->rtw[static_cast<std::size_t>(2 * k)] = static_cast<T>(re);
    p->rtw[static_cast<std::size_t>(2 * k + 1)] = static_cast<T>(im);
  }
  return p;
}

// One radix-4 Stockham stage: a (len sub-transforms interleaved with stride s) -> b. E is T or
// Batch<T> (then every operation below acts lane by lane; the twiddles T are broadcast).
template <class E, class T, bool Inv>
void radix4_stage(const E* __restrict a, E* __restrict b, const T* __restrict tw, std::int64_t len,
                  std::int64_t s) {
  const std::int64_t q4 = len / 4;
  if (s == 1) {
    // first stage: no inner q loop, so the loop over p is the one to vectorise (contiguous
    // reads, the four outputs of a butterfly contiguous)
    for (std::int64_t p = 0; p < q4; ++p) {
      const T w1r = tw[6 * p], w1i = Inv ? -tw[6 * p + 1] : tw[6 * p + 1];
      const T w2r = tw[6 * p + 2], w2i = Inv ? -tw[6 * p + 3] : tw[6 * p + 3];
      const T w3r = tw[6 * p + 4], w3i = Inv ? -tw[6 * p + 5] : tw[6 * p + 5];
      const E ar = a[2 * p], ai = a[2 * p + 1], br = a[2 * (p + q4)], bi = a[2 * (p + q4) + 1];
      const E cr = a[2 * (p + 2 * q4)], ci = a[2 * (p + 2 * q4) + 1];
      const E dr = a[2 * (p + 3 * q4)], di = a[2 * (p + 3 * q4) + 1];
      const E apcr = ar + cr, apci = ai + ci, amcr = ar - cr, amci = ai - ci;
      const E bpdr = br + dr, bpdi = bi + di;
      const E jr = Inv ? -(bi - di) : (bi - di), ji = Inv ? (br - dr) : -(br - dr);
      const E t1r = amcr + jr, t1i = amci + ji;
      const E t2r = apcr - bpdr, t2i = apci - bpdi;
      const E t3r = amcr - jr, t3i = amci - ji;
      E* o = b + 8 * p;
      o[0] = apcr + bpdr;
      o[1] = apci + bpdi;
      o[2] = t1r * w1r - t1i * w1i;
      o[3] = t1r * w1i + t1i * w1r;
      o[4] = t2r * w2r - t2i * w2i;
      o[5] = t2r * w2i + t2i * w2r;
      o[6] = t3r * w3r - t3i * w3i;
      o[7] = t3r * w3i + t3i * w3r;
    }
    return;
  }
  for (std::int64_t p = 0; p < q4; ++p) {
    const T w1r = tw[6 * p], w1i = Inv ? -tw[6 * p + 1] : tw[6 * p + 1];
    const T w2r = tw[6 * p + 2], w2i = Inv ? -tw[6 * p + 3] : tw[6 * p + 3];
    const T w3r = tw[6 * p + 4], w3i = Inv ? -tw[6 * p + 5] : tw[6 * p + 5];
    const E* __restrict a0 = a + 2 * s * p;
    const E* __restrict a1 = a + 2 * s * (p + q4);
    const E* __restrict a2 = a + 2 * s * (p + 2 * q4);
    const E* __restrict a3 = a + 2 * s * (p + 3 * q4);
    E* __restrict b0 = b + 2 * s * (4 * p);
    E* __restrict b1 = b0 + 2 * s;
    E* __restrict b2 = b1 + 2 * s;
    E* __restrict b3 = b2 + 2 * s;
    for (std::int64_t q = 0; q < s; ++q) {
      const E ar = a0[2 * q], ai = a0[2 * q + 1], br = a1[2 * q], bi = a1[2 * q + 1];
      const E cr = a2[2 * q], ci = a2[2 * q + 1], dr = a3[2 * q], di = a3[2 * q + 1];
      const E apcr = ar + cr, apci = ai + ci, amcr = ar - cr, amci = ai - ci;
      const E bpdr = br + dr, bpdi = bi + di;
      // j*(b - d), with the sign of the transform folded in (forward: -j, inverse: +j)
      const E jr = Inv ? -(bi - di) : (bi - di), ji = Inv ? (br - dr) : -(br - dr);
      b0[2 * q] = apcr + bpdr;
      b0[2 * q + 1] = apci + bpdi;
      const E t1r = amcr + jr, t1i = amci + ji;  // forward: (a - c) - j(b - d)
      const E t2r = apcr - bpdr, t2i = apci - bpdi;
      const E t3r = amcr - jr, t3i = amci - ji;
      b1[2 * q] = t1r * w1r - t1i * w1i;
      b1[2 * q + 1] = t1r * w1i + t1i * w1r;
      b2[2 * q] = t2r * w2r - t2i * w2i;
      b2[2 * q + 1] = t2r * w2i + t2i * w2r;
      b3[2 * q] = t3r * w3r - t3i * w3i;
      b3[2 * q + 1] = t3r * w3i + t3i * w3r;
    }
  }
}

template <class T>
struct PlanCache {
  std::mutex mu;
  std::map<std::int64_t, std::unique_ptr<FftPlan<T>>> plans;
};

template <class T>
PlanCache<T>& plan_cache() {
  static PlanCache<T> cache;
  return cache;
}

// Bluestein data for length m: chirp c_j = e^{-i pi j^2/m} and the spectrum of the conjugate
// chirp placed circularly in a power-of-two buffer of size M >= 2m - 1, scaled by 1/M.
template <class T>
struct Bluestein {
  std::int64_t m = 0, M = 0;
  std::vector<T> chirp, bhat;
  const FftPlan<T>* plan = nullptr;
};

template <class T>
std::unique_ptr<Bluestein<T>> make_bluestein(std::int64_t m) {
  auto b = std::make_unique<Bluestein<T>>();
  b->m = m;
  b->M = next_pow2(2 * m - 1);
  b->plan = &fft_plan<T>(b->M);
  std::vector<double> c(static_cast<std::size_t>(2 * m));
  for (std::int64_t j = 0; j < m; ++j) {
    // j^2 mod 2m exactly (j < 2^31 is enforced by the callers' size limits), then the angle
    const std::int64_t r = static_cast<std::int64_t>((static_cast<unsigned __int128>(j) * j) %
                                                     static_cast<unsigned __int128>(2 * m));
    unit_root(r, 2 * m, c[static_cast<std::size_t>(2 * j)], c[static_cast<std::size_t>(2 * j + 1)]);
  }
  b->chirp.resize(static_cast<std::size_t>(2 * m));
  for (std::size_t i = 0; i < c.size(); ++i) b->chirp[i] = static_cast<T>(c[i]);
  const auto& pd = fft_plan<double>(b->M);
  std::vector<double> buf(static_cast<std::size_t>(2 * b->M), 0.0), work(static_cast<std::size_t>(2 * b->M));
  for (std::int64_t d = 0; d < m; ++d) {
    const double re = c[static_cast<std::size_t>(2 * d)], im = -c[static_cast<std::size_t>(2 * d + 1)];
    buf[static_cast<std::size_t>(2 * d)] = re;
    buf[static_cast<std::size_t>(2 * d + 1)] = im;
    if (d > 0) {
      buf[static_cast<std::size_t>(2 * (b->M - d))] = re;
      buf[static_cast<std::size_t>(2 * (b->M - d) + 1)] = im;
    }
  }
  cfft<double>(pd, buf.data(), work.data(), false);
  b->bhat.resize(buf.size());
  const double scale = 1.0 / static_cast<double>(b->M);
  for (std::size_t i = 0; i < buf.size(); ++i) b->bhat[i] = static_cast<T>(buf[i] * scale);
  return b;
}

template <class T>
const Bluestein<T>& bluestein(std::int64_t m) {
  static std::mutex mu;
  static std::map<std::int64_t, std::unique_ptr<Bluestein<T>>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(m);
    if (it != cache.end()) return *it->second;
  }
  auto made = make_bluestein<T>(m);  // built outside the lock (it takes the plan cache's lock)
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[m];
  if (!slot) slot = std::move(made);
  return *slot;
}

// Forward DFT of m complex values (X_k = sum_j x_j e^{-2 pi i jk/m}) by Bluestein:
// jk = (j^2 + k^2 - (k - j)^2)/2, so X_k = c_k sum_j (x_j c_j) conj(c_{k-j}).
template <class T>
void dft_bluestein(const Bluestein<T>& b, const T* x, T* X) {
  const std::int64_t m = b.m, M = b.M;
  std::vector<T> a(static_cast<std::size_t>(2 * M), T(0)), work(static_cast<std::size_t>(2 * M));
  const T* c = b.chirp.data();
  for (std::int64_t j = 0; j < m; ++j) {
    const T xr = x[2 * j], xi = x[2 * j + 1], cr = c[2 * j], ci = c[2 * j + 1];
    a[static_cast<std::size_t>(2 * j)] = xr * cr - xi * ci;
    a[static_cast<std::size_t>(2 * j + 1)] = xr * ci + xi * cr;
  }
  cfft<T>(*b.plan, a.data(), work.data(), false);
  const T* h = b.bhat.data();
  for (std::int64_t k = 0; k < M; ++k) {
    const T ar = a[static_cast<std::size_t>(2 * k)], ai = a[static_cast<std::size_t>(2 * k + 1)];
    a[static_cast<std::size_t>(2 * k)] = ar * h[2 * k] - ai * h[2 * k + 1];
    a[static_cast<std::size_t>(2 * k + 1)] = ar * h[2 * k + 1] + ai * h[2 * k];
  }
  cfft<T>(*b.plan, a.data(), work.data(), true);
  for (std::int64_t k = 0; k < m; ++k) {
    const T ar = a[static_cast<std::size_t>(2 * k)], ai = a[static_cast<std::size_t>(2 * k + 1)];
    X[2 * k] = ar * c[2 * k] - ai * c[2 * k + 1];
    X[2 * k + 1] = ar * c[2 * k + 1] + ai * c[2 * k];
  }
}

}  // namespace

template <class T>
const FftPlan<T>& fft_plan(std::int64_t n) {
  FASTCORE_CHECK(is_pow2(n), "fft_plan: size ", n, " is not a power of two");
  auto& cache = plan_cache<T>();
  std::lock_guard<std::mutex> lock(cache.mu);
  auto& slot = cache.plans[n];
  if (!slot) slot = make_plan<T>(n);
  return *slot;
}

template <class E>
void cfft(const FftPlan<ScalarOfT<E>>& plan, E* x, E* work, bool inverse) {
  using T = ScalarOfT<E>;
  const std::int64_t n = plan.n;
  if (n == 1) return;
  E* a = x;
  E* b = work;
  const T* tw = plan.tw.data();
  std::int64_t len = n, s = 1;
  while (len >= 4) {
    if (inverse)
      radix4_stage<E, T, true>(a, b, tw, len, s);
    else
      radix4_stage<E, T, false>(a, b, tw, len, s);
    tw += 6 * (len / 4);
    len /= 4;
    s *= 4;
    std::swap(a, b);
  }
  if (len == 2) {  // final radix-2 stage (twiddle 1)
    for (std::int64_t q = 0; q < s; ++q) {
      const E ar = a[2 * q], ai = a[2 * q + 1], br = a[2 * (q + s)], bi = a[2 * (q + s) + 1];
      b[2 * q] = ar + br;
      b[2 * q + 1] = ai + bi;
      b[2 * (q + s)] = ar - br;
      b[2 * (q + s) + 1] = ai - bi;
    }
    std::swap(a, b);
  }
  if (a != x)
    for (std::int64_t i = 0; i < 2 * n; ++i) x[i] = a[i];
}

template <class E>
void rfft_pow2(const FftPlan<ScalarOfT<E>>& plan, const E* x, E* X, E* work) {
  using T = ScalarOfT<E>;
  const std::int64_t n = plan.n;  // m = 2n reals
  E* z = work;                    // the reals read as n complex numbers z_j = x_2j + i x_2j+1
  for (std::int64_t i = 0; i < 2 * n; ++i) z[i] = x[i];
  cfft<E>(plan, z, work + 2 * n, false);
  const T* w = plan.rtw.data();
  for (std::int64_t k = 0; k <= n; ++k) {
    const std::int64_t k1 = k == n ? 0 : k, k2 = k == 0 ? 0 : n - k;
    const E zr = z[2 * k1], zi = z[2 * k1 + 1], cr = z[2 * k2], ci = -z[2 * k2 + 1];  // Z_k, conj(Z_{n-k})
    const E er = T(0.5) * (zr + cr), ei = T(0.5) * (zi + ci);                       // E = (Z + Zc)/2
    const E orr = T(0.5) * (zi - ci), oi = T(-0.5) * (zr - cr);                      // O = (Z - Zc)/(2i)
    const T wr = w[2 * k], wi = w[2 * k + 1];
    X[2 * k] = er + (orr * wr - oi * wi);
    X[2 * k + 1] = ei + (orr * wi + oi * wr);
  }
}

template <class E>
void irfft_pow2(const FftPlan<ScalarOfT<E>>& plan, const E* X, E* x, E* work) {
  using T = ScalarOfT<E>;
  const std::int64_t n = plan.n;
  E* z = work;
  const T* w = plan.rtw.data();
  for (std::int64_t k = 0; k < n; ++k) {
    // 2 Z_k = (X_k + conj X_{n-k}) + i conj(W^k) (X_k - conj X_{n-k}); Im X_0, Im X_n dropped
    const E xr = X[2 * k], xi = k == 0 ? E{} : X[2 * k + 1];
    const E cr = X[2 * (n - k)], ci = (k == 0) ? E{} : -X[2 * (n - k) + 1];
    const E sr = xr + cr, si = xi + ci, dr = xr - cr, di = xi - ci;
    const T wr = w[2 * k], wi = -w[2 * k + 1];  // conj(W^k)
    const E pr = dr * wr - di * wi, pi = dr * wi + di * wr;
    z[2 * k] = sr - pi;
    z[2 * k + 1] = si + pr;
  }
  cfft<E>(plan, z, work + 2 * n, true);
  for (std::int64_t i = 0; i < 2 * n; ++i) x[i] = z[i];
}

template <class T>
void rfft_any(std::int64_t m, const T* x, T* X) {
  FASTCORE_CHECK(m >= 1, "rfft: length must be >= 1");
  if (m == 1) {
    X[0] = x[0];
    X[1] = T(0);
    return;
  }
  if (is_pow2(m)) {
    const auto& p = fft_plan<T>(m / 2);
    std::vector<T> work(static_cast<std::size_t>(2 * m));
    rfft_pow2<T>(p, x, X, work.data());
    return;
  }
  const auto& b = bluestein<T>(m);
  std::vector<T> xc(static_cast<std::size_t>(2 * m), T(0)), Xc(static_cast<std::size_t>(2 * m));
  for (std::int64_t j = 0; j < m; ++j) xc[static_cast<std::size_t>(2 * j)] = x[j];
  dft_bluestein<T>(b, xc.data(), Xc.data());
  for (std::int64_t k = 0; k <= m / 2; ++k) {
    X[2 * k] = Xc[static_cast<std::size_t>(2 * k)];
    X[2 * k + 1] = Xc[static_cast<std::size_t>(2 * k + 1)];
  }
}

template <class T>
void irfft_any(std::int64_t m, const T* X, T* x) {
  FASTCORE_CHECK(m >= 1, "irfft: length must be >= 1");
  if (m == 1) {
    x[0] = X[0];
    return;
  }
  if (is_pow2(m)) {
    const auto& p = fft_plan<T>(m / 2);
    std::vector<T> work(static_cast<std::size_t>(2 * m));
    irfft_pow2<T>(p, X, x, work.data());
    return;
  }
  // the full Hermitian spectrum, conjugated: IDFT(Y) = conj(DFT(conj(Y))), and the result is real
  const auto& b = bluestein<T>(m);
  std::vector<T> y(static_cast<std::size_t>(2 * m)), out(static_cast<std::size_t>(2 * m));
  const std::int64_t h = m / 2;
  for (std::int64_t k = 0; k < m; ++k) {
    T re, im;
    if (k <= h) {
      re = X[2 * k];
      im = X[2 * k + 1];
    } else {
      re = X[2 * (m - k)];
      im = -X[2 * (m - k) + 1];
    }
    if (k == 0 || (2 * k == m)) im = T(0);
    y[static_cast<std::size_t>(2 * k)] = re;
    y[static_cast<std::size_t>(2 * k + 1)] = -im;
  }
  dft_bluestein<T>(b, y.data(), out.data());
  for (std::int64_t j = 0; j < m; ++j) x[j] = out[static_cast<std::size_t>(2 * j)];
}

#define FASTCORE_S4_FFT_INSTANTIATE(T)                                              \
  template const FftPlan<T>& fft_plan<T>(std::int64_t);                             \
  template void cfft<T>(const FftPlan<T>&, T*, T*, bool);                           \
  template void rfft_pow2<T>(const FftPlan<T>&, const T*, T*, T*);                  \
  template void irfft_pow2<T>(const FftPlan<T>&, const T*, T*, T*);                 \
  template void cfft<Batch<T>>(const FftPlan<T>&, Batch<T>*, Batch<T>*, bool);      \
  template void rfft_pow2<Batch<T>>(const FftPlan<T>&, const Batch<T>*, Batch<T>*,  \
                                    Batch<T>*);                                     \
  template void irfft_pow2<Batch<T>>(const FftPlan<T>&, const Batch<T>*, Batch<T>*, \
                                     Batch<T>*);                                    \
  template void rfft_any<T>(std::int64_t, const T*, T*);                            \
  template void irfft_any<T>(std::int64_t, const T*, T*);

FASTCORE_S4_FFT_INSTANTIATE(float)
FASTCORE_S4_FFT_INSTANTIATE(double)

}  // namespace FASTCORE_ISA_NS
}  // namespace s4
}  // namespace fastcore

#endif  // FASTCORE_ISA_LEVEL != 2
