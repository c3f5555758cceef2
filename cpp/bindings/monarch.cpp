// Bindings for cpp/monarch: fastcore._cpu.monarch.{multiply, adjoint, backward}.
// Shapes were validated in Python; sizes are re-checked here before any pointer is used.
#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstdint>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "monarch/monarch.hpp"

namespace fastcore {
namespace bindings {

namespace {

using monarch::Shape;

Shape shape_of(const py::array& w1, const py::array& w2, std::int64_t batch) {
  if (w1.ndim() != 3 || w2.ndim() != 3) throw_value_error("w1, w2: expected 3-d arrays");
  Shape s;
  s.batch = batch;
  s.K = w1.shape(0), s.Q = w1.shape(1), s.P = w1.shape(2);
  s.L = w2.shape(0), s.S = w2.shape(1), s.R = w2.shape(2);
  if (s.L * s.R != s.K * s.Q) throw_value_error("w2: L*R must equal K*Q");
  return s;
}

void require(const py::array& a, const char* name, std::int64_t size) {
  if (element_count(a) != size) throw_value_error(name, ": expected ", size, " elements");
}

template <class T>
void multiply_t(const py::array& x, const py::array& w1, const py::array& w2, py::array& y, std::int64_t batch) {
  const Shape s = shape_of(w1, w2, batch);
  require(x, "x", checked_mul(batch, s.n_in()));
  require(y, "out", checked_mul(batch, s.n_out()));
  const T* xp = input_ptr<T>(x, "x");
  const T* w1p = input_ptr<T>(w1, "w1");
  const T* w2p = input_ptr<T>(w2, "w2");
  T* yp = output_ptr<T>(y, "out");
  py::gil_scoped_release release;
  monarch::multiply(xp, w1p, w2p, yp, s);
}

template <class T>
void adjoint_t(const py::array& y, const py::array& w1, const py::array& w2, py::array& x, std::int64_t batch) {
  const Shape s = shape_of(w1, w2, batch);
  require(y, "y", checked_mul(batch, s.n_out()));
  require(x, "out", checked_mul(batch, s.n_in()));
  const T* yp = input_ptr<T>(y, "y");
  const T* w1p = input_ptr<T>(w1, "w1");
  const T* w2p = input_ptr<T>(w2, "w2");
  T* xp = output_ptr<T>(x, "out");
  py::gil_scoped_release release;
  monarch::multiply_adjoint(yp, w1p, w2p, xp, s);
}

template <class T>
void backward_t(const py::array& x, const py::array& w1, const py::array& w2, const py::array& dy,
                py::array& dx, py::array& dw1, py::array& dw2, std::int64_t batch) {
  const Shape s = shape_of(w1, w2, batch);
  require(x, "x", checked_mul(batch, s.n_in()));
  require(dx, "dx", checked_mul(batch, s.n_in()));
  require(dy, "dy", checked_mul(batch, s.n_out()));
  require(dw1, "dw1", element_count(w1));
  require(dw2, "dw2", element_count(w2));
  const T* xp = input_ptr<T>(x, "x");
  const T* w1p = input_ptr<T>(w1, "w1");
  const T* w2p = input_ptr<T>(w2, "w2");
  const T* dyp = input_ptr<T>(dy, "dy");
  T* dxp = output_ptr<T>(dx, "dx");
  T* dw1p = output_ptr<T>(dw1, "dw1");
  T* dw2p = output_ptr<T>(dw2, "dw2");
  py::gil_scoped_release release;
  monarch::multiply_backward(xp, w1p, w2p, dyp, dxp, dw1p, dw2p, s);
}

template <template <class> class F, class... Args>
void by_dtype(const py::array& like, Args&&... args) {
  const auto d = like.dtype();
  if (d.equal(py::dtype::of<float>())) return F<float>{}(args...);
  if (d.equal(py::dtype::of<double>())) return F<double>{}(args...);
  if (d.equal(py::dtype::of<std::complex<float>>())) return F<std::complex<float>>{}(args...);
  if (d.equal(py::dtype::of<std::complex<double>>())) return F<std::complex<double>>{}(args...);
  throw_type_error("monarch: unsupported dtype ", std::string(py::str(d)));
}

template <class T> struct Multiply { template <class... A> void operator()(A&&... a) const { multiply_t<T>(a...); } };
template <class T> struct Adjoint { template <class... A> void operator()(A&&... a) const { adjoint_t<T>(a...); } };
template <class T> struct Backward { template <class... A> void operator()(A&&... a) const { backward_t<T>(a...); } };

void bind(py::module_& m) {
  m.doc() = "Monarch matrices (cpp/monarch); call through fastcore.monarch.";
  m.def("multiply", [](const py::array& x, const py::array& w1, const py::array& w2, py::array& y, std::int64_t batch) {
    by_dtype<Multiply>(x, x, w1, w2, y, batch);
  }, py::arg("x"), py::arg("w1"), py::arg("w2"), py::arg("out"), py::arg("batch"));
  m.def("adjoint", [](const py::array& y, const py::array& w1, const py::array& w2, py::array& x, std::int64_t batch) {
    by_dtype<Adjoint>(y, y, w1, w2, x, batch);
  }, py::arg("y"), py::arg("w1"), py::arg("w2"), py::arg("out"), py::arg("batch"));
  m.def("backward", [](const py::array& x, const py::array& w1, const py::array& w2, const py::array& dy,
                       py::array& dx, py::array& dw1, py::array& dw2, std::int64_t batch) {
    by_dtype<Backward>(x, x, w1, w2, dy, dx, dw1, dw2, batch);
  }, py::arg("x"), py::arg("w1"), py::arg("w2"), py::arg("dy"), py::arg("dx"), py::arg("dw1"), py::arg("dw2"),
     py::arg("batch"));
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(monarch, bind)

}  // namespace bindings
}  // namespace fastcore
