// fastcore._cpu: the CPU extension module. Core functions (threads, SIMD, build info, probes) are
// bound in core.cpp; each kernel family registers its own submodule (registry.hpp).
#include <pybind11/pybind11.h>

#include "bindings/exceptions.hpp"
#include "bindings/registry.hpp"

namespace fastcore {
namespace bindings {
void bind_core(pybind11::module_& m);
}
}  // namespace fastcore

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "fastcore CPU kernels (private: use the fastcore package)";
  fastcore::bindings::register_exception_translators();
  fastcore::bindings::bind_core(m);
  fastcore::bindings::register_all(m);
}
