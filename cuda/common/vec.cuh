// Vectorised (16-byte) loads and stores, and float conversion of the storage types.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace fastcore {
namespace cuda {

// N elements of T moved as one aligned access (N * sizeof(T) == 16 for the fast path).
template <class T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <class T>
constexpr int pack_size_16B() { return 16 / static_cast<int>(sizeof(T)); }

// True when p is aligned for Pack<T, N> accesses.
template <class T, int N>
__host__ __device__ inline bool is_pack_aligned(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) % (sizeof(T) * N)) == 0;
}

template <class T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T, N>*>(p);
}
template <class T, int N>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& v) {
  *reinterpret_cast<Pack<T, N>*>(p) = v;
}

// Storage <-> compute conversions: 16-bit types compute in float.
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ double to_float(double x) { return x; }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// The arithmetic type for a storage type: float for 16-bit and float storage, double for double.
template <class T> struct AccType { using type = float; };
template <> struct AccType<double> { using type = double; };
template <class T> using acc_t = typename AccType<T>::type;

}  // namespace cuda
}  // namespace fastcore
