// Bindings for cpp/tiger: fastcore._cpu.tiger.step (pointers out of the arrays, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "tiger/tiger.hpp"

namespace fastcore {
namespace bindings {

namespace {

template <class T>
void fill_pointers(tiger::TensorArgs& t, py::array& p, py::array& m, const py::array& g) {
  t.p = output_ptr<T>(p, "params");
  t.m = output_ptr<T>(m, "moms");
  t.g = input_ptr<T>(g, "grads");
}

py::array_t<std::uint8_t> tiger_step(std::vector<py::array> params, std::vector<py::array> grads,
                                     std::vector<py::array> moms, const std::vector<std::int64_t>& row_len,
                                     const std::vector<int>& rms_mode, const std::vector<bool>& lazy_rows,
                                     const std::vector<double>& lr_mult, const std::vector<double>& weight_decay,
                                     const std::vector<double>& centre, const std::vector<int>& found_inf,
                                     std::int64_t step, std::int64_t accum, double lr, double beta,
                                     double rms_floor, double shrink_ratio, int action, bool nan_only,
                                     bool global_scope, bool strict, bool lion, double beta2, bool maximize,
                                     std::int64_t chunk) {
  const std::size_t n = params.size();
  for (std::size_t len : {grads.size(), moms.size(), row_len.size(), rms_mode.size(), lazy_rows.size(),
                          lr_mult.size(), weight_decay.size(), centre.size(), found_inf.size()}) {
    if (len != n) throw_value_error("tiger.step: per-tensor lists must all have ", n, " entries");
  }
  if (action < 0 || action > 2) throw_value_error("tiger.step: bad action ", action);
  std::vector<tiger::TensorArgs> ts(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& t = ts[i];
    const auto size = element_count(params[i]);
    if (element_count(grads[i]) != size || element_count(moms[i]) != size)
      throw_value_error("tiger.step: tensor ", i, ": params, grads and moms differ in size");
    if (params[i].dtype().equal(py::dtype::of<float>())) {
      t.dtype = tiger::Dtype::f32;
      fill_pointers<float>(t, params[i], moms[i], grads[i]);
    } else {
      t.dtype = tiger::Dtype::f64;
      fill_pointers<double>(t, params[i], moms[i], grads[i]);
    }
    if (rms_mode[i] < 0 || rms_mode[i] > 2) throw_value_error("tiger.step: bad rms_mode ", rms_mode[i]);
    t.n = size;
    t.row_len = row_len[i];
    t.rms_mode = static_cast<tiger::RmsMode>(rms_mode[i]);
    t.lazy_rows = lazy_rows[i];
    t.lr_mult = lr_mult[i];
    t.weight_decay = weight_decay[i];
    t.centre = centre[i];
    t.found_inf = found_inf[i];
  }
  tiger::StepArgs a;
  a.step = step;
  a.accum = accum;
  a.lr = lr;
  a.beta = beta;
  a.rms_floor = rms_floor;
  a.shrink_ratio = shrink_ratio;
  a.action = static_cast<tiger::Action>(action);
  a.nan_only = nan_only;
  a.global_scope = global_scope;
  a.strict = strict;
  a.lion = lion;
  a.beta2 = beta2;
  a.maximize = maximize;
  a.chunk = chunk;
  py::array_t<std::uint8_t> flags(static_cast<py::ssize_t>(n));
  std::uint8_t* f = flags.mutable_data();
  {
    py::gil_scoped_release release;
    tiger::step(ts.data(), static_cast<std::int64_t>(n), a, f);
  }
  return flags;
}

void bind_tiger(py::module_& m) {
  m.def("step", &tiger_step, py::arg("params"), py::arg("grads"), py::arg("moms"), py::arg("row_len"),
        py::arg("rms_mode"), py::arg("lazy_rows"), py::arg("lr_mult"), py::arg("weight_decay"), py::arg("centre"),
        py::arg("found_inf"), py::arg("step"), py::arg("accum"), py::arg("lr"), py::arg("beta"),
        py::arg("rms_floor"), py::arg("shrink_ratio"), py::arg("action"), py::arg("nan_only"),
        py::arg("global_scope"), py::arg("strict"), py::arg("lion"), py::arg("beta2"), py::arg("maximize"),
        py::arg("chunk"),
        "Fused multi-tensor Tiger step in place (validated by fastcore.tiger.tiger_step). Returns the "
        "per-tensor non-finite flags.");
  // Fast paths of fastcore.tiger's validation for long lists of NumPy arrays (they read metadata
  // only, never the data; the Python checks give every error message). regular_prefix: how many
  // leading triples certainly pass the CPU checks (the exact type numpy.ndarray, one native
  // float32/float64 dtype, one shape, C-contiguous, params and moms writeable) — ~20 ns a triple
  // against ~0.8 us for the same tests in Python.
  m.def("regular_prefix", [](const py::list& params, const py::list& grads, const py::list& moms) {
    // released handles: static py::objects would be released after the interpreter at exit
    static const py::handle ndarray = py::object(py::module_::import("numpy").attr("ndarray")).release();
    static const py::handle f32_handle = py::dtype::of<float>().release();
    static const py::handle f64_handle = py::dtype::of<double>().release();
    const auto f32 = py::reinterpret_borrow<py::dtype>(f32_handle);
    const auto f64 = py::reinterpret_borrow<py::dtype>(f64_handle);
    const auto* array_type = reinterpret_cast<PyTypeObject*>(ndarray.ptr());
    const auto n = static_cast<Py_ssize_t>(std::min({params.size(), grads.size(), moms.size()}));
    Py_ssize_t i = 0;
    for (; i < n; ++i) {
      // borrowed references: the lists hold them
      PyObject* const objects[3] = {PyList_GET_ITEM(params.ptr(), i), PyList_GET_ITEM(grads.ptr(), i),
                                    PyList_GET_ITEM(moms.ptr(), i)};
      if (Py_TYPE(objects[0]) != array_type || Py_TYPE(objects[1]) != array_type ||
          Py_TYPE(objects[2]) != array_type)
        break;
      const auto p = py::reinterpret_borrow<py::array>(objects[0]);
      const auto g = py::reinterpret_borrow<py::array>(objects[1]);
      const auto m = py::reinterpret_borrow<py::array>(objects[2]);
      const py::dtype d = p.dtype();
      if (!(d.equal(f32) || d.equal(f64)) || !g.dtype().equal(d) || !m.dtype().equal(d)) break;
      const py::ssize_t ndim = p.ndim();
      if (g.ndim() != ndim || m.ndim() != ndim) break;
      bool same_shape = true;
      for (py::ssize_t k = 0; k < ndim; ++k)
        same_shape = same_shape && g.shape(k) == p.shape(k) && m.shape(k) == p.shape(k);
      if (!same_shape) break;
      if (!(p.flags() & g.flags() & m.flags() & py::array::c_style) || !p.writeable() || !m.writeable()) break;
    }
    return i;
  }, py::arg("params"), py::arg("grads"), py::arg("moms"),
     "Number of leading (param, grad, mom) triples that certainly pass fastcore.tiger's CPU checks.");
  // spans: [address, address + nbytes) of each (C-contiguous) NumPy array, as an (n, 2) uint64
  // array, for the vectorised overlap check.
  m.def("spans", [](const std::vector<py::array>& arrays) {
    py::array_t<std::uint64_t> out({static_cast<py::ssize_t>(arrays.size()), py::ssize_t{2}});
    std::uint64_t* o = out.mutable_data();
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      const auto start = reinterpret_cast<std::uintptr_t>(arrays[i].data());
      o[2 * i] = start;
      o[2 * i + 1] = start + static_cast<std::uint64_t>(arrays[i].nbytes());
    }
    return out;
  }, py::arg("arrays"), "Byte spans [start, end) of C-contiguous NumPy arrays (reads no data).");
  m.attr("BLOCK") = tiger::kBlock;
  m.attr("DEFAULT_CHUNK") = tiger::kDefaultChunk;
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(tiger, bind_tiger)

}  // namespace bindings
}  // namespace fastcore
