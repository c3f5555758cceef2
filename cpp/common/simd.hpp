// Run-time SIMD dispatch.
//
// Kernels that need per-ISA code live in files named `*.simd.cpp`; the build compiles each such
// file once per ISA (cmake/FastcoreIsa.cmake) with the ISA's flags and FASTCORE_ISA_NS set to
// isa_scalar / isa_avx2 / isa_avx512. A header declares the entry points for every ISA with
// FASTCORE_ISA_DECLARE and the caller picks one with FASTCORE_ISA_DISPATCH:
//
//   // softmax.hpp
//   FASTCORE_ISA_DECLARE(void softmax_rows_f32(const float* x, float* y, std::int64_t n);)
//   // softmax.simd.cpp
//   namespace fastcore::FASTCORE_ISA_NS { void softmax_rows_f32(...) { ... } }
//   // softmax.cpp
//   FASTCORE_ISA_DISPATCH(softmax_rows_f32)(x, y, n);
//
// Dispatched functions must not be overloaded (the macro takes their address): give the float
// and double variants distinct names.
//
// The active ISA is the best one the CPU supports (cpuid), unless FASTCORE_SIMD=scalar|avx2|avx512
// asks for a lower one, or set_active_isa() changes it (tests force each path this way).
#pragma once

namespace fastcore {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
// Parses "scalar", "avx2", "avx512" (also "auto" -> best supported). Throws ValueError otherwise.
Isa parse_isa(const char* name);
// Compiled into this build (x86-64 builds have all three; others only scalar).
bool isa_compiled(Isa isa);
// Supported by this CPU and OS (cpuid + xgetbv, via the compiler's __builtin_cpu_supports).
bool isa_supported(Isa isa);
// The best ISA that is both compiled and supported.
Isa best_isa();
// The ISA kernels dispatch to now.
Isa active_isa();
// Throws ValueError when the ISA is not compiled in or not supported by this CPU.
void set_active_isa(Isa isa);
// What FASTCORE_SIMD asked for at start-up and whether it could be honoured ("" when unset).
const char* isa_env_request();
bool isa_env_request_honoured();

}  // namespace fastcore

#define FASTCORE_ISA_DECLARE(...)         \
  namespace isa_scalar { __VA_ARGS__ }    \
  namespace isa_avx2 { __VA_ARGS__ }      \
  namespace isa_avx512 { __VA_ARGS__ }

#if FASTCORE_HAVE_X86_ISAS
#define FASTCORE_ISA_DISPATCH(fn)                                       \
  (::fastcore::active_isa() == ::fastcore::Isa::avx512 ? &isa_avx512::fn \
   : ::fastcore::active_isa() == ::fastcore::Isa::avx2 ? &isa_avx2::fn   \
                                                         : &isa_scalar::fn)
#else
#define FASTCORE_ISA_DISPATCH(fn) (&isa_scalar::fn)
#endif

