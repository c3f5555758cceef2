#include "common/errors.hpp"

namespace fastcore {

std::size_t checked_mul(std::size_t a, std::size_t b, const char* what) {
  std::size_t r;
  if (__builtin_mul_overflow(a, b, &r)) throw_value_error(what, " overflows: ", a, " * ", b);
  return r;
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r;
  if (a < 0 || b < 0) throw_value_error(what, " must be non-negative, got ", a, " * ", b);
  if (__builtin_mul_overflow(a, b, &r)) throw_value_error(what, " overflows: ", a, " * ", b);
  return r;
}

}  // namespace fastcore
