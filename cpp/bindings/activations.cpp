// Bindings for cpp/activations: fastcore._cpu.activations.{forward, topk_softmax, backward, loss}.
// The Python layer has validated shapes, dtypes and layouts; these re-check sizes cheaply so a
// direct call cannot read or write out of bounds, then release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "activations/activations.hpp"
#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"

namespace fastcore {
namespace bindings {

namespace {

using activations::Layout;
using activations::Map;

Layout make_layout(std::int64_t outer, std::int64_t n, std::int64_t inner) {
  if (outer < 0 || n < 1 || inner < 0) throw_value_error("activations: bad layout");
  return Layout{outer, n, inner};
}

void require_size(const py::array& a, const char* name, std::int64_t expected) {
  if (element_count(a) != expected) throw_value_error(name, ": expected ", expected, " elements");
}

Map to_map(int code) {
  if (code < 0 || code > 4) throw_value_error("activations: unknown map ", code);
  return static_cast<Map>(code);
}

bool is_f32(const py::array& a) { return a.dtype().equal(py::dtype::of<float>()); }

void forward(int map, const py::array& x, const py::object& mask, py::array& y, std::int64_t outer,
             std::int64_t n, std::int64_t inner, double scale, double alpha, int n_iter) {
  const Layout layout = make_layout(outer, n, inner);
  const std::int64_t size = checked_mul(checked_mul(outer, n), inner);
  require_size(x, "x", size);
  require_size(y, "out", size);
  const std::uint8_t* m = nullptr;
  if (!mask.is_none()) {
    auto ma = mask.cast<py::array>();
    require_size(ma, "mask", size);
    m = input_ptr<std::uint8_t>(ma, "mask");
  }
  const Map which = to_map(map);
  if (is_f32(x)) {
    const float* xp = input_ptr<float>(x, "x");
    float* yp = output_ptr<float>(y, "out");
    py::gil_scoped_release release;
    activations::forward(which, xp, m, yp, layout, scale, alpha, n_iter);
  } else {
    const double* xp = input_ptr<double>(x, "x");
    double* yp = output_ptr<double>(y, "out");
    py::gil_scoped_release release;
    activations::forward(which, xp, m, yp, layout, scale, alpha, n_iter);
  }
}

void topk_softmax(const py::array& x, py::array& y, std::int64_t outer, std::int64_t n,
                  std::int64_t inner, std::int64_t k) {
  const Layout layout = make_layout(outer, n, inner);
  const std::int64_t size = checked_mul(checked_mul(outer, n), inner);
  require_size(x, "x", size);
  require_size(y, "out", size);
  if (k < 1 || k > n) throw_value_error("k: expected 1 <= k <= ", n, ", got ", k);
  if (is_f32(x)) {
    const float* xp = input_ptr<float>(x, "x");
    float* yp = output_ptr<float>(y, "out");
    py::gil_scoped_release release;
    activations::topk_softmax(xp, yp, layout, k);
  } else {
    const double* xp = input_ptr<double>(x, "x");
    double* yp = output_ptr<double>(y, "out");
    py::gil_scoped_release release;
    activations::topk_softmax(xp, yp, layout, k);
  }
}

void backward(int map, const py::array& y, const py::array& dy, py::array& dx, std::int64_t outer,
              std::int64_t n, std::int64_t inner, double scale, double alpha) {
  const Layout layout = make_layout(outer, n, inner);
  const std::int64_t size = checked_mul(checked_mul(outer, n), inner);
  require_size(y, "y", size);
  require_size(dy, "dy", size);
  require_size(dx, "out", size);
  const Map which = to_map(map);
  if (is_f32(y)) {
    const float* yp = input_ptr<float>(y, "y");
    const float* dyp = input_ptr<float>(dy, "dy");
    float* dxp = output_ptr<float>(dx, "out");
    py::gil_scoped_release release;
    activations::backward(which, yp, dyp, dxp, layout, scale, alpha);
  } else {
    const double* yp = input_ptr<double>(y, "y");
    const double* dyp = input_ptr<double>(dy, "dy");
    double* dxp = output_ptr<double>(dx, "out");
    py::gil_scoped_release release;
    activations::backward(which, yp, dyp, dxp, layout, scale, alpha);
  }
}

void loss(int map, const py::array& x, const py::array& target, py::array& loss_out,
          py::array& grad, std::int64_t outer, std::int64_t n, std::int64_t inner) {
  const Layout layout = make_layout(outer, n, inner);
  const std::int64_t size = checked_mul(checked_mul(outer, n), inner);
  require_size(x, "x", size);
  require_size(grad, "grad", size);
  require_size(target, "target", outer * inner);
  require_size(loss_out, "loss", outer * inner);
  const std::int64_t* tp = input_ptr<std::int64_t>(target, "target");
  const Map which = to_map(map);
  if (is_f32(x)) {
    const float* xp = input_ptr<float>(x, "x");
    float* lp = output_ptr<float>(loss_out, "loss");
    float* gp = output_ptr<float>(grad, "grad");
    py::gil_scoped_release release;
    activations::loss(which, xp, tp, lp, gp, layout);
  } else {
    const double* xp = input_ptr<double>(x, "x");
    double* lp = output_ptr<double>(loss_out, "loss");
    double* gp = output_ptr<double>(grad, "grad");
    py::gil_scoped_release release;
    activations::loss(which, xp, tp, lp, gp, layout);
  }
}

void bind(py::module_& m) {
  m.doc() = "Probability maps (cpp/activations); call through fastcore.activations.";
  m.def("forward", &forward, py::arg("map"), py::arg("x"), py::arg("mask"), py::arg("out"),
        py::arg("outer"), py::arg("n"), py::arg("inner"), py::arg("scale"), py::arg("alpha"),
        py::arg("n_iter"));
  m.def("topk_softmax", &topk_softmax, py::arg("x"), py::arg("out"), py::arg("outer"),
        py::arg("n"), py::arg("inner"), py::arg("k"));
  m.def("backward", &backward, py::arg("map"), py::arg("y"), py::arg("dy"), py::arg("out"),
        py::arg("outer"), py::arg("n"), py::arg("inner"), py::arg("scale"), py::arg("alpha"));
  m.def("loss", &loss, py::arg("map"), py::arg("x"), py::arg("target"), py::arg("loss"),
        py::arg("grad"), py::arg("outer"), py::arg("n"), py::arg("inner"));
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(activations, bind)

}  // namespace bindings
}  // namespace fastcore
