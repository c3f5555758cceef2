// Fused Monarch multiply on the GPU (host launchers). Layout as cpp/monarch and notes/monarch.md:
// w1 (K, Q, P), w2 (L, S, R) with L·R = K·Q, all C-contiguous; M = P_out · BD(w2) · P_mid · BD(w1).
//   forward  y (B, L·S) = x (B, K·P) · Mᵀ
//   adjoint  x (B, K·P) = y (B, L·S) · conj(M)   (real dtypes only here, so conj is a no-op)
// Intermediate index i = k·Q + q feeds second-stage block l = i mod L at offset r = i div L; block
// l's output row s is output column s·L + l.
//
// One launch per call (two when a 16-bit tensor-core forward has B mod 16 leftover rows): each
// thread block takes a tile of batch rows, computes stage 1 for them into shared memory with P_mid
// folded into the shared-memory addressing, synchronises, and computes stage 2 from shared memory
// with P_out folded into the global store addressing. No intermediate reaches global memory and
// there is no copy pass. Storage float32 / float16 / bfloat16; arithmetic and accumulation float32.
//
// Kernels (see monarch.cu for the details and the reasons for the tile sizes):
//  - tensor cores (forward, 16-bit, P, Q, R, S multiples of 16, compute capability >= 8.0, 32-byte
//    aligned x/w1/w2): tiles of 16 rows, WMMA 16x16x16 with float accumulators; the intermediate
//    is rounded once to the storage type (the WMMA A operand is 16-bit).
//  - SIMT (everything else, any block sizes >= 1): tiles of 1..8 rows, one float32 FMA chain per
//    output element, the intermediate kept in float32.
// plan() says which one a call would use; multiply() returns false (and launches nothing) when
// neither fits in this device's shared memory, and the caller then uses the unfused path.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace fastcore {
namespace cuda {
namespace monarch {

enum Dtype : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

struct Params {
  int dtype = kF32;
  bool adjoint = false;
  const void* in = nullptr;  // x (B, K·P) forward, y (B, L·S) adjoint
  const void* w1 = nullptr;  // (K, Q, P)
  const void* w2 = nullptr;  // (L, S, R)
  void* out = nullptr;       // y (B, L·S) forward, x (B, K·P) adjoint; must not overlap the inputs
  std::int64_t batch = 0;
  std::int64_t K = 1, Q = 1, P = 1, L = 1, S = 1, R = 1;
};

enum class Kernel : int { kNone = 0, kSimt = 1, kTensorCore = 2 };

struct Plan {
  Kernel kernel = Kernel::kNone;
  int rows = 0;                    // batch rows per thread block
  std::size_t shared_bytes = 0;    // dynamic shared memory per thread block
  std::int64_t tc_rows = 0;        // rows done by the tensor-core kernel (a multiple of 16)
};

// The kernel choice for p on the current device (no launch, no device synchronisation).
// Throws fastcore::ValueError for inconsistent sizes.
Plan plan(const Params& p);

// Launches the fused multiply on `stream` and returns true, or returns false without launching
// when plan(p).kernel == Kernel::kNone. B = 0 launches nothing and returns true.
bool multiply(const Params& p, cudaStream_t stream);

}  // namespace monarch
}  // namespace cuda
}  // namespace fastcore
