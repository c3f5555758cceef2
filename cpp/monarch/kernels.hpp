// Per-ISA entry points of monarch.simd.cpp (dispatched by monarch.cpp).
#pragma once

#include <complex>

#include "common/simd.hpp"
#include "monarch/monarch.hpp"

namespace fastcore {
namespace monarch {

#define FASTCORE_MONARCH_DECLARE(suffix, T)                                                      \
  void multiply_##suffix(const T* x, const T* w1, const T* w2, T* y, const Shape& s);         \
  void adjoint_##suffix(const T* y, const T* w1, const T* w2, T* x, const Shape& s);          \
  void backward_##suffix(const T* x, const T* w1, const T* w2, const T* dy, T* dx, T* dw1,    \
                         T* dw2, const Shape& s);

FASTCORE_ISA_DECLARE(FASTCORE_MONARCH_DECLARE(f32, float) FASTCORE_MONARCH_DECLARE(f64, double)
                         FASTCORE_MONARCH_DECLARE(c64, std::complex<float>)
                             FASTCORE_MONARCH_DECLARE(c128, std::complex<double>))

#undef FASTCORE_MONARCH_DECLARE

}  // namespace monarch
}  // namespace fastcore
