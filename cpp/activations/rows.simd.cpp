// Row kernels of the probability maps, compiled once per ISA (FASTCORE_ISA_NS).
//
// Every reduction runs in kLanes independent lanes over blocks of kBlock elements (the compiler
// turns the lane loop into vector instructions without changing any rounding), the lanes are
// combined by a fixed tree and the block partials are added in double in order: the same bits on
// every ISA, and float32 sums accurate to ~64 ulp per block whatever the row length.
//
// The sparse maps (sparsemax, 1.5-entmax, alpha-entmax) work in double on the shifted logits
// d = z - max(z): d is in (-1, 0] for every entry that can be in the support, which keeps the
// threshold exact for huge logits (shift invariance) and lets a single candidate pass collect the
// entries the iterations need (notes/activations.md §6).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "activations/rows.hpp"
#include "common/scratch.hpp"
#include "common/vmath.hpp"

#if FASTCORE_ISA_LEVEL >= 1
#include <immintrin.h>
#endif

namespace fastcore {
namespace activations {
namespace FASTCORE_ISA_NS {

namespace {

constexpr int kLanes = 16;
constexpr std::int64_t kBlock = 1024;
constexpr int kMaxIterations = 100;  // Michelot / Newton passes before the sorting fallback

constexpr int kStreamScratchSlot = 1;  // scratch<T> slot of softmax_row's streamed exps
// scratch<T> slot of a softmax strip's exps and of alpha-entmax backward's weights (never live at
// the same time)
constexpr int kStripScratchSlot = 0;
constexpr int kSoftmax = 0, kLogSoftmax = 1, kSparsemax = 2, kEntmax15 = 3, kBisect = 4;

template <class T>
constexpr T kInf = std::numeric_limits<T>::infinity();

template <class T>
T lane_tree_sum(T* acc) {
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int j = 0; j < width; ++j) acc[j] += acc[j + width];
  return acc[0];
}

// sum_i f(i) over [0, n) (see the file comment for the order).
template <class T, class F>
double ordered_sum(std::int64_t n, F&& f) {
  double total = 0.0;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    T acc[kLanes] = {};
    std::int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int j = 0; j < kLanes; ++j) acc[j] += f(i + j);
    for (int j = 0; i < e; ++i, ++j) acc[j] += f(i);
    total += static_cast<double>(lane_tree_sum(acc));
  }
  return total;
}

// kSums sums at once, each in ordered_sum's order (the same bits as kSums separate calls, in one
// pass): f(i, terms) writes the kSums terms of element i.
template <int kSums, class T, class F>
void ordered_sums(std::int64_t n, F&& f, double (&total)[kSums]) {
  for (int s = 0; s < kSums; ++s) total[s] = 0.0;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    T acc[kSums][kLanes] = {};
    auto visit = [&](int j, std::int64_t i) {
      T terms[kSums];
      f(i, terms);
      for (int s = 0; s < kSums; ++s) acc[s][j] += terms[s];
    };
    std::int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int j = 0; j < kLanes; ++j) visit(j, i + j);
    for (int j = 0; i < e; ++i, ++j) visit(j, i);
    for (int s = 0; s < kSums; ++s) total[s] += static_cast<double>(lane_tree_sum(acc[s]));
  }
}

// z_i = scale*x_i, or -inf where masked. kMasked is a template parameter so the unmasked loops
// carry no mask test and vectorise cleanly.
template <bool kMasked, class T>
T logit(const T* x, const std::uint8_t* mask, std::int64_t i, T scale) {
  const T z = x[i] * scale;
  if constexpr (kMasked) return mask[i] ? z : -kInf<T>;
  (void)mask;
  return z;
}

// max over the row of z = scale*x (masked -> -inf), and whether an unmasked z is NaN (the max
// comparison skips NaNs; +inf shows up as the max).
template <class T>
struct RowMax {
  T max;
  bool has_nan;
};

template <bool kMasked, class T>
RowMax<T> row_max(const T* __restrict x, const std::uint8_t* __restrict mask, std::int64_t n,
                  T scale) {
  T mx[kLanes], nans[kLanes];
  for (int j = 0; j < kLanes; ++j) mx[j] = -kInf<T>, nans[j] = T(0);
  auto visit = [&](int j, std::int64_t i) {
    const T z = logit<kMasked>(x, mask, i, scale);
    mx[j] = z > mx[j] ? z : mx[j];
    nans[j] += z != z ? T(1) : T(0);  // a count only ever tested against 0
  };
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) visit(j, i + j);
  for (int j = 0; i < n; ++i, ++j) visit(j, i);
  T m = mx[0], nan_count = nans[0];
  for (int j = 1; j < kLanes; ++j) m = mx[j] > m ? mx[j] : m, nan_count += nans[j];
  return {m, nan_count != T(0)};
}

template <class T>
void fill(T* y, std::int64_t n, T value) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = value;
}

// Overwrites the columns flagged `special` (a NaN, nothing to normalise) with their fill value.
// Kept out of the main write loops, which then have no per-column select and vectorise.
template <class T>
void fill_special_columns(T* y, std::int64_t n, std::int64_t inner, int width, const bool* special,
                          const T* fill_value) {
  for (int j = 0; j < width; ++j) {
    if (!special[j]) continue;
    for (std::int64_t i = 0; i < n; ++i) y[i * inner + j] = fill_value[j];
  }
}

// y[i] = exp(z_i - m) and the sum of the y[i] in ordered_sum's order (so fusing the two passes
// changes no bit). m is the row's max, so z_i - m <= 0 and the cheaper exp_nonpositive applies;
// the caller has ruled out NaNs (row_max). The lane loop turns into vector code where each
// iteration carries kLanes/width independent exps, which keeps the FMA pipes busy.
template <bool kMasked, class T>
double exp_shifted_sum(const T* __restrict x, const std::uint8_t* __restrict mask,
                       T* __restrict y, std::int64_t n, T scale, T m, const T* prefetch) {
  double total = 0.0;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    T acc[kLanes] = {};
    auto visit = [&](int j, std::int64_t i) {
      const T v = vmath::exp_nonpositive(logit<kMasked>(x, mask, i, scale) - m);
      y[i] = v;
      acc[j] += v;
    };
    std::int64_t i = b;
    for (; i + kLanes <= e; i += kLanes) {
      // This pass is compute-bound: it is where the next row's loads are issued (one touch per
      // 64-byte line), so that row's first pass finds it in cache instead of waiting on memory.
      if (prefetch != nullptr)
        for (int j = 0; j < kLanes; j += 64 / static_cast<int>(sizeof(T)))
          __builtin_prefetch(prefetch + i + j);
      for (int j = 0; j < kLanes; ++j) visit(j, i + j);
    }
    for (int j = 0; i < e; ++i, ++j) visit(j, i);
    total += static_cast<double>(lane_tree_sum(acc));
  }
  return total;
}

// y[i] = e[i] * factor (multiply) or e[i], with non-temporal stores on AVX2 and up (plain
// stores elsewhere; the same bits either way). The caller issues store_fence() before its
// results are handed to another thread.
template <class T>
void store_streaming(T* __restrict y, const T* __restrict e, std::int64_t n, T factor, bool multiply) {
  std::int64_t i = 0;
#if FASTCORE_ISA_LEVEL >= 1
  constexpr std::int64_t kV = 32 / sizeof(T);
  for (; i < n && reinterpret_cast<std::uintptr_t>(y + i) % 32 != 0; ++i) y[i] = multiply ? e[i] * factor : e[i];
  if (reinterpret_cast<std::uintptr_t>(y + i) % 32 == 0) {
    for (; i + kV <= n; i += kV) {
      if constexpr (sizeof(T) == 4) {
        __m256 v = _mm256_loadu_ps(e + i);
        if (multiply) v = _mm256_mul_ps(v, _mm256_set1_ps(factor));
        _mm256_stream_ps(y + i, v);
      } else {
        __m256d v = _mm256_loadu_pd(e + i);
        if (multiply) v = _mm256_mul_pd(v, _mm256_set1_pd(factor));
        _mm256_stream_pd(y + i, v);
      }
    }
  }
#endif
  for (; i < n; ++i) y[i] = multiply ? e[i] * factor : e[i];
}

inline void store_fence() {
#if FASTCORE_ISA_LEVEL >= 1
  _mm_sfence();
#endif
}

// --- softmax / log-softmax ---------------------------------------------------------------------

// Rows that fit in cache: max (reads x from memory), exp into y, sum, then y *= 1/sum or
// y = (z - m) - log(sum) — every pass after the first works in cache.
// Longer rows: per block of kBlock, the block max, exp into y and the block sum, the running sum
// rescaled when the max grows (online softmax, Milakov & Gimelshein 2018); then a final pass
// exp(z - m)/sum. Both orders depend only on n, so results are reproducible.
template <bool kMasked, class T>
void softmax_row(const T* __restrict x, const std::uint8_t* __restrict mask, T* __restrict y,
                 std::int64_t n, T scale, bool log, const T* next_row, bool stream_output) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  T m;
  double s;
  if (n * static_cast<std::int64_t>(sizeof(T)) <= kCachedRowBytes) {
    const RowMax<T> row = row_max<kMasked>(x, mask, n, scale);
    m = row.max;
    if (row.has_nan || m == kInf<T>) return fill(y, n, nan);
    if (m == -kInf<T>) return fill(y, n, log ? -kInf<T> : T(0));  // nothing unmasked
    if (stream_output) {
      // Exps into L1/L2 scratch, then y written once with streaming stores: y's lines are
      // never read for ownership (a third of the memory traffic of a large softmax).
      T* e = scratch<T>(kStreamScratchSlot, static_cast<std::size_t>(n));
      s = exp_shifted_sum<kMasked>(x, mask, e, n, scale, m, next_row);
      if (log) {
        const T log_s = static_cast<T>(std::log(s));
        for (std::int64_t i = 0; i < n; ++i) e[i] = (logit<kMasked>(x, mask, i, scale) - m) - log_s;
        return store_streaming(y, e, n, T(1), false);
      }
      return store_streaming(y, e, n, static_cast<T>(1.0 / s), true);
    }
    s = exp_shifted_sum<kMasked>(x, mask, y, n, scale, m, next_row);
  } else {
    s = 0.0;
    m = -kInf<T>;
    for (std::int64_t b = 0; b < n; b += kBlock) {
      const std::int64_t len = std::min(kBlock, n - b);
      const std::uint8_t* mb = kMasked ? mask + b : nullptr;
      const RowMax<T> block = row_max<kMasked>(x + b, mb, len, scale);
      if (block.has_nan || block.max == kInf<T>) return fill(y, n, nan);
      if (block.max == -kInf<T>) continue;
      if (block.max > m) {
        if (m != -kInf<T>) s *= std::exp(static_cast<double>(m) - static_cast<double>(block.max));
        m = block.max;
      }
      s += exp_shifted_sum<kMasked>(x + b, mb, y + b, len, scale, m, static_cast<const T*>(nullptr));
    }
    if (m == -kInf<T>) return fill(y, n, log ? -kInf<T> : T(0));
    if (!log) {
      // The final pass recomputes exp(z - m) with the final max and scales it in one go (the
      // same two roundings as exp into y, then y *= 1/s).
      const T inv = static_cast<T>(1.0 / s);
      for (std::int64_t i = 0; i < n; ++i)
        y[i] = vmath::exp_nonpositive(logit<kMasked>(x, mask, i, scale) - m) * inv;
      return;
    }
  }
  if (log) {
    const T log_s = static_cast<T>(std::log(s));
    // (z - m) - log s in exactly this order (pytorch#11752)
    for (std::int64_t i = 0; i < n; ++i) y[i] = (logit<kMasked>(x, mask, i, scale) - m) - log_s;
    return;
  }
  const T inv = static_cast<T>(1.0 / s);
  for (std::int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// Column strips read one short segment (<= kStripBytes) per row, rows `inner` elements apart: the
// hardware stream prefetchers do not follow that, so each pass that walks the rows of a strip
// from memory touches the segment kPrefetchRows rows ahead.
constexpr std::int64_t kPrefetchRows = 8;
template <int kForWrite = 0, class T>
void prefetch_segment(const T* p, std::int64_t width) {
  const char* c = reinterpret_cast<const char*>(p);
  for (std::int64_t offset = 0; offset < width * static_cast<std::int64_t>(sizeof(T)); offset += 64)
    __builtin_prefetch(c + offset, kForWrite);
}

// The end of a kBlock block of a strip: per column, the kLanes lane partials combined by
// lane_tree_sum's tree and added to the column's double total (ordered_sum's order).
template <class T, int kW>
void add_lane_sums(T (&acc)[kLanes][kW], double (&total)[kW]) {
  for (int half = kLanes / 2; half >= 1; half /= 2)
    for (int k = 0; k < half; ++k)
      for (int j = 0; j < kW; ++j) acc[k][j] += acc[k + half][j];
  for (int j = 0; j < kW; ++j) total[j] += static_cast<double>(acc[0][j]);
}

// The powers u^b of alpha-entmax (b = 1/(alpha-1) forward, 2 - alpha backward) for u > 0,
// chosen once per loop: exact for b = 1, 2 (alpha = 2, 1.5), 0 (backward at alpha = 2) and 0.5
// (a correctly rounded square root), vmath::pow_f64 otherwise (vectorisable; relative error
// about (2 + |b log u|)·2^-52, see vmath.hpp — std::pow was a scalar library call per entry and
// per iteration, most of alpha-entmax's time). kUnitBase: u <= 1 and b > 0 (the forward's
// u = d - tau), so vmath::pow_f64_unit applies (the same bits, cheaper). Calls f(power) with a
// function object, so the loops over it are compiled per case.
template <bool kUnitBase, class F>
decltype(auto) with_power(double b, F&& f) {
  if (b == 1.0) return f([](double u) { return u; });
  if (b == 2.0) return f([](double u) { return u * u; });
  if (b == 0.5) return f([](double u) { return std::sqrt(u); });
  if (b == 0.0) return f([](double) { return 1.0; });
  if constexpr (kUnitBase) return f([b](double u) { return vmath::pow_f64_unit(u, b); });
  return f([b](double u) { return vmath::pow_f64(u, b); });
}

// --- softmax / log-softmax down columns (mapped axis not the last) ------------------------------

// One strip: `width` neighbouring columns, n rows at stride `inner`. Each pass walks the rows and
// is vectorised across the columns of a row segment (contiguous), instead of gathering columns
// into rows (one cache line per row per tile, then a scalar transpose). Per column it repeats
// softmax_row's cached branch exactly: the max, exp_nonpositive(z - m), the sum in kLanes lanes
// per kBlock rows (row i of a block feeds lane i % kLanes, lanes combined by the same tree,
// blocks added in double), then y *= 1/s or y = (z - m) - log s.
// The exps go to a dense per-thread buffer rather than into y: y is then written once, in pass 3,
// and pass 2's stores cannot alias pass 2's loads of x (x and y rows often share their offsets
// modulo 4 KiB, which stalls loads behind unrelated stores). x's strip (n x 256 bytes) and the
// buffer stay in the outer caches between the passes.
template <bool kMasked, class T>
void softmax_strip(bool log, const T* __restrict x, const std::uint8_t* __restrict mask,
                   T* __restrict y, std::int64_t n, std::int64_t inner, int width, T scale) {
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  alignas(64) T m[kW], nans[kW], acc[kLanes][kW], factor[kW], fill_value[kW];
  double total[kW];
  bool special[kW];
  for (int j = 0; j < kW; ++j) m[j] = -kInf<T>, nans[j] = T(0), total[j] = 0.0;
  // row i at i*kW
  T* exps = log ? nullptr : scratch<T>(kStripScratchSlot, static_cast<std::size_t>(n * kW));

  // Pass 1: column max and NaN count (as row_max).
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
    const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
    if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
    for (int j = 0; j < width; ++j) {
      const T z = logit<kMasked>(xr, mr, j, scale);
      m[j] = z > m[j] ? z : m[j];
      nans[j] += z != z ? T(1) : T(0);
    }
  }
  // Pass 2: e = exp(z - m) (kept for softmax) and the column sums in softmax_row's order.
  // Columns with a NaN or an infinite max compute garbage here that pass 3 overwrites
  // (exp_nonpositive maps NaN to 0, so nothing below is undefined).
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    for (int k = 0; k < kLanes; ++k)
      for (int j = 0; j < kW; ++j) acc[k][j] = T(0);
    for (std::int64_t i = b; i < e; ++i) {
      const T* xr = x + i * inner;
      const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
      T* lane = acc[(i - b) % kLanes];
      if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
      if (log) {
        for (int j = 0; j < width; ++j)
          lane[j] += vmath::exp_nonpositive(logit<kMasked>(xr, mr, j, scale) - m[j]);
      } else {
        for (int j = 0; j < width; ++j) {
          const T v = vmath::exp_nonpositive(logit<kMasked>(xr, mr, j, scale) - m[j]);
          exps[i * kW + j] = v;
          lane[j] += v;
        }
      }
    }
    add_lane_sums(acc, total);
  }
  // Pass 3: the row path's special cases per column, then the output.
  for (int j = 0; j < width; ++j) {
    const bool nan_column = nans[j] != T(0) || m[j] == kInf<T>;
    const bool empty_column = m[j] == -kInf<T>;
    special[j] = nan_column || empty_column;
    fill_value[j] = nan_column ? std::numeric_limits<T>::quiet_NaN() : log ? -kInf<T> : T(0);
    factor[j] = special[j] ? T(0)
                : log      ? static_cast<T>(std::log(total[j]))
                           : static_cast<T>(1.0 / total[j]);
  }
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
    const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
    T* yr = y + i * inner;
    if (log) {
      if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
      for (int j = 0; j < width; ++j) yr[j] = (logit<kMasked>(xr, mr, j, scale) - m[j]) - factor[j];
    } else {
      const T* er = exps + i * kW;
      for (int j = 0; j < width; ++j) yr[j] = er[j] * factor[j];
    }
  }
  fill_special_columns(y, n, inner, width, special, fill_value);
}

template <class T>
void softmax_columns(bool log, const T* x, const std::uint8_t* mask, T* y, std::int64_t n,
                     std::int64_t inner, std::int64_t width, double scale) {
  if (mask != nullptr)
    softmax_strip<true>(log, x, mask, y, n, inner, static_cast<int>(width), static_cast<T>(scale));
  else
    softmax_strip<false>(log, x, mask, y, n, inner, static_cast<int>(width), static_cast<T>(scale));
}

// --- backward down columns (mapped axis not the last) ------------------------------------------

// Per column of a strip (`width` <= kW neighbouring columns, n rows at stride `inner`): kSums
// sums of f_s(y, dy) in ordered_sum's order — row i of a kBlock block feeds lane i % kLanes,
// lanes combined by lane_tree_sum's tree, blocks added in double — so every column's sums have
// the bits backward_row computes for the same column gathered into a row. Vectorised across the
// columns of a row segment.
template <int kSums, class T, class F>
void strip_sums(const T* __restrict y, const T* __restrict dy, std::int64_t n,
                std::int64_t inner, int width, F&& f,
                double (&total)[kSums][kStripBytes / sizeof(T)], std::int64_t y_stride = -1) {
  const std::int64_t ys = y_stride < 0 ? inner : y_stride;  // y: a strip of the input, or scratch
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  alignas(64) T acc[kSums][kLanes][kW];
  for (int s = 0; s < kSums; ++s)
    for (int j = 0; j < kW; ++j) total[s][j] = 0.0;
  for (std::int64_t b = 0; b < n; b += kBlock) {
    const std::int64_t e = std::min(n, b + kBlock);
    for (int s = 0; s < kSums; ++s)
      for (int k = 0; k < kLanes; ++k)
        for (int j = 0; j < kW; ++j) acc[s][k][j] = T(0);
    for (std::int64_t i = b; i < e; ++i) {
      const T* yr = y + i * ys;
      const T* dr = dy + i * inner;
      const int lane = static_cast<int>((i - b) % kLanes);
      if (i + kPrefetchRows < n) {
        prefetch_segment(yr + kPrefetchRows * ys, width);
        prefetch_segment(dr + kPrefetchRows * inner, width);
      }
      for (int j = 0; j < width; ++j) {
        T terms[kSums];
        f(yr[j], dr[j], terms);
        for (int s = 0; s < kSums; ++s) acc[s][lane][j] += terms[s];
      }
    }
    for (int s = 0; s < kSums; ++s) add_lane_sums(acc[s], total[s]);
  }
}

// dx = g(y, dy, factor of the column) for every element of the strip, then the special columns.
template <class T, class G>
void strip_write(const T* __restrict y, const T* __restrict dy, T* __restrict dx,
                 std::int64_t n, std::int64_t inner, int width, const T* __restrict factor,
                 const bool* special, const T* fill_value, G&& g, std::int64_t y_stride = -1) {
  const std::int64_t ys = y_stride < 0 ? inner : y_stride;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* yr = y + i * ys;
    const T* dr = dy + i * inner;
    T* xr = dx + i * inner;
    if (i + kPrefetchRows < n) {
      prefetch_segment(yr + kPrefetchRows * ys, width);
      prefetch_segment(dr + kPrefetchRows * inner, width);
    }
    for (int j = 0; j < width; ++j) xr[j] = g(yr[j], dr[j], factor[j]);
  }
  fill_special_columns(dx, n, inner, width, special, fill_value);
}

// Per column of a strip: factor = T(numerator / denominator), or a special column — NaN-filled
// when it holds a NaN, zero-filled when the denominator (support size, sum of g) is 0 — as the
// sparse maps' backward_row decides for a row.
template <class T, int kW>
void ratio_or_special(const double (&nans)[kW], const double (&numerator)[kW],
                      const double (&denominator)[kW], bool* special, T* fill_value, T* factor) {
  for (int j = 0; j < kW; ++j) {
    const bool has_nan = nans[j] > 0, empty = denominator[j] == 0;
    special[j] = has_nan || empty;
    fill_value[j] = has_nan ? std::numeric_limits<T>::quiet_NaN() : T(0);
    factor[j] = special[j] ? T(0) : static_cast<T>(numerator[j] / denominator[j]);
  }
}

// Runs over [0, count) in blocks of kLanes: zero(lo, hi) for each maximal run of blocks with no
// k for which in_support(k), compute(lo, hi) for each maximal run of the others. For costly
// per-entry work needed only on a (usually small) support; compute's loop has a run-time trip
// count, so it vectorises where a fixed 16-entry block would be unrolled and left scalar.
template <class InSupport, class Zero, class Compute>
void for_support_runs(std::int64_t count, InSupport in_support, Zero zero, Compute compute) {
  auto block_has_support = [&](std::int64_t lo) {
    const std::int64_t hi = std::min(count, lo + kLanes);
    int any = 0;
    for (std::int64_t k = lo; k < hi; ++k) any |= in_support(k) ? 1 : 0;
    return any != 0;
  };
  std::int64_t i = 0;
  while (i < count) {
    const bool support = block_has_support(i);
    std::int64_t end = std::min(count, i + kLanes);
    while (end < count && block_has_support(end) == support) end = std::min(count, end + kLanes);
    if (support)
      compute(i, end);
    else
      zero(i, end);
    i = end;
  }
}

// g[k] = power(y[k]) for y[k] > 0, NaN for a NaN, else 0, for k in [lo, hi). A function of its
// own, with restrict pointers: inside the callers' lambdas (pointers captured by reference) GCC
// could not prove the stores leave the pointers alone, and the loop stayed scalar.
template <class T, class P>
void powers_in_range(const T* __restrict y, T* __restrict g, std::int64_t lo, std::int64_t hi,
                     const P& power) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::int64_t k = lo; k < hi; ++k) {
    const T v = y[k];
    const T p = static_cast<T>(power(static_cast<double>(v > 0 ? v : T(1))));  // selected after
    g[k] = v > 0 ? p : v != v ? nan : T(0);
  }
}

// g[i] = y[i]^b on the support (y > 0), 0 off it, NaN for a NaN, i < count: alpha-entmax's
// backward weights p^(2-alpha), the power (with_power) only on runs of blocks with support.
template <class T>
void power_of_support(const T* __restrict y, T* __restrict g, std::int64_t count, double b) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  with_power<false>(b, [&](const auto& power) {
    for_support_runs(
        count, [&](std::int64_t k) { return y[k] > 0; },
        [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t k = lo; k < hi; ++k) g[k] = y[k] != y[k] ? nan : T(0);
        },
        [&](std::int64_t lo, std::int64_t hi) { powers_in_range(y, g, lo, hi, power); });
  });
}

// The entmaxes' backward over one strip, from g = g_of(v) of each entry v of `weights` (y itself
// with g_of = sqrt for 1.5-entmax; precomputed g with the identity for alpha-entmax), rows
// `weights_stride` apart: the column sums (NaNs, sum g, sum g dy), then dx = g (dy - ratio).
template <class T, class GOf>
void backward_entmax_strip(const T* weights, const T* dy, T* dx, std::int64_t n, std::int64_t inner,
                           int width, T scale, GOf g_of, std::int64_t weights_stride, bool* special,
                           T* fill_value, T* factor) {
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  double total[3][kW];  // NaNs, sum of g, sum of g dy
  strip_sums<3>(weights, dy, n, inner, width, [&](T v, T d, T* t) {
    const T g = g_of(v);
    t[0] = g != g ? T(1) : T(0);
    t[1] = g;
    t[2] = g * d;
  }, total, weights_stride);
  ratio_or_special(total[0], total[2], total[1], special, fill_value, factor);
  strip_write(weights, dy, dx, n, inner, width, factor, special, fill_value, [&](T v, T d, T ratio) {
    const T g = g_of(v);
    const T value = (g * (d - ratio)) * scale;
    return g == T(0) ? T(0) : value;
  }, weights_stride);
}

// backward_row's arithmetic, column by column over one strip: pass 1 the column sums
// (strip_sums), pass 2 dx. The strip (n x kStripBytes of y and of dy) is re-read from the outer
// caches by pass 2.
template <class T>
void backward_strip(int map, const T* __restrict y, const T* __restrict dy, T* __restrict dx,
                    std::int64_t n, std::int64_t inner, int width, T scale, double alpha) {
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  const T nan = std::numeric_limits<T>::quiet_NaN();
  alignas(64) T factor[kW], fill_value[kW];
  bool special[kW];
  for (int j = 0; j < kW; ++j) special[j] = false, fill_value[j] = T(0), factor[j] = T(0);
  switch (map) {
    case kSoftmax: {  // dx = y (dy - <y, dy>)
      double total[1][kW];
      strip_sums<1>(y, dy, n, inner, width, [](T v, T d, T* t) { t[0] = v * d; }, total);
      for (int j = 0; j < kW; ++j) factor[j] = static_cast<T>(total[0][j]);
      strip_write(y, dy, dx, n, inner, width, factor, special, fill_value,
                  [scale](T v, T d, T dot) { return (v * (d - dot)) * scale; });
      return;
    }
    case kLogSoftmax: {  // dx = dy - softmax * sum(dy); entries with y = -inf get 0
      double total[1][kW];
      strip_sums<1>(y, dy, n, inner, width,
                    [](T v, T d, T* t) { t[0] = v == -kInf<T> ? T(0) : d; }, total);
      for (int j = 0; j < kW; ++j) factor[j] = static_cast<T>(total[0][j]);
      strip_write(y, dy, dx, n, inner, width, factor, special, fill_value, [scale](T v, T d, T total) {
        const T value = (d - vmath::exp(v) * total) * scale;
        return v == -kInf<T> ? T(0) : value;
      });
      return;
    }
    case kSparsemax: {  // dx_i = s_i (dy_i - mean_S dy)
      double total[3][kW];  // support size, NaNs, sum of dy over the support
      strip_sums<3>(y, dy, n, inner, width, [](T v, T d, T* t) {
        t[0] = v > 0 ? T(1) : T(0);
        t[1] = v != v ? T(1) : T(0);
        t[2] = v > 0 ? d : T(0);
      }, total);
      ratio_or_special(total[1], total[2], total[0], special, fill_value, factor);
      strip_write(y, dy, dx, n, inner, width, factor, special, fill_value, [scale](T v, T d, T mean) {
        const T value = (d - mean) * scale;
        return v > 0 ? value : T(0);
      });
      return;
    }
    default: {  // alpha-entmax: g = p^(2-alpha) on S, dx = g dy - g <g, dy>/sum g
      if (map == kEntmax15) {  // g = sqrt(p): cheap, evaluated on every entry of the strip
        auto g_of = [=](T v) -> T { return v > 0 ? std::sqrt(v) : v != v ? nan : T(0); };
        backward_entmax_strip(y, dy, dx, n, inner, width, scale, g_of, inner, special, fill_value,
                              factor);
      } else {  // g = p^(2-alpha), costly: into scratch (power_of_support), then the same passes
        T* g = scratch<T>(kStripScratchSlot, static_cast<std::size_t>(n * kW));
        for (std::int64_t i = 0; i < n; ++i) {
          if (i + kPrefetchRows < n) prefetch_segment(y + (i + kPrefetchRows) * inner, width);
          power_of_support(y + i * inner, g + i * kW, width, 2.0 - alpha);
        }
        backward_entmax_strip(g, dy, dx, n, inner, width, scale, [](T v) { return v; }, kW, special,
                              fill_value, factor);
      }
      return;
    }
  }
}

// --- transposes between strided columns and scratch rows ---------------------------------------

// dst[c*dst_stride + r] = src[r*src_stride + c] for r < rows, c < cols. AVX2 and up move 8x8
// float / 4x4 double blocks through registers (one load per source row segment, one store per
// destination row segment); the rest, and the scalar build, element by element. The strided
// side is prefetched by hand: rows `inner` apart are not followed by the stream prefetchers.
template <class T>
void transpose_scalar(const T* src, std::int64_t r0, std::int64_t r1, std::int64_t c0,
                      std::int64_t c1, std::int64_t src_stride, T* dst, std::int64_t dst_stride) {
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t c = c0; c < c1; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
}

#if FASTCORE_ISA_LEVEL >= 1
constexpr std::int64_t kTransposePrefetchRows = 32;

[[gnu::always_inline]] inline void transpose_block(const float* src, std::int64_t src_stride, float* dst,
                            std::int64_t dst_stride) {
  __m256 r[8], t[8];
  for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(src + k * src_stride);
  for (int k = 0; k < 8; k += 2) {  // interleave row pairs: (0 1), (2 3), (4 5), (6 7)
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {  // 4-row groups: elements (c, c+4) of rows k..k+3 per lane
    r[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int k = 0; k < 4; ++k) {  // low halves give columns 0..3, high halves columns 4..7
    _mm256_storeu_ps(dst + k * dst_stride, _mm256_permute2f128_ps(r[k], r[k + 4], 0x20));
    _mm256_storeu_ps(dst + (k + 4) * dst_stride, _mm256_permute2f128_ps(r[k], r[k + 4], 0x31));
  }
}
[[gnu::always_inline]] inline void transpose_block(const double* src, std::int64_t src_stride, double* dst,
                            std::int64_t dst_stride) {
  __m256d r[4], t[4];
  for (int k = 0; k < 4; ++k) r[k] = _mm256_loadu_pd(src + k * src_stride);
  t[0] = _mm256_unpacklo_pd(r[0], r[1]);  // r0[0] r1[0] r0[2] r1[2]
  t[1] = _mm256_unpackhi_pd(r[0], r[1]);  // r0[1] r1[1] r0[3] r1[3]
  t[2] = _mm256_unpacklo_pd(r[2], r[3]);
  t[3] = _mm256_unpackhi_pd(r[2], r[3]);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t[0], t[2], 0x20));
  _mm256_storeu_pd(dst + dst_stride, _mm256_permute2f128_pd(t[1], t[3], 0x20));
  _mm256_storeu_pd(dst + 2 * dst_stride, _mm256_permute2f128_pd(t[0], t[2], 0x31));
  _mm256_storeu_pd(dst + 3 * dst_stride, _mm256_permute2f128_pd(t[1], t[3], 0x31));
}
#endif

template <class T>
void transpose(const T* src, std::int64_t rows, std::int64_t cols, std::int64_t src_stride,
               T* dst, std::int64_t dst_stride) {
#if FASTCORE_ISA_LEVEL >= 1
  constexpr std::int64_t kB = 32 / sizeof(T);  // block side: one 256-bit register per row
  const std::int64_t rows_b = rows / kB * kB, cols_b = cols / kB * kB;
  // The longer side is walked by the outer loop: for a tile of a long column that is the strided
  // side (gather: source rows; scatter: destination rows).
  if (rows >= cols) {
    // Gather (rows = n strided source rows, cols = the tile's width): each source row
    // segment is read whole, its lines touched kTransposePrefetchRows rows ahead.
    for (std::int64_t r = 0; r < rows_b; r += kB) {
      if (r + kB + kTransposePrefetchRows <= rows)
        for (std::int64_t k = 0; k < kB; ++k)
          prefetch_segment(src + (r + kTransposePrefetchRows + k) * src_stride, cols);
      for (std::int64_t c = 0; c < cols_b; c += kB)
        transpose_block(src + r * src_stride + c, src_stride, dst + c * dst_stride + r, dst_stride);
    }
  } else {
    // Scatter (cols = n long strided destination rows): each destination row segment is
    // written whole before the next (written in two visits far apart, its line would be read
    // for ownership twice), its lines touched for writing kTransposePrefetchRows rows ahead.
    for (std::int64_t c = 0; c < cols_b; c += kB) {
      if (c + kB + kTransposePrefetchRows <= cols)
        for (std::int64_t k = 0; k < kB; ++k)
          prefetch_segment<1>(dst + (c + kTransposePrefetchRows + k) * dst_stride, rows);
      for (std::int64_t r = 0; r < rows_b; r += kB)
        transpose_block(src + r * src_stride + c, src_stride, dst + c * dst_stride + r, dst_stride);
    }
  }
  transpose_scalar(src, 0, rows_b, cols_b, cols, src_stride, dst, dst_stride);
  transpose_scalar(src, rows_b, rows, 0, cols, src_stride, dst, dst_stride);
#else
  transpose_scalar(src, 0, rows, 0, cols, src_stride, dst, dst_stride);
#endif
}

// --- sparse maps: thresholds -------------------------------------------------------------------
//
// The thresholds work on the candidates d (all > -1, max 0) gathered by sparse_row. The
// iterations raise tau monotonically, so an entry at or below tau never re-enters the support:
// after each step the survivors are copied (in order) to `active` and only they are visited
// again; d itself stays whole for the sorting fallbacks. Each visit is branch-free and sums in
// kLanes lanes combined by lane_tree_sum (the order depends only on the data: the same bits on
// every ISA and thread count).

constexpr int kCandidateScratchSlot = 2;  // scratch<double> slots of sparse_row's candidates
constexpr int kActiveScratchSlot = 3;     // and of the thresholds' surviving entries
// scratch<double> and scratch<std::int32_t> slot of alpha-entmax's PowerStore (scratch<double>
// slot 0 is otherwise the strips' softmax exps and alpha-entmax backward's weights, never live
// during a sparse map's forward)
constexpr int kPowerScratchSlot = 0;

// Copies the entries of src above tau to dst in order (dst may be src) and returns their count.
std::size_t keep_above(const double* src, std::size_t n, double tau, double* dst) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = src[i];
    dst[count] = v;
    count += v > tau ? 1 : 0;
  }
  return count;
}

// alpha-entmax's record of its last power pass, so the output needs no power of its own (the
// output pass recomputed p = (d - tau)^b of every support entry: at alpha 1.1 on 4096 unit-
// variance logits ~40 % of the powers, as every 16-block holds a support entry). index[k] is the
// row position of the k-th entry of the list the iteration visits (the candidates, then the
// survivors — compacted along with them), powers[k] its p in the last pass (0 outside).
struct PowerStore {
  std::int32_t* index;
  double* powers;
};

// keep_above on src (into dst) and, with a store, the same compaction of its index and powers.
std::size_t keep_above(const double* src, std::size_t n, double tau, double* dst, PowerStore* store) {
  if (store == nullptr) return keep_above(src, n, tau, dst);
  std::int32_t* index = store->index;
  double* powers = store->powers;
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = src[i];
    dst[count] = v, index[count] = index[i], powers[count] = powers[i];
    count += v > tau ? 1 : 0;
  }
  return count;
}

// Exact sparsemax threshold on shifted candidates d (all > -1, max 0) by sorting (fallback).
double sparsemax_tau_sorted(double* d, std::size_t n) {
  std::sort(d, d + n, [](double a, double b) { return a > b; });
  double prefix = 0.0, tau = -1.0;
  for (std::size_t k = 1; k <= n; ++k) {
    prefix += d[k - 1];
    // k is in the support iff 1 + k d_(k) > sum_{j<=k} d_(j)  (Martins & Astudillo 2016, eq. 3)
    if (1.0 + static_cast<double>(k) * d[k - 1] > prefix) tau = (prefix - 1.0) / static_cast<double>(k);
  }
  return tau;
}

// Michelot's algorithm (Newton on sum (d - tau)_+ = 1) from tau0 <= the threshold (-1 always
// is: p_max <= 1; sparse_row passes a tighter floor); tau increases monotonically and the support
// shrinks to the exact one in finitely many passes (usually 1-11, notes §6).
double sparsemax_tau(double* d, std::size_t n, double tau0, double* active) {
  double tau = tau0, count = -1.0;
  const double* support = d;
  std::size_t size = n;
  for (int it = 0; it < kMaxIterations; ++it) {
    double sums[kLanes] = {}, counts[kLanes] = {};
    auto visit = [&](int j, std::size_t i) {
      const bool in = support[i] > tau;
      sums[j] += in ? support[i] : 0.0;
      counts[j] += in ? 1.0 : 0.0;
    };
    std::size_t i = 0;
    for (; i + kLanes <= size; i += kLanes)
      for (int j = 0; j < kLanes; ++j) visit(j, i + j);
    for (int j = 0; i < size; ++i, ++j) visit(j, i);
    const double sum = lane_tree_sum(sums), c = lane_tree_sum(counts);
    if (c == count) return tau;  // support unchanged: tau is the exact threshold of this support
    const double next = (sum - 1.0) / c;
    if (count >= 0 && !(next >= tau)) break;  // rounding made it non-monotone: sort instead
    count = c;
    tau = next;
    size = keep_above(support, size, tau, active);
    support = active;
  }
  return sparsemax_tau_sorted(d, n);
}

// Exact 1.5-entmax threshold by sorting: tau_k = mu_k - sqrt(1/k - sigma_k^2) for the k with
// d_(k) >= tau_k >= d_(k+1) (Peters et al. 2019; notes §4).
double entmax15_tau_sorted(double* d, std::size_t n) {
  std::sort(d, d + n, [](double a, double b) { return a > b; });
  double s1 = 0.0, s2 = 0.0, fallback = -1.0;
  for (std::size_t k = 1; k <= n; ++k) {
    s1 += d[k - 1];
    s2 += d[k - 1] * d[k - 1];
    const double kk = static_cast<double>(k);
    const double mu = s1 / kk;
    const double rad = 1.0 / kk - (s2 / kk - mu * mu);
    const double tau = mu - std::sqrt(rad > 0 ? rad : 0.0);
    const double next = k < n ? d[k] : -std::numeric_limits<double>::infinity();
    if (d[k - 1] >= tau && tau >= next) return tau;
    if (d[k - 1] > tau) fallback = tau;
  }
  return fallback;
}

// Newton on F(tau) = sum (d - tau)_+^2 - 1 (convex, decreasing) from tau0 <= the root never
// overshoots; once the support is settled, the exact root of that support is taken and verified
// (every support entry >= tau_k >= every other entry) — which proves it is the threshold.
double entmax15_tau(double* d, std::size_t n, double tau0, double* active) {
  const double inf = std::numeric_limits<double>::infinity();
  double tau = tau0;
  const double* support = d;
  std::size_t size = n;
  for (int it = 0; it < kMaxIterations; ++it) {
    double s1[kLanes] = {}, s2[kLanes] = {}, counts[kLanes] = {}, lowest[kLanes];
    for (int j = 0; j < kLanes; ++j) lowest[j] = inf;
    auto visit = [&](int j, std::size_t i) {
      const double v = support[i];
      const bool in = v > tau;  // the same test as v - tau > 0 (IEEE subtraction is exact at 0)
      const double u = in ? v - tau : 0.0;
      s1[j] += u, s2[j] += u * u, counts[j] += in ? 1.0 : 0.0;
      lowest[j] = in && v < lowest[j] ? v : lowest[j];
    };
    std::size_t i = 0;
    for (; i + kLanes <= size; i += kLanes)
      for (int j = 0; j < kLanes; ++j) visit(j, i + j);
    for (int j = 0; i < size; ++i, ++j) visit(j, i);
    double low = lowest[0];
    for (int j = 1; j < kLanes; ++j) low = lowest[j] < low ? lowest[j] : low;
    const double sum = lane_tree_sum(s1), sum_sq = lane_tree_sum(s2), kk = lane_tree_sum(counts);
    const double mu = sum / kk;
    const double rad = 1.0 / kk - (sum_sq / kk - mu * mu);
    const double exact = tau + mu - std::sqrt(rad > 0 ? rad : 0.0);
    if (exact >= tau && low >= exact) return exact;
    const double next = tau + (sum_sq - 1.0) / (2.0 * sum);
    if (!(next > tau)) break;  // no progress in floating point: sort instead
    tau = next;
    size = keep_above(support, size, tau, active);
    support = active;
  }
  return entmax15_tau_sorted(d, n);
}

// Over the entries d[i] > tau, with u = d[i] - tau, the sums of u^b (S), and by kOrder also of
// u^(b-1) = u^b / u (Q1 = -S'/b; kOrder >= 1) and u^(b-2) (Q2 = S''/(b(b-1)); kOrder 2, where
// the one division gives 1/u and both quotients are products) — in kLanes lanes combined by
// lane_tree_sum (the file's order), branch-free.
// With kStore, each entry's p (0 outside) also goes to powers[i], for the output (see PowerStore).
struct PowerSums {
  double s, q1, q2;
};
template <int kOrder, bool kStore = false, class P>
PowerSums power_sums(const double* __restrict d, std::size_t size, double tau, const P& power,
                     double* __restrict powers = nullptr) {
  double p_lanes[kLanes] = {}, q1_lanes[kLanes] = {}, q2_lanes[kLanes] = {};
  // kStore: a block's p go to this local array first and are copied out after the block (a
  // store through `powers` inside the lambda kept GCC from vectorising the lane loop)
  alignas(64) double block_p[kLanes];
  auto visit = [&](int j, std::size_t i) {
    const double v = d[i];
    const bool in = v > tau;
    const double u = in ? v - tau : 1.0;  // 1: a harmless argument for the entries outside
    // power(u) for every entry and a select after it: a conditional call would be a branch,
    // which keeps GCC from vectorising the lane loop
    const double p = power(u);
    const double p_in = in ? p : 0.0;
    if constexpr (kStore) block_p[j] = p_in;
    p_lanes[j] += p_in;
    if constexpr (kOrder == 1) q1_lanes[j] += p_in / u;
    if constexpr (kOrder == 2) {
      const double inv_u = 1.0 / u, q = p_in * inv_u;
      q1_lanes[j] += q;
      q2_lanes[j] += q * inv_u;
    }
  };
  std::size_t i = 0;
  for (; i + kLanes <= size; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) visit(j, i + j);
    if constexpr (kStore) std::memcpy(powers + i, block_p, sizeof(block_p));
  }
  for (int j = 0; i < size; ++i, ++j) {
    visit(j, i);
    if constexpr (kStore) powers[i] = block_p[j];
  }
  return {lane_tree_sum(p_lanes), kOrder >= 1 ? lane_tree_sum(q1_lanes) : 0.0,
          kOrder == 2 ? lane_tree_sum(q2_lanes) : 0.0};
}

// alpha-entmax: p = (d - tau)_+^b, b = 1/(alpha-1), on d = (alpha-1)(z - max z); S(tau) = sum p
// is decreasing with S(floor) >= 1 >= S(-n^(1-alpha)) (floor: a lower bound on the threshold, -1
// or sparse_start's). Newton (for b >= 2 Halley, below) steps on g(tau) = S^(1/b) - 1 — the
// b-norm of (d - tau)_+ less 1: convex and decreasing, so from below the steps stay below the root, and nearly linear where
// a few entries dominate, where Newton on S - 1 shrinks the gap only by a factor (1 - 1/b) per
// step (b = 10 at alpha = 1.1): tau += (S - S^(2-alpha)) / sum (d - tau)_+^(b-1). A step that
// leaves the bracket is replaced by bisection; the iteration stops when a Newton step no longer
// moves tau (tested before the bracket check, which would turn that converged step into a
// bisection and walk the bracket down to rounding: ~50 wasted passes; for alpha > 2 only where
// S = 1 to rounding, see below), when the bracket cannot
// shrink, or after n_iter steps. Every later tau lies in the bracket, so an entry at or below its
// lower end never counts again: when the lower end rises, the survivors are copied (in order) to
// `active` and only they are visited — the same sums in the same order, so the same bits.
// Returns tau and, when the last pass was at that tau (not after an n_iter stop), its sum of p.
// With a store (index[k] given for d[k]), the last pass's p are recorded too: when has_sum,
// store->powers[0..stored) are p at tau of the entries store->index[0..stored) (every entry of
// the support among them).
struct BisectResult {
  double tau, sum_p;
  bool has_sum;
  std::size_t stored;
};
BisectResult bisect_tau(const double* d, std::size_t n, double alpha, std::int64_t n_active,
                        int n_iter, double floor, double* active, PowerStore* store = nullptr) {
  const double inv_beta = 1.0 / (alpha - 1.0);
  double lo = floor, hi = -std::pow(static_cast<double>(n_active), 1.0 - alpha);
  if (!(hi > lo)) return {lo, 0.0, false, 0};
  const int cap = n_iter > 0 ? n_iter : 200;
  return with_power<true>(inv_beta, [&](const auto& power) -> BisectResult {
    // kOrder 2 (b >= 2, alpha <= 1.5): Halley steps, which also need Q2 (bounded there: u^(b-2)
    // with b - 2 >= 0). The dense supports of alpha near 1 then converge in ~2 passes instead of
    // ~3-4 (each a power of every support entry). For b < 2, u^(b-2) is unbounded for entries
    // near tau and the Newton step is kept.
    auto iterate = [&](auto order_constant) -> BisectResult {
      constexpr int kOrder = decltype(order_constant)::value;
      double tau = lo;
      const double* support = d;
      std::size_t size = n;
      for (int it = 0; it < cap; ++it) {
        const PowerSums sums = store != nullptr
                                   ? power_sums<kOrder, true>(support, size, tau, power, store->powers)
                                   : power_sums<kOrder>(support, size, tau, power);
        const double sum_p = sums.s, f = sum_p - 1.0;
        if (f == 0.0) return {tau, sum_p, true, size};
        if (f > 0) {
          lo = tau;
          size = keep_above(support, size, lo, active, store);  // drops only entries with p = 0
          support = active;
        } else {
          hi = tau;
        }
        const bool has_slope = sums.q1 > 0.0;
        double next = 0.5 * (lo + hi);
        if (has_slope) {
          const double s_pow = std::pow(sum_p, 2.0 - alpha);  // S^(1 - 1/b)
          double step = (sum_p - s_pow) / sums.q1;           // Newton: -g/g'
          if constexpr (kOrder == 2) {
            // Halley: -g/g' / (1 - L/2) with L = g g''/g'^2, where g'' = (b - 1) S^(1/b - 2)
            // (S Q2 - Q1^2) >= 0 (Cauchy-Schwarz), so L = (1 - S^(-1/b)) (b - 1) (S Q2/Q1^2 - 1).
            // Far from the root (|L| >= 1) the Newton step is taken.
            const double L = (1.0 - s_pow / sum_p) * (inv_beta - 1.0) *
                             (sum_p * sums.q2 / (sums.q1 * sums.q1) - 1.0);
            if (L > -1.0 && L < 1.0) step /= 1.0 - 0.5 * L;
          }
          next = tau + step;
        }
        // A step that no longer moves tau: converged for b >= 1 (convex g; from below, or within
        // rounding above after a Halley overshoot). For b < 1 (alpha > 2) an entry just inside the
        // support (u -> 0, u^(b-1) -> inf) can make the step vanish far from the root: accepted
        // only when S is 1 to rounding.
        if (has_slope && next == tau &&
            (inv_beta >= 1.0 || std::fabs(f) <= 4.0 * std::numeric_limits<double>::epsilon() *
                                                     static_cast<double>(size)))
          return {tau, sum_p, true, size};
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (next == tau || hi - lo <= 4 * std::numeric_limits<double>::epsilon() * std::fabs(tau))
          return {tau, sum_p, true, size};
        tau = next;
      }
      return {tau, 0.0, false, 0};
    };
    if (inv_beta >= 2.0) return iterate(std::integral_constant<int, 2>{});
    return iterate(std::integral_constant<int, 1>{});
  });
}

// --- sparse maps: rows and column strips ------------------------------------------------------
//
// z = factor*x with factor = scale (sparsemax), scale/2 (1.5-entmax) or (alpha-1)*scale
// (alpha-entmax), in double; d = z - max z. Per row (or column): the max (and min, for a
// negative factor) with the NaN and finite counts, then the candidates d > floor (only they can
// be in the support; floor >= -1 because p_max <= 1, see sparse_start), the threshold on the
// candidates, and the output p(d - tau).

double sparse_factor(int map, double scale, double alpha) {
  return map == kSparsemax ? scale : map == kEntmax15 ? 0.5 * scale : (alpha - 1.0) * scale;
}

// Pass-1 state, as arrays so the visits vectorise: per lane of a row (kN = kLanes, lane i %
// kLanes) or per column of a strip (kN = kW), the max and min of the unmasked x ...
template <class T, int kN>
struct Extremes {
  alignas(64) T max[kN], min[kN];
  Extremes() {
    for (int j = 0; j < kN; ++j) max[j] = -kInf<T>, min[j] = kInf<T>;
  }
  void visit(int j, bool keep, T v) {
    max[j] = (keep && v > max[j]) ? v : max[j];
    min[j] = (keep && v < min[j]) ? v : min[j];
  }
};
// ... and the counts of NaN and of finite unmasked entries (exact in any visiting order).
template <class T, int kN>
struct Counts {
  alignas(64) T nans[kN] = {}, finite[kN] = {};
  void visit(int j, bool keep, T v) {
    nans[j] += (keep && v != v) ? T(1) : T(0);
    finite[j] += (keep && v - v == T(0)) ? T(1) : T(0);
  }
};

// The support floor's safety margin: far above the rounding of a threshold of <= kLanes
// entries in (-1, 0] (~1e-15), so the floor stays strictly below the true threshold.
constexpr double kFloorMargin = 0x1p-30;

// Where a row's iterations start (m = max z; d = z - m):
//   m: the shift (NaN: the row is NaN; -inf: nothing unmasked);
//   floor: a lower bound on the threshold tau. -1 always is (p_max <= 1); a tighter one is the
//     threshold of the kLanes lane extremes alone (the entry of largest z of each lane i %
//     kLanes): for every map the threshold of a subset of the entries is never above that of
//     the row (sum_S (d - t)_+^a <= sum (d - t)_+^a for every t, and both sides decrease in t).
//     Only entries with d > floor can be in the support, so they are the candidates, and the
//     iterations start at the floor: ~45 candidates instead of ~250 for 1.5-entmax on a
//     4096-entry row of unit-variance logits. alpha-entmax's subset threshold is iterated to
//     convergence (its caller's n_iter may stop early); kFloorMargin covers its rounding.
struct SparseStart {
  double m, floor;
};

template <class T>
SparseStart sparse_start(int map, double factor, double alpha, const T* lane_max, const T* lane_min,
                         double nan_count) {
  T xmax = lane_max[0], xmin = lane_min[0];
  for (int j = 0; j < kLanes; ++j) {
    xmax = lane_max[j] > xmax ? lane_max[j] : xmax;
    xmin = lane_min[j] < xmin ? lane_min[j] : xmin;
  }
  const double inf = std::numeric_limits<double>::infinity();
  double m;
  if (xmax == -kInf<T> && xmin == kInf<T>) {
    m = -inf;  // every entry masked
  } else if (factor > 0) {
    m = factor * static_cast<double>(xmax);
  } else if (factor < 0) {
    m = factor * static_cast<double>(xmin);
  } else {
    m = (xmax == kInf<T> || xmin == -kInf<T>) ? std::numeric_limits<double>::quiet_NaN() : 0.0;
  }
  if (nan_count > 0 || m == inf) m = std::numeric_limits<double>::quiet_NaN();
  if (m != m || m == -inf || factor == 0) return {m, -1.0};
  // d of each lane's extreme entry (masked or empty lanes: -inf); thresholds of <= kLanes values.
  const T* extremes = factor > 0 ? lane_max : lane_min;
  double d[kLanes];
  std::size_t count = 0;
  for (int j = 0; j < kLanes; ++j) {
    const double v = static_cast<double>(extremes[j]) * factor - m;
    d[count] = v;
    count += v > -1.0 ? 1 : 0;
  }
  double tau;
  if (map == kSparsemax) {
    tau = sparsemax_tau_sorted(d, count);
  } else if (map == kEntmax15) {
    tau = entmax15_tau_sorted(d, count);
  } else {  // iterated to convergence (not the caller's n_iter): the floor must be a true bound
    double active[kLanes];
    tau = bisect_tau(d, count, alpha, static_cast<std::int64_t>(count), 0, -1.0, active).tau;
  }
  return {m, std::max(-1.0, tau - kFloorMargin)};
}

// The candidate pre-test works on x itself: a candidate has x * factor - m > floor (in double),
// i.e. sign * x > (m + floor) / |factor| with sign = ±1 the sign of factor. (Scaling x in T
// instead overflowed: x * factor for x near FLT_MAX and factor > 1 is inf in float32 while the
// row's max m, formed in double, is finite, so no entry passed — sparsemax gave inf, alpha-entmax
// zeros.) candidate_sign: sign as a T (a multiplication by it is exact); candidate_bound: that
// bound in T less a margin (conservative; the exact test is in double).
inline double candidate_sign(double factor) { return factor < 0 ? -1.0 : 1.0; }
template <class T>
T candidate_bound(double m, double floor, double factor) {
  const double scale = 1.0 / std::fabs(factor);  // factor 0: every entry is a candidate (-inf)
  const double bound = (m + floor) * scale;
  return static_cast<T>(bound - 8.0 * std::numeric_limits<T>::epsilon() * (std::fabs(bound) + scale)) -
         std::numeric_limits<T>::min();
}

struct Threshold {
  double tau, inv_total;  // inv_total: alpha-entmax's renormalisation (1 for the others)
  // alpha-entmax with a store (see PowerStore) whose last pass was at tau: the entries
  // store.index[0..stored) have p = store.powers[k] * inv_total, every other entry p = 0.
  std::size_t stored = 0;
  bool has_powers = false;
};

// The threshold from the candidates d[0..count) (reordered by the sorting fallbacks), all above
// floor (a lower bound on the threshold). store: alpha-entmax only, index[k] given for d[k].
Threshold sparse_threshold(int map, double* d, std::size_t count, double floor, double alpha,
                           double active_entries, int n_iter, PowerStore* store = nullptr) {
  double* active = scratch<double>(kActiveScratchSlot, count);
  if (map == kSparsemax) return {sparsemax_tau(d, count, floor, active), 1.0};
  if (map == kEntmax15) return {entmax15_tau(d, count, floor, active), 1.0};
  const BisectResult th = bisect_tau(d, count, alpha, static_cast<std::int64_t>(active_entries),
                                     n_iter, floor, active, store);
  const double tau = th.tau;
  // sum p at tau: the iteration's last sums when they were taken there, else one more pass
  auto sum_at_tau = [&](const auto& power) { return power_sums<0>(d, count, tau, power).s; };
  const double total = th.has_sum ? th.sum_p : with_power<true>(1.0 / (alpha - 1.0), sum_at_tau);
  // Renormalise so the row sums to 1 even when the iteration stopped early (as entmax does).
  return {tau, total > 0 ? 1.0 / total : 0.0, th.stored, store != nullptr && th.has_sum};
}

// The output of a Threshold with stored powers: out[index[k]] = p, the same bits as
// sparse_p's (p_in = power(d - tau) for d > tau, else 0, times inv_total, rounded to T), for
// k < th.stored; the caller has written zeros everywhere else.
template <class T>
void scatter_stored_powers(const PowerStore& store, const Threshold& th, T* out) {
  for (std::size_t k = 0; k < th.stored; ++k) {
    const double p = store.powers[k];
    out[store.index[k]] = static_cast<T>(p > 0 ? p * th.inv_total : 0.0);
  }
}

// p from d: (d - tau)_+ (sparsemax), (d - tau)_+^2 (1.5-entmax), power((d - tau)_+) / total
// (alpha-entmax, power(u) = u^(1/(alpha-1)) from with_output_power). std::max(u, 0.0) is
// u > 0 ? u : +0.0 here (u is never NaN).
template <int kMap, class P>
double sparse_p(double d, double tau, const P& power, double inv_total) {
  const double u = std::max(d - tau, 0.0);
  if constexpr (kMap == kSparsemax) {
    return u;
  } else if constexpr (kMap == kEntmax15) {
    return u * u;
  } else {
    const double p = power(u > 0 ? u : 1.0);  // unconditional, so the output loops vectorise
    return u > 0 ? p * inv_total : 0.0;
  }
}

// Calls f(power) for the output loops of map kMap: alpha-entmax's power (with_power), and an
// unused identity for the other maps (so their loops are compiled once).
template <int kMap, class F>
void with_output_power(double alpha, F&& f) {
  if constexpr (kMap == kBisect)
    with_power<true>(1.0 / (alpha - 1.0), f);
  else
    f([](double u) { return u; });
}

// Calls f(std::integral_constant<int, map>{}) so the output loops are compiled per map.
template <class F>
void with_sparse_map(int map, F&& f) {
  if (map == kSparsemax) return f(std::integral_constant<int, kSparsemax>{});
  if (map == kEntmax15) return f(std::integral_constant<int, kEntmax15>{});
  return f(std::integral_constant<int, kBisect>{});
}

// Bit j set where x[j] * sign > bound, for j < kLanes (the candidate pre-test of a block of a
// row, sign = ±1 and bound from candidate_bound: two vector compares and a movemask for float32
// on AVX2 and up, four for float64).
template <class T>
std::uint32_t block_hits(const T* x, T sign, T bound) {
  static_assert(kLanes <= 32, "one bit per lane");
  std::uint32_t bits = 0;
#if FASTCORE_ISA_LEVEL >= 1
  if constexpr (sizeof(T) == 4) {
    const __m256 f = _mm256_set1_ps(sign), b = _mm256_set1_ps(bound);
    for (int k = 0; k < kLanes; k += 8) {
      const __m256 hit = _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k), f), b, _CMP_GT_OQ);
      bits |= static_cast<std::uint32_t>(_mm256_movemask_ps(hit)) << k;
    }
  } else {
    const __m256d f = _mm256_set1_pd(sign), b = _mm256_set1_pd(bound);
    for (int k = 0; k < kLanes; k += 4) {
      const __m256d hit = _mm256_cmp_pd(_mm256_mul_pd(_mm256_loadu_pd(x + k), f), b, _CMP_GT_OQ);
      bits |= static_cast<std::uint32_t>(_mm256_movemask_pd(hit)) << k;
    }
  }
#else
  for (int j = 0; j < kLanes; ++j) bits |= static_cast<std::uint32_t>(x[j] * sign > bound ? 1 : 0) << j;
#endif
  return bits;
}

// out[i] = p of entry i (sparse_p on d = x[i] * factor - m, -inf where masked) for i in
// [lo, hi); a function with restrict pointers so the loop vectorises (see powers_in_range).
template <bool kMasked, int kMap, class T, class P>
void sparse_output(const T* __restrict x, const std::uint8_t* __restrict mask, T* __restrict out,
                   std::int64_t lo, std::int64_t hi, double factor, double m, Threshold th,
                   const P& power) {
  const double inf = std::numeric_limits<double>::infinity();
  for (std::int64_t i = lo; i < hi; ++i) {
    const bool keep = kMasked ? mask[i] != 0 : true;
    const double d = keep ? static_cast<double>(x[i]) * factor - m : -inf;
    out[i] = static_cast<T>(sparse_p<kMap>(d, th.tau, power, th.inv_total));
  }
}

// One row: a vectorised pass for the extremes, one gathering the candidates, the threshold, one
// pass writing the output (into L1 scratch first and then to y with streaming stores when
// stream_output is set, as softmax_row does).
template <bool kMasked, class T>
void sparse_row(int map, const T* __restrict x, const std::uint8_t* __restrict mask,
                T* __restrict y, std::int64_t n, double scale, double alpha, int n_iter,
                bool stream_output) {
  const double factor = sparse_factor(map, scale, alpha);
  const double inf = std::numeric_limits<double>::infinity();
  auto keep = [&](std::int64_t i) {
    if constexpr (kMasked) return mask[i] != 0;
    (void)i;
    return true;
  };
  // Pass 1 (in T lanes).
  Extremes<T, kLanes> lanes;
  Counts<T, kLanes> counts;
  auto visit = [&](int j, std::int64_t i) {
    lanes.visit(j, keep(i), x[i]);
    counts.visit(j, keep(i), x[i]);
  };
  std::int64_t i0 = 0;
  for (; i0 + kLanes <= n; i0 += kLanes)
    for (int j = 0; j < kLanes; ++j) visit(j, i0 + j);
  for (int j = 0; i0 < n; ++i0, ++j) visit(j, i0);
  double nan_count = 0, active_entries = 0;
  for (int j = 0; j < kLanes; ++j) nan_count += counts.nans[j], active_entries += counts.finite[j];
  const SparseStart start = sparse_start(map, factor, alpha, lanes.max, lanes.min, nan_count);
  const double m = start.m;
  if (m != m) return fill(y, n, std::numeric_limits<T>::quiet_NaN());
  if (m == -inf) return fill(y, n, T(0));  // nothing left in the row

  auto d_of = [&](std::int64_t i) { return keep(i) ? static_cast<double>(x[i]) * factor - m : -inf; };
  // Pass 2: candidates. Each block of kLanes is pre-tested in T (vector compares) and only the
  // entries that pass are tested exactly in double, with a branch-free compaction (every value
  // tested is written, the count advances only for candidates).
  double* d = scratch<double>(kCandidateScratchSlot, static_cast<std::size_t>(n));
  // alpha-entmax records its candidates' positions (and later powers), see PowerStore
  const bool store_powers = map == kBisect && n <= std::numeric_limits<std::int32_t>::max();
  PowerStore store{store_powers ? scratch<std::int32_t>(kPowerScratchSlot, static_cast<std::size_t>(n)) : nullptr,
                   store_powers ? scratch<double>(kPowerScratchSlot, static_cast<std::size_t>(n)) : nullptr};
  std::size_t count = 0;
  const T sign_t = static_cast<T>(candidate_sign(factor)), bound_t = candidate_bound<T>(m, start.floor, factor);
  auto take = [&](std::int64_t i) {
    const double v = d_of(i);
    d[count] = v;
    if (store_powers) store.index[count] = static_cast<std::int32_t>(i);
    count += v > start.floor ? 1 : 0;
  };
  std::int64_t b = 0;
  for (; b + kLanes <= n; b += kLanes)
    for (std::uint32_t bits = block_hits(x + b, sign_t, bound_t); bits != 0; bits &= bits - 1)
      take(b + __builtin_ctz(bits));
  for (; b < n; ++b) take(b);

  // The threshold, then pass 3: the output.
  const Threshold th = sparse_threshold(map, d, count, start.floor, alpha, active_entries, n_iter,
                                        store_powers ? &store : nullptr);
  T* out = stream_output ? scratch<T>(kStreamScratchSlot, static_cast<std::size_t>(n)) : y;
  if (th.has_powers) {
    fill(out, n, T(0));
    scatter_stored_powers(store, th, out);
    if (stream_output) store_streaming(y, out, n, T(1), false);
    return;
  }
  with_sparse_map(map, [&](auto map_constant) {
    constexpr int kMap = decltype(map_constant)::value;
    with_output_power<kMap>(alpha, [&](const auto& power) {
      auto compute = [&](std::int64_t lo, std::int64_t hi) {
        sparse_output<kMasked, kMap>(x, mask, out, lo, hi, factor, m, th, power);
      };
      if constexpr (kMap == kBisect) {
        // The power is costly and the support usually small: runs of blocks with no entry in
        // the support are zeros (the same bits: p is +0 outside the support either way).
        for_support_runs(
            n, [&](std::int64_t i) { return d_of(i) > th.tau; },
            [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t i = lo; i < hi; ++i) out[i] = T(0);
            },
            compute);
      } else {
        compute(0, n);
      }
    });
  });
  if (stream_output) store_streaming(y, out, n, T(1), false);
}

// Bit j set where xr[j] * sign > bound[j], for j < width (the candidate pre-test of a strip's
// row segment, sign = ±1: vector compares and a movemask on AVX2 and up).
template <class T>
std::uint64_t segment_hits(const T* xr, T sign, const T* bound, int width) {
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  static_assert(kW <= 64, "one bit per column");
  std::uint64_t bits = 0;
#if FASTCORE_ISA_LEVEL >= 1
  if (width == kW) {
    if constexpr (sizeof(T) == 4) {
      const __m256 f = _mm256_set1_ps(sign);
      for (int k = 0; k < kW; k += 8) {
        const __m256 hit = _mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + k), f),
                                         _mm256_loadu_ps(bound + k), _CMP_GT_OQ);
        bits |= static_cast<std::uint64_t>(_mm256_movemask_ps(hit)) << k;
      }
    } else {
      const __m256d f = _mm256_set1_pd(sign);
      for (int k = 0; k < kW; k += 4) {
        const __m256d hit = _mm256_cmp_pd(_mm256_mul_pd(_mm256_loadu_pd(xr + k), f),
                                          _mm256_loadu_pd(bound + k), _CMP_GT_OQ);
        bits |= static_cast<std::uint64_t>(_mm256_movemask_pd(hit)) << k;
      }
    }
    return bits;
  }
#endif
  for (int j = 0; j < width; ++j)
    bits |= static_cast<std::uint64_t>(xr[j] * sign > bound[j] ? 1 : 0) << j;
  return bits;
}

// One strip of the sparse maps down columns: `width` neighbouring columns, n rows at stride
// `inner`, vectorised across the columns of each row segment like softmax_strip. Per column it
// repeats sparse_row exactly — the same extremes and shift, the same candidates in the same
// (row) order, the same threshold code, the same output arithmetic — so the bits equal the row
// path's. Candidates of column j go to scratch[j * n ...] (n * kW doubles: the caller keeps n
// within kSparseStripScratchBytes).
template <bool kMasked, class T>
void sparse_strip(int map, const T* __restrict x, const std::uint8_t* __restrict mask,
                  T* __restrict y, std::int64_t n, std::int64_t inner, int width, double scale,
                  double alpha, int n_iter) {
  constexpr int kW = static_cast<int>(kStripBytes / sizeof(T));
  const double factor = sparse_factor(map, scale, alpha);
  const double inf = std::numeric_limits<double>::infinity();
  auto keep = [&](const std::uint8_t* mr, int j) {
    if constexpr (kMasked) return mr[j] != 0;
    (void)mr, (void)j;
    return true;
  };
  // Pass 1: per column, the extremes of each lane (row i in lane i % kLanes, as sparse_row's
  // lanes, visited in the same order) and the counts.
  Extremes<T, kW> lanes[kLanes];
  Counts<T, kW> counts;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
    const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
    Extremes<T, kW>& lane = lanes[i % kLanes];
    if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
    for (int j = 0; j < width; ++j) {
      lane.visit(j, keep(mr, j), xr[j]);
      counts.visit(j, keep(mr, j), xr[j]);
    }
  }
  alignas(64) double m[kW], floor[kW], tau[kW], inv_total[kW];
  alignas(64) T bound[kW], fill_value[kW];
  bool special[kW];
  std::size_t count[kW];
  for (int j = 0; j < kW; ++j) {
    SparseStart start{0.0, -1.0};
    if (j < width) {
      T lane_max[kLanes], lane_min[kLanes];
      for (int l = 0; l < kLanes; ++l) lane_max[l] = lanes[l].max[j], lane_min[l] = lanes[l].min[j];
      start = sparse_start(map, factor, alpha, lane_max, lane_min, static_cast<double>(counts.nans[j]));
    }
    special[j] = start.m != start.m || start.m == -inf;
    fill_value[j] = start.m != start.m ? std::numeric_limits<T>::quiet_NaN() : T(0);
    m[j] = special[j] ? 0.0 : start.m;
    floor[j] = start.floor;
    bound[j] = special[j] ? kInf<T> : candidate_bound<T>(start.m, start.floor, factor);  // special: none
    count[j] = 0;
    tau[j] = 0.0, inv_total[j] = 0.0;
  }
  // Pass 2: candidates, rows in order (so each column's list is in sparse_row's order), and for
  // alpha-entmax their rows (a PowerStore per column: column j's lists start at j * n).
  double* candidates = scratch<double>(kCandidateScratchSlot, static_cast<std::size_t>(n * kW));
  const bool store_powers = map == kBisect;  // n * kW fits the scratch limit, so an int32 index
  std::int32_t* rows = store_powers ? scratch<std::int32_t>(kPowerScratchSlot, static_cast<std::size_t>(n * kW)) : nullptr;
  double* powers = store_powers ? scratch<double>(kPowerScratchSlot, static_cast<std::size_t>(n * kW)) : nullptr;
  const T sign_t = static_cast<T>(candidate_sign(factor));
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner;
    const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
    if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
    for (std::uint64_t bits = segment_hits(xr, sign_t, bound, width); bits != 0; bits &= bits - 1) {
      const int j = __builtin_ctzll(bits);
      const double v = keep(mr, j) ? static_cast<double>(xr[j]) * factor - m[j] : -inf;
      candidates[j * n + static_cast<std::int64_t>(count[j])] = v;
      if (store_powers) rows[j * n + static_cast<std::int64_t>(count[j])] = static_cast<std::int32_t>(i);
      count[j] += v > floor[j] ? 1 : 0;
    }
  }
  std::size_t stored[kW] = {};
  bool all_stored = store_powers;
  for (int j = 0; j < width; ++j) {
    if (special[j]) continue;
    PowerStore store{rows + j * n, powers + j * n};
    const Threshold th = sparse_threshold(map, candidates + j * n, count[j], floor[j], alpha,
                                          static_cast<double>(counts.finite[j]), n_iter,
                                          store_powers ? &store : nullptr);
    tau[j] = th.tau, inv_total[j] = th.inv_total;
    stored[j] = th.stored;
    all_stored = all_stored && th.has_powers;
  }
  if (all_stored) {
    // Pass 3 from the stored powers (as scatter_stored_powers), kTileRows rows at a time: each
    // column's stored entries of those rows (its lists are in row order; column j's next one is
    // next[j]) are scattered into a zeroed tile in L1, whose rows are then copied to y. (Merging
    // the lists row by row, a compare per entry and column, was slower than the powers it saves.)
    constexpr std::int64_t kTileRows = 64;
    alignas(64) T tile[kTileRows * kW];
    std::size_t next[kW] = {};
    for (std::int64_t r0 = 0; r0 < n; r0 += kTileRows) {
      const std::int64_t rows_here = std::min(kTileRows, n - r0);
      std::fill(tile, tile + rows_here * kW, T(0));
      for (int j = 0; j < width; ++j) {
        const std::int32_t* rows_j = rows + j * n;
        const double* powers_j = powers + j * n;
        std::size_t k = next[j];
        for (; k < stored[j] && rows_j[k] < r0 + rows_here; ++k) {
          const double p = powers_j[k];
          tile[(rows_j[k] - r0) * kW + j] = static_cast<T>(p > 0 ? p * inv_total[j] : 0.0);
        }
        next[j] = k;
      }
      for (std::int64_t r = 0; r < rows_here; ++r)
        std::memcpy(y + (r0 + r) * inner, tile + r * kW, static_cast<std::size_t>(width) * sizeof(T));
    }
    return fill_special_columns(y, n, inner, width, special, fill_value);
  }
  // Pass 3: the output (special columns compute harmless values here and are overwritten).
  with_sparse_map(map, [&](auto map_constant) {
    constexpr int kMap = decltype(map_constant)::value;
    with_output_power<kMap>(alpha, [&](const auto& power) {
      for (std::int64_t i = 0; i < n; ++i) {
        const T* xr = x + i * inner;
        const std::uint8_t* mr = kMasked ? mask + i * inner : nullptr;
        T* yr = y + i * inner;
        if (i + kPrefetchRows < n) prefetch_segment(xr + kPrefetchRows * inner, width);
        auto d_of = [&](int j) { return keep(mr, j) ? static_cast<double>(xr[j]) * factor - m[j] : -inf; };
        if constexpr (kMap == kBisect) {
          // the power is costly: a row segment with no column in its support is zeros (as
          // sparse_row's runs; the other maps keep the single loop below)
          int any = 0;
          for (int j = 0; j < width; ++j) any |= d_of(j) > tau[j] ? 1 : 0;
          if (any == 0) {
            for (int j = 0; j < width; ++j) yr[j] = T(0);
            continue;
          }
        }
        for (int j = 0; j < width; ++j)
          yr[j] = static_cast<T>(sparse_p<kMap>(d_of(j), tau[j], power, inv_total[j]));
      }
    });
  });
  fill_special_columns(y, n, inner, width, special, fill_value);
}

template <class T>
void sparse_columns(int map, const T* x, const std::uint8_t* mask, T* y, std::int64_t n,
                    std::int64_t inner, std::int64_t width, double scale, double alpha, int n_iter) {
  if (mask != nullptr)
    sparse_strip<true>(map, x, mask, y, n, inner, static_cast<int>(width), scale, alpha, n_iter);
  else
    sparse_strip<false>(map, x, mask, y, n, inner, static_cast<int>(width), scale, alpha, n_iter);
}

// --- backward ----------------------------------------------------------------------------------

template <class T>
void backward_row(int map, const T* y, const T* dy, T* dx, std::int64_t n, T scale, double alpha) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  switch (map) {
    case kSoftmax: {  // dx = y (dy - <y, dy>)
      const T dot = static_cast<T>(ordered_sum<T>(n, [&](std::int64_t i) { return y[i] * dy[i]; }));
      for (std::int64_t i = 0; i < n; ++i) dx[i] = (y[i] * (dy[i] - dot)) * scale;
      return;
    }
    case kLogSoftmax: {  // dx = dy - softmax * sum(dy); entries with y = -inf (masked) get 0
      const T total = static_cast<T>(ordered_sum<T>(n, [&](std::int64_t i) {
        const T d = dy[i], on = y[i] == -kInf<T> ? T(0) : T(1);  // see the sparsemax note below
        return on != T(0) ? d : T(0);
      }));
      for (std::int64_t i = 0; i < n; ++i)
        dx[i] = y[i] == -kInf<T> ? T(0) : (dy[i] - vmath::exp(y[i]) * total) * scale;
      return;
    }
    case kSparsemax: {  // dx_i = s_i (dy_i - mean_S dy), S the support (Martins & Astudillo §2.5)
      double total[3];  // support size, NaNs, sum of dy over the support: one pass
      ordered_sums<3, T>(n, [&](std::int64_t i, T* t) {
        // both operands loaded before the select (also in log-softmax above): GCC 12's
        // masked-load vectorisation of `y > 0 ? dy : 0` inside the lane loop summed zeros on
        // AVX2 (caught by the SIMD-level test)
        const T d = dy[i], v = y[i], on = v > 0 ? T(1) : T(0);
        t[0] = on;
        t[1] = v != v ? T(1) : T(0);
        t[2] = on != T(0) ? d : T(0);
      }, total);
      if (total[1] > 0) return fill(dx, n, nan);
      if (total[0] == 0) return fill(dx, n, T(0));
      const T mean = static_cast<T>(total[2] / total[0]);
      for (std::int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0 ? (dy[i] - mean) * scale : T(0);
      return;
    }
    default: {  // alpha-entmax: g = p^(2-alpha) on S, dx = g dy - g <g, dy>/sum g (Peters et al.)
      // g: sqrt(y) for 1.5-entmax (cheap, evaluated on every entry), y^(2-alpha) otherwise
      // (costly: into scratch by power_of_support, which skips blocks with no support)
      auto run = [&](auto g_of) {
        double total[3];  // NaNs, sum of g, sum of g dy: one pass
        ordered_sums<3, T>(n, [&](std::int64_t i, T* t) {
          const T d = dy[i], g = g_of(i);
          t[0] = g != g ? T(1) : T(0);
          t[1] = g;
          t[2] = g * d;
        }, total);
        if (total[0] > 0) return fill(dx, n, nan);
        if (total[1] == 0) return fill(dx, n, T(0));
        const T ratio = static_cast<T>(total[2] / total[1]);
        for (std::int64_t i = 0; i < n; ++i) {
          const T g = g_of(i);
          dx[i] = g == T(0) ? T(0) : (g * (dy[i] - ratio)) * scale;
        }
      };
      if (map == kEntmax15) {
        run([&](std::int64_t i) -> T {
          const T v = y[i];
          return v > 0 ? std::sqrt(v) : v != v ? nan : T(0);
        });
      } else {
        T* g = scratch<T>(kStripScratchSlot, static_cast<std::size_t>(n));
        power_of_support(y, g, n, 2.0 - alpha);
        run([g](std::int64_t i) { return g[i]; });
      }
      return;
    }
  }
}

template <class T>
void forward_rows(int map, const T* x, const std::uint8_t* mask, T* y, std::int64_t rows,
                  std::int64_t n, std::int64_t ld, double scale, double alpha, int n_iter,
                  bool stream_output) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * ld;
    const std::uint8_t* mr = mask ? mask + r * ld : nullptr;
    T* yr = y + r * ld;
    const T* next = r + 1 < rows ? xr + ld : nullptr;
    if ((map == kSoftmax || map == kLogSoftmax) && mr != nullptr)
      softmax_row<true>(xr, mr, yr, n, static_cast<T>(scale), map == kLogSoftmax, next, stream_output);
    else if (map == kSoftmax || map == kLogSoftmax)
      softmax_row<false>(xr, mr, yr, n, static_cast<T>(scale), map == kLogSoftmax, next, stream_output);
    else if (mr != nullptr)
      sparse_row<true>(map, xr, mr, yr, n, scale, alpha, n_iter, stream_output);
    else
      sparse_row<false>(map, xr, mr, yr, n, scale, alpha, n_iter, stream_output);
  }
  if (stream_output) store_fence();
}

template <class T>
void backward_rows(int map, const T* y, const T* dy, T* dx, std::int64_t rows, std::int64_t n,
                   std::int64_t ld, double scale, double alpha) {
  for (std::int64_t r = 0; r < rows; ++r)
    backward_row(map, y + r * ld, dy + r * ld, dx + r * ld, n, static_cast<T>(scale), alpha);
}

}  // namespace

void forward_rows_f32(int map, const float* x, const std::uint8_t* mask, float* y,
                      std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                      double alpha, int n_iter, bool stream_output) {
  forward_rows(map, x, mask, y, rows, n, ld, scale, alpha, n_iter, stream_output);
}
void forward_rows_f64(int map, const double* x, const std::uint8_t* mask, double* y,
                      std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                      double alpha, int n_iter, bool stream_output) {
  forward_rows(map, x, mask, y, rows, n, ld, scale, alpha, n_iter, stream_output);
}
void softmax_columns_f32(bool log, const float* x, const std::uint8_t* mask, float* y,
                         std::int64_t n, std::int64_t inner, std::int64_t width, double scale) {
  softmax_columns(log, x, mask, y, n, inner, width, scale);
}
void softmax_columns_f64(bool log, const double* x, const std::uint8_t* mask, double* y,
                         std::int64_t n, std::int64_t inner, std::int64_t width, double scale) {
  softmax_columns(log, x, mask, y, n, inner, width, scale);
}
void sparse_columns_f32(int map, const float* x, const std::uint8_t* mask, float* y,
                        std::int64_t n, std::int64_t inner, std::int64_t width, double scale,
                        double alpha, int n_iter) {
  sparse_columns(map, x, mask, y, n, inner, width, scale, alpha, n_iter);
}
void sparse_columns_f64(int map, const double* x, const std::uint8_t* mask, double* y,
                        std::int64_t n, std::int64_t inner, std::int64_t width, double scale,
                        double alpha, int n_iter) {
  sparse_columns(map, x, mask, y, n, inner, width, scale, alpha, n_iter);
}
void backward_columns_f32(int map, const float* y, const float* dy, float* dx, std::int64_t n,
                          std::int64_t inner, std::int64_t width, double scale, double alpha) {
  backward_strip(map, y, dy, dx, n, inner, static_cast<int>(width), static_cast<float>(scale), alpha);
}
void backward_columns_f64(int map, const double* y, const double* dy, double* dx, std::int64_t n,
                          std::int64_t inner, std::int64_t width, double scale, double alpha) {
  backward_strip(map, y, dy, dx, n, inner, static_cast<int>(width), static_cast<double>(scale), alpha);
}
void transpose_f32(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t src_stride,
                   float* dst, std::int64_t dst_stride) {
  transpose(src, rows, cols, src_stride, dst, dst_stride);
}
void transpose_f64(const double* src, std::int64_t rows, std::int64_t cols,
                   std::int64_t src_stride, double* dst, std::int64_t dst_stride) {
  transpose(src, rows, cols, src_stride, dst, dst_stride);
}
void backward_rows_f32(int map, const float* y, const float* dy, float* dx, std::int64_t rows,
                       std::int64_t n, std::int64_t ld, double scale, double alpha) {
  backward_rows(map, y, dy, dx, rows, n, ld, scale, alpha);
}
void backward_rows_f64(int map, const double* y, const double* dy, double* dx, std::int64_t rows,
                       std::int64_t n, std::int64_t ld, double scale, double alpha) {
  backward_rows(map, y, dy, dx, rows, n, ld, scale, alpha);
}

}  // namespace FASTCORE_ISA_NS
}  // namespace activations
}  // namespace fastcore
