// S4 CPU kernels (see s4.hpp; algorithms in notes/s4.md §3-8), compiled once per ISA
// (cmake/FastcoreIsa.cmake): loops are element-wise with a fixed summation order and no FMA
// contraction, so scalar, AVX2 and AVX-512 builds give the same bits.
// GCC 12 fuses complex a*b -/+ c*d patterns into vfmaddsub even under -ffp-contract=off,
// which would make the AVX2/AVX-512 builds round differently from the scalar one: no FMA
// instructions in these files (vectorisation otherwise unchanged).
// With AVX-512 enabled GCC emits (EVEX) FMAs regardless of -ffp-contract=off and target
// pragmas, so the AVX-512 entry points forward to the FMA-free AVX2 build (bottom of file).
#if FASTCORE_ISA_LEVEL != 2 && defined(__FMA__)
#pragma GCC target("no-fma")
#endif
#include "s4/s4.hpp"
#include "s4/s4_isa.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <vector>

#include "common/errors.hpp"
#include "common/parallel.hpp"
#include "s4/fft.hpp"

namespace fastcore {
namespace s4 {
namespace FASTCORE_ISA_NS {

#if FASTCORE_ISA_LEVEL != 2

namespace {

constexpr double kPi = 3.14159265358979323846264338327950288;
using cd = std::complex<double>;

template <class T>
using Vec = std::vector<T>;

inline std::size_t sz(std::int64_t n) { return static_cast<std::size_t>(n); }

// e^{x} for complex x in double.
inline cd cexp(double re, double im) {
  const double m = std::exp(re);
  return {m * std::cos(im), m * std::sin(im)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Cauchy product. Work item = (row, block of kNodeBlock nodes); per item the states are the outer
// loop and the nodes of the block the inner (vectorisable) loop, each node accumulating its own
// sum in state order: O(N + block) memory, deterministic.
// Conjugate-pair terms are combined (notes §6.1): v/(z - w) + conj(v)/(z - conj w)
//   = 2 [z Re v - Re(v conj w)] / [(z - w)(z - conj w)],
// with the denominator (z - w)(z - conj w) = (x - wr)^2 + (wi - y)(wi + y) + 2i y (x - wr) for
// z = x + iy: the difference of squares is factored so that near resonance (y ~ wi, small wr) it
// does not cancel (notes §4.3). One real reciprocal per (state, node).
// ---------------------------------------------------------------------------------------------
template <class T>
void cauchy(const T* v, const T* z, const T* w, T* out, std::int64_t batch, std::int64_t N, std::int64_t Lz,
            bool conj) {
  constexpr std::int64_t kNodeBlock = 256;
  const std::int64_t nblk = (Lz + kNodeBlock - 1) / kNodeBlock;
  if (batch == 0 || Lz == 0) return;
  parallel_for(0, batch * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    // z is pre-scaled by sg = 1/max(1, |zr| + |zi|) (exactly 1 for |z| <= 1): the products of
    // denominators stay finite for huge |z| (e.g. the S4 node tan(pi k/L) near Nyquist), and
    // 1/D = sg^2 conj(D')/|D'|^2 with D' the denominator at (sg z, sg w) (the two factors sg are
    // applied separately so that nothing underflows either).
    T pr[kNodeBlock], pi[kNodeBlock], sg[kNodeBlock], ar[kNodeBlock], ai[kNodeBlock];
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t b = item / nblk, j0 = (item % nblk) * kNodeBlock;
      const std::int64_t nb = std::min(kNodeBlock, Lz - j0);
      for (std::int64_t j = 0; j < nb; ++j) {
        const T xr = z[2 * (j0 + j)], xi = z[2 * (j0 + j) + 1];
        // (capped at the largest finite T: |xr| + |xi| past it gave sg = 0 and 0/0 below)
        const T m = std::min(std::abs(xr) + std::abs(xi), std::numeric_limits<T>::max());
        sg[j] = m > T(1) ? T(1) / m : T(1);
        pr[j] = xr * sg[j];  // the scaled node, for the denominators and numerators
        pi[j] = xi * sg[j];
        ar[j] = T(0);
        ai[j] = T(0);
      }
      const T* vb = v + 2 * b * N;
      const T* wb = w + 2 * b * N;
      for (std::int64_t i = 0; i < N; ++i) {
        const T vr = vb[2 * i], vi = vb[2 * i + 1], wr = wb[2 * i], wi = wb[2 * i + 1];
        if (conj) {
          const T alpha = T(-2) * (vr * wr + vi * wi), beta = T(2) * vr;  // num = alpha + beta z
          for (std::int64_t j = 0; j < nb; ++j) {
            const T g = sg[j];
            const T dx = pr[j] - wr * g, y = pi[j], ws = wi * g;
            const T dr = dx * dx + (ws - y) * (ws + y), di = T(2) * y * dx;
            const T inv = g / (dr * dr + di * di);  // the second factor g is applied to num
            // num * g = alpha g + beta (g z), formed at the scaled node: beta z itself overflows
            // for |z| near the float max (the same bits where g = 1)
            const T nr = alpha * g + beta * pr[j], ni = beta * y;
            ar[j] += (nr * dr + ni * di) * inv;  // num * conj(d) / |d|^2
            ai[j] += (ni * dr - nr * di) * inv;
          }
        } else {
          for (std::int64_t j = 0; j < nb; ++j) {
            const T g = sg[j];
            const T dr = pr[j] - wr * g, di = pi[j] - wi * g;
            const T inv = g / (dr * dr + di * di);
            ar[j] += (vr * dr + vi * di) * inv;
            ai[j] += (vi * dr - vr * di) * inv;
          }
        }
      }
      T* ob = out + 2 * (b * Lz + j0);
      for (std::int64_t j = 0; j < nb; ++j) {
        ob[2 * j] = ar[j];
        ob[2 * j + 1] = ai[j];
      }
    }
  });
}

// Backward (notes §6.1): per row, nodes outer, states inner (vectorisable, one accumulator per
// state, summed in node order):
//   dv_i = sum_j g_j / conj(z_j - w_i) [+ conj(g_j)/(z_j - conj w_i)]
//   dw_i = conj(v_i) sum_j g_j / conj(z_j - w_i)^2 [+ conj(g_j)/(z_j - conj w_i)^2]
// One row's node loop: every state's four sums advance by one node per pass over the states.
// Restrict-qualified pointers and a compile-time conj let the compiler vectorise over the states
// (as a runtime branch over std::vector storage it did not: two scalar divisions per term, 7x the
// forward's time); each sum still adds its terms in node order, so the bits are unchanged.
template <bool kConj, class T>
void cauchy_backward_sums(const T* __restrict z, const T* __restrict gb, std::int64_t Lz, std::int64_t N,
                          const T* __restrict wr, const T* __restrict wi, T* __restrict s1r, T* __restrict s1i,
                          T* __restrict s2r, T* __restrict s2i) {
  for (std::int64_t j = 0; j < Lz; ++j) {
    const T xr = z[2 * j], xi = z[2 * j + 1], gr = gb[2 * j], gi = gb[2 * j + 1];
    for (std::int64_t i = 0; i < N; ++i) {
      // e = 1/conj(z - w) = (z - w)/|z - w|^2
      const T dr = xr - wr[i], di = xi - wi[i];
      const T inv = T(1) / (dr * dr + di * di);
      const T er = dr * inv, ei = di * inv;
      const T tr = gr * er - gi * ei, ti = gr * ei + gi * er;  // g e
      T a1r = s1r[i] + tr, a1i = s1i[i] + ti;
      T a2r = s2r[i] + (tr * er - ti * ei), a2i = s2i[i] + (tr * ei + ti * er);  // g e^2
      if (kConj) {
        // f = 1/(z - conj w) = conj(z - conj w)/|.|^2, times conj(g)
        const T cr = xr - wr[i], ci = xi + wi[i];
        const T inv2 = T(1) / (cr * cr + ci * ci);
        const T fr = cr * inv2, fi = -ci * inv2;
        const T ur = gr * fr + gi * fi, ui = gr * fi - gi * fr;  // conj(g) f
        a1r += ur;
        a1i += ui;
        a2r += ur * fr - ui * fi;
        a2i += ur * fi + ui * fr;
      }
      s1r[i] = a1r;
      s1i[i] = a1i;
      s2r[i] = a2r;
      s2i[i] = a2i;
    }
  }
}

template <class T>
void cauchy_backward(const T* v, const T* z, const T* w, const T* g, T* dv, T* dw, std::int64_t batch,
                     std::int64_t N, std::int64_t Lz, bool conj) {
  if (batch == 0 || N == 0) return;
  parallel_for(0, batch, 1, [&](std::int64_t lo, std::int64_t hi) {
    Vec<T> wr(sz(N)), wi(sz(N)), s1r(sz(N)), s1i(sz(N)), s2r(sz(N)), s2i(sz(N));
    for (std::int64_t b = lo; b < hi; ++b) {
      const T* wb = w + 2 * b * N;
      for (std::int64_t i = 0; i < N; ++i) {
        wr[sz(i)] = wb[2 * i];
        wi[sz(i)] = wb[2 * i + 1];
        s1r[sz(i)] = s1i[sz(i)] = s2r[sz(i)] = s2i[sz(i)] = T(0);
      }
      const T* gb = g + 2 * b * Lz;
      if (conj)
        cauchy_backward_sums<true>(z, gb, Lz, N, wr.data(), wi.data(), s1r.data(), s1i.data(), s2r.data(), s2i.data());
      else
        cauchy_backward_sums<false>(z, gb, Lz, N, wr.data(), wi.data(), s1r.data(), s1i.data(), s2r.data(), s2i.data());
      const T* vb = v + 2 * b * N;
      for (std::int64_t i = 0; i < N; ++i) {
        dv[2 * (b * N + i)] = s1r[sz(i)];
        dv[2 * (b * N + i) + 1] = s1i[sz(i)];
        const T vr = vb[2 * i], vi = -vb[2 * i + 1];  // conj(v)
        dw[2 * (b * N + i)] = vr * s2r[sz(i)] - vi * s2i[sz(i)];
        dw[2 * (b * N + i) + 1] = vr * s2i[sz(i)] + vi * s2r[sz(i)];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Vandermonde product y_l = sum_n v_n e^{x_n l}. Work item = (row, block of kBlock outputs).
// Per state the powers a^j = e^{x j}, j < kChunk, are built in double by repeated multiplication
// and rounded once to T; each chunk of kChunk outputs starts from an anchor e^{x l0}, exact (one
// double exp/sincos) at the item start and advanced by a^kChunk in double within the item (at
// most kBlock/kChunk steps, so the phase error stays ~1e-15 relative for any L, notes §5). The
// inner loop over j (outputs) is a plain complex multiply-add in T, vectorisable.
// ---------------------------------------------------------------------------------------------
template <class T>
void vandermonde(const double* v, const double* x, T* out, std::int64_t batch, std::int64_t N, std::int64_t L,
                 bool real_out) {
  constexpr std::int64_t kChunk = 64, kBlock = 2048;
  if (batch == 0 || L == 0) return;
  const std::int64_t nblk = (L + kBlock - 1) / kBlock;
  parallel_for(0, batch * nblk, 1, [&](std::int64_t lo, std::int64_t hi) {
    T pr[kChunk], pi[kChunk];
    Vec<T> accr(sz(kBlock)), acci(sz(kBlock));
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t b = item / nblk, l0 = (item % nblk) * kBlock;
      const std::int64_t nl = std::min(kBlock, L - l0);
      std::fill(accr.begin(), accr.end(), T(0));
      std::fill(acci.begin(), acci.end(), T(0));
      for (std::int64_t n = 0; n < N; ++n) {
        const double xr = x[2 * (b * N + n)], xi = x[2 * (b * N + n) + 1];
        const cd vv(v[2 * (b * N + n)], v[2 * (b * N + n) + 1]);
        const cd a = cexp(xr, xi);
        cd p(1.0, 0.0);
        for (std::int64_t j = 0; j < kChunk; ++j) {
          pr[j] = static_cast<T>(p.real());
          pi[j] = static_cast<T>(p.imag());
          p *= a;
        }
        const cd step = p;  // a^kChunk
        cd anchor = vv * cexp(xr * static_cast<double>(l0), xi * static_cast<double>(l0));
        if (real_out) anchor *= 2.0;
        for (std::int64_t c0 = 0; c0 < nl; c0 += kChunk) {
          const std::int64_t m = std::min(kChunk, nl - c0);
          const T ar = static_cast<T>(anchor.real()), ai = static_cast<T>(anchor.imag());
          T* yr = accr.data() + c0;
          T* yi = acci.data() + c0;
          for (std::int64_t j = 0; j < m; ++j) {
            yr[j] += ar * pr[j] - ai * pi[j];
            yi[j] += ar * pi[j] + ai * pr[j];
          }
          anchor *= step;
        }
      }
      if (real_out) {
        T* o = out + b * L + l0;
        for (std::int64_t j = 0; j < nl; ++j) o[j] = accr[sz(j)];
      } else {
        T* o = out + 2 * (b * L + l0);
        for (std::int64_t j = 0; j < nl; ++j) {
          o[2 * j] = accr[sz(j)];
          o[2 * j + 1] = acci[sz(j)];
        }
      }
    }
  });
}

// Backward: per (row, state), sums over l in double, in l order; e^{x l} from an exact anchor per
// chunk of 64 times double powers (same accuracy argument as the forward).
// One output l of vandermonde_backward for every state n: e = anchor_n * a_n^j (the complex
// product as std::complex computes it for finite values), t = G_l conj(e), s0 += t, s1 += l t.
inline void vandermonde_backward_terms(bool real_out, double gr, double gi, double l, std::int64_t N,
                                       const double* __restrict anr, const double* __restrict ani,
                                       const double* __restrict pr, const double* __restrict pi,
                                       double* __restrict s0r, double* __restrict s0i, double* __restrict s1r,
                                       double* __restrict s1i) {
  if (real_out) {
    for (std::int64_t n = 0; n < N; ++n) {
      const double er = anr[n] * pr[n] - ani[n] * pi[n], ei = anr[n] * pi[n] + ani[n] * pr[n];
      const double tr = gr * er, ti = -gr * ei;
      s0r[n] += tr;
      s0i[n] += ti;
      s1r[n] += l * tr;
      s1i[n] += l * ti;
    }
  } else {
    for (std::int64_t n = 0; n < N; ++n) {
      const double er = anr[n] * pr[n] - ani[n] * pi[n], ei = anr[n] * pi[n] + ani[n] * pr[n];
      const double tr = gr * er + gi * ei, ti = gi * er - gr * ei;
      s0r[n] += tr;
      s0i[n] += ti;
      s1r[n] += l * tr;
      s1i[n] += l * ti;
    }
  }
}

template <class T>
void vandermonde_backward(const double* v, const double* x, const T* g, double* dv, double* dx,
                          std::int64_t batch, std::int64_t N, std::int64_t L, bool real_out) {
  constexpr std::int64_t kChunk = 64;
  if (batch == 0 || N == 0) return;
  parallel_for(0, batch, 1, [&](std::int64_t lo, std::int64_t hi) {
    // Per row, states inner (vectorised across them; each state's sums still run over l in
    // ascending order, with the same complex products as a state-by-state loop): the power table
    // a_n^j, j < kChunk, as [j][n] planes, the chunk anchors e^{x_n c0}, four sums per state.
    Vec<double> pwr(sz(kChunk * N)), pwi(sz(kChunk * N)), anr(sz(N)), ani(sz(N));
    Vec<double> s0r(sz(N)), s0i(sz(N)), s1r(sz(N)), s1i(sz(N));
    for (std::int64_t b = lo; b < hi; ++b) {
      for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t idx = b * N + n;
        const cd a = cexp(x[2 * idx], x[2 * idx + 1]);
        cd p(1.0, 0.0);
        for (std::int64_t j = 0; j < kChunk; ++j) {
          pwr[sz(j * N + n)] = p.real();
          pwi[sz(j * N + n)] = p.imag();
          p *= a;
        }
        s0r[sz(n)] = s0i[sz(n)] = s1r[sz(n)] = s1i[sz(n)] = 0.0;
      }
      for (std::int64_t c0 = 0; c0 < L; c0 += kChunk) {
        for (std::int64_t n = 0; n < N; ++n) {
          const std::int64_t idx = b * N + n;
          const cd anchor = cexp(x[2 * idx] * static_cast<double>(c0), x[2 * idx + 1] * static_cast<double>(c0));
          anr[sz(n)] = anchor.real();
          ani[sz(n)] = anchor.imag();
        }
        const std::int64_t m = std::min(kChunk, L - c0);
        for (std::int64_t j = 0; j < m; ++j) {
          const std::int64_t l = c0 + j;
          double gr, gi;  // G_l: 2 g_l (real output) or the complex g_l
          if (real_out) {
            gr = 2.0 * static_cast<double>(g[b * L + l]);
            gi = 0.0;
          } else {
            gr = g[2 * (b * L + l)];
            gi = g[2 * (b * L + l) + 1];
          }
          vandermonde_backward_terms(real_out, gr, gi, static_cast<double>(l), N, anr.data(), ani.data(),
                                     pwr.data() + j * N, pwi.data() + j * N, s0r.data(), s0i.data(), s1r.data(),
                                     s1i.data());
        }
      }
      for (std::int64_t n = 0; n < N; ++n) {
        const std::int64_t idx = b * N + n;
        const cd cv = std::conj(cd(v[2 * idx], v[2 * idx + 1]));
        const cd d1 = cv * cd(s1r[sz(n)], s1i[sz(n)]);
        dv[2 * idx] = s0r[sz(n)];
        dv[2 * idx + 1] = s0i[sz(n)];
        dx[2 * idx] = d1.real();
        dx[2 * idx + 1] = d1.imag();
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// S4 DPLR kernel (notes §3-4). Per channel h (one work item):
//   w = dt Lambda; for every (B-side row a in [B; P_0..P_{r-1}], C-side row c in
//   [Ct_0..Ct_{C-1}; conj P_0..conj P_{r-1}]) the conjugate-pair Cauchy sum at z_k = 2i t_k,
//   t_k = tan(pi k/L) (fp64), with v = dt a_n c_n. All (1+r)(C+r) products share the
//   denominator (z - w)(z - conj w) = [wr^2 + (wi - s)(wi + s)] - 2i s wr (s = 2 t_k, the
//   cancellation-safe form) and its reciprocal: one division per (state, node) instead of 8.
//   Numerators: 2[z Re v - Re(v conj w)] = alpha_n + i s beta_n, precomputed per state.
//   Woodbury per node: Khat_c = (1 + i t)(k00_c - k01_c (I + k11)^{-1} k10) (solved in fp64).
//   Nyquist node (even L): Khat = dt Re sum_n Ct_n B_n exactly. Then K = irfft(Khat, L)/L.
// ---------------------------------------------------------------------------------------------
namespace {

// kernel_dplr_backward works on the forward's shared-denominator form of each conjugate-pair
// Cauchy term (see the block comment above kernel_dplr): with z = i s (s = 2 t_k),
//   c_p = v/(z - w) + conj(v)/(z - conj w) = (alpha_p + i s beta_p) e,
//   e = 1/D, D = (z - w)(z - conj w) = (|w|^2 - s^2) - 2i s Re w,
//   alpha_p = -2 Re(v_p conj w), beta_p = 2 Re v_p.
// Gradients (dk: dL = Re(conj(dk) dk_change) per product and node, summed):
//   g_alpha_p = sum_k Re(conj(dk_p) e),  g_beta_p = sum_k Re(conj(dk_p) i s e),
//   dv_p = (2 g_beta_p - 2 Re w g_alpha_p) + i (-2 Im w g_alpha_p),
//   with R = sum_p conj(dk_p) Re v_p, I = sum_p conj(dk_p) Im v_p and
//   X = sum_p conj(dk_p)(alpha_p + i s beta_p) = -2(Re w R + Im w I) + 2i s R, Q = X e^2:
//   dL/dRe w = sum_k -2 Re(R e) - 2 Re(Q (Re w - i s)),  dL/dIm w = sum_k -2 Re(I e) - 2 Im w Re Q
// (from d alpha/dw and dD/dRe w = 2 Re w - 2i s, dD/dIm w = 2 Im w). One reciprocal per (state,
// node) as in the forward, and per (state, node, product) four real products for the sums and
// eight for the gradients, instead of two reciprocals and sixteen / thirty-two.

// Pass 1 of kernel_dplr_backward for one state and nb nodes: e_j = 1/D_j (vectorised).
inline void dplr_shared_reciprocals(const double* __restrict t, std::int64_t nb, double a_r, double a_i,
                                    double* __restrict er, double* __restrict ei) {
  for (std::int64_t j = 0; j < nb; ++j) {
    const double sj = 2.0 * t[j];
    const double dr = a_r * a_r + (a_i - sj) * (a_i + sj), di = -2.0 * sj * a_r;
    const double inv = 1.0 / (dr * dr + di * di);
    er[j] = dr * inv;
    ei[j] = -di * inv;
  }
}

// k_j += (alpha + i s_j beta) e_j over nb nodes (one product's Cauchy sums, one state).
inline void dplr_cauchy_accumulate(std::int64_t nb, double alpha, double beta, const double* __restrict t,
                                   const double* __restrict er, const double* __restrict ei,
                                   double* __restrict yr, double* __restrict yi) {
  for (std::int64_t j = 0; j < nb; ++j) {
    const double sb = 2.0 * t[j] * beta;
    yr[j] += alpha * er[j] - sb * ei[j];
    yi[j] += alpha * ei[j] + sb * er[j];
  }
}

// Pass 2 of kernel_dplr_backward for one node (s = 2 t_k): for every state n (vectorised), with
// the node's dk_p (stride dk_stride) and e_n: g_alpha, g_beta (np x N) and dw (N) accumulate
// the node's terms (see the comment above).
inline void dplr_backward_node(std::int64_t np, std::int64_t N, double s, const double* dkr, const double* dki,
                               std::int64_t dk_stride, const double* __restrict er, const double* __restrict ei,
                               const double* __restrict wr, const double* __restrict wi,
                               const double* __restrict vr, const double* __restrict vi,
                               double* __restrict ga, double* __restrict gb, double* __restrict dwr,
                               double* __restrict dwi) {
  constexpr std::int64_t kStates = 256;  // R and I for a slab of states (stack)
  double rr[kStates], ri[kStates], ir[kStates], ii[kStates];
  for (std::int64_t n0 = 0; n0 < N; n0 += kStates) {
    const std::int64_t m = std::min(kStates, N - n0);
    for (std::int64_t p = 0; p < np; ++p) {  // p = 0 initialises R and I (no zeroing pass)
      const double gr = dkr[p * dk_stride], gi = dki[p * dk_stride], sgr = s * gr, sgi = s * gi;
      const double* pvr = vr + p * N + n0;
      const double* pvi = vi + p * N + n0;
      double* pa = ga + p * N + n0;
      double* pb = gb + p * N + n0;
      for (std::int64_t n = 0; n < m; ++n) {
        const double e_r = er[n0 + n], e_i = ei[n0 + n];
        pa[n] += gr * e_r + gi * e_i;    // Re(conj(dk) e)
        pb[n] += sgi * e_r - sgr * e_i;  // Re(conj(dk) i s e)
        const double v_r = pvr[n], v_i = pvi[n];
        rr[n] = p ? rr[n] + gr * v_r : gr * v_r;  // R = sum conj(dk) Re v
        ri[n] = p ? ri[n] - gi * v_r : -gi * v_r;
        ir[n] = p ? ir[n] + gr * v_i : gr * v_i;  // I = sum conj(dk) Im v
        ii[n] = p ? ii[n] - gi * v_i : -gi * v_i;
      }
    }
    for (std::int64_t n = 0; n < m; ++n) {
      const double e_r = er[n0 + n], e_i = ei[n0 + n], w_r = wr[n0 + n], w_i = wi[n0 + n];
      const double xr = -2.0 * (w_r * rr[n] + w_i * ir[n]) - 2.0 * s * ri[n];  // X
      const double xi = -2.0 * (w_r * ri[n] + w_i * ii[n]) + 2.0 * s * rr[n];
      const double e2r = e_r * e_r - e_i * e_i, e2i = 2.0 * e_r * e_i;       // e^2
      const double qr = xr * e2r - xi * e2i, qi = xr * e2i + xi * e2r;       // Q = X e^2
      dwr[n0 + n] += -2.0 * (rr[n] * e_r - ri[n] * e_i) - 2.0 * (qr * w_r + qi * s);
      dwi[n0 + n] += -2.0 * (ir[n] * e_r - ii[n] * e_i) - 2.0 * w_i * qr;
    }
  }
}

// Solves (I + M) x = rhs for r x r complex M (row-major) by Gaussian elimination with partial
// pivoting; rhs is overwritten with x.
void solve_identity_plus(std::vector<cd>& M, std::vector<cd>& rhs, std::int64_t r) {
  for (std::int64_t i = 0; i < r; ++i) M[sz(i * r + i)] += 1.0;
  for (std::int64_t col = 0; col < r; ++col) {
    std::int64_t piv = col;
    for (std::int64_t i = col + 1; i < r; ++i)
      if (std::abs(M[sz(i * r + col)]) > std::abs(M[sz(piv * r + col)])) piv = i;
    if (piv != col) {
      for (std::int64_t j = 0; j < r; ++j) std::swap(M[sz(col * r + j)], M[sz(piv * r + j)]);
      std::swap(rhs[sz(col)], rhs[sz(piv)]);
    }
    const cd d = M[sz(col * r + col)];
    for (std::int64_t i = col + 1; i < r; ++i) {
      const cd f = M[sz(i * r + col)] / d;
      for (std::int64_t j = col; j < r; ++j) M[sz(i * r + j)] -= f * M[sz(col * r + j)];
      rhs[sz(i)] -= f * rhs[sz(col)];
    }
  }
  for (std::int64_t i = r - 1; i >= 0; --i) {
    cd acc = rhs[sz(i)];
    for (std::int64_t j = i + 1; j < r; ++j) acc -= M[sz(i * r + j)] * rhs[sz(j)];
    rhs[sz(i)] = acc / M[sz(i * r + i)];
  }
}

}  // namespace

template <class T>
void kernel_dplr(const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt, T* K, const DplrShape& s) {
  const std::int64_t H = s.H, N = s.N, r = s.rank, C = s.channels, L = s.L;
  if (H == 0 || C == 0 || L == 0) return;
  const std::int64_t nc = C + r, np = (1 + r) * nc;  // C-side rows, products
  const std::int64_t nreg = (L + 1) / 2;             // regular nodes k < L/2 (k = L/2 is Nyquist)
  const std::int64_t nfreq = L / 2 + 1;
  constexpr std::int64_t kNodeBlock = 64;
  // nodes in fp64 (notes §4.2), rounded once to T for the Cauchy sums
  Vec<double> t(sz(nreg));
  for (std::int64_t k = 0; k < nreg; ++k) t[sz(k)] = std::tan(kPi * static_cast<double>(k) / static_cast<double>(L));
  parallel_for(0, H, 1, [&](std::int64_t lo, std::int64_t hi) {
    Vec<T> alpha(sz(np * N)), beta(sz(np * N)), wr(sz(N)), wi(sz(N));
    Vec<T> accr(sz(np * kNodeBlock)), acci(sz(np * kNodeBlock)), cr(sz(kNodeBlock)), ci(sz(kNodeBlock)),
        sv(sz(kNodeBlock)), sgv(sz(kNodeBlock)), ssv(sz(kNodeBlock));
    Vec<T> khat(sz(2 * nfreq * C)), kout(sz(L));
    std::vector<cd> M(sz(r * r)), rhs(sz(r));
    for (std::int64_t h = lo; h < hi; ++h) {
      const double d = dt[h];
      auto at = [&](const T* a, std::int64_t n) { return cd(a[2 * n], a[2 * n + 1]); };
      auto bside = [&](std::int64_t a, std::int64_t n) {
        return a == 0 ? at(B + 2 * h * N, n) : at(P + 2 * ((a - 1) * H + h) * N, n);
      };
      auto cside = [&](std::int64_t c, std::int64_t n) {
        return c < C ? at(Ct + 2 * (c * H + h) * N, n) : std::conj(at(P + 2 * ((c - C) * H + h) * N, n));
      };
      for (std::int64_t n = 0; n < N; ++n) {
        const cd w = d * at(Lambda + 2 * h * N, n);
        wr[sz(n)] = static_cast<T>(w.real());
        wi[sz(n)] = static_cast<T>(w.imag());
        for (std::int64_t a = 0; a <= r; ++a) {
          const cd ba = bside(a, n);
          for (std::int64_t c = 0; c < nc; ++c) {
            const cd vv = d * ba * cside(c, n);
            const std::int64_t p = a * nc + c;
            alpha[sz(p * N + n)] = static_cast<T>(-2.0 * (vv.real() * w.real() + vv.imag() * w.imag()));
            beta[sz(p * N + n)] = static_cast<T>(2.0 * vv.real());
          }
        }
      }
      for (std::int64_t k0 = 0; k0 < nreg; k0 += kNodeBlock) {
        const std::int64_t nb = std::min(kNodeBlock, nreg - k0);
        for (std::int64_t j = 0; j < nb; ++j) {
          // node s = 2 tan(pi k/L) and the scale g = 1/max(1, s) that keeps |D|^2 finite in
          // float32 for long L (s ~ 4L/pi near Nyquist): 1/D = g^2 conj(D')/|D'|^2, D' at (g s, g w)
          const double sd = 2.0 * t[sz(k0 + j)], gd = sd > 1.0 ? 1.0 / sd : 1.0;
          sv[sz(j)] = static_cast<T>(sd);
          sgv[sz(j)] = static_cast<T>(gd);
          ssv[sz(j)] = static_cast<T>(sd * gd);
        }
        std::fill(accr.begin(), accr.end(), T(0));
        std::fill(acci.begin(), acci.end(), T(0));
        for (std::int64_t n = 0; n < N; ++n) {
          const T a_r = wr[sz(n)], a_i = wi[sz(n)];
          for (std::int64_t j = 0; j < nb; ++j) {  // shared conj(D)/|D|^2, D at the scaled node
            const T g = sgv[sz(j)], sj = ssv[sz(j)], wr_ = a_r * g, wi_ = a_i * g;
            const T dr = wr_ * wr_ + (wi_ - sj) * (wi_ + sj), di = T(-2) * sj * wr_;
            const T inv = g * g / (dr * dr + di * di);
            cr[sz(j)] = dr * inv;
            ci[sz(j)] = -di * inv;
          }
          for (std::int64_t p = 0; p < np; ++p) {
            const T al = alpha[sz(p * N + n)], be = beta[sz(p * N + n)];
            T* yr = accr.data() + p * kNodeBlock;
            T* yi = acci.data() + p * kNodeBlock;
            for (std::int64_t j = 0; j < nb; ++j) {
              const T ni = sv[sz(j)] * be;  // numerator alpha + i s beta
              yr[j] += al * cr[sz(j)] - ni * ci[sz(j)];
              yi[j] += al * ci[sz(j)] + ni * cr[sz(j)];
            }
          }
        }
        for (std::int64_t j = 0; j < nb; ++j) {  // Woodbury + (1 + i t), per node in fp64
          auto prod = [&](std::int64_t a, std::int64_t c) {
            const std::int64_t p = a * nc + c;
            return cd(accr[sz(p * kNodeBlock + j)], acci[sz(p * kNodeBlock + j)]);
          };
          if (r > 0) {
            for (std::int64_t i = 0; i < r; ++i) {
              rhs[sz(i)] = prod(0, C + i);  // k10 = Q_i R B
              for (std::int64_t q = 0; q < r; ++q) M[sz(i * r + q)] = prod(1 + q, C + i);  // k11 = Q_i R P_q
            }
            solve_identity_plus(M, rhs, r);
          }
          const cd f(1.0, t[sz(k0 + j)]);
          for (std::int64_t c = 0; c < C; ++c) {
            cd val = prod(0, c);
            for (std::int64_t q = 0; q < r; ++q) val -= prod(1 + q, c) * rhs[sz(q)];
            val *= f;
            khat[sz(2 * (c * nfreq + k0 + j))] = static_cast<T>(val.real());
            khat[sz(2 * (c * nfreq + k0 + j) + 1)] = static_cast<T>(val.imag());
          }
        }
      }
      if (L % 2 == 0) {  // Nyquist node in closed form: dt Re sum_n Ct_n B_n
        for (std::int64_t c = 0; c < C; ++c) {
          double acc = 0;
          for (std::int64_t n = 0; n < N; ++n) acc += (cside(c, n) * bside(0, n)).real();
          khat[sz(2 * (c * nfreq + L / 2))] = static_cast<T>(d * acc);
          khat[sz(2 * (c * nfreq + L / 2) + 1)] = T(0);
        }
      }
      const T scale = static_cast<T>(1.0 / static_cast<double>(L));
      for (std::int64_t c = 0; c < C; ++c) {
        irfft_any<T>(L, khat.data() + 2 * c * nfreq, kout.data());
        T* o = K + (c * H + h) * L;
        for (std::int64_t l = 0; l < L; ++l) o[l] = kout[sz(l)] * scale;
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Backward of kernel_dplr's spectrum (everything before the inverse DFT), fused per channel h:
// given dkhat (C, H, nreg) = dL/d khat_k at the regular nodes (already through the inverse DFT's
// adjoint and the (1 + i t) factor), returns per state the gradients of the (1+r)(C+r)
// conjugate-pair Cauchy numerators, dv (np, H, N), and of the poles summed over the products,
// dw (H, N), as cauchy_backward would (notes §6.1) — without materialising the Cauchy sums or
// their gradients per node. All in double, on the shared-denominator form (comment above
// dplr_shared_reciprocals). Per block of kNodeBlock nodes:
//   pass 1 (states outer, nodes inner): e = 1/D (kept for pass 2) and the sums
//          k_p = sum_n (alpha_pn + i s beta_pn) e;
//   per node: Woodbury's adjoint (khat = k00 - k01^T x, x = (I + k11^T)^-1 k10) gives dk_p;
//   pass 2 (nodes outer, states inner, vectorised over states): g_alpha, g_beta and dw.
// Then dv from g_alpha, g_beta. Sums run in a fixed order (nodes ascending per state), so results
// do not depend on threads.
// ---------------------------------------------------------------------------------------------
template <class T>
void kernel_dplr_backward(const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt,
                          const double* dkhat, double* dv, double* dw, const DplrShape& s) {
  const std::int64_t H = s.H, N = s.N, r = s.rank, C = s.channels, L = s.L;
  if (H == 0 || N == 0) return;
  const std::int64_t nc = C + r, np = (1 + r) * nc;
  const std::int64_t nreg = (L + 1) / 2;
  constexpr std::int64_t kNodeBlock = 64;
  Vec<double> t(sz(nreg));
  for (std::int64_t k = 0; k < nreg; ++k) t[sz(k)] = std::tan(kPi * static_cast<double>(k) / static_cast<double>(L));
  parallel_for(0, H, 1, [&](std::int64_t lo, std::int64_t hi) {
    Vec<double> vr(sz(np * N)), vi(sz(np * N)), wr(sz(N)), wi(sz(N)), alpha(sz(np * N)), beta(sz(np * N));
    Vec<double> ga(sz(np * N)), gb(sz(np * N)), dwr(sz(N)), dwi(sz(N));
    Vec<double> er_plane(sz(kNodeBlock * N)), ei_plane(sz(kNodeBlock * N));
    Vec<double> kr(sz(np * kNodeBlock)), ki(sz(np * kNodeBlock)), dkr(sz(np * kNodeBlock)), dki(sz(np * kNodeBlock));
    std::vector<cd> M(sz(r * r)), Mh(sz(r * r)), x(sz(r)), y(sz(r));
    alignas(64) double e_r[kNodeBlock], e_i[kNodeBlock];
    for (std::int64_t h = lo; h < hi; ++h) {
      const double d = dt[h];
      auto at = [&](const T* a, std::int64_t n) {
        return cd(static_cast<double>(a[2 * n]), static_cast<double>(a[2 * n + 1]));
      };
      for (std::int64_t n = 0; n < N; ++n) {
        const cd w = d * at(Lambda + 2 * h * N, n);
        wr[sz(n)] = w.real();
        wi[sz(n)] = w.imag();
        for (std::int64_t a = 0; a <= r; ++a) {
          const cd ba = a == 0 ? at(B + 2 * h * N, n) : at(P + 2 * ((a - 1) * H + h) * N, n);
          for (std::int64_t c = 0; c < nc; ++c) {
            const cd cc = c < C ? at(Ct + 2 * (c * H + h) * N, n) : std::conj(at(P + 2 * ((c - C) * H + h) * N, n));
            const cd vv = d * ba * cc;
            const std::int64_t q = (a * nc + c) * N + n;
            vr[sz(q)] = vv.real();
            vi[sz(q)] = vv.imag();
            alpha[sz(q)] = -2.0 * (vv.real() * w.real() + vv.imag() * w.imag());
            beta[sz(q)] = 2.0 * vv.real();
          }
        }
      }
      std::fill(ga.begin(), ga.end(), 0.0);
      std::fill(gb.begin(), gb.end(), 0.0);
      std::fill(dwr.begin(), dwr.end(), 0.0);
      std::fill(dwi.begin(), dwi.end(), 0.0);
      for (std::int64_t k0 = 0; k0 < nreg; k0 += kNodeBlock) {
        const std::int64_t nb = std::min(kNodeBlock, nreg - k0);
        std::fill(kr.begin(), kr.end(), 0.0);
        std::fill(ki.begin(), ki.end(), 0.0);
        // pass 1: shared reciprocals ([j][n] planes) and the Cauchy sums ([p][j])
        for (std::int64_t n = 0; n < N; ++n) {
          dplr_shared_reciprocals(t.data() + k0, nb, wr[sz(n)], wi[sz(n)], e_r, e_i);
          for (std::int64_t j = 0; j < nb; ++j) {  // kept as [j][n] planes for pass 2
            er_plane[sz(j * N + n)] = e_r[j];
            ei_plane[sz(j * N + n)] = e_i[j];
          }
          for (std::int64_t p = 0; p < np; ++p)
            dplr_cauchy_accumulate(nb, alpha[sz(p * N + n)], beta[sz(p * N + n)], t.data() + k0, e_r, e_i,
                                   kr.data() + p * kNodeBlock, ki.data() + p * kNodeBlock);
        }
        // per node: Woodbury's adjoint -> dk_p
        for (std::int64_t j = 0; j < nb; ++j) {
          auto kk = [&](std::int64_t a, std::int64_t c) {
            const std::int64_t p = a * nc + c;
            return cd(kr[sz(p * kNodeBlock + j)], ki[sz(p * kNodeBlock + j)]);
          };
          auto set_dk = [&](std::int64_t a, std::int64_t c, cd v) {
            const std::int64_t p = a * nc + c;
            dkr[sz(p * kNodeBlock + j)] = v.real();
            dki[sz(p * kNodeBlock + j)] = v.imag();
          };
          auto dkh = [&](std::int64_t c) {
            const double* g = dkhat + 2 * ((c * H + h) * nreg + k0 + j);
            return cd(g[0], g[1]);
          };
          for (std::int64_t c = 0; c < C; ++c) set_dk(0, c, dkh(c));
          if (r == 0) continue;
          if (r == 1) {  // HiPPO-LegS: scalars, no elimination (1/m by hand: no __divdc3 call)
            const cd m = 1.0 + kk(1, C), inv_m = std::conj(m) / std::norm(m), xv = kk(0, C) * inv_m;
            cd dx(0.0, 0.0);
            for (std::int64_t c = 0; c < C; ++c) {
              set_dk(1, c, -std::conj(xv) * dkh(c));
              dx -= std::conj(kk(1, c)) * dkh(c);
            }
            const cd dk10 = dx * std::conj(inv_m);
            set_dk(0, C, dk10);
            set_dk(1, C, -dk10 * std::conj(xv));
            continue;
          }
          for (std::int64_t i = 0; i < r; ++i) {
            x[sz(i)] = kk(0, C + i);                                                  // k10
            for (std::int64_t q = 0; q < r; ++q) M[sz(i * r + q)] = kk(1 + q, C + i);  // k11^T
          }
          for (std::int64_t i = 0; i < r; ++i)
            for (std::int64_t q = 0; q < r; ++q) Mh[sz(i * r + q)] = std::conj(M[sz(q * r + i)]);
          solve_identity_plus(M, x, r);  // x = (I + k11^T)^-1 k10
          for (std::int64_t q = 0; q < r; ++q) {
            cd dx(0.0, 0.0);
            for (std::int64_t c = 0; c < C; ++c) {
              set_dk(1 + q, c, -std::conj(x[sz(q)]) * dkh(c));  // khat = k00 - sum_q k01[q] x_q
              dx -= std::conj(kk(1 + q, c)) * dkh(c);
            }
            y[sz(q)] = dx;
          }
          solve_identity_plus(Mh, y, r);  // dk10 = (I + k11^T)^-H dx
          for (std::int64_t i = 0; i < r; ++i) {
            set_dk(0, C + i, y[sz(i)]);
            for (std::int64_t q = 0; q < r; ++q) set_dk(1 + q, C + i, -y[sz(i)] * std::conj(x[sz(q)]));  // dM[i][q]
          }
        }
        // pass 2: per node, every state's gradient sums (vectorised over states)
        for (std::int64_t j = 0; j < nb; ++j)
          dplr_backward_node(np, N, 2.0 * t[sz(k0 + j)], dkr.data() + j, dki.data() + j, kNodeBlock,
                             er_plane.data() + j * N, ei_plane.data() + j * N, wr.data(), wi.data(), vr.data(),
                             vi.data(), ga.data(), gb.data(), dwr.data(), dwi.data());
      }
      for (std::int64_t p = 0; p < np; ++p)
        for (std::int64_t n = 0; n < N; ++n) {  // dv from g_alpha, g_beta (alpha, beta are real)
          const double g_a = ga[sz(p * N + n)], g_b = gb[sz(p * N + n)];
          dv[2 * ((p * H + h) * N + n)] = 2.0 * g_b - 2.0 * wr[sz(n)] * g_a;
          dv[2 * ((p * H + h) * N + n) + 1] = -2.0 * wi[sz(n)] * g_a;
        }
      for (std::int64_t n = 0; n < N; ++n) {
        dw[2 * (h * N + n)] = dwr[sz(n)];
        dw[2 * (h * N + n) + 1] = dwi[sz(n)];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// FFT convolution (notes §7.1). Size n = next power of two >= L + Lk - 1 (causal) or L + Lk
// (bidirectional), Lk clipped to L (longer taps never reach an output). The kernel spectrum of
// each channel (k0 at [0, Lk), k1 reversed at n-1-m) is computed once and scaled by 1/n; each
// (batch, channel) row then does rfft -> multiply -> irfft -> + D u in one pass.
// ---------------------------------------------------------------------------------------------
// (outside the anonymous namespace: the thread-pool lambdas capture it)
struct ConvSize {
  std::int64_t lk, n, nf;
};

inline ConvSize conv_size(std::int64_t L, std::int64_t Lk, bool bidirectional) {
  ConvSize c;
  c.lk = std::min(Lk, L);
  c.n = std::max<std::int64_t>(2, next_pow2(L + c.lk - (bidirectional ? 0 : 1)));
  c.nf = c.n / 2 + 1;
  return c;
}

namespace {

template <class T>
void kernel_spectrum(const FftPlan<T>& plan, const T* k, std::int64_t H, std::int64_t h, std::int64_t Lk,
                     const ConvSize& cs, bool bidirectional, T* buf, T* work, T* out) {
  std::fill(buf, buf + cs.n, T(0));
  for (std::int64_t m = 0; m < cs.lk; ++m) buf[m] = k[h * Lk + m];
  if (bidirectional)
    for (std::int64_t m = 0; m < cs.lk; ++m) buf[cs.n - 1 - m] += k[(H + h) * Lk + m];
  rfft_pow2<T>(plan, buf, out, work);
  const T scale = T(1) / static_cast<T>(cs.n);
  for (std::int64_t i = 0; i < 2 * cs.nf; ++i) out[i] *= scale;
}


// Lane access for an FFT element E: T (one lane) or Batch<T> (kBatchLanes<T> lanes).
template <class E>
constexpr std::int64_t kLanesOf = static_cast<std::int64_t>(sizeof(E) / sizeof(ScalarOfT<E>));
template <class E>
inline void set_lane(E& e, std::int64_t l, ScalarOfT<E> v) {
  if constexpr (kLanesOf<E> == 1) {
    (void)l;
    e = v;
  } else {
    e[l] = v;
  }
}
template <class E>
inline ScalarOfT<E> get_lane(const E& e, std::int64_t l) {
  if constexpr (kLanesOf<E> == 1) {
    (void)l;
    return e;
  } else {
    return e[l];
  }
}

// dst[t] lane l = src[l * stride + t] for t < len, then zeros up to total: kLanesOf<E> rows (stride
// apart) side by side as FFT input.
template <class E>
void gather_lanes(const ScalarOfT<E>* src, std::int64_t stride, std::int64_t len, std::int64_t total,
                  E* dst) {
  for (std::int64_t t = 0; t < len; ++t)
    for (std::int64_t l = 0; l < kLanesOf<E>; ++l) set_lane(dst[t], l, src[l * stride + t]);
  std::fill(dst + len, dst + total, E{});
}

// One FFT-convolution block: kLanesOf<E> rows u0 + l L (channel spectra S in E layout, D0 the
// rows' D or null) -> y0 + l L. E = T runs one row; E = Batch<T> runs a lane per row with the
// same operations, so every row gets the same bits either way.
template <class E>
void conv_block(const FftPlan<ScalarOfT<E>>& plan, const ConvSize& cs, const ScalarOfT<E>* u0,
                std::int64_t L, const E* S, const ScalarOfT<E>* D0, ScalarOfT<E>* y0, E* buf, E* X,
                E* work) {
  using T = ScalarOfT<E>;
  gather_lanes(u0, L, L, cs.n, buf);
  rfft_pow2<E>(plan, buf, X, work);
  for (std::int64_t i = 0; i < cs.nf; ++i) {
    const E xr = X[2 * i], xi = X[2 * i + 1];
    X[2 * i] = xr * S[2 * i] - xi * S[2 * i + 1];
    X[2 * i + 1] = xr * S[2 * i + 1] + xi * S[2 * i];
  }
  irfft_pow2<E>(plan, X, buf, work);
  for (std::int64_t l = 0; l < kLanesOf<E>; ++l) {
    T* yr = y0 + l * L;
    const T* ur = u0 + l * L;
    if (D0) {
      const T dh = D0[l];
      for (std::int64_t t = 0; t < L; ++t) yr[t] = get_lane(buf[t], l) + dh * ur[t];
    } else {
      for (std::int64_t t = 0; t < L; ++t) yr[t] = get_lane(buf[t], l);
    }
  }
}

// The channel spectra of whole groups of kBatchLanes<T> channels in batch layout (lane l =
// channel g kB + l): spec_batch[g 2nf + i] lane l = spec[(g kB + l) 2nf + i].
template <class T>
BatchVec<T> batch_spectra(const Vec<T>& spec, std::int64_t groups, std::int64_t nf) {
  constexpr std::int64_t kB = kBatchLanes<T>;
  BatchVec<T> out(sz(2 * nf * groups));
  for (std::int64_t g = 0; g < groups; ++g)
    for (std::int64_t i = 0; i < 2 * nf; ++i)
      for (std::int64_t l = 0; l < kB; ++l) out[sz(g * 2 * nf + i)][l] = spec[sz((g * kB + l) * 2 * nf + i)];
  return out;
}

// FFT buffers for blocks of E, one set per parallel chunk (sized on first use).
template <class E>
struct ConvBuffers {
  AlignedVec<E> buf, X, work;
  void size_for(const ConvSize& cs) {
    if (!buf.empty()) return;
    buf.resize(sz(cs.n)), X.resize(sz(2 * cs.nf)), work.resize(sz(2 * cs.n));
  }
};

}  // namespace

// Rows run kBatchLanes<T> channels at a time (8 float32 / 4 float64: one 32-byte vector per
// element, lane l = channel h0 + l of the same batch entry): the FFTs are then vectorised across
// the lanes with no shuffles and no short inner loops, instead of within one transform. Every lane
// performs exactly the one-row path's operations (conv_block and the FFTs are shared templates),
// so a row's bits do not depend on whether it ran in a batch; the H % kBatchLanes leftover
// channels of each batch entry run one at a time.
template <class T>
void fftconv(const T* u, const T* k, const T* D, T* y, std::int64_t batch, std::int64_t H, std::int64_t L,
             std::int64_t Lk, bool bidirectional) {
  if (batch == 0 || H == 0 || L == 0) return;
  constexpr std::int64_t kB = kBatchLanes<T>;
  const ConvSize cs = conv_size(L, Lk, bidirectional);
  const auto& plan = fft_plan<T>(cs.n / 2);
  Vec<T> spec(sz(2 * cs.nf * H));
  parallel_for(0, H, 1, [&](std::int64_t lo, std::int64_t hi) {
    Vec<T> buf(sz(cs.n)), work(sz(2 * cs.n));
    for (std::int64_t h = lo; h < hi; ++h)
      kernel_spectrum<T>(plan, k, H, h, Lk, cs, bidirectional, buf.data(), work.data(),
                         spec.data() + 2 * h * cs.nf);
  });
  const std::int64_t groups = H / kB, singles = H % kB, per_batch = groups + singles;
  const BatchVec<T> spec_batch = batch_spectra(spec, groups, cs.nf);
  parallel_for(0, batch * per_batch, 1, [&](std::int64_t lo, std::int64_t hi) {
    ConvBuffers<Batch<T>> lanes;
    ConvBuffers<T> one;
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t b = item / per_batch, j = item % per_batch;
      if (j < groups) {
        const std::int64_t row0 = b * H + j * kB;
        lanes.size_for(cs);
        conv_block(plan, cs, u + row0 * L, L, spec_batch.data() + j * 2 * cs.nf, D ? D + j * kB : nullptr,
                   y + row0 * L, lanes.buf.data(), lanes.X.data(), lanes.work.data());
      } else {
        const std::int64_t h = groups * kB + (j - groups), row = b * H + h;
        one.size_for(cs);
        conv_block(plan, cs, u + row * L, L, spec.data() + 2 * h * cs.nf, D ? D + h : nullptr,
                   y + row * L, one.buf.data(), one.X.data(), one.work.data());
      }
    }
  });
}

// Backward with the same n: du = irfft(conj(Khat) DYhat)[:L] + D dy (the adjoint correlation),
// dk = irfft(sum_b conj(Uhat_b) DYhat_b) read at m (k0) and n-1-m (k1), dD = sum_{b,t} u dy.
// One work item per block of kLanesOf<E> channels (whole groups of kBatchLanes<T> channels as
// Batch<T> lanes, the leftovers one at a time, as the forward pass), its batch rows in order:
// the same operations per lane as one channel alone, so deterministic and batch-independent bits.
template <class E>
void conv_backward_block(const FftPlan<ScalarOfT<E>>& plan, const ConvSize& cs, const ScalarOfT<E>* u,
                         const ScalarOfT<E>* k, const ScalarOfT<E>* D, const ScalarOfT<E>* dy,
                         ScalarOfT<E>* du, ScalarOfT<E>* dk, ScalarOfT<E>* dD, std::int64_t batch,
                         std::int64_t H, std::int64_t L, std::int64_t Lk, std::int64_t h0,
                         bool bidirectional) {
  using T = ScalarOfT<E>;
  constexpr std::int64_t kL = kLanesOf<E>;
  AlignedVec<E> buf(sz(cs.n)), S(sz(2 * cs.nf)), U(sz(2 * cs.nf)), Y(sz(2 * cs.nf)), acc(sz(2 * cs.nf)),
      work(sz(2 * cs.n));
  {  // the lanes' kernel spectra, one channel at a time
    Vec<T> kbuf(sz(cs.n)), kwork(sz(2 * cs.n)), spectrum(sz(2 * cs.nf));
    for (std::int64_t l = 0; l < kL; ++l) {
      kernel_spectrum<T>(plan, k, H, h0 + l, Lk, cs, bidirectional, kbuf.data(), kwork.data(), spectrum.data());
      for (std::int64_t i = 0; i < 2 * cs.nf; ++i) set_lane(S[sz(i)], l, spectrum[sz(i)]);
    }
  }
  double dd[kL] = {};
  for (std::int64_t b = 0; b < batch; ++b) {
    const std::int64_t row0 = b * H + h0;
    const T* u0 = u + row0 * L;
    const T* g0 = dy + row0 * L;
    gather_lanes(u0, L, L, cs.n, buf.data());
    rfft_pow2<E>(plan, buf.data(), U.data(), work.data());
    gather_lanes(g0, L, L, cs.n, buf.data());
    rfft_pow2<E>(plan, buf.data(), Y.data(), work.data());
    for (std::int64_t i = 0; i < cs.nf; ++i) {
      const E ar = U[sz(2 * i)], ai = U[sz(2 * i + 1)], yr = Y[sz(2 * i)], yi = Y[sz(2 * i + 1)];
      acc[sz(2 * i)] += ar * yr + ai * yi;  // conj(U) Y
      acc[sz(2 * i + 1)] += ar * yi - ai * yr;
      const E sr = S[sz(2 * i)], si = S[sz(2 * i + 1)];
      Y[sz(2 * i)] = sr * yr + si * yi;  // conj(S) Y (S carries 1/n)
      Y[sz(2 * i + 1)] = sr * yi - si * yr;
    }
    irfft_pow2<E>(plan, Y.data(), buf.data(), work.data());
    for (std::int64_t l = 0; l < kL; ++l) {
      T* o = du + (row0 + l) * L;
      const T* ur = u0 + l * L;
      const T* gr = g0 + l * L;
      if (D) {
        const T dh = D[h0 + l];
        for (std::int64_t t = 0; t < L; ++t) o[t] = get_lane(buf[sz(t)], l) + dh * gr[t];
        for (std::int64_t t = 0; t < L; ++t) dd[l] += static_cast<double>(ur[t]) * static_cast<double>(gr[t]);
      } else {
        for (std::int64_t t = 0; t < L; ++t) o[t] = get_lane(buf[sz(t)], l);
      }
    }
  }
  irfft_pow2<E>(plan, acc.data(), buf.data(), work.data());
  const T scale = T(1) / static_cast<T>(cs.n);
  for (std::int64_t l = 0; l < kL; ++l) {
    const std::int64_t h = h0 + l;
    if (dD) dD[h] = static_cast<T>(dd[l]);
    T* k0 = dk + h * Lk;
    for (std::int64_t m = 0; m < Lk; ++m) k0[m] = m < cs.lk ? get_lane(buf[sz(m)], l) * scale : T(0);
    if (bidirectional) {
      T* k1 = dk + (H + h) * Lk;
      for (std::int64_t m = 0; m < Lk; ++m) k1[m] = m < cs.lk ? get_lane(buf[sz(cs.n - 1 - m)], l) * scale : T(0);
    }
  }
}

template <class T>
void fftconv_backward(const T* u, const T* k, const T* D, const T* dy, T* du, T* dk, T* dD, std::int64_t batch,
                      std::int64_t H, std::int64_t L, std::int64_t Lk, bool bidirectional) {
  if (H == 0) return;
  const std::int64_t nk = bidirectional ? 2 : 1;
  if (batch == 0 || L == 0) {
    std::fill(dk, dk + nk * H * Lk, T(0));
    if (dD) std::fill(dD, dD + H, T(0));
    return;
  }
  constexpr std::int64_t kB = kBatchLanes<T>;
  const ConvSize cs = conv_size(L, Lk, bidirectional);
  const auto& plan = fft_plan<T>(cs.n / 2);
  const std::int64_t groups = H / kB, singles = H % kB;
  parallel_for(0, groups + singles, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      if (item < groups)
        conv_backward_block<Batch<T>>(plan, cs, u, k, D, dy, du, dk, dD, batch, H, L, Lk, item * kB,
                                      bidirectional);
      else
        conv_backward_block<T>(plan, cs, u, k, D, dy, du, dk, dD, batch, H, L, Lk,
                               groups * kB + (item - groups), bidirectional);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// RTF kernel (notes §8), in fp64 internally (the division by DFT([1, a]) amplifies errors).
// ---------------------------------------------------------------------------------------------
template <class T>
void rtf_kernel(const T* a, const T* b, const T* h0, T* out, std::int64_t H, std::int64_t N, std::int64_t L) {
  if (H == 0 || L == 0) return;
  const std::int64_t n = L + (L & 1);
  FASTCORE_CHECK(N < n, "rtf_kernel: state size ", N, " must be < the even length ", n);
  const std::int64_t nf = n / 2 + 1;
  parallel_for(0, H, 1, [&](std::int64_t lo, std::int64_t hi) {
    Vec<double> xa(sz(n)), xb(sz(n)), A(sz(2 * nf)), Bf(sz(2 * nf)), kk(sz(n));
    for (std::int64_t h = lo; h < hi; ++h) {
      std::fill(xa.begin(), xa.end(), 0.0);
      std::fill(xb.begin(), xb.end(), 0.0);
      xa[0] = 1.0;
      for (std::int64_t i = 0; i < N; ++i) {
        xa[sz(1 + i)] = static_cast<double>(a[h * N + i]);
        xb[sz(1 + i)] = static_cast<double>(b[h * N + i]);
      }
      rfft_any<double>(n, xa.data(), A.data());
      rfft_any<double>(n, xb.data(), Bf.data());
      const double c0 = static_cast<double>(h0[h]);
      for (std::int64_t i = 0; i < nf; ++i) {
        const cd q = cd(Bf[sz(2 * i)], Bf[sz(2 * i + 1)]) / cd(A[sz(2 * i)], A[sz(2 * i + 1)]) + c0;
        A[sz(2 * i)] = q.real();
        A[sz(2 * i + 1)] = q.imag();
      }
      irfft_any<double>(n, A.data(), kk.data());
      for (std::int64_t l = 0; l < L; ++l) out[h * L + l] = static_cast<T>(kk[sz(l)] / static_cast<double>(n));
    }
  });
}

// Power-of-two lengths m run kBatchLanes<T> rows at a time as the lanes of one batched FFT:
// on_group(r0, buffers) for each whole group of rows r0 .. r0 + kBatchLanes - 1; other lengths
// and the leftover rows one at a time, on_row(r). Parallel with a fixed partition.
template <class T, class Group, class Row>
void for_row_groups(std::int64_t rows, std::int64_t m, Group&& on_group, Row&& on_row) {
  constexpr std::int64_t kB = kBatchLanes<T>;
  const std::int64_t groups = (m >= 2 && is_pow2(m)) ? rows / kB : 0;
  const ConvSize cs{m, m, m / 2 + 1};  // buffers for m reals and m/2 + 1 complex
  parallel_for(0, groups + (rows - groups * kB), 1, [&](std::int64_t lo, std::int64_t hi) {
    ConvBuffers<Batch<T>> lanes;
    for (std::int64_t item = lo; item < hi; ++item) {
      if (item < groups) {
        lanes.size_for(cs);
        on_group(item * kB, lanes);
      } else {
        on_row(groups * kB + (item - groups));
      }
    }
  });
}

// The same operations per lane as rfft_any / irfft_any on one row: the same bits.
template <class T>
void rfft_rows(const T* x, T* X, std::int64_t rows, std::int64_t m) {
  const std::int64_t nf = m / 2 + 1;
  for_row_groups<T>(
      rows, m,
      [&](std::int64_t r0, ConvBuffers<Batch<T>>& lanes) {
        gather_lanes(x + r0 * m, m, m, m, lanes.buf.data());
        rfft_pow2<Batch<T>>(fft_plan<T>(m / 2), lanes.buf.data(), lanes.X.data(), lanes.work.data());
        for (std::int64_t l = 0; l < kBatchLanes<T>; ++l)
          for (std::int64_t i = 0; i < 2 * nf; ++i) X[2 * (r0 + l) * nf + i] = get_lane(lanes.X[sz(i)], l);
      },
      [&](std::int64_t r) { rfft_any<T>(m, x + r * m, X + 2 * r * nf); });
  // The DC bin, and the Nyquist bin of an even length, of a real signal's spectrum are real: their
  // imaginary parts are rounding residues (~1e-15 relative), set to the exact 0 NumPy gives.
  for (std::int64_t r = 0; r < rows; ++r) {
    X[2 * r * nf + 1] = T(0);
    if (m % 2 == 0) X[2 * r * nf + 2 * (nf - 1) + 1] = T(0);
  }
}

template <class T>
void irfft_rows(const T* X, T* x, std::int64_t rows, std::int64_t m) {
  const std::int64_t nf = m / 2 + 1;
  const T scale = static_cast<T>(1.0 / static_cast<double>(m));
  for_row_groups<T>(
      rows, m,
      [&](std::int64_t r0, ConvBuffers<Batch<T>>& lanes) {
        gather_lanes(X + 2 * r0 * nf, 2 * nf, 2 * nf, 2 * nf, lanes.X.data());
        irfft_pow2<Batch<T>>(fft_plan<T>(m / 2), lanes.X.data(), lanes.buf.data(), lanes.work.data());
        for (std::int64_t l = 0; l < kBatchLanes<T>; ++l)
          for (std::int64_t i = 0; i < m; ++i) x[(r0 + l) * m + i] = get_lane(lanes.buf[sz(i)], l) * scale;
      },
      [&](std::int64_t r) {
        irfft_any<T>(m, X + 2 * r * nf, x + r * m);
        for (std::int64_t i = 0; i < m; ++i) x[r * m + i] *= scale;
      });
}

#define FASTCORE_S4_ENTRY(name, T, S, PARAMS, ARGS) \
  void name##_##S PARAMS { ::fastcore::s4::FASTCORE_ISA_NS::name<T> ARGS; }
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_ENTRY, float, f32)
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_ENTRY, double, f64)

#else  // AVX-512: forward to the AVX2 build

#define FASTCORE_S4_ENTRY_FWD(name, T, S, PARAMS, ARGS) \
  void name##_##S PARAMS { ::fastcore::s4::isa_avx2::name##_##S ARGS; }
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_ENTRY_FWD, float, f32)
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_ENTRY_FWD, double, f64)

#endif  // FASTCORE_ISA_LEVEL != 2


}  // namespace FASTCORE_ISA_NS
}  // namespace s4
}  // namespace fastcore
