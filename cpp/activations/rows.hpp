// Row kernels of the probability maps, compiled once per ISA (rows.simd.cpp): `rows` contiguous
// rows of length n. The layout logic (axes, tiles, threads) is in activations.cpp.
#pragma once

#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {
namespace activations {

FASTCORE_ISA_DECLARE(
    // `rows` rows of length n, row r at element r * ld (ld >= n) of x, mask and y alike.
    // stream_output: y is written with non-temporal stores (for outputs much larger than the
    // caches; same bits).
    void forward_rows_f32(int map, const float* x, const std::uint8_t* mask, float* y,
                          std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                          double alpha, int n_iter, bool stream_output);
    void forward_rows_f64(int map, const double* x, const std::uint8_t* mask, double* y,
                          std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                          double alpha, int n_iter, bool stream_output);
    void backward_rows_f32(int map, const float* y, const float* dy, float* dx,
                           std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                           double alpha);
    void backward_rows_f64(int map, const double* y, const double* dy, double* dx,
                           std::int64_t rows, std::int64_t n, std::int64_t ld, double scale,
                           double alpha);
    // Softmax / log-softmax down `width` <= kStripBytes/sizeof(T) neighbouring columns of an
    // (n, inner) slab (row stride `inner`), vectorised across the columns: the same arithmetic
    // and summation order per column as forward_rows, so the bits equal the row path's. Only for
    // n * sizeof(T) <= kCachedRowBytes (the row path's cached branch).
    void softmax_columns_f32(bool log, const float* x, const std::uint8_t* mask, float* y,
                             std::int64_t n, std::int64_t inner, std::int64_t width, double scale);
    void softmax_columns_f64(bool log, const double* x, const std::uint8_t* mask, double* y,
                             std::int64_t n, std::int64_t inner, std::int64_t width, double scale);
    // Sparsemax / 1.5-entmax / alpha-entmax down `width` <= kStripBytes/sizeof(T) neighbouring
    // columns of an (n, inner) slab, vectorised across the columns, with forward_rows' arithmetic
    // and candidate order per column (the same bits as the row path). Only for
    // n * kStripBytes / sizeof(T) * sizeof(double) <= kSparseStripScratchBytes.
    void sparse_columns_f32(int map, const float* x, const std::uint8_t* mask, float* y,
                            std::int64_t n, std::int64_t inner, std::int64_t width, double scale,
                            double alpha, int n_iter);
    void sparse_columns_f64(int map, const double* x, const std::uint8_t* mask, double* y,
                            std::int64_t n, std::int64_t inner, std::int64_t width, double scale,
                            double alpha, int n_iter);
    // backward_rows' arithmetic down `width` <= kStripBytes/sizeof(T) neighbouring columns of an
    // (n, inner) slab, vectorised across the columns, with backward_row's summation order per
    // column (the same bits as the row path), for any n.
    void backward_columns_f32(int map, const float* y, const float* dy, float* dx, std::int64_t n,
                              std::int64_t inner, std::int64_t width, double scale, double alpha);
    void backward_columns_f64(int map, const double* y, const double* dy, double* dx,
                              std::int64_t n, std::int64_t inner, std::int64_t width, double scale,
                              double alpha);
    // dst[c*dst_stride + r] = src[r*src_stride + c] for r < rows, c < cols (register-blocked on
    // AVX2 and up): moves a tile of strided columns into scratch rows and back.
    void transpose_f32(const float* src, std::int64_t rows, std::int64_t cols,
                       std::int64_t src_stride, float* dst, std::int64_t dst_stride);
    void transpose_f64(const double* src, std::int64_t rows, std::int64_t cols,
                       std::int64_t src_stride, double* dst, std::int64_t dst_stride);
)

// Rows up to this many bytes are kept in cache between the softmax passes; longer rows use the
// two-pass online softmax (Milakov & Gimelshein 2018).
constexpr std::int64_t kCachedRowBytes = 256 * 1024;
// Bytes of one row segment of a softmax_columns strip: 64 float32 or 32 float64 columns.
constexpr std::int64_t kStripBytes = 256;
// Per-thread scratch of a sparse-map strip: every column's candidates (up to n doubles each).
// Longer columns take the gather path.
constexpr std::int64_t kSparseStripScratchBytes = std::int64_t{4} << 20;

}  // namespace activations
}  // namespace fastcore
