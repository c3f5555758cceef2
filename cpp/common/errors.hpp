// Error types shared by every kernel (CPU and CUDA host code).
//
// Kernels report problems by throwing; the bindings translate (cpp/bindings/exceptions.hpp):
//   fastcore::ValueError  -> Python ValueError   (bad sizes, values, inconsistent arguments)
//   fastcore::TypeError   -> Python TypeError    (wrong dtype reaching compiled code)
//   std::runtime_error    -> Python RuntimeError (CUDA errors, internal failures)
// The Python layer validates first; these are the cheap second line of defence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace fastcore {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct TypeError : std::logic_error {
  using std::logic_error::logic_error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream s;
  (s << ... << std::forward<Args>(args));
  return s.str();
}
}  // namespace detail

template <class... Args>
[[noreturn]] void throw_value_error(Args&&... args) {
  throw ValueError(detail::concat(std::forward<Args>(args)...));
}

template <class... Args>
[[noreturn]] void throw_type_error(Args&&... args) {
  throw TypeError(detail::concat(std::forward<Args>(args)...));
}

// a * b for sizes, or ValueError when the product does not fit (no silent wrap-around).
std::size_t checked_mul(std::size_t a, std::size_t b, const char* what = "size");
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what = "size");

}  // namespace fastcore

// FASTCORE_CHECK(cond, message parts...) throws fastcore::ValueError when cond is false.
#define FASTCORE_CHECK(cond, ...)                                 \
  do {                                                            \
    if (!(cond)) ::fastcore::throw_value_error(__VA_ARGS__);      \
  } while (0)
