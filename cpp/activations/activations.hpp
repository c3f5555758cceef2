// Probability maps on the CPU: softmax, log-softmax, sparsemax, 1.5-entmax, alpha-entmax
// (bisection), top-k softmax; their backward passes and the fused Fenchel-Young losses.
//
// Layout: the input is viewed as (outer, n, inner) C-contiguous, the map acting along n (any axis
// of a C-contiguous array, no transposing copy). Rows with inner == 1 are processed in place.
// For inner >= 16, softmax/log-softmax (columns up to 256 KiB) and every backward map work on
// strips of neighbouring columns in place with kernels vectorised across the columns (same bits
// as the row path); otherwise a tile of neighbouring columns is transposed into per-thread
// scratch rows, mapped as contiguous rows, and transposed back (activations.cpp).
//
// Semantics (docs in python/fastcore/activations.py): masked entries (mask byte 0) and -inf
// logits get probability exactly 0; a row with nothing left gives zeros (log-softmax: -inf); a NaN
// or +inf logit makes its row NaN. Results are bitwise identical for any thread count and SIMD
// level (fixed-order lane sums, the project's exp).
#pragma once

#include <cstdint>

namespace fastcore {
namespace activations {

struct Layout {
  std::int64_t outer = 1;
  std::int64_t n = 1;      // length of the mapped axis
  std::int64_t inner = 1;  // product of the dimensions after the axis
};

enum class Map : int { softmax = 0, log_softmax = 1, sparsemax = 2, entmax15 = 3, bisect = 4 };

// y = map(scale * x) along n. mask: nullptr or one byte per element of x (0 = masked).
// alpha / n_iter are used by Map::bisect only (n_iter <= 0: iterate to convergence).
template <class T>
void forward(Map map, const T* x, const std::uint8_t* mask, T* y, Layout layout, double scale,
             double alpha, int n_iter);

// Softmax over the k largest entries of each row (ties: the lower index wins), zero elsewhere.
template <class T>
void topk_softmax(const T* x, T* y, Layout layout, std::int64_t k);

// dx = scale * J(y)^T dy: the backward pass from the forward output y (for log-softmax y is the
// log-probabilities). alpha is used by Map::bisect only.
template <class T>
void backward(Map map, const T* y, const T* dy, T* dx, Layout layout, double scale, double alpha);

// Fused losses (Map::softmax = cross-entropy, sparsemax, entmax15 = Fenchel-Young losses):
// loss has outer*inner entries (the row's target index in target), grad = p - onehot(target).
template <class T>
void loss(Map map, const T* x, const std::int64_t* target, T* loss_out, T* grad, Layout layout);

}  // namespace activations
}  // namespace fastcore
