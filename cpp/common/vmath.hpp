// Vectorisable elementary functions: exp for float and double; log and pow for double.
//
// Written as branch-free scalar code so that a loop calling them auto-vectorises in each ISA
// build (*.simd.cpp; use them there — elsewhere they compile at the baseline ISA and call the C
// library's fma). Every step is an IEEE add/multiply/compare/bit operation or an explicit fused
// multiply-add (vmath::fma: the FMA instruction in the AVX2/AVX-512 builds, the correctly rounded
// C library fma in the scalar build), never a contraction left to the compiler (the project
// compiles with -ffp-contract=off) and no table look-ups — so the scalar, AVX2 and AVX-512 builds
// return bitwise identical results.
//
// Method (both precisions): x = n·ln2 + r with n = round(x/ln2) (the 1.5·2^k "shifter" trick
// rounds to nearest even) and r from a two-part Cody–Waite reduction of ln2 (with FMA), so
// |r| <= ln2/2; exp(r) = 1 + r + r²·q(r) with q a near-minimax polynomial (Chebyshev
// interpolation of (e^r − 1 − r)/r² on [−ln2/2, ln2/2], computed for this project with mpmath:
// degree 6 in all for float, relative error 1.1e-8 = 0.18 ulp; degree 11 for double, 1.6e-17 =
// 0.14 ulp) in Horner form; then exp(x) = exp(r)·2^n, applied as two power-of-two factors
// 2^(n/2)·2^(n−n/2) so that results down into the subnormal range are rounded once and overflow
// to +inf happens naturally.
//
// Error bound (tested against the C library over the whole input range, tests/test_vmath.py):
//   exp_f32: <= 2 ulp everywhere (measured max about 1 ulp), subnormal results included
//   exp_f64: <= 2 ulp everywhere (measured max about 1 ulp)
// Special values: exp(NaN) = NaN (same payload), exp(+inf) = +inf, exp(-inf) = +0,
// overflow (x > ln(FLT_MAX)) -> +inf, deep underflow -> +0.
//
// log_f64 and pow_f64 (the alpha-entmax powers): see log_f64's comment. Bounds (tested against
// NumPy, tests/test_vmath.py): log_f64 <= 2 ulp (measured ~1); pow_f64(u, b) = exp(b·log u)
// carries log's error times |b·log u| into the result: relative error <= (2 + 1.5·|b·log u|)·2^-52.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace fastcore {
namespace vmath {

inline std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
inline std::uint64_t bits_of(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline double double_of(std::uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Fused multiply-add a·b + c with one rounding, identical in every ISA build.
inline float fma(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
inline double fma(double a, double b, double c) {
#if defined(__FMA__)
  return __builtin_fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

namespace detail {

constexpr float kExpMaxF32 = 89.0f;    // exp(88.73) > FLT_MAX
constexpr float kExpMinF32 = -104.0f;  // exp(-103.98) < half the smallest subnormal

// exp(x) for x in [kExpMinF32, kExpMaxF32]: the whole method of the file comment. Any other
// argument (beyond the range, ±inf, NaN) gives some value that the callers replace by a select
// after the call — never undefined behaviour: the integer steps are unsigned (wrapping). The
// range is handled by that select rather than by clamping the argument first: GCC 12's
// vectoriser turned a clamp into a select of every value downstream of it (the clamped argument
// being a constant), ~20% of the softmax exp's time.
inline float exp_f32_core(float x) {
  // n = round(x / ln2): adding 1.5·2^23 leaves round-to-nearest(x/ln2) in the low mantissa bits.
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23
  const float shifted = x * kLog2e + kShifter;
  const float n = shifted - kShifter;
  // r = x − n·ln2 in two parts (ln2 = kLn2Hi + kLn2Lo to 48 bits); each step one rounding.
  constexpr float kLn2Hi = 0x1.62e43p-1f;
  constexpr float kLn2Lo = -0x1.05c610p-29f;
  const float r = fma(-n, kLn2Lo, fma(-n, kLn2Hi, x));

  // exp(r) = 1 + r + r²·q(r), |r| <= 0.3466.
  float q = 0x1.6d110ap-10f;
  q = fma(q, r, 0x1.120b6ep-7f);
  q = fma(q, r, 0x1.55551ap-5f);
  q = fma(q, r, 0x1.5554dcp-3f);
  q = fma(q, r, 0x1.000000p-1f);
  const float p = fma(q, r * r, r) + 1.0f;

  // 2^n as two normal factors: n in [-150, 128] -> each half in [-75, 64].
  const std::uint32_t ni = bits_of(shifted) - bits_of(kShifter);                        // n mod 2^32
  const auto n1 = static_cast<std::uint32_t>(static_cast<std::int32_t>(ni) >> 1);  // floor(n / 2)
  const std::uint32_t n2 = ni - n1;
  const float scale1 = float_of((n1 + 127u) << 23);
  const float scale2 = float_of((n2 + 127u) << 23);
  return (p * scale1) * scale2;  // p·scale1 is exact; one rounding in the second
}

}  // namespace detail

inline float exp_f32(float x) {
  // Beyond the range the result is +0 / +inf anyway (exp of either end already is); a NaN fails
  // both comparisons and is returned itself.
  float result = detail::exp_f32_core(x);
  result = x > detail::kExpMinF32 ? result : 0.0f;
  result = x < detail::kExpMaxF32 ? result : static_cast<float>(INFINITY);
  return (x == x) ? result : x;
}

// exp(x) for x <= 0 (-inf included), bitwise equal to exp_f32 there — the shifted logits
// z - max(z) of a softmax. It skips the overflow select and the NaN restore (about a quarter
// of exp_f32's instructions): a NaN argument gives +0, so callers must detect NaNs themselves.
inline float exp_f32_nonpositive(float x) {
  // (x = kExpMinF32 itself also gives +0: exp(-104) is below half the smallest subnormal)
  const float result = detail::exp_f32_core(x);
  return x > detail::kExpMinF32 ? result : 0.0f;
}

namespace detail {

constexpr double kExpMaxF64 = 710.0;   // exp(709.79) > DBL_MAX
constexpr double kExpMinF64 = -746.0;  // exp(-745.14) < half the smallest subnormal

// exp(x) for x in [kExpMinF64, kExpMaxF64]; other arguments as exp_f32_core's.
inline double exp_f64_core(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52
  const double shifted = x * kLog2e + kShifter;
  const double n = shifted - kShifter;
  constexpr double kLn2Hi = 0x1.62e42fefa39efp-1;
  constexpr double kLn2Lo = 0x1.abc9e3b39803fp-56;
  const double r = fma(-n, kLn2Lo, fma(-n, kLn2Hi, x));

  double q = 0x1.af38a9b0ec855p-26;
  q = fma(q, r, 0x1.289185613a3d6p-22);
  q = fma(q, r, 0x1.71de0dae63bb3p-19);
  q = fma(q, r, 0x1.a019b90d2ae7ap-16);
  q = fma(q, r, 0x1.a01a01a7c41d5p-13);
  q = fma(q, r, 0x1.6c16c1788bd90p-10);
  q = fma(q, r, 0x1.11111111109b3p-7);
  q = fma(q, r, 0x1.5555555553d63p-5);
  q = fma(q, r, 0x1.5555555555556p-3);
  q = fma(q, r, 0x1.0000000000001p-1);
  const double p = fma(q, r * r, r) + 1.0;

  // n in [-1077, 1025] -> each half in [-539, 513], both normal exponents. floor(n / 2) by a
  // logical shift of n + 2048 >= 0 (AVX2 has no 64-bit arithmetic shift: GCC emulated it in three
  // instructions): n1 + 1023 = ((n + 2048) >> 1) - 1.
  const std::uint64_t ni = bits_of(shifted) - bits_of(kShifter);  // n mod 2^64
  const std::uint64_t biased1 = ((ni + 2048u) >> 1) - 1u;          // n1 + 1023
  const std::uint64_t biased2 = ni + 2046u - biased1;              // n2 + 1023 = n - n1 + 1023
  const double scale1 = double_of(biased1 << 52);
  const double scale2 = double_of(biased2 << 52);
  return (p * scale1) * scale2;
}

}  // namespace detail

inline double exp_f64(double x) {
  double result = detail::exp_f64_core(x);
  result = x > detail::kExpMinF64 ? result : 0.0;
  result = x < detail::kExpMaxF64 ? result : static_cast<double>(INFINITY);
  return (x == x) ? result : x;
}

// exp(x) for x <= 0, bitwise equal to exp_f64 there; a NaN argument gives +0 (see the float one).
inline double exp_f64_nonpositive(double x) {
  const double result = detail::exp_f64_core(x);
  return x > detail::kExpMinF64 ? result : 0.0;
}

// log(u) for double u, subnormals included. u = 2^e·m with m in (√½, √2] (e and m from the
// bits; a subnormal u is first scaled by 2^54), f = m − 1 (exact by Sterbenz), s = f/(2 + f), so
// ln m = 2·atanh(s) = 2s + s·R(s²) with R(z) = Σ_{j>=1} 2 z^j/(2j + 1), the Taylor series of
// atanh (|s| <= 0.1716, z <= 0.0295: ten terms leave < 1e-18 relative). Since 2s = f − s·f,
// ln m = f − s·(f − R): the leading f is exact and only the small correction carries the
// rounding of s. ln u = e·ln2_hi + (f − (s·(f − R) − e·ln2_lo)), with ln2_hi holding 32
// significant bits so that e·ln2_hi is exact. e is formed as a double from the exponent bits
// (the 2^52 "magic number" conversion: no int64 -> double instruction is needed, so the loop
// vectorises on AVX2). Special values: log(±0) = −inf, log(+inf) = +inf, log(u < 0) = NaN,
// log(NaN) = NaN.
inline double log_f64(double u) {
  constexpr double kMagic = 0x1p52;  // double_of(bits_of(kMagic) | k) == 2^52 + k for k < 2^52
  constexpr double kSqrt2 = 0x1.6a09e667f3bcdp+0;
  constexpr double kLn2Hi = 0x1.62e42fee00000p-1;
  constexpr double kLn2Lo = 0x1.a39ef35793c76p-33;
  const double inf = static_cast<double>(INFINITY);
  const bool subnormal = u < 0x1p-1022;
  const double scaled = subnormal ? u * 0x1p54 : u;
  const std::uint64_t bits = bits_of(scaled);
  const double biased = double_of(bits_of(kMagic) | ((bits >> 52) & 0x7ff)) - kMagic;  // 0..2047
  double m = double_of((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);       // [1, 2)
  const bool high = m > kSqrt2;
  m = high ? m * 0.5 : m;
  const double e = biased - 1023.0 + (high ? 1.0 : 0.0) - (subnormal ? 54.0 : 0.0);
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  double r = 0x1.8618618618618p-4;  // 2/21
  r = fma(r, z, 0x1.af286bca1af28p-4);  // 2/19
  r = fma(r, z, 0x1.e1e1e1e1e1e1ep-4);  // 2/17
  r = fma(r, z, 0x1.1111111111111p-3);  // 2/15
  r = fma(r, z, 0x1.3b13b13b13b14p-3);  // 2/13
  r = fma(r, z, 0x1.745d1745d1746p-3);  // 2/11
  r = fma(r, z, 0x1.c71c71c71c71cp-3);  // 2/9
  r = fma(r, z, 0x1.2492492492492p-2);  // 2/7
  r = fma(r, z, 0x1.999999999999ap-2);  // 2/5
  r = fma(r, z, 0x1.5555555555555p-1);  // 2/3
  r = r * z;
  const double correction = fma(s, f - r, -(e * kLn2Lo));
  const double result = e * kLn2Hi + (f - correction);
  if (u > 0.0) return u < inf ? result : u;
  return u == 0.0 ? -inf : static_cast<double>(NAN);
}

// u^b = exp(b·log u) for u >= 0 and finite b (u = 0: +0 for b > 0, +inf for b < 0). The result's
// relative error is about |b·log u| times log's (see the file comment).
inline double pow_f64(double u, double b) { return exp_f64(b * log_f64(u)); }
// pow_f64 for u in [0, 1] and b > 0, where b·log u <= 0: bitwise equal to pow_f64 there, through
// the cheaper exp_f64_nonpositive.
inline double pow_f64_unit(double u, double b) { return exp_f64_nonpositive(b * log_f64(u)); }

inline float exp(float x) { return exp_f32(x); }
inline double exp(double x) { return exp_f64(x); }
inline float exp_nonpositive(float x) { return exp_f32_nonpositive(x); }
inline double exp_nonpositive(double x) { return exp_f64_nonpositive(x); }

}  // namespace vmath
}  // namespace fastcore
