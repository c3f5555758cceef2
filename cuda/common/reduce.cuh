// Warp and block reductions in a fixed order (deterministic: the same inputs in the same
// positions give bitwise the same result on every run).
#pragma once

#include <cuda_runtime.h>

namespace fastcore {
namespace cuda {

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// max that propagates NaN (fmaxf would drop it): a NaN anywhere in the row makes the max NaN.
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return (a > b || a != a) ? a : b; }
  __device__ __forceinline__ double operator()(double a, double b) const { return (a > b || a != a) ? a : b; }
};

// Butterfly reduction over the 32 lanes of a warp; every lane gets the result.
template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduction over a whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` is shared memory for 32 values; the call synchronises the block twice.
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = (blockDim.x + 31) >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = scratch[0];
  for (int w = 1; w < n_warps; ++w) r = op(r, scratch[w]);
  __syncthreads();  // scratch may be reused right after
  return r;
}

}  // namespace cuda
}  // namespace fastcore
