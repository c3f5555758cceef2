// Integrated gradients CUDA kernels (see ig.cuh). Grid-stride loops over 64-bit indices.
#include <cstdint>

#include "cuda/common/launch.cuh"
#include "cuda/ig/ig.cuh"

namespace fastcore {
namespace cuda {
namespace ig {

namespace {

constexpr int kThreads = 256;

inline unsigned grid_for(std::int64_t n) { return grid_stride_blocks(ceil_div<std::int64_t>(n, kThreads)); }

template <class T>
__global__ void interpolate_kernel(const T* __restrict__ x, const T* __restrict__ xb, std::int64_t xb_row_stride,
                                   std::int64_t N, std::int64_t D, const double* __restrict__ alphas,
                                   std::int64_t r0, std::int64_t total, T* __restrict__ out) {
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = idx / D, col = idx - row * D;
    const std::int64_t r = r0 + row, k = r / N, i = r - k * N;
    const double a = alphas[k];
    const double b = __dadd_rn(1.0, -a);
    // (1 − a) x' + a x in double, no contraction (the CPU kernel's exact operations), rounded once
    const double v = __dadd_rn(__dmul_rn(b, static_cast<double>(xb[i * xb_row_stride + col])),
                               __dmul_rn(a, static_cast<double>(x[i * D + col])));
    out[idx] = static_cast<T>(v);
  }
}

template <class T>
__device__ __forceinline__ bool finite_of(T v) {
  return isfinite(v);
}

template <class T>
__global__ void accumulate_kernel(double* __restrict__ acc, const T* __restrict__ g, std::int64_t N, std::int64_t D,
                                  const double* __restrict__ weights, std::int64_t r0, std::int64_t m,
                                  std::int64_t n_ex, unsigned long long* first_bad) {
  const std::int64_t total = n_ex * D;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t j = idx / D, col = idx - j * D;
    const std::int64_t i = (r0 + j) % N;
    double a = acc[i * D + col];
    for (std::int64_t row = j; row < m; row += N) {  // ascending row = ascending step
      const std::int64_t k = (r0 + row) / N;
      const T v = g[row * D + col];
      if (!finite_of(v)) atomicMin(first_bad, static_cast<unsigned long long>((r0 + row) * D + col));
      a = __dadd_rn(a, __dmul_rn(weights[k], static_cast<double>(v)));
    }
    acc[i * D + col] = a;
  }
}

template <class T>
__device__ __forceinline__ T tanh_t(T v) {
  return tanh(v);
}

// GELU-tanh's 1 + tanh(u) and 1 - tanh(u)^2 without the cancellation of 1 + tanh(u) for u << 0
// (as mlp_kernels.simd.cpp's tanh_terms): e = exp(-2|u|), 1 + tanh u = 2/(1 + e) (u >= 0) or
// 2e/(1 + e) (u < 0), 1 - tanh^2 u = 4e/(1 + e)^2.
template <class T>
struct TanhTerms {
  T one_plus, one_minus_sq;
};
template <class T>
__device__ __forceinline__ TanhTerms<T> tanh_terms(T u) {
  const T e = exp(T(-2) * fabs(u));
  const T inv = T(1) / (T(1) + e);
  return {T(2) * (u < T(0) ? e : T(1)) * inv, T(4) * e * inv * inv};
}

template <class T>
__global__ void act_forward_kernel(int act, const T* __restrict__ z, T* __restrict__ h, std::int64_t n) {
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const T v = z[idx];
    T out;
    if (act == 0) {
      out = v > T(0) ? v : T(0);
    } else if (act == 1) {
      out = v * (T(0.5) * erfc(-v * T(0.70710678118654752440)));
    } else if (act == 2) {
      const T u = T(0.79788456080286535588) * (v + T(0.044715) * v * v * v);
      out = T(0.5) * v * tanh_terms(u).one_plus;
    } else {
      out = tanh_t(v);
    }
    h[idx] = out;
  }
}

template <class T>
__global__ void act_backward_kernel(int act, const T* __restrict__ z, const T* __restrict__ h, T* __restrict__ d,
                                    std::int64_t n) {
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const T v = z[idx];
    T s;
    if (act == 0) {
      s = v > T(0) ? T(1) : T(0);  // ReLU'(0) = 0 as in PyTorch
    } else if (act == 1) {
      const T Phi = T(0.5) * erfc(-v * T(0.70710678118654752440));
      const T phi = exp(T(-0.5) * v * v) * T(0.39894228040143267794);
      s = Phi + v * phi;
    } else if (act == 2) {
      const T c = T(0.79788456080286535588);
      const TanhTerms<T> t = tanh_terms(c * (v + T(0.044715) * v * v * v));
      // (1 - tanh^2 u) = 0 where |u| overflowed: the slope term is 0, not 0 * inf (as the CPU)
      const T slope = t.one_minus_sq > T(0) ? v * t.one_minus_sq * c * (T(1) + T(3 * 0.044715) * v * v) : T(0);
      s = T(0.5) * t.one_plus + T(0.5) * slope;
    } else {
      const T t = h[idx];
      s = T(1) - t * t;
    }
    d[idx] = d[idx] * s;
  }
}

// One thread per row (C is a handful of classes): stable softmax with the maximum subtracted.
template <class T>
__global__ void output_rows_kernel(int output, const T* __restrict__ z, std::int64_t rows, std::int64_t C,
                                   const std::int64_t* __restrict__ target, std::int64_t r0, std::int64_t N,
                                   double* __restrict__ F, T* __restrict__ dz) {
  for (std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const T* zr = z + row * C;
    const std::int64_t c = target ? target[(r0 + row) % N] : 0;
    if (output == 0) {
      if (F) F[row] = static_cast<double>(zr[c]);
      if (dz) {
        for (std::int64_t j = 0; j < C; ++j) dz[row * C + j] = j == c ? T(1) : T(0);
      }
      continue;
    }
    T mx = zr[0];
    for (std::int64_t j = 1; j < C; ++j) mx = zr[j] > mx ? zr[j] : mx;
    T s = T(0);
    for (std::int64_t j = 0; j < C; ++j) s += exp(zr[j] - mx);
    const T inv = T(1) / s;
    const T pc = exp(zr[c] - mx) * inv;
    if (F) F[row] = static_cast<double>(output == 1 ? pc : (zr[c] - mx) - log(s));
    if (dz) {
      // scale (e_c - p) with 1 - p_c as the sum of the other p_j (no cancellation when p_c ~ 1;
      // mlp_kernels.simd.cpp's output_row)
      const T scale = output == 1 ? pc : T(1);
      T others = T(0);
      for (std::int64_t j = 0; j < C; ++j) {
        const T pj = exp(zr[j] - mx) * inv;
        dz[row * C + j] = -scale * pj;
        others += j == c ? T(0) : pj;
      }
      dz[row * C + c] = scale * others;
    }
  }
}

}  // namespace

void interpolate(int dtype, const void* x, const void* xb, std::int64_t xb_row_stride, std::int64_t N,
                 std::int64_t D, const double* alphas, std::int64_t r0, std::int64_t m, void* out,
                 cudaStream_t stream) {
  const std::int64_t total = m * D;
  if (total <= 0) return;
  if (dtype == 0) {
    launch("ig.interpolate", interpolate_kernel<float>, dim3(grid_for(total)), dim3(kThreads), 0, stream,
           static_cast<const float*>(x), static_cast<const float*>(xb), xb_row_stride, N, D, alphas, r0, total,
           static_cast<float*>(out));
  } else {
    launch("ig.interpolate", interpolate_kernel<double>, dim3(grid_for(total)), dim3(kThreads), 0, stream,
           static_cast<const double*>(x), static_cast<const double*>(xb), xb_row_stride, N, D, alphas, r0, total,
           static_cast<double*>(out));
  }
}

void accumulate(int dtype, double* acc, const void* g, std::int64_t N, std::int64_t D, const double* weights,
                std::int64_t r0, std::int64_t m, unsigned long long* first_bad, cudaStream_t stream) {
  const std::int64_t n_ex = m < N ? m : N;
  const std::int64_t total = n_ex * D;
  if (total <= 0) return;
  if (dtype == 0) {
    launch("ig.accumulate", accumulate_kernel<float>, dim3(grid_for(total)), dim3(kThreads), 0, stream, acc,
           static_cast<const float*>(g), N, D, weights, r0, m, n_ex, first_bad);
  } else {
    launch("ig.accumulate", accumulate_kernel<double>, dim3(grid_for(total)), dim3(kThreads), 0, stream, acc,
           static_cast<const double*>(g), N, D, weights, r0, m, n_ex, first_bad);
  }
}

void act_forward(int dtype, int act, const void* z, void* h, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  if (dtype == 0) {
    launch("ig.act_forward", act_forward_kernel<float>, dim3(grid_for(n)), dim3(kThreads), 0, stream, act,
           static_cast<const float*>(z), static_cast<float*>(h), n);
  } else {
    launch("ig.act_forward", act_forward_kernel<double>, dim3(grid_for(n)), dim3(kThreads), 0, stream, act,
           static_cast<const double*>(z), static_cast<double*>(h), n);
  }
}

void act_backward(int dtype, int act, const void* z, const void* h, void* d, std::int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  if (dtype == 0) {
    launch("ig.act_backward", act_backward_kernel<float>, dim3(grid_for(n)), dim3(kThreads), 0, stream, act,
           static_cast<const float*>(z), static_cast<const float*>(h), static_cast<float*>(d), n);
  } else {
    launch("ig.act_backward", act_backward_kernel<double>, dim3(grid_for(n)), dim3(kThreads), 0, stream, act,
           static_cast<const double*>(z), static_cast<const double*>(h), static_cast<double*>(d), n);
  }
}

void output_rows(int dtype, int output, const void* z, std::int64_t rows, std::int64_t C,
                 const std::int64_t* target, std::int64_t r0, std::int64_t N, double* F, void* dz,
                 cudaStream_t stream) {
  if (rows <= 0) return;
  if (dtype == 0) {
    launch("ig.output_rows", output_rows_kernel<float>, dim3(grid_for(rows)), dim3(kThreads), 0, stream, output,
           static_cast<const float*>(z), rows, C, target, r0, N, F, static_cast<float*>(dz));
  } else {
    launch("ig.output_rows", output_rows_kernel<double>, dim3(grid_for(rows)), dim3(kThreads), 0, stream, output,
           static_cast<const double*>(z), rows, C, target, r0, N, F, static_cast<double*>(dz));
  }
}

}  // namespace ig
}  // namespace cuda
}  // namespace fastcore
