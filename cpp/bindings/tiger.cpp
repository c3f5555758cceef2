// Bindings for cpp/tiger: fastcore._cpu.tiger.step (pointers out of the arrays, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

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
  m.def("addresses", [](const std::vector<py::array>& arrays) {
    std::vector<std::uintptr_t> out;
    out.reserve(arrays.size());
    for (const auto& a : arrays) out.push_back(reinterpret_cast<std::uintptr_t>(a.data()));
    return out;
  }, py::arg("arrays"), "Data addresses of NumPy arrays (fast path of the Python overlap check; reads nothing).");
  m.attr("BLOCK") = tiger::kBlock;
  m.attr("DEFAULT_CHUNK") = tiger::kDefaultChunk;
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(tiger, bind_tiger)

}  // namespace bindings
}  // namespace fastcore
