// Dispatch of the Monarch kernels to the active ISA (cpp/common/simd.hpp), with cheap checks.
#include "monarch/monarch.hpp"

#include "common/errors.hpp"
#include "monarch/kernels.hpp"

namespace fastcore {
namespace monarch {

namespace {

void check_shape(const Shape& s) {
  FASTCORE_CHECK(s.batch >= 0 && s.K >= 1 && s.Q >= 1 && s.P >= 1 && s.L >= 1 && s.S >= 1 && s.R >= 1,
                 "monarch: factor sizes must be positive");
  FASTCORE_CHECK(s.L * s.R == s.K * s.Q, "monarch: w2 blocks (L*R) must cover the intermediate K*Q");
  (void)checked_mul(s.batch, checked_mul(s.K, checked_mul(s.Q, s.P)));
  (void)checked_mul(s.batch, checked_mul(s.L, checked_mul(s.S, s.R)));
}

}  // namespace

#define FASTCORE_MONARCH_DISPATCH(suffix, T)                                                     \
  template <>                                                                                  \
  void multiply<T>(const T* x, const T* w1, const T* w2, T* y, const Shape& s) {              \
    check_shape(s);                                                                            \
    FASTCORE_ISA_DISPATCH(multiply_##suffix)(x, w1, w2, y, s);                                  \
  }                                                                                            \
  template <>                                                                                  \
  void multiply_adjoint<T>(const T* y, const T* w1, const T* w2, T* x, const Shape& s) {      \
    check_shape(s);                                                                            \
    FASTCORE_ISA_DISPATCH(adjoint_##suffix)(y, w1, w2, x, s);                                   \
  }                                                                                            \
  template <>                                                                                  \
  void multiply_backward<T>(const T* x, const T* w1, const T* w2, const T* dy, T* dx, T* dw1, \
                            T* dw2, const Shape& s) {                                          \
    check_shape(s);                                                                            \
    FASTCORE_ISA_DISPATCH(backward_##suffix)(x, w1, w2, dy, dx, dw1, dw2, s);                   \
  }
FASTCORE_MONARCH_DISPATCH(f32, float)
FASTCORE_MONARCH_DISPATCH(f64, double)
FASTCORE_MONARCH_DISPATCH(c64, std::complex<float>)
FASTCORE_MONARCH_DISPATCH(c128, std::complex<double>)
#undef FASTCORE_MONARCH_DISPATCH

}  // namespace monarch
}  // namespace fastcore
