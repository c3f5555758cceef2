// Bindings for cuda/ig: fastcore._cuda.ig (integers -> pointers / stream, GIL released). The Python
// layer (python/fastcore/_ig_cuda.py) has validated shapes, dtypes and devices.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/registry.hpp"
#include "common/errors.hpp"
#include "cuda/common/device.hpp"
#include "cuda/ig/ig.cuh"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

template <class P>
P* ptr(std::uintptr_t p) {
  return reinterpret_cast<P*>(p);
}

void check_dtype(int dtype) {
  if (dtype != 0 && dtype != 1) throw_value_error("ig (cuda): dtype code must be 0 (float32) or 1 (float64)");
}

void bind_ig(py::module_& m) {
  m.def("interpolate", [](int dtype, std::uintptr_t x, std::uintptr_t xb, std::int64_t xb_row_stride, std::int64_t N,
                          std::int64_t D, std::uintptr_t alphas, std::int64_t r0, std::int64_t rows, std::uintptr_t out,
                          std::uintptr_t stream) {
    check_dtype(dtype);
    FASTCORE_CHECK(N > 0 && D >= 0 && r0 >= 0 && rows >= 0, "ig.interpolate (cuda): bad sizes");
    py::gil_scoped_release release;
    cuda::ig::interpolate(dtype, ptr<const void>(x), ptr<const void>(xb), xb_row_stride, N, D,
                          ptr<const double>(alphas), r0, rows, ptr<void>(out), cuda::stream_from_handle(stream));
  });
  m.def("accumulate", [](int dtype, std::uintptr_t acc, std::uintptr_t g, std::int64_t N, std::int64_t D,
                         std::uintptr_t weights, std::int64_t r0, std::int64_t rows, std::uintptr_t first_bad,
                         std::uintptr_t stream) {
    check_dtype(dtype);
    FASTCORE_CHECK(N > 0 && D >= 0 && r0 >= 0 && rows >= 0, "ig.accumulate (cuda): bad sizes");
    py::gil_scoped_release release;
    cuda::ig::accumulate(dtype, ptr<double>(acc), ptr<const void>(g), N, D, ptr<const double>(weights), r0, rows,
                         ptr<unsigned long long>(first_bad), cuda::stream_from_handle(stream));
  });
  m.def("act_forward", [](int dtype, int act, std::uintptr_t z, std::uintptr_t h, std::int64_t n,
                          std::uintptr_t stream) {
    check_dtype(dtype);
    FASTCORE_CHECK(act >= 0 && act <= 3, "ig (cuda): bad activation code");
    py::gil_scoped_release release;
    cuda::ig::act_forward(dtype, act, ptr<const void>(z), ptr<void>(h), n, cuda::stream_from_handle(stream));
  });
  m.def("act_backward", [](int dtype, int act, std::uintptr_t z, std::uintptr_t h, std::uintptr_t d, std::int64_t n,
                           std::uintptr_t stream) {
    check_dtype(dtype);
    FASTCORE_CHECK(act >= 0 && act <= 3, "ig (cuda): bad activation code");
    py::gil_scoped_release release;
    cuda::ig::act_backward(dtype, act, ptr<const void>(z), ptr<const void>(h), ptr<void>(d), n,
                           cuda::stream_from_handle(stream));
  });
  m.def("output_rows", [](int dtype, int output, std::uintptr_t z, std::int64_t rows, std::int64_t C,
                          std::uintptr_t target, std::int64_t r0, std::int64_t N, std::uintptr_t F, std::uintptr_t dz,
                          std::uintptr_t stream) {
    check_dtype(dtype);
    FASTCORE_CHECK(output >= 0 && output <= 2 && C >= 1 && N >= 1, "ig.output_rows (cuda): bad arguments");
    py::gil_scoped_release release;
    cuda::ig::output_rows(dtype, output, ptr<const void>(z), rows, C, ptr<const std::int64_t>(target), r0, N,
                          ptr<double>(F), ptr<void>(dz), cuda::stream_from_handle(stream));
  });
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(ig, bind_ig)

}  // namespace bindings
}  // namespace fastcore
