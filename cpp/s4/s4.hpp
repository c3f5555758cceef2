// S4 kernels on the CPU (fastcore.s4): Cauchy and Vandermonde products, S4 (DPLR) kernel
// generation, FFT convolution, RTF kernels. Complex arrays are interleaved (re, im) pairs of the
// real type T (float for complex64, double for complex128); every array is C-contiguous.
//
// Conventions (notes/s4.md §1-3): N stored states = one half of the conjugate pairs; the
// conjugate-pair Cauchy sum is sum_i v_i/(z - w_i) + conj(v_i)/(z - conj(w_i)); kernels are
// real, K_l = C Abar^l Bbar on the full state. Work is cut by a fixed partition (rows, or rows x
// node blocks), so results are bitwise identical for any thread count.
#pragma once

#include <cstdint>

namespace fastcore {
namespace s4 {

// out[b, j] = sum_i v[b,i]/(z[j] - w[b,i])  (+ conj(v)/(z - conj w) when conj).
template <class T>
void cauchy(const T* v, const T* z, const T* w, T* out, std::int64_t batch, std::int64_t N, std::int64_t Lz,
            bool conj);

// Gradients of the above with g = dL/dRe y + i dL/dIm y (notes §6.1): dv, dw (batch, N).
template <class T>
void cauchy_backward(const T* v, const T* z, const T* w, const T* g, T* dv, T* dw, std::int64_t batch,
                     std::int64_t N, std::int64_t Lz, bool conj);

// y[b, l] = sum_n v[b,n] exp(x[b,n] l), l < L. v, x given in double (complex128) so that the phase
// x*l is exact; out is real 2 Re(y) (real_out) or complex y, in T.
template <class T>
void vandermonde(const double* v, const double* x, T* out, std::int64_t batch, std::int64_t N, std::int64_t L,
                 bool real_out);

// dv[b,n] = sum_l G_l conj(e^{x l}), dx[b,n] = conj(v) sum_l G_l l conj(e^{x l}) with G = 2 g (real
// g, real_out) or g (complex g). Outputs complex128.
template <class T>
void vandermonde_backward(const double* v, const double* x, const T* g, double* dv, double* dx,
                          std::int64_t batch, std::int64_t N, std::int64_t L, bool real_out);

struct DplrShape {
  std::int64_t H = 0, N = 0, rank = 0, channels = 0, L = 0;
};

// K (channels, H, L) real from Lambda (H,N), P (rank,H,N), B (H,N), Ct (channels,H,N) complex T
// and dt (H) double: the S4 kernel via shared-denominator conjugate-pair Cauchy sums at the
// nodes z_k = 2i tan(pi k/L), Woodbury for any rank, the Nyquist node in closed form, inverse DFT.
template <class T>
void kernel_dplr(const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt, T* K, const DplrShape& s);

// Backward of kernel_dplr's spectrum: dkhat (channels, H, (L+1)/2) complex128 = dL/d khat at the
// regular nodes (through the inverse DFT's adjoint and the (1 + i t) factor) -> dv (np, H, N) the
// gradients of the Cauchy numerators v_p = dt b_a c_c, p = a (C + rank) + c, and dw (H, N) the
// poles' gradient summed over the products (cauchy_backward's convention); complex128 outputs.
template <class T>
void kernel_dplr_backward(const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt,
                          const double* dkhat, double* dv, double* dw, const DplrShape& s);

// y (rows, L) = causal (or bidirectional) linear convolution of u (rows = batch*H, L) with the
// per-channel kernels k (nk kernels per channel: 1 or 2, each (H, Lk)) + D[h] u (D may be null).
// Bidirectional: y[t] += sum_m k1[m] u[t+m+1] (strictly anticausal, the reference's convention).
template <class T>
void fftconv(const T* u, const T* k, const T* D, T* y, std::int64_t batch, std::int64_t H, std::int64_t L,
             std::int64_t Lk, bool bidirectional);

// du (batch,H,L), dk (nk,H,Lk), dD (H) (null when D is null) for the above.
template <class T>
void fftconv_backward(const T* u, const T* k, const T* D, const T* dy, T* du, T* dk, T* dD, std::int64_t batch,
                      std::int64_t H, std::int64_t L, std::int64_t Lk, bool bidirectional);

// RTF kernel (notes §8): per channel k = IDFT_n(DFT_n([0, b]) / DFT_n([1, a]) + h0)[:L], n = L
// rounded up to even. a, b (H, N) real, h0 (H), out (H, L).
template <class T>
void rtf_kernel(const T* a, const T* b, const T* h0, T* out, std::int64_t H, std::int64_t N, std::int64_t L);

// Batched FFT helpers exposed for tests: rows of real length m <-> rows of m/2+1 complex.
template <class T>
void rfft_rows(const T* x, T* X, std::int64_t rows, std::int64_t m);
template <class T>
void irfft_rows(const T* X, T* x, std::int64_t rows, std::int64_t m);  // normalised (1/m), like numpy

}  // namespace s4
}  // namespace fastcore
