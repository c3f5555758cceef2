// Bindings for cuda/activations: fastcore._cuda.activations.{forward, backward}
// (device addresses as integers, the caller's stream handle; the GIL is released).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/registry.hpp"
#include "common/errors.hpp"
#include "cuda/activations/activations.cuh"
#include "cuda/common/device.hpp"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

namespace act = cuda::activations;

void check_layout(int map, int dtype, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  if (map < 0 || map > 4) throw_value_error("activations: unknown map ", map);
  if (dtype < 0 || dtype > 3) throw_value_error("activations: unknown dtype code ", dtype);
  if (outer < 0 || n < 1 || inner < 1) throw_value_error("activations: bad layout");
  (void)checked_mul(checked_mul(outer, n), inner);
}

void forward(int map, int dtype, std::uintptr_t x, std::uintptr_t mask, std::uintptr_t y,
             std::int64_t outer, std::int64_t n, std::int64_t inner, double scale, double alpha,
             int n_iter, std::uintptr_t stream) {
  check_layout(map, dtype, outer, n, inner);
  act::ForwardParams p;
  p.map = map;
  p.dtype = dtype;
  p.x = reinterpret_cast<const void*>(x);
  p.mask = reinterpret_cast<const std::uint8_t*>(mask);
  p.y = reinterpret_cast<void*>(y);
  p.outer = outer, p.n = n, p.inner = inner;
  p.scale = scale, p.alpha = alpha, p.n_iter = n_iter;
  py::gil_scoped_release release;
  act::forward(p, cuda::stream_from_handle(stream));
}

void backward(int map, int dtype, std::uintptr_t y, std::uintptr_t dy, std::uintptr_t dx,
              std::int64_t outer, std::int64_t n, std::int64_t inner, double scale, double alpha,
              std::uintptr_t stream) {
  check_layout(map, dtype, outer, n, inner);
  act::BackwardParams p;
  p.map = map;
  p.dtype = dtype;
  p.y = reinterpret_cast<const void*>(y);
  p.dy = reinterpret_cast<const void*>(dy);
  p.dx = reinterpret_cast<void*>(dx);
  p.outer = outer, p.n = n, p.inner = inner;
  p.scale = scale, p.alpha = alpha;
  py::gil_scoped_release release;
  act::backward(p, cuda::stream_from_handle(stream));
}

void bind(py::module_& m) {
  m.doc() = "Probability maps on the GPU (cuda/activations); call through fastcore.activations.";
  m.def("forward", &forward, py::arg("map"), py::arg("dtype"), py::arg("x"), py::arg("mask"),
        py::arg("out"), py::arg("outer"), py::arg("n"), py::arg("inner"), py::arg("scale"),
        py::arg("alpha"), py::arg("n_iter"), py::arg("stream"));
  m.def("backward", &backward, py::arg("map"), py::arg("dtype"), py::arg("y"), py::arg("dy"),
        py::arg("out"), py::arg("outer"), py::arg("n"), py::arg("inner"), py::arg("scale"),
        py::arg("alpha"), py::arg("stream"));
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(activations, bind)

}  // namespace bindings
}  // namespace fastcore
