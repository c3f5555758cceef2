#include "common/simd.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/errors.hpp"

namespace fastcore {
namespace {

struct IsaState {
  std::atomic<int> active;
  const char* env_request = "";
  bool env_honoured = true;

  IsaState() : active(static_cast<int>(best_isa())) {
    const char* env = std::getenv("FASTCORE_SIMD");
    if (env && *env) {
      env_request = env;
      try {
        const Isa wanted = parse_isa(env);
        if (isa_compiled(wanted) && isa_supported(wanted)) {
          active.store(static_cast<int>(wanted));
        } else {
          env_honoured = false;  // keep the best supported; Python reports it
        }
      } catch (const ValueError&) {
        env_honoured = false;
      }
    }
  }
};

IsaState& state() {
  static IsaState s;  // thread-safe initialisation (C++11 magic statics)
  return s;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const char* name) {
  if (std::strcmp(name, "scalar") == 0) return Isa::scalar;
  if (std::strcmp(name, "avx2") == 0) return Isa::avx2;
  if (std::strcmp(name, "avx512") == 0) return Isa::avx512;
  if (std::strcmp(name, "auto") == 0) return best_isa();
  throw_value_error("SIMD level must be 'scalar', 'avx2', 'avx512' or 'auto', got '", name, "'");
}

bool isa_compiled(Isa isa) {
#if FASTCORE_HAVE_X86_ISAS
  (void)isa;
  return true;
#else
  return isa == Isa::scalar;
#endif
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
#if defined(__x86_64__) || defined(__i386__)
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::avx512:
      return isa_supported(Isa::avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#else
    default: return false;
#endif
  }
  return false;
}

Isa best_isa() {
  for (Isa isa : {Isa::avx512, Isa::avx2}) {
    if (isa_compiled(isa) && isa_supported(isa)) return isa;
  }
  return Isa::scalar;
}

Isa active_isa() { return static_cast<Isa>(state().active.load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
  if (!isa_compiled(isa)) throw_value_error("SIMD level '", isa_name(isa), "' is not compiled into this build");
  if (!isa_supported(isa)) throw_value_error("SIMD level '", isa_name(isa), "' is not supported by this CPU");
  state().active.store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_env_request() { return state().env_request; }
bool isa_env_request_honoured() { return state().env_honoured; }

}  // namespace fastcore
