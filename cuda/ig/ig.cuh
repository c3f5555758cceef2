// Integrated gradients on CUDA (host launchers; kernels in ig.cu). Used by python/fastcore/_ig_cuda.py:
// the generic path (a CuPy gradient callable) and the element-wise parts of the fused built-in models,
// whose matrix products run through CuPy (cuBLAS). Every launcher takes the caller's stream.
//
// dtype codes: 0 = float32, 1 = float64 (storage and math; path points and accumulations are formed in
// double with explicitly rounded operations, as on the CPU, so those agree bitwise with the CPU kernels).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fastcore {
namespace cuda {
namespace ig {

// out[row, :] = (1 − a_k) * xb[i * xb_row_stride, :] + a_k * x[i, :] for path rows r = r0 + row,
// k = r / N, i = r % N (step-major); x (N, D), out (m, D); alphas (S,) double on the device.
void interpolate(int dtype, const void* x, const void* xb, std::int64_t xb_row_stride, std::int64_t N,
                 std::int64_t D, const double* alphas, std::int64_t r0, std::int64_t m, void* out,
                 cudaStream_t stream);

// acc[i, :] += w_k * g[row, :] (acc double (N, D), g (m, D)) walking each example's rows in ascending
// step order (one thread per (example, column)): bitwise independent of the chunking. A non-finite g
// element lowers *first_bad (unsigned 64-bit, initialised by the caller to UINT64_MAX) to its global
// flat index r * D + col with atomicMin (deterministic: the minimum).
void accumulate(int dtype, double* acc, const void* g, std::int64_t N, std::int64_t D, const double* weights,
                std::int64_t r0, std::int64_t m, unsigned long long* first_bad, cudaStream_t stream);

// Activations (0 relu, 1 gelu (erf), 2 gelu_tanh, 3 tanh): h = act(z); d *= act'(z) (tanh uses h).
void act_forward(int dtype, int act, const void* z, void* h, std::int64_t n, cudaStream_t stream);
void act_backward(int dtype, int act, const void* z, const void* h, void* d, std::int64_t n,
                  cudaStream_t stream);

// Per row of logits z (rows, C): F (double, may be null) and dF/dz into dz (may be null) for output
// 0 logit, 1 softmax, 2 log_softmax; the target of row `row` is target[(r0 + row) % N] (null: 0).
void output_rows(int dtype, int output, const void* z, std::int64_t rows, std::int64_t C,
                 const std::int64_t* target, std::int64_t r0, std::int64_t N, double* F, void* dz,
                 cudaStream_t stream);

}  // namespace ig
}  // namespace cuda
}  // namespace fastcore
