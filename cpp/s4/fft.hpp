// In-house FFTs for the S4 family (no third-party source; tested against numpy.fft).
//
//  * complex FFT of power-of-two size n: Stockham autosort, radix 4 with one radix-2 stage when
//    log2(n) is odd, out of place into a work buffer (no bit reversal pass);
//  * real FFT of power-of-two size m = 2n: the m reals packed as n complex numbers
//    (z_j = x_2j + i x_2j+1), one complex FFT of size n, then the even/odd unpack
//    X_k = E_k + W^k O_k (W = e^{-2 pi i/m}); the inverse packs the other way round;
//  * any other length: Bluestein's chirp-z on top of power-of-two FFTs, with the chirp phase
//    j^2 reduced modulo 2m in integer arithmetic before the sine/cosine (accurate for long m).
// Compiled once per ISA (scalar/avx2/avx512; -ffp-contract=off, element-wise loops only), so
// every ISA gives the same bits. All twiddles and chirps are computed in double and rounded once to T; plans are built once per
// (size, T) and cached for the life of the process (thread-safe). Transforms are unnormalised
// (the inverse returns m times the signal), like FFTW; callers scale.
// Complex data is interleaved (re, im) pairs of T.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace fastcore {
namespace s4 {

// Only included from *.simd.cpp files: everything lives in the per-ISA namespace.
namespace FASTCORE_ISA_NS {

inline bool is_pow2(std::int64_t n) { return n > 0 && (n & (n - 1)) == 0; }
inline std::int64_t next_pow2(std::int64_t n) {
  std::int64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Several transforms side by side: a "batch element" holds lane l of kBatchLanes<T> independent
// transforms (GCC vector extension, 32 bytes: 8 float / 4 double lanes). The FFT templates
// below run on E = T (one transform) or E = Batch<T> (one per lane) with the same code, so
// every lane computes exactly the single transform's operations: the same bits.
typedef float BatchF32 __attribute__((vector_size(32)));
typedef double BatchF64 __attribute__((vector_size(32)));
template <class T>
struct BatchOf;
template <>
struct BatchOf<float> {
  using type = BatchF32;
};
template <>
struct BatchOf<double> {
  using type = BatchF64;
};
template <class T>
using Batch = typename BatchOf<T>::type;
template <class T>
constexpr std::int64_t kBatchLanes = 32 / static_cast<std::int64_t>(sizeof(T));

// Storage for Batch<T> elements, 32-byte aligned through aligned operator new. (A plain
// std::vector<Batch<T>> came back only 16-byte aligned in this module, and the vectorised loops
// use aligned loads and stores on it.)
template <class V>
struct AlignedAllocator {
  using value_type = V;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  V* allocate(std::size_t count) {
    return static_cast<V*>(::operator new(count * sizeof(V), std::align_val_t(alignof(V))));
  }
  void deallocate(V* p, std::size_t) { ::operator delete(p, std::align_val_t(alignof(V))); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
template <class E>
using AlignedVec = std::vector<E, AlignedAllocator<E>>;
template <class T>
using BatchVec = AlignedVec<Batch<T>>;

// The scalar type of an element type: T itself, or the element type of a Batch<T> (what
// subscripting it gives).
template <class E, class = void>
struct ScalarOf {
  using type = E;
};
template <class E>
struct ScalarOf<E, std::void_t<decltype(std::declval<E&>()[0])>> {
  using type = std::decay_t<decltype(std::declval<E&>()[0])>;
};
template <class E>
using ScalarOfT = typename ScalarOf<E>::type;

template <class T>
struct FftPlan {
  std::int64_t n = 1;   // complex transform size (power of two)
  std::vector<T> tw;    // per radix-4 stage of length len: p in [0, len/4): w^p, w^2p, w^3p (w = e^{-2 pi i/len})
  std::vector<T> rtw;   // real unpack for size 2n: e^{-2 pi i k/(2n)}, k in [0, n]
};

// Cached plan for a complex FFT of power-of-two size n (the reference stays valid forever).
template <class T>
const FftPlan<T>& fft_plan(std::int64_t n);

// E = T, or Batch<T> for kBatchLanes<T> transforms at once (element i of lane l in lane l of
// x[i]); sizes below count elements.
// In-place complex FFT of x (n complex, n = plan.n); work holds 2n E. inverse: e^{+} kernel.
template <class E>
void cfft(const FftPlan<ScalarOfT<E>>& plan, E* x, E* work, bool inverse);

// Real FFT of m = 2*plan.n reals x -> m/2 + 1 complex X. work holds 4*plan.n E (x and X may
// not alias). m = 1 is handled by rfft_any.
template <class E>
void rfft_pow2(const FftPlan<ScalarOfT<E>>& plan, const E* x, E* X, E* work);
// Unnormalised inverse: m/2 + 1 complex X -> m reals (m times the signal). The imaginary parts
// of X_0 and X_{m/2} are ignored (as numpy.fft.irfft does). work holds 4*plan.n E.
template <class E>
void irfft_pow2(const FftPlan<ScalarOfT<E>>& plan, const E* X, E* x, E* work);

// Any length m >= 1: forward real DFT (m/2 + 1 complex out) and unnormalised inverse (m reals
// out, imaginary parts of X_0 and, for even m, X_{m/2} ignored). Power-of-two m use the real FFT,
// other m Bluestein. Allocates its own work space (kernel generation, not the hot conv path).
template <class T>
void rfft_any(std::int64_t m, const T* x, T* X);
template <class T>
void irfft_any(std::int64_t m, const T* X, T* x);

}  // namespace FASTCORE_ISA_NS
}  // namespace s4
}  // namespace fastcore
