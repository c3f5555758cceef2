// Row kernels of the probability maps, compiled once per ISA (rows.simd.cpp): `rows` contiguous
// rows of length n. The layout logic (axes, tiles, threads) is in activations.cpp.
#pragma once

#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {
namespace activations {

FASTCORE_ISA_DECLARE(
    void forward_rows_f32(int map, const float* x, const std::uint8_t* mask, float* y,
                          std::int64_t rows, std::int64_t n, double scale, double alpha,
                          int n_iter);
    void forward_rows_f64(int map, const double* x, const std::uint8_t* mask, double* y,
                          std::int64_t rows, std::int64_t n, double scale, double alpha,
                          int n_iter);
    void backward_rows_f32(int map, const float* y, const float* dy, float* dx,
                           std::int64_t rows, std::int64_t n, double scale, double alpha);
    void backward_rows_f64(int map, const double* y, const double* dy, double* dx,
                           std::int64_t rows, std::int64_t n, double scale, double alpha);
    // Softmax / log-softmax down `width` <= kStripBytes/sizeof(T) neighbouring columns of an
    // (n, inner) slab (row stride `inner`), vectorised across the columns: the same arithmetic
    // and summation order per column as forward_rows, so the bits equal the row path's. Only for
    // n * sizeof(T) <= kCachedRowBytes (the row path's cached branch).
    void softmax_columns_f32(bool log, const float* x, const std::uint8_t* mask, float* y,
                             std::int64_t n, std::int64_t inner, std::int64_t width, double scale);
    void softmax_columns_f64(bool log, const double* x, const std::uint8_t* mask, double* y,
                             std::int64_t n, std::int64_t inner, std::int64_t width, double scale);
)

// Rows up to this many bytes are kept in cache between the softmax passes; longer rows use the
// two-pass online softmax (Milakov & Gimelshein 2018).
constexpr std::int64_t kCachedRowBytes = 256 * 1024;
// Bytes of one row segment of a softmax_columns strip: 64 float32 or 32 float64 columns.
constexpr std::int64_t kStripBytes = 256;

}  // namespace activations
}  // namespace fastcore
