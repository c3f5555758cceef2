// Layout, threading and the per-row parts that are not SIMD-dispatched (top-k, losses).
#include "activations/activations.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "activations/rows.hpp"
#include "common/errors.hpp"
#include "common/parallel.hpp"
#include "common/scratch.hpp"
#include "common/vmath.hpp"

namespace fastcore {
namespace activations {

namespace {

// The mapped axis not the last: the column-strip kernels run when at least this many neighbouring
// columns share a row segment (fewer would leave their vectors mostly empty).
constexpr std::int64_t kMinStripColumns = 16;

// Columns gathered per tile by the gather path: row segments of kStripBytes (as the strips: a
// shorter segment per row, rows `inner` apart, streams at a fraction of the bandwidth), fewer
// when a tile's scratch buffer would exceed kTileScratchBytes (long columns), down to one
// 64-byte line. Only speed depends on it: every column is mapped by the same row kernel.
constexpr std::int64_t kTileScratchBytes = std::int64_t{4} << 20;
// Outputs of at least this many bytes are written with non-temporal stores where a kernel can
// (the last-axis softmax maps): they would not stay in the caches anyway, and a plain store first
// reads the line for ownership (a third more memory traffic). The last-level cache here is 32 MiB.
constexpr std::int64_t kStreamOutputBytes = std::int64_t{32} << 20;

template <class T>
std::int64_t tile_columns(std::int64_t n) {
  constexpr std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t most = kStripBytes / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t fit = kTileScratchBytes / (n * static_cast<std::int64_t>(sizeof(T)));
  return std::max(line, std::min(most, fit / line * line));
}

// Row stride (in elements) of a tile's scratch rows: n rounded up to whole 64-byte lines, then
// to an odd number of lines. Rows a power-of-two number of lines apart (n = 4096: 16 KiB) fall
// into the same L1 set, so the transpose's 16 write streams evicted each other; an odd stride
// puts the 16 rows into 16 different sets.
template <class E>
std::int64_t scratch_stride(std::int64_t n) {
  constexpr std::int64_t line = 64 / static_cast<std::int64_t>(sizeof(E));
  std::int64_t lines = (n + line - 1) / line;
  if (lines % 2 == 0) ++lines;
  return lines * line;
}

// dst[c*dst_stride + r] = src[r*src_stride + c]: float and double through the ISA-dispatched
// register-blocked transpose, the uint8 mask element by element.
void transpose(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t src_stride,
               float* dst, std::int64_t dst_stride) {
  FASTCORE_ISA_DISPATCH(transpose_f32)(src, rows, cols, src_stride, dst, dst_stride);
}
void transpose(const double* src, std::int64_t rows, std::int64_t cols, std::int64_t src_stride,
               double* dst, std::int64_t dst_stride) {
  FASTCORE_ISA_DISPATCH(transpose_f64)(src, rows, cols, src_stride, dst, dst_stride);
}
void transpose(const std::uint8_t* src, std::int64_t rows, std::int64_t cols,
               std::int64_t src_stride, std::uint8_t* dst, std::int64_t dst_stride) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) dst[c * dst_stride + r] = src[r * src_stride + c];
}

// dst[j*ld + i] = src[i*inner + j] for i < n, j < width: `width` strided columns into
// contiguous scratch rows (gather) and back (scatter).
template <class E>
void gather(const E* src, std::int64_t n, std::int64_t inner, std::int64_t width, E* dst,
            std::int64_t ld) {
  transpose(src, n, width, inner, dst, ld);
}
template <class E>
void scatter(const E* src, std::int64_t n, std::int64_t inner, std::int64_t width, E* dst,
             std::int64_t ld) {
  transpose(src, width, n, ld, dst, inner);
}

// Runs body(offset, rows, contiguous) over the layout's rows with a fixed partition:
//   contiguous = true:  rows [offset/n, offset/n + rows) are contiguous rows at `offset`;
//   contiguous = false: `rows` strided columns starting at element `offset` (stride inner),
//                       to be gathered by the body.
// `bytes_per_element` sizes the chunks (grain_for), never the partition's dependence on threads.
template <class T, class Body>
void for_row_tiles(const Layout& layout, std::int64_t bytes_per_element, Body&& body) {
  const std::int64_t n = layout.n;
  if (layout.inner == 1) {
    const std::int64_t grain = grain_for(layout.outer, n * bytes_per_element);
    parallel_for(0, layout.outer, grain, [&](std::int64_t lo, std::int64_t hi) {
      body(lo * n, hi - lo, true);
    });
    return;
  }
  const std::int64_t width = tile_columns<T>(n);
  const std::int64_t tiles = (layout.inner + width - 1) / width;
  const std::int64_t items = layout.outer * tiles;
  const std::int64_t grain = grain_for(items, n * width * bytes_per_element);
  parallel_for(0, items, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t o = item / tiles;
      const std::int64_t c0 = (item % tiles) * width;
      body(o * n * layout.inner + c0, std::min(width, layout.inner - c0), false);
    }
  });
}

void forward_rows(int map, const float* x, const std::uint8_t* m, float* y, std::int64_t rows,
                  std::int64_t n, std::int64_t ld, double scale, double alpha, int n_iter,
                  bool stream_output = false) {
  FASTCORE_ISA_DISPATCH(forward_rows_f32)(map, x, m, y, rows, n, ld, scale, alpha, n_iter,
                                           stream_output);
}
void forward_rows(int map, const double* x, const std::uint8_t* m, double* y, std::int64_t rows,
                  std::int64_t n, std::int64_t ld, double scale, double alpha, int n_iter,
                  bool stream_output = false) {
  FASTCORE_ISA_DISPATCH(forward_rows_f64)(map, x, m, y, rows, n, ld, scale, alpha, n_iter,
                                           stream_output);
}
void softmax_columns(bool log, const float* x, const std::uint8_t* m, float* y, std::int64_t n,
                     std::int64_t inner, std::int64_t width, double scale) {
  FASTCORE_ISA_DISPATCH(softmax_columns_f32)(log, x, m, y, n, inner, width, scale);
}
void softmax_columns(bool log, const double* x, const std::uint8_t* m, double* y, std::int64_t n,
                     std::int64_t inner, std::int64_t width, double scale) {
  FASTCORE_ISA_DISPATCH(softmax_columns_f64)(log, x, m, y, n, inner, width, scale);
}

void sparse_columns(int map, const float* x, const std::uint8_t* m, float* y, std::int64_t n,
                    std::int64_t inner, std::int64_t width, double scale, double alpha, int n_iter) {
  FASTCORE_ISA_DISPATCH(sparse_columns_f32)(map, x, m, y, n, inner, width, scale, alpha, n_iter);
}
void sparse_columns(int map, const double* x, const std::uint8_t* m, double* y, std::int64_t n,
                    std::int64_t inner, std::int64_t width, double scale, double alpha, int n_iter) {
  FASTCORE_ISA_DISPATCH(sparse_columns_f64)(map, x, m, y, n, inner, width, scale, alpha, n_iter);
}

// Runs body(offset, width) over strips of kStripBytes of neighbouring columns (the mapped axis
// not the last), parallel over strips with a fixed partition; `bytes_per_element` sizes chunks.
template <class T, class Body>
void for_column_strips(const Layout& layout, std::int64_t bytes_per_element, Body&& body) {
  const std::int64_t n = layout.n, inner = layout.inner;
  const std::int64_t strip = kStripBytes / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t strips = (inner + strip - 1) / strip;
  const std::int64_t items = layout.outer * strips;
  const std::int64_t grain = grain_for(items, n * strip * bytes_per_element);
  parallel_for(0, items, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t item = lo; item < hi; ++item) {
      const std::int64_t o = item / strips, c0 = (item % strips) * strip;
      body(o * n * inner + c0, std::min(strip, inner - c0));
    }
  });
}

// Softmax / log-softmax with the mapped axis not the last: strips mapped in place by the
// column-vectorised kernel (no gather/scatter). Used when a strip is worth vectorising
// (inner >= kMinStripColumns) and a column is short enough for the cached branch of the row kernel,
// whose bits the column kernel reproduces; otherwise the caller gathers.
template <class T>
bool softmax_by_columns(bool log, const T* x, const std::uint8_t* mask, T* y, const Layout& layout,
                        double scale) {
  const std::int64_t n = layout.n, inner = layout.inner;
  if (inner < kMinStripColumns || n * static_cast<std::int64_t>(sizeof(T)) > kCachedRowBytes) return false;
  for_column_strips<T>(layout, 2 * sizeof(T), [&](std::int64_t offset, std::int64_t width) {
    softmax_columns(log, x + offset, mask ? mask + offset : nullptr, y + offset, n, inner, width,
                    scale);
  });
  return true;
}

// Sparse maps with the mapped axis not the last: strips mapped in place by the column-vectorised
// kernel, which reproduces the row kernel's bits, when a strip is worth vectorising and its
// candidate scratch (n doubles per column) fits kSparseStripScratchBytes; otherwise the caller
// gathers.
template <class T>
bool sparse_by_columns(int map, const T* x, const std::uint8_t* mask, T* y, const Layout& layout,
                       double scale, double alpha, int n_iter) {
  const std::int64_t n = layout.n, inner = layout.inner;
  const std::int64_t strip = kStripBytes / static_cast<std::int64_t>(sizeof(T));
  if (inner < kMinStripColumns ||
      n * strip * static_cast<std::int64_t>(sizeof(double)) > kSparseStripScratchBytes)
    return false;
  for_column_strips<T>(layout, 2 * sizeof(T), [&](std::int64_t offset, std::int64_t width) {
    sparse_columns(map, x + offset, mask ? mask + offset : nullptr, y + offset, n, inner, width,
                   scale, alpha, n_iter);
  });
  return true;
}

void backward_columns(int map, const float* y, const float* dy, float* dx, std::int64_t n,
                      std::int64_t inner, std::int64_t width, double scale, double alpha) {
  FASTCORE_ISA_DISPATCH(backward_columns_f32)(map, y, dy, dx, n, inner, width, scale, alpha);
}
void backward_columns(int map, const double* y, const double* dy, double* dx, std::int64_t n,
                      std::int64_t inner, std::int64_t width, double scale, double alpha) {
  FASTCORE_ISA_DISPATCH(backward_columns_f64)(map, y, dy, dx, n, inner, width, scale, alpha);
}

void backward_rows(int map, const float* y, const float* dy, float* dx, std::int64_t rows,
                   std::int64_t n, std::int64_t ld, double scale, double alpha) {
  FASTCORE_ISA_DISPATCH(backward_rows_f32)(map, y, dy, dx, rows, n, ld, scale, alpha);
}
void backward_rows(int map, const double* y, const double* dy, double* dx, std::int64_t rows,
                   std::int64_t n, std::int64_t ld, double scale, double alpha) {
  FASTCORE_ISA_DISPATCH(backward_rows_f64)(map, y, dy, dx, rows, n, ld, scale, alpha);
}

void check_layout(const Layout& layout) {
  FASTCORE_CHECK(layout.outer >= 0 && layout.n >= 1 && layout.inner >= 0, "bad layout");
  (void)checked_mul(checked_mul(layout.outer, layout.n), layout.inner);
}

// Softmax over the k largest entries of one contiguous row; ties at the k-th value go to the
// lower indices. `order` is scratch of length n.
template <class T>
void topk_row(const T* x, T* y, std::int64_t n, std::int64_t k, std::vector<std::int64_t>& order) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (x[i] != x[i] || x[i] == std::numeric_limits<T>::infinity()) {
      std::fill(y, y + n, std::numeric_limits<T>::quiet_NaN());
      return;
    }
  }
  order.resize(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  // Strict total order: larger value first, then lower index.
  auto before = [x](std::int64_t a, std::int64_t b) { return x[a] > x[b] || (x[a] == x[b] && a < b); };
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
  const std::int64_t kth = order[static_cast<std::size_t>(k - 1)];
  const T v = x[kth];
  auto selected = [&](std::int64_t i) { return x[i] > v || (x[i] == v && i <= kth); };
  T m = -std::numeric_limits<T>::infinity();
  for (std::int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (m == -std::numeric_limits<T>::infinity()) {
    std::fill(y, y + n, T(0));
    return;
  }
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T e = selected(i) ? vmath::exp(static_cast<T>(x[i] - m)) : T(0);
    y[i] = e;
    s += static_cast<double>(e);
  }
  const T inv = static_cast<T>(1.0 / s);
  for (std::int64_t i = 0; i < n; ++i) y[i] *= inv;
}

// Loss of one row from its probabilities p (then p becomes the gradient p - e_t).
//   cross-entropy: log sum exp(x - m) - (x_t - m)
//   Fenchel-Young (Blondel et al. 2019): L = <p, x - x_t> + H(p), H the Tsallis entropy:
//     sparsemax (alpha = 2): H = (1 - sum p^2)/2;  1.5-entmax: H = (1 - sum p^1.5)/0.75.
// Clamped at 0 (the losses are non-negative; rounding can give -1e-17).
template <class T>
T row_loss(Map map, const T* x, T* p, std::int64_t n, std::int64_t t) {
  double loss;
  if (p[0] != p[0]) return std::numeric_limits<T>::quiet_NaN();  // a NaN row stays NaN
  if (map == Map::softmax) {
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
    double s = 0.0;
    for (std::int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
    loss = std::log(s) - (static_cast<double>(x[t]) - m);
  } else {
    const double xt = static_cast<double>(x[t]);
    double inner = 0.0, power_sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double pi = static_cast<double>(p[i]);
      if (pi == 0.0) continue;
      inner += pi * (static_cast<double>(x[i]) - xt);
      power_sum += map == Map::sparsemax ? pi * pi : pi * std::sqrt(pi);
    }
    loss = inner + (map == Map::sparsemax ? 0.5 * (1.0 - power_sum) : (1.0 - power_sum) / 0.75);
  }
  // grad_t = p_t - 1 = -(the sum of the other p_i). Past p_t = 1/2 the subtraction cancels
  // (float32 p_t = 1 - 2e-6 carries ±6e-8: 3 % of the gradient of a confident row), so the
  // others are summed instead (in double, in index order: the same bits for any thread count).
  if (p[t] > T(0.5)) {
    double others = 0.0;
    for (std::int64_t i = 0; i < n; ++i) others += i == t ? 0.0 : static_cast<double>(p[i]);
    p[t] = static_cast<T>(-others);
  } else {
    p[t] -= T(1);
  }
  return static_cast<T>(loss > 0 ? loss : 0.0);
}

}  // namespace

template <class T>
void forward(Map map, const T* x, const std::uint8_t* mask, T* y, Layout layout, double scale,
             double alpha, int n_iter) {
  check_layout(layout);
  const std::int64_t n = layout.n;
  const int code = static_cast<int>(map);
  if (layout.inner > 1 && (map == Map::softmax || map == Map::log_softmax) &&
      softmax_by_columns(map == Map::log_softmax, x, mask, y, layout, scale))
    return;
  if (layout.inner > 1 && map != Map::softmax && map != Map::log_softmax &&
      sparse_by_columns(code, x, mask, y, layout, scale, alpha, n_iter))
    return;
  // An output far larger than the caches is written with streaming stores.
  const bool stream_output =
      layout.outer * n * layout.inner * static_cast<std::int64_t>(sizeof(T)) >= kStreamOutputBytes;
  for_row_tiles<T>(layout, 2 * sizeof(T), [&](std::int64_t offset, std::int64_t rows, bool contiguous) {
    if (contiguous) {
      forward_rows(code, x + offset, mask ? mask + offset : nullptr, y + offset, rows, n, n,
                   scale, alpha, n_iter, stream_output);
      return;
    }
    // The mask's scratch rows share x's element stride (the row kernels take one stride).
    const std::int64_t ld = scratch_stride<T>(n);
    const auto size = static_cast<std::size_t>(rows * ld);
    T* bx = scratch<T>(0, size);
    T* by = scratch<T>(1, size);
    std::uint8_t* bm = mask ? scratch<std::uint8_t>(0, size) : nullptr;
    gather(x + offset, n, layout.inner, rows, bx, ld);
    if (mask) gather(mask + offset, n, layout.inner, rows, bm, ld);
    forward_rows(code, bx, bm, by, rows, n, ld, scale, alpha, n_iter);
    scatter(by, n, layout.inner, rows, y + offset, ld);
  });
}

template <class T>
void topk_softmax(const T* x, T* y, Layout layout, std::int64_t k) {
  check_layout(layout);
  FASTCORE_CHECK(k >= 1 && k <= layout.n, "k out of range");
  const std::int64_t n = layout.n;
  for_row_tiles<T>(layout, 2 * sizeof(T), [&](std::int64_t offset, std::int64_t rows, bool contiguous) {
    thread_local std::vector<std::int64_t> order;
    const std::int64_t ld = contiguous ? n : scratch_stride<T>(n);
    const auto size = static_cast<std::size_t>(contiguous ? 0 : rows * ld);
    T* bx = contiguous ? nullptr : scratch<T>(0, size);
    T* by = contiguous ? nullptr : scratch<T>(1, size);
    if (!contiguous) gather(x + offset, n, layout.inner, rows, bx, ld);
    const T* xs = contiguous ? x + offset : bx;
    T* ys = contiguous ? y + offset : by;
    for (std::int64_t r = 0; r < rows; ++r) topk_row(xs + r * ld, ys + r * ld, n, k, order);
    if (!contiguous) scatter(by, n, layout.inner, rows, y + offset, ld);
  });
}

template <class T>
void backward(Map map, const T* y, const T* dy, T* dx, Layout layout, double scale, double alpha) {
  check_layout(layout);
  const std::int64_t n = layout.n;
  const int code = static_cast<int>(map);
  if (layout.inner >= kMinStripColumns) {  // strips vectorised across columns: no gather/scatter
    for_column_strips<T>(layout, 3 * sizeof(T), [&](std::int64_t offset, std::int64_t width) {
      backward_columns(code, y + offset, dy + offset, dx + offset, n, layout.inner, width, scale,
                       alpha);
    });
    return;
  }
  for_row_tiles<T>(layout, 3 * sizeof(T), [&](std::int64_t offset, std::int64_t rows, bool contiguous) {
    if (contiguous) {
      backward_rows(code, y + offset, dy + offset, dx + offset, rows, n, n, scale, alpha);
      return;
    }
    const std::int64_t ld = scratch_stride<T>(n);
    const auto size = static_cast<std::size_t>(rows * ld);
    T* by = scratch<T>(0, size);
    T* bdy = scratch<T>(1, size);
    T* bdx = scratch<T>(2, size);
    gather(y + offset, n, layout.inner, rows, by, ld);
    gather(dy + offset, n, layout.inner, rows, bdy, ld);
    backward_rows(code, by, bdy, bdx, rows, n, ld, scale, alpha);
    scatter(bdx, n, layout.inner, rows, dx + offset, ld);
  });
}

template <class T>
void loss(Map map, const T* x, const std::int64_t* target, T* loss_out, T* grad, Layout layout) {
  check_layout(layout);
  FASTCORE_CHECK(map == Map::softmax || map == Map::sparsemax || map == Map::entmax15,
                 "no fused loss for this map");
  const std::int64_t n = layout.n, inner = layout.inner;
  const int code = static_cast<int>(map);
  for_row_tiles<T>(layout, 2 * sizeof(T), [&](std::int64_t offset, std::int64_t rows, bool contiguous) {
    // Row r of this tile is (o, c): its loss/target index is o*inner + c.
    const std::int64_t o = offset / (n * inner), c0 = offset % (n * inner);
    const std::int64_t ld = contiguous ? n : scratch_stride<T>(n);
    const auto size = static_cast<std::size_t>(contiguous ? 0 : rows * ld);
    T* bx = contiguous ? nullptr : scratch<T>(0, size);
    T* bp = contiguous ? nullptr : scratch<T>(1, size);
    if (!contiguous) gather(x + offset, n, inner, rows, bx, ld);
    const T* xs = contiguous ? x + offset : bx;
    T* ps = contiguous ? grad + offset : bp;
    forward_rows(code, xs, nullptr, ps, rows, n, ld, 1.0, 0.0, 0);
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t index = contiguous ? offset / n + r : o * inner + c0 + r;
      const std::int64_t t = target[index];
      FASTCORE_CHECK(t >= 0 && t < n, "target out of range");
      loss_out[index] = row_loss(map, xs + r * ld, ps + r * ld, n, t);
    }
    if (!contiguous) scatter(bp, n, inner, rows, grad + offset, ld);
  });
}

#define FASTCORE_INSTANTIATE(T)                                                                  \
  template void forward<T>(Map, const T*, const std::uint8_t*, T*, Layout, double, double, int); \
  template void topk_softmax<T>(const T*, T*, Layout, std::int64_t);                            \
  template void backward<T>(Map, const T*, const T*, T*, Layout, double, double);               \
  template void loss<T>(Map, const T*, const std::int64_t*, T*, T*, Layout);
FASTCORE_INSTANTIATE(float)
FASTCORE_INSTANTIATE(double)
#undef FASTCORE_INSTANTIATE

}  // namespace activations
}  // namespace fastcore
