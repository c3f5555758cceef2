// Bindings for cuda/s4: fastcore._cuda.s4.* on device pointers (integers) and the caller's stream
// (validated and prepared by fastcore.s4; GIL released). `single` selects complex64/float32.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/registry.hpp"
#include "cuda/common/device.hpp"
#include "cuda/s4/s4.cuh"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

namespace {

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void bind_s4(py::module_& m) {
  using u = std::uintptr_t;
  using i64 = std::int64_t;
  m.def("cauchy", [](u v, u z, u w, u out, i64 batch, i64 N, i64 Lz, bool conj, bool single, u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::cauchy<float>(ptr<const float>(v), ptr<const float>(z), ptr<const float>(w), ptr<float>(out), batch,
                              N, Lz, conj, s);
    else
      cuda::s4::cauchy<double>(ptr<const double>(v), ptr<const double>(z), ptr<const double>(w), ptr<double>(out),
                               batch, N, Lz, conj, s);
  });
  m.def("cauchy_backward", [](u v, u z, u w, u g, u dv, u dw, i64 batch, i64 N, i64 Lz, bool conj, bool single,
                              u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::cauchy_backward<float>(ptr<const float>(v), ptr<const float>(z), ptr<const float>(w),
                                       ptr<const float>(g), ptr<float>(dv), ptr<float>(dw), batch, N, Lz, conj, s);
    else
      cuda::s4::cauchy_backward<double>(ptr<const double>(v), ptr<const double>(z), ptr<const double>(w),
                                        ptr<const double>(g), ptr<double>(dv), ptr<double>(dw), batch, N, Lz, conj,
                                        s);
  });
  m.def("vandermonde", [](u v, u x, u out, i64 batch, i64 N, i64 L, bool real_out, bool single, u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::vandermonde<float>(ptr<const double>(v), ptr<const double>(x), ptr<float>(out), batch, N, L,
                                   real_out, s);
    else
      cuda::s4::vandermonde<double>(ptr<const double>(v), ptr<const double>(x), ptr<double>(out), batch, N, L,
                                    real_out, s);
  });
  m.def("vandermonde_backward", [](u v, u x, u g, u dv, u dx, i64 batch, i64 N, i64 L, bool real_out, bool single,
                                   u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::vandermonde_backward<float>(ptr<const double>(v), ptr<const double>(x), ptr<const float>(g),
                                            ptr<double>(dv), ptr<double>(dx), batch, N, L, real_out, s);
    else
      cuda::s4::vandermonde_backward<double>(ptr<const double>(v), ptr<const double>(x), ptr<const double>(g),
                                             ptr<double>(dv), ptr<double>(dx), batch, N, L, real_out, s);
  });
  m.def("dplr_spectrum", [](u alpha, u beta, u w, u khat, i64 H, i64 N, int rank, int channels, i64 L, bool single,
                            u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::dplr_spectrum<float>(ptr<const float>(alpha), ptr<const float>(beta), ptr<const float>(w),
                                     ptr<float>(khat), H, N, rank, channels, L, s);
    else
      cuda::s4::dplr_spectrum<double>(ptr<const double>(alpha), ptr<const double>(beta), ptr<const double>(w),
                                      ptr<double>(khat), H, N, rank, channels, L, s);
  });
  m.def("spectrum_multiply", [](u X, u S, i64 rows, i64 H, i64 nf, bool conj, bool single, u stream) {
    py::gil_scoped_release release;
    auto s = cuda::stream_from_handle(stream);
    if (single)
      cuda::s4::spectrum_multiply<float>(ptr<float>(X), ptr<const float>(S), rows, H, nf, conj, s);
    else
      cuda::s4::spectrum_multiply<double>(ptr<double>(X), ptr<const double>(S), rows, H, nf, conj, s);
  });
  m.attr("MAX_PRODUCTS") = cuda::s4::kMaxProducts;
  m.attr("MAX_RANK") = cuda::s4::kMaxRank;
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(s4, bind_s4)

}  // namespace bindings
}  // namespace fastcore
