// Bindings for cpp/common: thread pool, SIMD level, build information, probes and self-tests.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "common/parallel.hpp"
#include "common/probe.hpp"
#include "common/simd.hpp"

namespace fastcore {
namespace bindings {

namespace {

py::dict build_info() {
  py::dict info;
  info["version"] = FASTCORE_VERSION;
  info["distribution"] = FASTCORE_DISTRIBUTION;
  info["compiler"] = FASTCORE_COMPILER;
  info["build_type"] = FASTCORE_BUILD_TYPE;
  info["native"] = static_cast<bool>(FASTCORE_NATIVE_BUILD);
  info["sanitize"] = FASTCORE_SANITIZE;
  std::vector<std::string> compiled;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_compiled(isa)) compiled.emplace_back(isa_name(isa));
  info["simd_compiled"] = compiled;
  return info;
}

std::vector<std::string> simd_supported() {
  std::vector<std::string> out;
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_compiled(isa) && isa_supported(isa)) out.emplace_back(isa_name(isa));
  return out;
}

template <class T, bool kNonpositive = false>
void exp_into(const py::array& x, py::array& y) {
  const T* xp = input_ptr<T>(x, "x");
  T* yp = output_ptr<T>(y, "out");
  const auto n = element_count(x);
  if (element_count(y) != n) throw_value_error("out: expected ", n, " elements");
  py::gil_scoped_release release;
  if (kNonpositive)
    exp_nonpositive_array_parallel(xp, yp, n);
  else
    exp_array_parallel(xp, yp, n);
}

// y = log(x) (b is None) or y = x^b, float64 arrays of the same size.
void log_or_pow_into(const py::array& x, py::array& y, const py::object& b) {
  const double* xp = input_ptr<double>(x, "x");
  double* yp = output_ptr<double>(y, "out");
  const auto n = element_count(x);
  if (element_count(y) != n) throw_value_error("out: expected ", n, " elements");
  const bool power = !b.is_none();
  const double exponent = power ? b.cast<double>() : 0.0;
  py::gil_scoped_release release;
  if (power)
    pow_array_parallel(xp, exponent, yp, n);
  else
    log_array_parallel(xp, yp, n);
}

}  // namespace

void bind_core(py::module_& m) {
  m.attr("__version__") = FASTCORE_VERSION;
  m.def("build_info", &build_info, "Compiler, build type and compiled SIMD levels.");

  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw_value_error("n must be >= 1, got ", n);
    set_num_threads(n);
  }, py::arg("n"));
  m.def("default_num_threads", &default_num_threads);

  m.def("get_simd_level", [] { return std::string(isa_name(active_isa())); });
  m.def("set_simd_level", [](const std::string& name) { set_active_isa(parse_isa(name.c_str())); },
        py::arg("level"));
  m.def("best_simd_level", [] { return std::string(isa_name(best_isa())); });
  m.def("supported_simd_levels", &simd_supported);
  m.def("simd_env_request", [] {
    return py::make_tuple(std::string(isa_env_request()), isa_env_request_honoured());
  });

  auto t = m.def_submodule("_testing", "Probes and self-tests for cpp/common (not public API).");
  t.def("exp_f32", &exp_into<float>, py::arg("x"), py::arg("out"));
  t.def("exp_f64", &exp_into<double>, py::arg("x"), py::arg("out"));
  t.def("exp_nonpositive_f32", &exp_into<float, true>, py::arg("x"), py::arg("out"));
  t.def("exp_nonpositive_f64", &exp_into<double, true>, py::arg("x"), py::arg("out"));
  t.def("log_f64", [](const py::array& x, py::array& y) { log_or_pow_into(x, y, py::none()); },
        py::arg("x"), py::arg("out"));
  t.def("pow_f64",
        [](const py::array& x, double b, py::array& y) { log_or_pow_into(x, y, py::float_(b)); },
        py::arg("x"), py::arg("b"), py::arg("out"));
  t.def("copy", [](const py::array& src, py::array& dst) {
    if (src.nbytes() != dst.nbytes()) throw_value_error("dst: expected ", src.nbytes(), " bytes");
    require_c_contiguous(src, "src");
    require_c_contiguous(dst, "dst");
    if (!dst.writeable()) throw_value_error("dst: array is read-only");
    const void* s = src.data();
    void* d = dst.mutable_data();
    const auto nbytes = static_cast<std::size_t>(src.nbytes());
    py::gil_scoped_release release;
    copy_parallel(s, d, nbytes);
  }, py::arg("src"), py::arg("dst"));
  t.def("fma_peak_run", [](std::int64_t iterations) {
    if (iterations < 1) throw_value_error("iterations must be >= 1");
    py::gil_scoped_release release;
    return fma_peak_run(iterations);
  }, py::arg("iterations_per_thread"));
  t.def("chunked_sum", [](const py::array& x, std::int64_t grain) {
    const double* p = input_ptr<double>(x, "x");
    const auto n = element_count(x);
    if (grain < 1) throw_value_error("grain must be >= 1");
    py::gil_scoped_release release;
    return chunked_sum(p, n, grain);
  }, py::arg("x"), py::arg("grain"));
  t.def("run_chunks_failing_at", [](std::int64_t n, std::int64_t failing) {
    py::gil_scoped_release release;
    return run_chunks_failing_at(n, failing);
  });
  // Only in sanitizer builds: deliberately wrong code, so a test can prove the sanitizers are
  // live and that a report aborts the process (and therefore fails CI).
  t.attr("sanitizers") = std::string(FASTCORE_SANITIZE);
  if (std::string(FASTCORE_SANITIZE).size() > 0) {
    t.def("sanitizer_canary", [](const std::string& kind) {
      if (kind == "heap-overflow") {
        std::vector<int> v(4, 1);
        volatile int* p = v.data();
        return static_cast<std::int64_t>(p[4]);  // one past the end: ASan reports
      }
      if (kind == "signed-overflow") {
        volatile std::int32_t big = 2147483647;
        return static_cast<std::int64_t>(big + 1);  // UBSan reports
      }
      throw_value_error("unknown canary ", kind);
    });
  }
  t.def("nested_regions", [](std::int64_t outer, std::int64_t inner) {
    py::gil_scoped_release release;
    return nested_regions(outer, inner);
  });
}

}  // namespace bindings
}  // namespace fastcore
