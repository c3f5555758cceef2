// Bindings for cpp/ig: fastcore._cpu.ig (pointers out of validated arrays, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "ig/ig.hpp"

namespace fastcore {
namespace bindings {

namespace {

bool is_f32(const py::array& a) { return a.dtype().equal(py::dtype::of<float>()); }

// x (N, D), xb (1 or N, D) of x's dtype, alphas (S,) float64, out (m, D).
void ig_interpolate(const py::array& x, const py::array& xb, const py::array& alphas, std::int64_t r0,
                    py::array& out) {
  FASTCORE_CHECK(x.ndim() == 2 && xb.ndim() == 2 && out.ndim() == 2 && alphas.ndim() == 1,
                 "ig.interpolate: expected 2-d x, baseline and out, 1-d alphas");
  const std::int64_t N = x.shape(0), D = x.shape(1), S = alphas.shape(0), m = out.shape(0);
  FASTCORE_CHECK(xb.shape(1) == D && out.shape(1) == D && (xb.shape(0) == 1 || xb.shape(0) == N),
                 "ig.interpolate: shape mismatch");
  const std::int64_t stride = xb.shape(0) == 1 ? 0 : D;
  const double* a = input_ptr<double>(alphas, "alphas");
  if (is_f32(x)) {
    const float* px = input_ptr<float>(x, "x");
    const float* pb = input_ptr<float>(xb, "baselines");
    float* po = output_ptr<float>(out, "out");
    py::gil_scoped_release release;
    ig::interpolate(px, pb, stride, N, D, a, S, r0, m, po);
  } else {
    const double* px = input_ptr<double>(x, "x");
    const double* pb = input_ptr<double>(xb, "baselines");
    double* po = output_ptr<double>(out, "out");
    py::gil_scoped_release release;
    ig::interpolate(px, pb, stride, N, D, a, S, r0, m, po);
  }
}

// acc (N, D) float64, g (m, D), weights (S,) float64.
std::int64_t ig_accumulate(py::array& acc, const py::array& g, const py::array& weights, std::int64_t r0) {
  FASTCORE_CHECK(acc.ndim() == 2 && g.ndim() == 2 && weights.ndim() == 1 && g.shape(1) == acc.shape(1),
                 "ig.accumulate: shape mismatch");
  const std::int64_t N = acc.shape(0), D = acc.shape(1), S = weights.shape(0), m = g.shape(0);
  double* pa = output_ptr<double>(acc, "acc");
  const double* w = input_ptr<double>(weights, "weights");
  if (is_f32(g)) {
    const float* pg = input_ptr<float>(g, "grads");
    py::gil_scoped_release release;
    return ig::accumulate(pa, pg, N, D, w, S, r0, m);
  }
  const double* pg = input_ptr<double>(g, "grads");
  py::gil_scoped_release release;
  return ig::accumulate(pa, pg, N, D, w, S, r0, m);
}

void bind_ig(py::module_& m) {
  m.def("interpolate", &ig_interpolate, py::arg("x"), py::arg("baselines"), py::arg("alphas"), py::arg("r0"),
        py::arg("out"), "Path rows r0 .. r0+len(out)-1 (step-major) into out (validated by fastcore.ig).");
  m.def("accumulate", &ig_accumulate, py::arg("acc"), py::arg("grads"), py::arg("weights"), py::arg("r0"),
        "acc_i += w_k * grads[r - r0] in ascending step order; returns -1 or the flat index of the first "
        "non-finite gradient element.");
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(ig, bind_ig)

}  // namespace bindings
}  // namespace fastcore
