// S4 kernels on CUDA (fastcore.s4 with CuPy arrays). The FFT steps run in cuFFT through CuPy
// (Python side); these kernels do the parts cuFFT cannot: the Cauchy sums (with the shared
// denominators and the fused Woodbury step of the S4 kernel), the Vandermonde sums, and the
// spectrum multiply of the FFT convolution. Every host launcher takes the caller's stream.
// Complex arrays are interleaved (re, im) pairs of T (float: complex64, double: complex128).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace fastcore {
namespace cuda {
namespace s4 {

// Limits of the fused S4 kernel (per-thread register accumulators): (1 + rank)(C + rank)
// products at most, rank at most kMaxRank.
constexpr int kMaxProducts = 16;
constexpr int kMaxRank = 3;

template <class T>
void cauchy(const T* v, const T* z, const T* w, T* out, std::int64_t batch, std::int64_t N, std::int64_t Lz,
            bool conj, cudaStream_t stream);

template <class T>
void cauchy_backward(const T* v, const T* z, const T* w, const T* g, T* dv, T* dw, std::int64_t batch,
                     std::int64_t N, std::int64_t Lz, bool conj, cudaStream_t stream);

// v, x complex128 (the phase is anchored in double); out real (real_out: 2 Re) or complex T.
template <class T>
void vandermonde(const double* v, const double* x, T* out, std::int64_t batch, std::int64_t N, std::int64_t L,
                 bool real_out, cudaStream_t stream);

// dv[b,n] = sum_l G_l conj(e^{x l}), dx[b,n] = conj(v) sum_l G_l l conj(e^{x l}) (G = 2 g for real g),
// in double; v, x, dv, dx complex128, g real T (real_out) or complex T.
template <class T>
void vandermonde_backward(const double* v, const double* x, const T* g, double* dv, double* dx,
                          std::int64_t batch, std::int64_t N, std::int64_t L, bool real_out, cudaStream_t stream);

// Regular nodes k < (L+1)/2 of the S4 kernel spectrum: Khat (C, H, L/2+1) complex T; the Nyquist
// entry (even L) is left to the caller. alpha, beta (H, np, N) real T are the per-state numerator
// coefficients of the (1+r)(C+r) products (product p = a*(C+r) + c), w (H, N) complex T = dt Lambda.
template <class T>
void dplr_spectrum(const T* alpha, const T* beta, const T* w, T* khat, std::int64_t H, std::int64_t N,
                   int rank, int channels, std::int64_t L, cudaStream_t stream);

// X (rows, nf) *= S (H, nf) (or conj(S)), h = row % H.
template <class T>
void spectrum_multiply(T* X, const T* S, std::int64_t rows, std::int64_t H, std::int64_t nf, bool conj,
                       cudaStream_t stream);

}  // namespace s4
}  // namespace cuda
}  // namespace fastcore
