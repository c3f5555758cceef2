// Bindings for cuda/tiger: fastcore._cuda.tiger.step (integers -> pointers, GIL released).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "bindings/registry.hpp"
#include "common/errors.hpp"
#include "cuda/common/device.hpp"
#include "cuda/tiger/tiger.cuh"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

int tiger_step(const std::vector<std::uintptr_t>& p, const std::vector<std::uintptr_t>& g,
               const std::vector<std::uintptr_t>& m, const std::vector<std::int64_t>& sizes,
               const std::vector<std::int64_t>& row_len, const std::vector<int>& p_dtype,
               const std::vector<int>& m_dtype, const std::vector<int>& rms_mode, const std::vector<bool>& lazy_rows,
               const std::vector<double>& lr_mult, const std::vector<double>& weight_decay,
               const std::vector<double>& centre, const std::vector<int>& found_inf, std::int64_t step,
               std::int64_t accum, double lr, double beta, double rms_floor, double shrink_ratio, int action,
               bool nan_only, bool global_scope, bool strict, bool lion, double beta2, bool maximize,
               bool stochastic_rounding, std::uint64_t seed, std::uintptr_t flags_out, std::uintptr_t stream) {
  const std::size_t n = p.size();
  for (std::size_t len : {g.size(), m.size(), sizes.size(), row_len.size(), p_dtype.size(), m_dtype.size(),
                          rms_mode.size(), lazy_rows.size(), lr_mult.size(), weight_decay.size(), centre.size(),
                          found_inf.size()}) {
    if (len != n) throw_value_error("tiger.step: per-tensor lists must all have ", n, " entries");
  }
  if (action < 0 || action > 2) throw_value_error("tiger.step: bad action ", action);
  std::vector<cuda::tiger::TensorHost> ts(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& t = ts[i];
    if (p_dtype[i] < 0 || p_dtype[i] > 2 || (m_dtype[i] != 0 && m_dtype[i] != 2))
      throw_value_error("tiger.step: tensor ", i, ": unsupported dtype code");
    if (rms_mode[i] < 0 || rms_mode[i] > 2) throw_value_error("tiger.step: bad rms_mode ", rms_mode[i]);
    t.p = reinterpret_cast<void*>(p[i]);
    t.g = reinterpret_cast<const void*>(g[i]);
    t.m = reinterpret_cast<void*>(m[i]);
    t.n = sizes[i];
    t.row_len = row_len[i];
    t.p_dtype = p_dtype[i];
    t.m_dtype = m_dtype[i];
    t.rms_mode = rms_mode[i];
    t.lazy_rows = lazy_rows[i];
    t.lr_mult = lr_mult[i];
    t.weight_decay = weight_decay[i];
    t.centre = centre[i];
    t.found_inf = found_inf[i];
  }
  cuda::tiger::StepHost a;
  a.step = step;
  a.accum = accum;
  a.lr = lr;
  a.beta = beta;
  a.rms_floor = rms_floor;
  a.shrink_ratio = shrink_ratio;
  a.action = action;
  a.nan_only = nan_only;
  a.global_scope = global_scope;
  a.strict = strict;
  a.lion = lion;
  a.beta2 = beta2;
  a.maximize = maximize;
  a.stochastic_rounding = stochastic_rounding;
  a.seed = seed;
  py::gil_scoped_release release;
  return cuda::tiger::step(ts, a, reinterpret_cast<std::uint8_t*>(flags_out), cuda::stream_from_handle(stream));
}

void bind_tiger(py::module_& m) {
  m.def("step", &tiger_step, py::arg("params"), py::arg("grads"), py::arg("moms"), py::arg("sizes"),
        py::arg("row_len"), py::arg("p_dtype"), py::arg("m_dtype"), py::arg("rms_mode"), py::arg("lazy_rows"),
        py::arg("lr_mult"), py::arg("weight_decay"), py::arg("centre"), py::arg("found_inf"), py::arg("step"),
        py::arg("accum"), py::arg("lr"), py::arg("beta"), py::arg("rms_floor"), py::arg("shrink_ratio"),
        py::arg("action"), py::arg("nan_only"), py::arg("global_scope"), py::arg("strict"), py::arg("lion"),
        py::arg("beta2"), py::arg("maximize"), py::arg("stochastic_rounding"), py::arg("seed"),
        py::arg("flags_out"), py::arg("stream"),
        "Fused multi-tensor Tiger step on device pointers (validated by fastcore.tiger.tiger_step). "
        "Returns the number of kernel launches made.");
  m.def("sr_key", &cuda::tiger::sr_key, py::arg("seed"), py::arg("step"), py::arg("tensor"));
  m.def("sr_bits", &cuda::tiger::sr_bits, py::arg("key"), py::arg("index"));
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(tiger, bind_tiger)

}  // namespace bindings
}  // namespace fastcore
