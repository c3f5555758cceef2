// Bindings for cpp/ig: fastcore._cpu.ig (pointers out of validated arrays, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include <cstdint>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "ig/ig.hpp"
#include "ig/mlp.hpp"

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


template <class T>
const void* ptr_of(const py::array& a, const char* name) { return input_ptr<T>(a, name); }

// The fused model kernel (validated by fastcore.ig's models). Ws[l]: (out, in); WTs[l]: (in, out);
// bs[l]: (out,). xb: None (no baseline), (1, D) or (N, D). target: None or int64 (N,).
void ig_mlp(const std::vector<py::array>& Ws, const std::vector<py::array>& WTs, const std::vector<py::array>& bs,
            int act, int output, const py::array& x, const std::optional<py::array>& xb,
            const std::optional<py::array>& target, const py::array& alphas, const py::array& weights,
            bool multiply, std::optional<py::array> attr, std::optional<py::array> f_ends) {
  const std::size_t L = Ws.size();
  FASTCORE_CHECK(L >= 1 && L <= static_cast<std::size_t>(ig::kMaxLayers) && WTs.size() == L && bs.size() == L,
                 "ig.mlp: inconsistent layer lists");
  FASTCORE_CHECK(act >= 0 && act <= 3 && output >= 0 && output <= 2, "ig.mlp: bad activation/output code");
  FASTCORE_CHECK(x.ndim() == 2, "ig.mlp: x must be 2-d");
  const bool f32 = is_f32(x);
  ig::MlpArgs a;
  a.n_layers = static_cast<int>(L);
  a.N = x.shape(0);
  a.dims[0] = x.shape(1);
  for (std::size_t l = 0; l < L; ++l) {
    FASTCORE_CHECK(Ws[l].ndim() == 2 && WTs[l].ndim() == 2 && bs[l].ndim() == 1, "ig.mlp: layer ", l, " shapes");
    const auto out = Ws[l].shape(0), in = Ws[l].shape(1);
    FASTCORE_CHECK(in == a.dims[l] && WTs[l].shape(0) == in && WTs[l].shape(1) == out && bs[l].shape(0) == out,
                   "ig.mlp: layer ", l, " shapes do not chain");
    a.dims[l + 1] = out;
    a.W[l] = f32 ? ptr_of<float>(Ws[l], "W") : ptr_of<double>(Ws[l], "W");
    a.WT[l] = f32 ? ptr_of<float>(WTs[l], "WT") : ptr_of<double>(WTs[l], "WT");
    a.b[l] = f32 ? ptr_of<float>(bs[l], "b") : ptr_of<double>(bs[l], "b");
  }
  a.act = static_cast<ig::Act>(act);
  a.output = static_cast<ig::Output>(output);
  a.x = f32 ? ptr_of<float>(x, "x") : ptr_of<double>(x, "x");
  if (xb) {
    FASTCORE_CHECK(xb->ndim() == 2 && xb->shape(1) == a.dims[0] && (xb->shape(0) == 1 || xb->shape(0) == a.N),
                   "ig.mlp: baseline shape");
    a.xb = f32 ? ptr_of<float>(*xb, "baselines") : ptr_of<double>(*xb, "baselines");
    a.xb_row_stride = xb->shape(0) == 1 ? 0 : a.dims[0];
  }
  if (target) {
    FASTCORE_CHECK(target->ndim() == 1 && target->shape(0) == a.N, "ig.mlp: target shape");
    a.target = input_ptr<std::int64_t>(*target, "target");
  }
  FASTCORE_CHECK(alphas.ndim() == 1 && weights.ndim() == 1 && alphas.shape(0) == weights.shape(0),
                 "ig.mlp: quadrature shapes");
  a.S = alphas.shape(0);
  a.alphas = input_ptr<double>(alphas, "alphas");
  a.weights = input_ptr<double>(weights, "weights");
  a.multiply = multiply;
  if (attr) {
    FASTCORE_CHECK(attr->ndim() == 2 && attr->shape(0) == a.N && attr->shape(1) == a.dims[0], "ig.mlp: attr shape");
    a.attr = f32 ? static_cast<void*>(output_ptr<float>(*attr, "attr")) : static_cast<void*>(output_ptr<double>(*attr, "attr"));
  }
  if (f_ends) {
    FASTCORE_CHECK(f_ends->ndim() == 2 && f_ends->shape(0) == a.N && f_ends->shape(1) == 2, "ig.mlp: f_ends shape");
    a.f_ends = output_ptr<double>(*f_ends, "f_ends");
  }
  py::gil_scoped_release release;
  ig::mlp_ig(a, !f32);
}

void bind_ig(py::module_& m) {
  m.def("interpolate", &ig_interpolate, py::arg("x"), py::arg("baselines"), py::arg("alphas"), py::arg("r0"),
        py::arg("out"), "Path rows r0 .. r0+len(out)-1 (step-major) into out (validated by fastcore.ig).");
  m.def("accumulate", &ig_accumulate, py::arg("acc"), py::arg("grads"), py::arg("weights"), py::arg("r0"),
        "acc_i += w_k * grads[r - r0] in ascending step order; returns -1 or the flat index of the first "
        "non-finite gradient element.");
  m.def("mlp", &ig_mlp, py::arg("Ws"), py::arg("WTs"), py::arg("bs"), py::arg("act"), py::arg("output"),
        py::arg("x"), py::arg("baselines"), py::arg("target"), py::arg("alphas"), py::arg("weights"),
        py::arg("multiply"), py::arg("attr"), py::arg("f_ends"),
        "Fused IG of a built-in model (first-layer affine trick); see cpp/ig/mlp.hpp.");
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(ig, bind_ig)

}  // namespace bindings
}  // namespace fastcore
