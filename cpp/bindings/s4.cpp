// Bindings for cpp/s4: fastcore._cpu.s4.* (validated by fastcore.s4; pointers out, GIL released).
// Outputs are allocated by the Python layer and passed in. Complex arrays are passed as their
// complex dtype and read as interleaved pairs of the matching real type.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <complex>
#include <cstdint>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "s4/s4.hpp"

namespace fastcore {
namespace bindings {

namespace {

bool is_single(const py::array& a) {
  return a.dtype().equal(py::dtype::of<float>()) || a.dtype().equal(py::dtype::of<std::complex<float>>());
}

template <class T>
const T* cin(const py::array& a, const char* name) {
  return reinterpret_cast<const T*>(input_ptr<std::complex<T>>(a, name));
}
template <class T>
T* cout_(py::array& a, const char* name) {
  return reinterpret_cast<T*>(output_ptr<std::complex<T>>(a, name));
}

template <class T>
void cauchy_t(const py::array& v, const py::array& z, const py::array& w, py::array& out, bool conj) {
  const auto batch = static_cast<std::int64_t>(out.shape(0)), Lz = static_cast<std::int64_t>(out.shape(1));
  const auto N = static_cast<std::int64_t>(v.shape(1));
  FASTCORE_CHECK(v.shape(0) == batch && w.shape(0) == batch && w.shape(1) == N && z.shape(0) == Lz,
                 "s4.cauchy: inconsistent shapes");
  const T *pv = cin<T>(v, "v"), *pz = cin<T>(z, "z"), *pw = cin<T>(w, "w");
  T* po = cout_<T>(out, "out");
  py::gil_scoped_release release;
  s4::cauchy<T>(pv, pz, pw, po, batch, N, Lz, conj);
}

template <class T>
void cauchy_bwd_t(const py::array& v, const py::array& z, const py::array& w, const py::array& g, py::array& dv,
                  py::array& dw, bool conj) {
  const auto batch = static_cast<std::int64_t>(v.shape(0)), N = static_cast<std::int64_t>(v.shape(1));
  const auto Lz = static_cast<std::int64_t>(z.shape(0));
  FASTCORE_CHECK(g.shape(0) == batch && g.shape(1) == Lz && w.shape(0) == batch && w.shape(1) == N &&
                     dv.shape(0) == batch && dv.shape(1) == N && dw.shape(0) == batch && dw.shape(1) == N,
                 "s4.cauchy_backward: inconsistent shapes");
  const T *pv = cin<T>(v, "v"), *pz = cin<T>(z, "z"), *pw = cin<T>(w, "w"), *pg = cin<T>(g, "grad");
  T *pdv = cout_<T>(dv, "dv"), *pdw = cout_<T>(dw, "dw");
  py::gil_scoped_release release;
  s4::cauchy_backward<T>(pv, pz, pw, pg, pdv, pdw, batch, N, Lz, conj);
}

template <class T>
void vand_t(const py::array& v, const py::array& x, py::array& out, std::int64_t L, bool real_out) {
  const auto batch = static_cast<std::int64_t>(v.shape(0)), N = static_cast<std::int64_t>(v.shape(1));
  FASTCORE_CHECK(x.shape(0) == batch && x.shape(1) == N && out.shape(0) == batch && out.shape(1) == L,
                 "s4.vandermonde: inconsistent shapes");
  const double *pv = cin<double>(v, "v"), *px = cin<double>(x, "x");
  T* po = real_out ? output_ptr<T>(out, "out") : cout_<T>(out, "out");
  py::gil_scoped_release release;
  s4::vandermonde<T>(pv, px, po, batch, N, L, real_out);
}

template <class T>
void vand_bwd_t(const py::array& v, const py::array& x, const py::array& g, py::array& dv, py::array& dx,
                bool real_out) {
  const auto batch = static_cast<std::int64_t>(v.shape(0)), N = static_cast<std::int64_t>(v.shape(1));
  const auto L = static_cast<std::int64_t>(g.shape(1));
  FASTCORE_CHECK(x.shape(0) == batch && x.shape(1) == N && g.shape(0) == batch && dv.shape(0) == batch &&
                     dv.shape(1) == N && dx.shape(0) == batch && dx.shape(1) == N,
                 "s4.vandermonde_backward: inconsistent shapes");
  const double *pv = cin<double>(v, "v"), *px = cin<double>(x, "x");
  const T* pg = real_out ? input_ptr<T>(g, "grad") : cin<T>(g, "grad");
  double *pdv = cout_<double>(dv, "dv"), *pdx = cout_<double>(dx, "dx");
  py::gil_scoped_release release;
  s4::vandermonde_backward<T>(pv, px, pg, pdv, pdx, batch, N, L, real_out);
}

template <class T>
void dplr_t(const py::array& Lambda, const py::array& P, const py::array& B, const py::array& Ct,
            const py::array& dt, py::array& K) {
  s4::DplrShape s;
  s.H = static_cast<std::int64_t>(Lambda.shape(0));
  s.N = static_cast<std::int64_t>(Lambda.shape(1));
  s.rank = static_cast<std::int64_t>(P.shape(0));
  s.channels = static_cast<std::int64_t>(Ct.shape(0));
  s.L = static_cast<std::int64_t>(K.shape(2));
  FASTCORE_CHECK(P.ndim() == 3 && P.shape(1) == s.H && P.shape(2) == s.N && B.shape(0) == s.H &&
                     B.shape(1) == s.N && Ct.ndim() == 3 && Ct.shape(1) == s.H && Ct.shape(2) == s.N &&
                     dt.shape(0) == s.H && K.shape(0) == s.channels && K.shape(1) == s.H,
                 "s4.kernel_dplr: inconsistent shapes");
  const T *pl = cin<T>(Lambda, "Lambda"), *pp = cin<T>(P, "P"), *pb = cin<T>(B, "B"), *pc = cin<T>(Ct, "Ct");
  const double* pd = input_ptr<double>(dt, "dt");
  T* pk = output_ptr<T>(K, "K");
  py::gil_scoped_release release;
  s4::kernel_dplr<T>(pl, pp, pb, pc, pd, pk, s);
}

template <class T>
void dplr_bwd_t(const py::array& Lambda, const py::array& P, const py::array& B, const py::array& Ct,
                const py::array& dt, const py::array& dkhat, std::int64_t L, py::array& dv, py::array& dw) {
  s4::DplrShape s;
  s.H = static_cast<std::int64_t>(Lambda.shape(0));
  s.N = static_cast<std::int64_t>(Lambda.shape(1));
  s.rank = static_cast<std::int64_t>(P.shape(0));
  s.channels = static_cast<std::int64_t>(Ct.shape(0));
  s.L = L;
  const std::int64_t np = (1 + s.rank) * (s.channels + s.rank);
  FASTCORE_CHECK(L >= 1 && P.ndim() == 3 && P.shape(1) == s.H && P.shape(2) == s.N && B.shape(0) == s.H &&
                     B.shape(1) == s.N && Ct.ndim() == 3 && Ct.shape(1) == s.H && Ct.shape(2) == s.N &&
                     dt.shape(0) == s.H && dkhat.ndim() == 3 && dkhat.shape(0) == s.channels &&
                     dkhat.shape(1) == s.H && dkhat.shape(2) == (L + 1) / 2 && dv.ndim() == 3 &&
                     dv.shape(0) == np && dv.shape(1) == s.H && dv.shape(2) == s.N && dw.ndim() == 2 &&
                     dw.shape(0) == s.H && dw.shape(1) == s.N,
                 "s4.kernel_dplr_backward: inconsistent shapes");
  const T *pl = cin<T>(Lambda, "Lambda"), *pp = cin<T>(P, "P"), *pb = cin<T>(B, "B"), *pc = cin<T>(Ct, "Ct");
  const double* pd = input_ptr<double>(dt, "dt");
  const double* pg = cin<double>(dkhat, "dkhat");
  double* pdv = cout_<double>(dv, "dv");
  double* pdw = cout_<double>(dw, "dw");
  py::gil_scoped_release release;
  s4::kernel_dplr_backward<T>(pl, pp, pb, pc, pd, pg, pdv, pdw, s);
}

template <class T>
void conv_t(const py::array& u, const py::array& k, const py::object& D, py::array& y, bool bidi) {
  const auto batch = static_cast<std::int64_t>(u.shape(0)), H = static_cast<std::int64_t>(u.shape(1));
  const auto L = static_cast<std::int64_t>(u.shape(2)), Lk = static_cast<std::int64_t>(k.shape(2));
  FASTCORE_CHECK(k.shape(0) == (bidi ? 2 : 1) && k.shape(1) == H && y.shape(0) == batch && y.shape(1) == H &&
                     y.shape(2) == L,
                 "s4.fftconv: inconsistent shapes");
  const T* pd = nullptr;
  if (!D.is_none()) {
    py::array Da = D.cast<py::array>();
    FASTCORE_CHECK(Da.ndim() == 1 && Da.shape(0) == H, "s4.fftconv: D must have shape (H,)");
    pd = input_ptr<T>(Da, "D");
  }
  const T *pu = input_ptr<T>(u, "u"), *pk = input_ptr<T>(k, "K");
  T* py_ = output_ptr<T>(y, "out");
  py::gil_scoped_release release;
  s4::fftconv<T>(pu, pk, pd, py_, batch, H, L, Lk, bidi);
}

template <class T>
void conv_bwd_t(const py::array& u, const py::array& k, const py::object& D, const py::array& dy, py::array& du,
                py::array& dk, const py::object& dD, bool bidi) {
  const auto batch = static_cast<std::int64_t>(u.shape(0)), H = static_cast<std::int64_t>(u.shape(1));
  const auto L = static_cast<std::int64_t>(u.shape(2)), Lk = static_cast<std::int64_t>(k.shape(2));
  FASTCORE_CHECK(k.shape(0) == (bidi ? 2 : 1) && k.shape(1) == H && dy.shape(0) == batch && dy.shape(1) == H &&
                     dy.shape(2) == L && du.shape(0) == batch && du.shape(1) == H && du.shape(2) == L &&
                     dk.shape(0) == k.shape(0) && dk.shape(1) == H && dk.shape(2) == Lk,
                 "s4.fftconv_backward: inconsistent shapes");
  const T* pd = nullptr;
  T* pdd = nullptr;
  if (!D.is_none()) {
    py::array Da = D.cast<py::array>();
    py::array dDa = dD.cast<py::array>();
    FASTCORE_CHECK(Da.shape(0) == H && dDa.shape(0) == H, "s4.fftconv_backward: D must have shape (H,)");
    pd = input_ptr<T>(Da, "D");
    pdd = output_ptr<T>(dDa, "dD");
  }
  const T *pu = input_ptr<T>(u, "u"), *pk = input_ptr<T>(k, "K"), *pg = input_ptr<T>(dy, "dy");
  T *pdu = output_ptr<T>(du, "du"), *pdk = output_ptr<T>(dk, "dK");
  py::gil_scoped_release release;
  s4::fftconv_backward<T>(pu, pk, pd, pg, pdu, pdk, pdd, batch, H, L, Lk, bidi);
}

template <class T>
void rtf_t(const py::array& a, const py::array& b, const py::array& h0, py::array& out) {
  const auto H = static_cast<std::int64_t>(a.shape(0)), N = static_cast<std::int64_t>(a.shape(1));
  const auto L = static_cast<std::int64_t>(out.shape(1));
  FASTCORE_CHECK(b.shape(0) == H && b.shape(1) == N && h0.shape(0) == H && out.shape(0) == H,
                 "s4.rtf_kernel: inconsistent shapes");
  const T *pa = input_ptr<T>(a, "a"), *pb = input_ptr<T>(b, "b"), *ph = input_ptr<T>(h0, "h0");
  T* po = output_ptr<T>(out, "out");
  py::gil_scoped_release release;
  s4::rtf_kernel<T>(pa, pb, ph, po, H, N, L);
}

template <class T>
void rfft_t(const py::array& x, py::array& X) {
  const auto rows = static_cast<std::int64_t>(x.shape(0)), m = static_cast<std::int64_t>(x.shape(1));
  FASTCORE_CHECK(X.shape(0) == rows && X.shape(1) == m / 2 + 1, "s4.rfft: inconsistent shapes");
  const T* px = input_ptr<T>(x, "x");
  T* pX = cout_<T>(X, "out");
  py::gil_scoped_release release;
  s4::rfft_rows<T>(px, pX, rows, m);
}

template <class T>
void irfft_t(const py::array& X, py::array& x) {
  const auto rows = static_cast<std::int64_t>(x.shape(0)), m = static_cast<std::int64_t>(x.shape(1));
  FASTCORE_CHECK(X.shape(0) == rows && X.shape(1) == m / 2 + 1, "s4.irfft: inconsistent shapes");
  const T* pX = cin<T>(X, "X");
  T* px = output_ptr<T>(x, "out");
  py::gil_scoped_release release;
  s4::irfft_rows<T>(pX, px, rows, m);
}

void bind_s4(py::module_& m) {
  m.def("cauchy", [](const py::array& v, const py::array& z, const py::array& w, py::array& out, bool conj) {
    is_single(v) ? cauchy_t<float>(v, z, w, out, conj) : cauchy_t<double>(v, z, w, out, conj);
  }, py::arg("v"), py::arg("z"), py::arg("w"), py::arg("out"), py::arg("conj"));
  m.def("cauchy_backward", [](const py::array& v, const py::array& z, const py::array& w, const py::array& g,
                              py::array& dv, py::array& dw, bool conj) {
    is_single(v) ? cauchy_bwd_t<float>(v, z, w, g, dv, dw, conj) : cauchy_bwd_t<double>(v, z, w, g, dv, dw, conj);
  }, py::arg("v"), py::arg("z"), py::arg("w"), py::arg("grad"), py::arg("dv"), py::arg("dw"), py::arg("conj"));
  m.def("vandermonde", [](const py::array& v, const py::array& x, py::array& out, std::int64_t L, bool real_out) {
    is_single(out) ? vand_t<float>(v, x, out, L, real_out) : vand_t<double>(v, x, out, L, real_out);
  }, py::arg("v"), py::arg("x"), py::arg("out"), py::arg("L"), py::arg("real_out"));
  m.def("vandermonde_backward", [](const py::array& v, const py::array& x, const py::array& g, py::array& dv,
                                   py::array& dx, bool real_out) {
    is_single(g) ? vand_bwd_t<float>(v, x, g, dv, dx, real_out) : vand_bwd_t<double>(v, x, g, dv, dx, real_out);
  }, py::arg("v"), py::arg("x"), py::arg("grad"), py::arg("dv"), py::arg("dx"), py::arg("real_out"));
  m.def("kernel_dplr", [](const py::array& L, const py::array& P, const py::array& B, const py::array& Ct,
                          const py::array& dt, py::array& K) {
    is_single(L) ? dplr_t<float>(L, P, B, Ct, dt, K) : dplr_t<double>(L, P, B, Ct, dt, K);
  }, py::arg("Lambda"), py::arg("P"), py::arg("B"), py::arg("Ct"), py::arg("dt"), py::arg("K"));
  m.def("kernel_dplr_backward", [](const py::array& L, const py::array& P, const py::array& B, const py::array& Ct,
                                   const py::array& dt, const py::array& dkhat, std::int64_t len, py::array& dv,
                                   py::array& dw) {
    is_single(L) ? dplr_bwd_t<float>(L, P, B, Ct, dt, dkhat, len, dv, dw)
                 : dplr_bwd_t<double>(L, P, B, Ct, dt, dkhat, len, dv, dw);
  }, py::arg("Lambda"), py::arg("P"), py::arg("B"), py::arg("Ct"), py::arg("dt"), py::arg("dkhat"), py::arg("L"),
        py::arg("dv"), py::arg("dw"));
  m.def("fftconv", [](const py::array& u, const py::array& k, const py::object& D, py::array& y, bool bidi) {
    is_single(u) ? conv_t<float>(u, k, D, y, bidi) : conv_t<double>(u, k, D, y, bidi);
  }, py::arg("u"), py::arg("K"), py::arg("D"), py::arg("out"), py::arg("bidirectional"));
  m.def("fftconv_backward", [](const py::array& u, const py::array& k, const py::object& D, const py::array& dy,
                               py::array& du, py::array& dk, const py::object& dD, bool bidi) {
    is_single(u) ? conv_bwd_t<float>(u, k, D, dy, du, dk, dD, bidi)
                 : conv_bwd_t<double>(u, k, D, dy, du, dk, dD, bidi);
  }, py::arg("u"), py::arg("K"), py::arg("D"), py::arg("dy"), py::arg("du"), py::arg("dK"), py::arg("dD"),
        py::arg("bidirectional"));
  m.def("rtf_kernel", [](const py::array& a, const py::array& b, const py::array& h0, py::array& out) {
    is_single(a) ? rtf_t<float>(a, b, h0, out) : rtf_t<double>(a, b, h0, out);
  }, py::arg("a"), py::arg("b"), py::arg("h0"), py::arg("out"));
  m.def("rfft", [](const py::array& x, py::array& X) { is_single(x) ? rfft_t<float>(x, X) : rfft_t<double>(x, X); },
        py::arg("x"), py::arg("out"));
  m.def("irfft", [](const py::array& X, py::array& x) {
    is_single(x) ? irfft_t<float>(X, x) : irfft_t<double>(X, x);
  }, py::arg("X"), py::arg("out"));
}

}  // namespace

FASTCORE_REGISTER_BINDINGS(s4, bind_s4)

}  // namespace bindings
}  // namespace fastcore
