// C++ exceptions -> Python exceptions, for both extension modules.
//   fastcore::TypeError  -> TypeError
//   fastcore::ValueError -> ValueError (it derives from std::invalid_argument, which pybind11
//                           already maps to ValueError; registered explicitly all the same)
//   std::runtime_error   -> RuntimeError (pybind11's default)
#pragma once

#include <pybind11/pybind11.h>

#include "common/errors.hpp"

namespace fastcore {
namespace bindings {

inline void register_exception_translators() {
  pybind11::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const fastcore::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const fastcore::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
}

}  // namespace bindings
}  // namespace fastcore
