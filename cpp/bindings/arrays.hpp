// Getting raw pointers out of NumPy arrays in the bindings (GIL held). The Python layer has
// already validated everything; these checks are cheap and make a bad call from Python that
// bypasses the public API raise instead of reading or writing out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "common/errors.hpp"

namespace fastcore {
namespace bindings {

namespace py = pybind11;

template <class T>
void require_dtype(const py::array& a, const char* name) {
  if (!a.dtype().equal(py::dtype::of<T>())) {  // equal, not is: unpickled dtypes are new objects
    throw_type_error(name, ": expected dtype ", std::string(py::str(py::dtype::of<T>())), ", got ",
                     std::string(py::str(a.dtype())));
  }
}

inline void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) throw_value_error(name, ": expected a C-contiguous array");
}

// Pointer to the first element of a C-contiguous array of T.
template <class T>
const T* input_ptr(const py::array& a, const char* name) {
  require_dtype<T>(a, name);
  require_c_contiguous(a, name);
  return static_cast<const T*>(a.data());
}

// Pointer to the first element of a writeable C-contiguous array of T.
template <class T>
T* output_ptr(py::array& a, const char* name) {
  require_dtype<T>(a, name);
  require_c_contiguous(a, name);
  if (!a.writeable()) throw_value_error(name, ": array is read-only");
  return static_cast<T*>(a.mutable_data());
}

// Pointer to the first element of a (possibly strided) array of T, without the contiguity check.
template <class T>
const T* strided_input_ptr(const py::array& a, const char* name) {
  require_dtype<T>(a, name);
  return static_cast<const T*>(a.data());
}

// Strides in elements (NumPy gives bytes). Throws if a stride is not a multiple of the item size.
inline std::vector<std::int64_t> element_strides(const py::array& a, const char* name) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(a.ndim()));
  const auto item = static_cast<std::int64_t>(a.itemsize());
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const auto s = static_cast<std::int64_t>(a.strides(d));
    if (s % item != 0) throw_value_error(name, ": stride ", s, " is not a multiple of the item size");
    out[static_cast<std::size_t>(d)] = s / item;
  }
  return out;
}

inline std::int64_t element_count(const py::array& a) { return static_cast<std::int64_t>(a.size()); }

}  // namespace bindings
}  // namespace fastcore
