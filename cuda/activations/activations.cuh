// Probability maps on the GPU (host launchers). Layout and semantics as cpp/activations:
// the input is (outer, n, inner) C-contiguous, the map acts along n; mask bytes (0 = masked) or
// nullptr; storage float16 / bfloat16 / float32 with float32 element arithmetic, or float64; the
// sparse-map thresholds are iterated in float64 (fast on data-centre GPUs, exact to rounding).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace fastcore {
namespace cuda {
namespace activations {

enum Dtype : int { kF32 = 0, kF16 = 1, kBF16 = 2, kF64 = 3 };

struct ForwardParams {
  int map = 0;  // 0 softmax, 1 log-softmax, 2 sparsemax, 3 1.5-entmax, 4 alpha-entmax
  int dtype = kF32;
  const void* x = nullptr;
  const std::uint8_t* mask = nullptr;
  void* y = nullptr;
  std::int64_t outer = 0, n = 1, inner = 1;
  double scale = 1.0, alpha = 1.5;
  int n_iter = 0;
};

struct BackwardParams {
  int map = 0;
  int dtype = kF32;
  const void* y = nullptr;
  const void* dy = nullptr;
  void* dx = nullptr;
  std::int64_t outer = 0, n = 1, inner = 1;
  double scale = 1.0, alpha = 1.5;
};

void forward(const ForwardParams& p, cudaStream_t stream);
void backward(const BackwardParams& p, cudaStream_t stream);

}  // namespace activations
}  // namespace cuda
}  // namespace fastcore
