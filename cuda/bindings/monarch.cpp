// Bindings for cuda/monarch: fastcore._cuda.monarch.{multiply, plan} on device pointers (integers)
// and the caller's stream (validated by fastcore.monarch; sizes re-checked in C++; GIL released).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/registry.hpp"
#include "common/errors.hpp"
#include "cuda/common/device.hpp"
#include "cuda/monarch/monarch.cuh"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

namespace mon = cuda::monarch;

mon::Params params(int dtype, bool adjoint, std::uintptr_t in, std::uintptr_t w1, std::uintptr_t w2,
                   std::uintptr_t out, std::int64_t batch, std::int64_t K, std::int64_t Q, std::int64_t P,
                   std::int64_t L, std::int64_t S, std::int64_t R) {
  mon::Params p;
  p.dtype = dtype;
  p.adjoint = adjoint;
  p.in = reinterpret_cast<const void*>(in);
  p.w1 = reinterpret_cast<const void*>(w1);
  p.w2 = reinterpret_cast<const void*>(w2);
  p.out = reinterpret_cast<void*>(out);
  p.batch = batch;
  p.K = K, p.Q = Q, p.P = P, p.L = L, p.S = S, p.R = R;
  return p;
}

bool multiply(int dtype, bool adjoint, std::uintptr_t in, std::uintptr_t w1, std::uintptr_t w2, std::uintptr_t out,
              std::int64_t batch, std::int64_t K, std::int64_t Q, std::int64_t P, std::int64_t L, std::int64_t S,
              std::int64_t R, std::uintptr_t stream) {
  const mon::Params p = params(dtype, adjoint, in, w1, w2, out, batch, K, Q, P, L, S, R);
  py::gil_scoped_release release;
  return mon::multiply(p, cuda::stream_from_handle(stream));  // validates sizes (ValueError)
}

py::dict plan(int dtype, bool adjoint, std::uintptr_t in, std::uintptr_t w1, std::uintptr_t w2, std::int64_t batch,
              std::int64_t K, std::int64_t Q, std::int64_t P, std::int64_t L, std::int64_t S, std::int64_t R) {
  // `out` is not looked at by the plan; a non-null placeholder passes the null-pointer check.
  const mon::Params p = params(dtype, adjoint, in, w1, w2, in, batch, K, Q, P, L, S, R);
  const mon::Plan pl = mon::plan(p);
  static const char* const names[] = {"none", "simt", "tensor_core"};
  py::dict d;
  d["kernel"] = names[static_cast<int>(pl.kernel)];
  d["rows"] = pl.rows;
  d["shared_bytes"] = pl.shared_bytes;
  d["tc_rows"] = pl.tc_rows;
  return d;
}

void bind(py::module_& m) {
  m.doc() = "Fused Monarch multiply on the GPU (cuda/monarch); call through fastcore.monarch.";
  m.def("multiply", &multiply, py::arg("dtype"), py::arg("adjoint"), py::arg("x"), py::arg("w1"), py::arg("w2"),
        py::arg("out"), py::arg("batch"), py::arg("K"), py::arg("Q"), py::arg("P"), py::arg("L"), py::arg("S"),
        py::arg("R"), py::arg("stream"),
        "Fused y = x·Mᵀ (or x = y·M when adjoint) on C-contiguous device arrays; dtype 0 float32, "
        "1 float16, 2 bfloat16. Returns False, launching nothing, when the shape does not fit the "
        "fused kernels on this device (the caller then uses the unfused path).");
  m.def("plan", &plan, py::arg("dtype"), py::arg("adjoint"), py::arg("x"), py::arg("w1"), py::arg("w2"),
        py::arg("batch"), py::arg("K"), py::arg("Q"), py::arg("P"), py::arg("L"), py::arg("S"), py::arg("R"),
        "Which fused kernel multiply() would run: {'kernel': 'none'|'simt'|'tensor_core', 'rows', "
        "'shared_bytes', 'tc_rows'}.");
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(monarch, bind)

}  // namespace bindings
}  // namespace fastcore
