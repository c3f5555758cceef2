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
)

}  // namespace activations
}  // namespace fastcore
