// The per-ISA entry points of the S4 kernels (s4_kernels.simd.cpp), one per (function, dtype),
// and the list that both the definitions and the dispatcher (s4.cpp) expand.
#pragma once

#include <cstdint>

#include "common/simd.hpp"
#include "s4/s4.hpp"

// X(name, T, suffix, (parameters), (arguments))
#define FASTCORE_S4_FUNCTIONS(X, T, S)                                                                            \
  X(cauchy, T, S,                                                                                                 \
    (const T* v, const T* z, const T* w, T* out, std::int64_t batch, std::int64_t N, std::int64_t Lz, bool conj), \
    (v, z, w, out, batch, N, Lz, conj))                                                                           \
  X(cauchy_backward, T, S,                                                                                        \
    (const T* v, const T* z, const T* w, const T* g, T* dv, T* dw, std::int64_t batch, std::int64_t N,            \
     std::int64_t Lz, bool conj),                                                                                 \
    (v, z, w, g, dv, dw, batch, N, Lz, conj))                                                                     \
  X(vandermonde, T, S,                                                                                            \
    (const double* v, const double* x, T* out, std::int64_t batch, std::int64_t N, std::int64_t L, bool real_out), \
    (v, x, out, batch, N, L, real_out))                                                                           \
  X(vandermonde_backward, T, S,                                                                                   \
    (const double* v, const double* x, const T* g, double* dv, double* dx, std::int64_t batch, std::int64_t N,   \
     std::int64_t L, bool real_out),                                                                              \
    (v, x, g, dv, dx, batch, N, L, real_out))                                                                     \
  X(kernel_dplr, T, S,                                                                                            \
    (const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt, T* K, const DplrShape& s),          \
    (Lambda, P, B, Ct, dt, K, s))                                                                                 \
  X(kernel_dplr_backward, T, S,                                                                                   \
    (const T* Lambda, const T* P, const T* B, const T* Ct, const double* dt, const double* dkhat, double* dv,     \
     double* dw, const DplrShape& s),                                                                             \
    (Lambda, P, B, Ct, dt, dkhat, dv, dw, s))                                                                     \
  X(fftconv, T, S,                                                                                                \
    (const T* u, const T* k, const T* D, T* y, std::int64_t batch, std::int64_t H, std::int64_t L,               \
     std::int64_t Lk, bool bidirectional),                                                                        \
    (u, k, D, y, batch, H, L, Lk, bidirectional))                                                                 \
  X(fftconv_backward, T, S,                                                                                       \
    (const T* u, const T* k, const T* D, const T* dy, T* du, T* dk, T* dD, std::int64_t batch, std::int64_t H,   \
     std::int64_t L, std::int64_t Lk, bool bidirectional),                                                        \
    (u, k, D, dy, du, dk, dD, batch, H, L, Lk, bidirectional))                                                    \
  X(rtf_kernel, T, S,                                                                                             \
    (const T* a, const T* b, const T* h0, T* out, std::int64_t H, std::int64_t N, std::int64_t L),               \
    (a, b, h0, out, H, N, L))                                                                                     \
  X(rfft_rows, T, S, (const T* x, T* X, std::int64_t rows, std::int64_t m), (x, X, rows, m))                      \
  X(irfft_rows, T, S, (const T* X, T* x, std::int64_t rows, std::int64_t m), (X, x, rows, m))

#define FASTCORE_S4_DECL(name, T, S, PARAMS, ARGS) void name##_##S PARAMS;

namespace fastcore {
namespace s4 {
FASTCORE_ISA_DECLARE(FASTCORE_S4_FUNCTIONS(FASTCORE_S4_DECL, float, f32)
                         FASTCORE_S4_FUNCTIONS(FASTCORE_S4_DECL, double, f64))
}  // namespace s4
}  // namespace fastcore
