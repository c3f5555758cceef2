// Bindings for cuda/common: devices, versions, compiled architectures, probes and error tests.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "common/errors.hpp"
#include "cuda/common/check.hpp"
#include "cuda/common/device.hpp"
#include "cuda/common/probe.cuh"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

std::vector<std::string> compiled_architectures() {
  // FASTCORE_CUDA_ARCHS is the CMake list with commas, e.g. "80-real,86-real,90-real,90-virtual".
  std::vector<std::string> out;
  std::stringstream s(FASTCORE_CUDA_ARCHS);
  std::string item;
  while (std::getline(s, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

py::dict info_dict(const cuda::DeviceInfo& d) {
  py::dict r;
  r["index"] = d.index;
  r["name"] = d.name;
  r["compute_capability"] = py::make_tuple(d.cc_major, d.cc_minor);
  r["sm_count"] = d.sm_count;
  r["max_threads_per_block"] = d.max_threads_per_block;
  r["shared_mem_per_block"] = d.shared_mem_per_block;
  r["shared_mem_per_block_optin"] = d.shared_mem_per_block_optin;
  r["l2_cache_bytes"] = d.l2_cache_bytes;
  r["global_mem_bytes"] = d.global_mem_bytes;
  return r;
}

}  // namespace

void bind_cuda_core(py::module_& m) {
  m.attr("__version__") = FASTCORE_VERSION;
  m.def("compiled_architectures", &compiled_architectures,
        "CUDA architectures compiled into this module (CMake syntax: NN-real = SASS, NN-virtual = PTX).");
  m.def("nvcc_version", [] { return std::string(FASTCORE_NVCC_VERSION); });
  m.def("runtime_version", [] { return cuda::runtime_version(); },
        "CUDA runtime version linked into the module (e.g. 13000).");
  m.def("driver_version", [] { return cuda::driver_version(); },
        "Installed driver's CUDA version, 0 when there is no driver.");
  m.def("device_count", [] { return cuda::device_count(); },
        "Visible CUDA devices; 0 without a GPU or driver (never raises).");
  m.def("device_info", [](int device) { return info_dict(cuda::device_info(device)); },
        py::arg("device") = -1, "Cached properties of a device (the current one by default).");

  auto t = m.def_submodule("_testing", "Probes and self-tests for cuda/common (not public API).");
  t.def("copy", [](std::uintptr_t src, std::uintptr_t dst, std::size_t nbytes, std::uintptr_t stream) {
    py::gil_scoped_release release;
    cuda::copy_bytes(reinterpret_cast<const void*>(src), reinterpret_cast<void*>(dst), nbytes,
                     cuda::stream_from_handle(stream));
  }, py::arg("src"), py::arg("dst"), py::arg("nbytes"), py::arg("stream"));
  t.def("raise_cuda_error", [](int code) {
    cuda::check(static_cast<cudaError_t>(code), "raise_cuda_error", nullptr, 0);
  }, py::arg("code"), "Raises CudaError for a cudaError_t code (tests the error path without a GPU).");
  t.def("error_name", [](int code) { return std::string(cudaGetErrorName(static_cast<cudaError_t>(code))); });
}

}  // namespace bindings
}  // namespace fastcore
