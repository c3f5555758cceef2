// fastcore._cuda: the CUDA extension module (this file is compiled by the host compiler).
// Core functions (devices, versions, probes) are bound in core.cpp; each kernel family registers
// its own submodule with FASTCORE_REGISTER_BINDINGS (cpp/bindings/registry.hpp).
//
// Calling convention for kernels: Python passes device pointers and the current CuPy stream as
// integers; bindings cast them (cuda/common/launch.cuh: stream_from_handle) and release the GIL.
#include <pybind11/pybind11.h>

#include "bindings/exceptions.hpp"
#include "bindings/registry.hpp"
#include "cuda/common/check.hpp"

namespace fastcore {
namespace bindings {
void bind_cuda_core(pybind11::module_& m);
}
}  // namespace fastcore

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastcore CUDA kernels (private: use the fastcore package)";
  fastcore::bindings::register_exception_translators();
  // CudaError -> fastcore.CudaError (a RuntimeError subclass defined in Python, so it exists even
  // in builds without this module).
  static pybind11::handle cuda_error_type =
      pybind11::object(pybind11::module_::import("fastcore._errors").attr("CudaError")).release();
  pybind11::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const fastcore::cuda::CudaError& e) {
      PyErr_SetString(cuda_error_type.ptr(), e.what());
    }
  });
  fastcore::bindings::bind_cuda_core(m);
  fastcore::bindings::register_all(m);
}
