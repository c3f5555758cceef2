// Self-registration of binding files, so adding a kernel family touches no shared file:
//
//   // cpp/bindings/activations.cpp
//   static void bind(pybind11::module_& m) { m.def("softmax", ...); }
//   FASTCORE_REGISTER_BINDINGS(activations, bind)
//
// puts the functions in the submodule fastcore._cpu.activations (the same macro in cuda/bindings/
// fills fastcore._cuda.activations). Header-only: each extension module gets its own registry.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace fastcore {
namespace bindings {

using RegisterFn = void (*)(pybind11::module_&);

inline std::vector<std::pair<std::string, RegisterFn>>& registry() {
  static std::vector<std::pair<std::string, RegisterFn>> entries;
  return entries;
}

struct Registrar {
  Registrar(const char* name, RegisterFn fn) { registry().emplace_back(name, fn); }
};

// Creates one submodule per registered family, in name order (static-initialisation order
// between files is unspecified; the module layout must not depend on it).
inline void register_all(pybind11::module_& m) {
  auto entries = registry();
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, fn] : entries) {
    auto sub = m.def_submodule(name.c_str());
    fn(sub);
  }
}

}  // namespace bindings
}  // namespace fastcore

#define FASTCORE_REGISTER_BINDINGS(name, fn) \
  static const ::fastcore::bindings::Registrar fastcore_registrar_##name(#name, &fn);
