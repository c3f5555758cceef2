// Tiger optimizer step on CUDA: the whole tensor list in at most two kernel launches.
//
// Launch 1 (only when RMS or a non-finite check is needed): per tile, the sum of squares of theta
// (double) and the non-finite flag of g; the last tile of each tensor to finish (atomic ticket)
// combines the tensor's tile partials in tile order, so the result is deterministic, and writes
// the tensor's eta and flag. Row-RMS tensors get one eta per row (a warp per row).
// Launch 2: the update, one tile per block, math in float32 with explicit round-to-nearest
// intrinsics (no FMA contraction: the same operations as the CPU kernel and the reference).
//
// Metadata (one TensorMeta per tensor plus a tile prefix) lives in device memory, copied from the
// host with one cudaMemcpyAsync into a stream-ordered allocation, so any list length fits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace fastcore {
namespace cuda {
namespace tiger {

enum DtypeCode : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

struct TensorHost {
  void* p = nullptr;
  void* m = nullptr;
  const void* g = nullptr;
  std::int64_t n = 0;
  std::int64_t row_len = 1;
  int p_dtype = kF32;  // grads share it
  int m_dtype = kF32;
  int rms_mode = 1;    // 0 none, 1 tensor, 2 row
  bool lazy_rows = false;
  double lr_mult = 1.0;
  double weight_decay = 0.0;
  double centre = 0.0;
  int found_inf = -1;
};

struct StepHost {
  std::int64_t step = 0;
  std::int64_t accum = 1;
  double lr = 0.0;
  double beta = 0.965;
  double rms_floor = 0.0;
  double shrink_ratio = 0.99;
  int action = 0;  // 0 shrink, 1 skip, 2 ignore
  bool nan_only = false;
  bool global_scope = false;
  bool strict = false;
  bool lion = false;
  double beta2 = 0.0;
  bool maximize = false;
  bool stochastic_rounding = false;
  std::uint64_t seed = 0;
};

// Runs the step on `stream`; flags_out: device uint8[n] (1 = tensor treated as non-finite).
// Returns the number of kernel launches made (1 or 2; 0 for an empty list).
int step(const std::vector<TensorHost>& tensors, const StepHost& args, std::uint8_t* flags_out,
         cudaStream_t stream);

// splitmix64-based counter hash used for stochastic rounding (also computed on the host by the
// tests): a key per (seed, step, tensor), then 16 random bits per element index.
__host__ __device__ inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__host__ __device__ inline std::uint64_t sr_key(std::uint64_t seed, std::uint64_t step, std::uint64_t tensor) {
  return splitmix64(splitmix64(seed ^ splitmix64(step)) ^ tensor);
}
__host__ __device__ inline std::uint32_t sr_bits(std::uint64_t key, std::uint64_t index) {
  return static_cast<std::uint32_t>(splitmix64(key ^ index) >> 48);
}

}  // namespace tiger
}  // namespace cuda
}  // namespace fastcore
