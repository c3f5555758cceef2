// Monarch matrices on the CPU (Dao et al. 2022; notes/monarch.md), in the reference layout:
//   x (B, n_in), w1 (K, Q, P) with K*P = n_in, w2 (L, S, R) with L*R = K*Q, y (B, L*S),
//   M = P_out * BD(w2) * P_mid * BD(w1), y = x M^T.
// Intermediate index i = k*Q + q goes to second-stage block l = i mod L at offset r = i div L;
// the output index of (l, s) is s*L + l. Both permutations are folded into the addressing.
//
// The batch is cut into fixed tiles (independent of the thread count) processed in parallel;
// each tile does stage 1 into a per-thread buffer (kept in cache), then stage 2 per block l.
// Weight gradients reduce the batch in a fixed number of chunks added in chunk order: results
// are bitwise identical for any thread count. No atomics.
#pragma once

#include <complex>
#include <cstdint>

namespace fastcore {
namespace monarch {

struct Shape {
  std::int64_t batch = 0;
  std::int64_t K = 1, Q = 1, P = 1;  // w1 (K, Q, P)
  std::int64_t L = 1, S = 1, R = 1;  // w2 (L, S, R)
  std::int64_t n_in() const { return K * P; }
  std::int64_t n_out() const { return L * S; }
};

// y = x M^T.
template <class T>
void multiply(const T* x, const T* w1, const T* w2, T* y, const Shape& shape);

// x = y conj(M): the adjoint product (also dX of the backward pass). y is (B, n_out).
template <class T>
void multiply_adjoint(const T* y, const T* w1, const T* w2, T* x, const Shape& shape);

// Gradients of a real loss for y = x M^T (complex: PyTorch's convention, conjugated inputs):
//   dx = dy conj(M), dw1, dw2 = sums over the batch of dy (x) conj(activations).
template <class T>
void multiply_backward(const T* x, const T* w1, const T* w2, const T* dy, T* dx, T* dw1, T* dw2,
                       const Shape& shape);

}  // namespace monarch
}  // namespace fastcore
