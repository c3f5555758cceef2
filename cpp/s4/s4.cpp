// Dispatch of the S4 entry points (s4.hpp) to the active ISA's build of s4_kernels.simd.cpp.
#include "s4/s4.hpp"

#include "common/simd.hpp"
#include "s4/s4_isa.hpp"

namespace fastcore {
namespace s4 {

#define FASTCORE_S4_DISPATCH(name, T, S, PARAMS, ARGS) \
  template <>                                          \
  void name<T> PARAMS {                                \
    FASTCORE_ISA_DISPATCH(name##_##S) ARGS;            \
  }
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_DISPATCH, float, f32)
FASTCORE_S4_FUNCTIONS(FASTCORE_S4_DISPATCH, double, f64)

}  // namespace s4
}  // namespace fastcore
