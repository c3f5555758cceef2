// Monarch kernels, compiled once per ISA (FASTCORE_ISA_NS). See monarch.hpp for the layout.
//
// Every product goes through one small GEMM, C (m x n) [+]= A (m x depth) * B (depth x n), with
// A and C addressed by (row, column) strides — that is how the two permutations are folded into
// the addressing — and B contiguous by rows so the inner loop vectorises. Register tiles of
// kMR x kNR accumulate over `depth` in order with vmath::fma (the FMA instruction on AVX2 /
// AVX-512, the correctly rounded C library fma in the scalar build): every output element is the
// same sequence of fused multiply-adds on every ISA, so results are bitwise identical.
#include <algorithm>
#include <complex>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "common/parallel.hpp"
#include "common/scratch.hpp"
#include "common/vmath.hpp"
#include "monarch/kernels.hpp"

#if FASTCORE_ISA_LEVEL >= 1
#include <immintrin.h>
#endif

namespace fastcore {
namespace monarch {
namespace FASTCORE_ISA_NS {

namespace {

template <class T> struct Real { using type = T; };
template <class T> struct Real<std::complex<T>> { using type = T; };

// acc + a*b with fused operations; complex: (ar + i ai)(br + i bi) component-wise.
inline float madd(float a, float b, float acc) { return vmath::fma(a, b, acc); }
inline double madd(double a, double b, double acc) { return vmath::fma(a, b, acc); }
template <class R>
inline std::complex<R> madd(std::complex<R> a, std::complex<R> b, std::complex<R> acc) {
  const R re = vmath::fma(a.real(), b.real(), vmath::fma(-a.imag(), b.imag(), acc.real()));
  const R im = vmath::fma(a.real(), b.imag(), vmath::fma(a.imag(), b.real(), acc.imag()));
  return {re, im};
}

template <class T> inline T conj_of(T v) { return v; }
template <class R> inline std::complex<R> conj_of(std::complex<R> v) { return std::conj(v); }

template <class T> constexpr int kMR = 4;
template <class T> constexpr int kNR = 64 / static_cast<int>(sizeof(T));  // one cache line of B

// Vectors (GCC vector extensions) for the real micro-kernel: 32 bytes with AVX2/AVX-512, 16 bytes
// (SSE2, the x86-64 baseline) in the scalar build. vfma is the FMA instruction on AVX2/AVX-512
// and a lane-wise correctly rounded fma in the scalar build, so every element of C sees the same
// sequence of fused multiply-adds (tile widths differ, the per-element order does not).
#if FASTCORE_ISA_LEVEL >= 1
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float vf __attribute__((vector_size(kVecBytes)));
typedef double vd __attribute__((vector_size(kVecBytes)));
template <class T> struct Vec;
template <> struct Vec<float> { using type = vf; static constexpr int width = kVecBytes / 4; };
template <> struct Vec<double> { using type = vd; static constexpr int width = kVecBytes / 8; };

inline vf vfma(vf a, vf b, vf c) {
#if FASTCORE_ISA_LEVEL >= 1
  return _mm256_fmadd_ps(a, b, c);
#else
  vf r;
  for (int i = 0; i < Vec<float>::width; ++i) r[i] = vmath::fma(a[i], b[i], c[i]);
  return r;
#endif
}
inline vd vfma(vd a, vd b, vd c) {
#if FASTCORE_ISA_LEVEL >= 1
  return _mm256_fmadd_pd(a, b, c);
#else
  vd r;
  for (int i = 0; i < Vec<double>::width; ++i) r[i] = vmath::fma(a[i], b[i], c[i]);
  return r;
#endif
}

template <class V, class T>
inline V load_vec(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}

template <class T, bool kAccumulate>
void gemm_generic(std::int64_t m, std::int64_t n, std::int64_t depth, const T* A, std::int64_t a_rs,
                  std::int64_t a_cs, const T* B, std::int64_t ldb, T* C, std::int64_t c_rs, std::int64_t c_cs);

// Real micro-kernel: a kRealMR x (2 vectors) tile of C kept in registers over the whole depth.
constexpr int kRealMR = 4;  // divides kTile, so no batch rows fall to the edge path

template <class T>
void real_tile(std::int64_t depth, const T* A, std::int64_t a_rs, std::int64_t a_cs, const T* B,
               std::int64_t ldb, T (*acc_out)[2 * Vec<T>::width]) {
  using V = typename Vec<T>::type;
  constexpr int W = Vec<T>::width;
  V acc[kRealMR][2];
  for (int i = 0; i < kRealMR; ++i) {
    acc[i][0] = load_vec<V>(acc_out[i]);
    acc[i][1] = load_vec<V>(acc_out[i] + W);
  }
  for (std::int64_t p = 0; p < depth; ++p) {
    const V b0 = load_vec<V>(B + p * ldb), b1 = load_vec<V>(B + p * ldb + W);
    for (int i = 0; i < kRealMR; ++i) {
      const T a = A[i * a_rs + p * a_cs];
      V av;
      for (int w = 0; w < W; ++w) av[w] = a;
      acc[i][0] = vfma(av, b0, acc[i][0]);
      acc[i][1] = vfma(av, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < kRealMR; ++i) {
    __builtin_memcpy(acc_out[i], &acc[i][0], sizeof(V));
    __builtin_memcpy(acc_out[i] + W, &acc[i][1], sizeof(V));
  }
}

// C[i*c_rs + j*c_cs] (+)= sum_p A[i*a_rs + p*a_cs] * B[p*ldb + j] for float / double: full
// register tiles through real_tile, edges element by element with the same fma sequence.
template <class T, bool kAccumulate>
void gemm_real(std::int64_t m, std::int64_t n, std::int64_t depth, const T* A, std::int64_t a_rs,
               std::int64_t a_cs, const T* B, std::int64_t ldb, T* C, std::int64_t c_rs, std::int64_t c_cs) {
  constexpr int MR = kRealMR, NR = 2 * Vec<T>::width;
  for (std::int64_t i0 = 0; i0 < m; i0 += MR) {
    const std::int64_t mi = std::min<std::int64_t>(MR, m - i0);
    for (std::int64_t j0 = 0; j0 < n; j0 += NR) {
      const std::int64_t nj = std::min<std::int64_t>(NR, n - j0);
      T acc[MR][NR];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j)
          acc[i][j] = (kAccumulate && i < mi && j < nj) ? C[(i0 + i) * c_rs + (j0 + j) * c_cs] : T(0);
      if (mi == MR && nj == NR) {
        real_tile<T>(depth, A + i0 * a_rs, a_rs, a_cs, B + j0, ldb, acc);
      } else {
        for (std::int64_t p = 0; p < depth; ++p)
          for (std::int64_t i = 0; i < mi; ++i) {
            const T a = A[(i0 + i) * a_rs + p * a_cs];
            for (std::int64_t j = 0; j < nj; ++j) acc[i][j] = madd(a, B[p * ldb + j0 + j], acc[i][j]);
          }
      }
      for (std::int64_t i = 0; i < mi; ++i)
        for (std::int64_t j = 0; j < nj; ++j) C[(i0 + i) * c_rs + (j0 + j) * c_cs] = acc[i][j];
    }
  }
}

// C[i*c_rs + j*c_cs] (+)= sum_p A[i*a_rs + p*a_cs] * B[p*ldb + j]
template <class T, bool kAccumulate>
void gemm(std::int64_t m, std::int64_t n, std::int64_t depth, const T* A, std::int64_t a_rs,
          std::int64_t a_cs, const T* B, std::int64_t ldb, T* C, std::int64_t c_rs, std::int64_t c_cs) {
  if constexpr (std::is_floating_point_v<T>) {
    gemm_real<T, kAccumulate>(m, n, depth, A, a_rs, a_cs, B, ldb, C, c_rs, c_cs);
  } else {
    gemm_generic<T, kAccumulate>(m, n, depth, A, a_rs, a_cs, B, ldb, C, c_rs, c_cs);
  }
}

// Generic (complex) version: C tile in an array, the compiler vectorises what it can.
template <class T, bool kAccumulate>
void gemm_generic(std::int64_t m, std::int64_t n, std::int64_t depth, const T* A, std::int64_t a_rs,
          std::int64_t a_cs, const T* B, std::int64_t ldb, T* C, std::int64_t c_rs, std::int64_t c_cs) {
  constexpr int MR = kMR<T>, NR = kNR<T>;
  for (std::int64_t i0 = 0; i0 < m; i0 += MR) {
    const std::int64_t mi = std::min<std::int64_t>(MR, m - i0);
    for (std::int64_t j0 = 0; j0 < n; j0 += NR) {
      const std::int64_t nj = std::min<std::int64_t>(NR, n - j0);
      T acc[MR][NR];
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j)
          acc[i][j] = (kAccumulate && i < mi && j < nj) ? C[(i0 + i) * c_rs + (j0 + j) * c_cs] : T(0);
      if (mi == MR && nj == NR) {  // full tile: constant trip counts, kept in registers
        for (std::int64_t p = 0; p < depth; ++p) {
          const T* b = B + p * ldb + j0;
          for (int i = 0; i < MR; ++i) {
            const T a = A[(i0 + i) * a_rs + p * a_cs];
            for (int j = 0; j < NR; ++j) acc[i][j] = madd(a, b[j], acc[i][j]);
          }
        }
      } else {
        for (std::int64_t p = 0; p < depth; ++p) {
          const T* b = B + p * ldb + j0;
          for (std::int64_t i = 0; i < mi; ++i) {
            const T a = A[(i0 + i) * a_rs + p * a_cs];
            for (std::int64_t j = 0; j < nj; ++j) acc[i][j] = madd(a, b[j], acc[i][j]);
          }
        }
      }
      for (std::int64_t i = 0; i < mi; ++i)
        for (std::int64_t j = 0; j < nj; ++j) C[(i0 + i) * c_rs + (j0 + j) * c_cs] = acc[i][j];
    }
  }
}

// Stage-2 products vectorised over the block index l ("interleaved" layout; real types, used
// when the vector width W divides L). Stage 2 reads the intermediate at z[b][i*L + l] and writes
// out[b][o*L + l]: for a fixed (b, i) the L blocks are contiguous, so W consecutive l form one
// vector load and the W outputs one vector store (the strided gemm path instead touches one
// cache line per element, at power-of-two strides that also collide in the cache sets).
// The intermediate of a batch tile is kept as a panel, rows in groups of kMB:
//   z[b][i*L + g*W + w]  at  panel[(((g*n_groups + b/kMB)*depth + i)*kMB + b%kMB)*W + w]
// so the register tile (kMB rows x MO outputs x W blocks) reads it sequentially, and the weights
// as wq[g][o][i][w] (= w2[l][o][i] forward, conj(w2[l][i][o]) adjoint), l = g*W + w.
//   out[b][o*L + l] = sum_i panel(b, i, l) * wq[g][o][i][w]
// Each output element is one fma chain over i in ascending order from 0: the same operations in
// the same order as the strided gemm path, so results are bitwise those of every other path.
constexpr int kMB = 4;  // batch rows per register tile and per panel group

template <class T>
bool interleaved_ok(std::int64_t L) {
  return std::is_floating_point_v<T> && L % Vec<typename Real<T>::type>::width == 0;
}

template <class T>
std::int64_t panel_size(std::int64_t rows, std::int64_t width) {  // width = depth * L
  return (rows + kMB - 1) / kMB * kMB * width;
}

template <class T>
std::vector<T> interleaved_weights(const T* w, std::int64_t L, std::int64_t n_o, std::int64_t depth,
                                   bool adjoint) {
  constexpr std::int64_t W = Vec<typename Real<T>::type>::width;
  std::vector<T> wq(static_cast<std::size_t>(L * n_o * depth));
  // written in order (reads W streams), block groups g in parallel: it dominates small batches
  parallel_for(0, L / W, grain_for(L / W, 2 * W * n_o * depth * static_cast<std::int64_t>(sizeof(T))),
               [&](std::int64_t g0, std::int64_t g1) {
                 T* dst = wq.data() + g0 * n_o * depth * W;
                 for (std::int64_t g = g0; g < g1; ++g)
                   for (std::int64_t o = 0; o < n_o; ++o)
                     for (std::int64_t i = 0; i < depth; ++i)
                       for (std::int64_t l = g * W; l < (g + 1) * W; ++l)
                         *dst++ = adjoint ? conj_of(w[(l * depth + i) * n_o + o]) : w[(l * n_o + o) * depth + i];
               });
  return wq;
}

// in (rows x depth*L, row stride in_ld) -> panel; rows padded with zeros to a multiple of kMB.
template <class T>
void pack_panel(std::int64_t rows, std::int64_t depth, std::int64_t L, const T* in, std::int64_t in_ld,
                T* panel) {
  if constexpr (std::is_floating_point_v<T>) {
    constexpr std::int64_t W = Vec<T>::width;
    const std::int64_t groups = (rows + kMB - 1) / kMB, G = L / W;
    for (std::int64_t b = 0; b < groups * kMB; ++b)
      for (std::int64_t i = 0; i < depth; ++i)
        for (std::int64_t g = 0; g < G; ++g) {
          T* dst = panel + (((g * groups + b / kMB) * depth + i) * kMB + b % kMB) * W;
          if (b < rows) {
            __builtin_memcpy(dst, in + b * in_ld + i * L + g * W, W * sizeof(T));
          } else {
            for (std::int64_t w = 0; w < W; ++w) dst[w] = T(0);
          }
        }
  }
}

template <class T, int MO>
void panel_tile(std::int64_t depth, const T* a, const T* wq, T* out, std::int64_t out_ld, std::int64_t L,
                std::int64_t valid_rows) {
  using V = typename Vec<T>::type;
  constexpr int W = Vec<T>::width;
  V acc[kMB][MO];
  for (int b = 0; b < kMB; ++b)
    for (int o = 0; o < MO; ++o) acc[b][o] = V{};
  for (std::int64_t i = 0; i < depth; ++i) {
    V av[kMB];
    for (int b = 0; b < kMB; ++b) av[b] = load_vec<V>(a + (i * kMB + b) * W);
    for (int o = 0; o < MO; ++o) {
      const V w = load_vec<V>(wq + (o * depth + i) * W);
      for (int b = 0; b < kMB; ++b) acc[b][o] = vfma(av[b], w, acc[b][o]);
    }
  }
  for (int b = 0; b < kMB; ++b)
    if (b < valid_rows)
      for (int o = 0; o < MO; ++o) __builtin_memcpy(out + b * out_ld + o * L, &acc[b][o], sizeof(V));
}

constexpr int kPanelMO = 3;  // 12 accumulators + 4 row vectors (kMB = 6 with 2 outputs measured
                             // no faster); the weight vector is an FMA memory operand

// out[b][o*L + l] = sum_i panel(b, i, l) wq[g][o][i][w] for the rows of one batch tile.
template <class T>
void panel_products(std::int64_t rows, std::int64_t n_o, std::int64_t depth, std::int64_t L, const T* panel,
                    const T* wq, T* out, std::int64_t out_ld) {
  if constexpr (std::is_floating_point_v<T>) {
    constexpr std::int64_t W = Vec<T>::width;
    const std::int64_t groups = (rows + kMB - 1) / kMB;
    for (std::int64_t g = 0; g < L / W; ++g)
      for (std::int64_t bg = 0; bg < groups; ++bg) {
        const T* a = panel + (g * groups + bg) * depth * kMB * W;
        const T* wg = wq + g * n_o * depth * W;
        T* o_row = out + bg * kMB * out_ld + g * W;
        const std::int64_t valid = std::min<std::int64_t>(kMB, rows - bg * kMB);
        std::int64_t o = 0;
        for (; o + kPanelMO <= n_o; o += kPanelMO)
          panel_tile<T, kPanelMO>(depth, a, wg + o * depth * W, o_row + o * L, out_ld, L, valid);
        for (; o < n_o; ++o) panel_tile<T, 1>(depth, a, wg + o * depth * W, o_row + o * L, out_ld, L, valid);
      }
  }
}

// Stage 1 straight into the panel (forward, when W divides Q and L, so that W consecutive
// intermediate indices j = k*Q + q share one i = j / L): per block k, a kMB x NV-vector register
// tile of X_k W1_k^T over p in ascending order (the gemm path's operations), stored as vectors.
template <class T, int NV>
void stage1_panel_tile(std::int64_t depth, const T* A, std::int64_t a_rs, const T* B, std::int64_t ldb,
                       T* panel_col, std::int64_t dst_stride) {
  using V = typename Vec<T>::type;
  constexpr int W = Vec<T>::width;
  V acc[kMB][NV];
  for (int b = 0; b < kMB; ++b)
    for (int v = 0; v < NV; ++v) acc[b][v] = V{};
  for (std::int64_t p = 0; p < depth; ++p) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load_vec<V>(B + p * ldb + v * W);
    for (int b = 0; b < kMB; ++b) {
      V av;
      const T a = A[b * a_rs + p];
      for (int w = 0; w < W; ++w) av[w] = a;
      for (int v = 0; v < NV; ++v) acc[b][v] = vfma(av, bv[v], acc[b][v]);
    }
  }
  // vector v of row b goes to panel_col + v*dst_stride + b*W
  for (int v = 0; v < NV; ++v)
    for (int b = 0; b < kMB; ++b) __builtin_memcpy(panel_col + v * dst_stride + b * W, &acc[b][v], sizeof(V));
}

template <class T>
void stage1_to_panel(const T* x, const T* w1t, T* panel, T* edge_rows, std::int64_t b0, std::int64_t tb,
                     const Shape& s) {
  if constexpr (std::is_floating_point_v<T>) {
    constexpr std::int64_t W = Vec<T>::width;
    const std::int64_t n_in = s.n_in(), groups = (tb + kMB - 1) / kMB, depth2 = s.R;
    // The last group of a tile that is not a multiple of kMB rows reads zero-padded copies.
    if (tb % kMB != 0) {
      const std::int64_t first = tb / kMB * kMB;
      for (std::int64_t b = 0; b < kMB; ++b)
        for (std::int64_t c = 0; c < n_in; ++c)
          edge_rows[b * n_in + c] = first + b < tb ? x[(b0 + first + b) * n_in + c] : T(0);
    }
    // Panel offset of intermediate index j (a multiple of W) for group bg: i = j / L, g = (j % L) / W.
    auto panel_at = [&](std::int64_t j, std::int64_t bg) {
      return panel + (((j % s.L) / W * groups + bg) * depth2 + j / s.L) * kMB * W;
    };
    for (std::int64_t k = 0; k < s.K; ++k)
      for (std::int64_t bg = 0; bg < groups; ++bg) {
        const bool edge = (bg + 1) * kMB > tb;
        const T* A = (edge ? edge_rows : x + (b0 + bg * kMB) * n_in) + k * s.P;
        const T* Bk = w1t + k * s.P * s.Q;
        std::int64_t q = 0;
        for (; q + 2 * W <= s.Q; q += 2 * W) {
          // the two vectors j and j + W: adjacent g within one i, or the next i when j + W wraps L
          const std::int64_t j = k * s.Q + q;
          T* first = panel_at(j, bg);
          T* second = panel_at(j + W, bg);
          stage1_panel_tile<T, 2>(s.P, A, n_in, Bk + q, s.Q, first, second - first);
        }
        for (; q < s.Q; q += W)
          stage1_panel_tile<T, 1>(s.P, A, n_in, Bk + q, s.Q, panel_at(k * s.Q + q, bg), 0);
      }
  }
}

// Rows of the batch processed together: the stage-1 output of a tile (kTile x K*Q) stays in cache.
constexpr std::int64_t kTile = 32;

// Forward tiles on the panel path: as many rows (a multiple of kMB, at most kTile) as keep the
// panel within about a quarter of a typical L2 (512 KiB), leaving room for the streamed weights.
// Forward rows are independent, so the tile size does not change any result.
template <class T>
std::int64_t tile_rows(std::int64_t kq) {
  const std::int64_t budget = std::int64_t(128) << 10;
  const std::int64_t rows = budget / (kq * static_cast<std::int64_t>(sizeof(T))) / kMB * kMB;
  return std::clamp<std::int64_t>(rows, kMB, kTile / kMB * kMB);
}

// W1T[k][p][q] = w1[k][q][p] and W2T[l][r][s] = w2[l][s][r] (B operands contiguous by rows).
template <class T>
void transpose_blocks(const T* w, std::int64_t blocks, std::int64_t rows, std::int64_t cols, T* out,
                      bool conjugate) {
  // O(n^1.5) but it dominates small batches: blocks in parallel (each writes only its own block)
  parallel_for(0, blocks, grain_for(blocks, 2 * rows * cols * static_cast<std::int64_t>(sizeof(T))),
               [&](std::int64_t b0, std::int64_t b1) {
                 for (std::int64_t b = b0; b < b1; ++b)
                   for (std::int64_t r = 0; r < rows; ++r)
                     for (std::int64_t c = 0; c < cols; ++c) {
                       const T v = w[(b * rows + r) * cols + c];
                       out[(b * cols + c) * rows + r] = conjugate ? conj_of(v) : v;
                     }
               });
}

// Stage 1 of the forward for rows [b0, b0+tb): Z (tb x KQ) = per block k, X_k W1_k^T.
template <class T>
void stage1(const T* x, const T* w1t, T* z, std::int64_t b0, std::int64_t tb, const Shape& s) {
  const std::int64_t n_in = s.n_in(), kq = s.K * s.Q;
  for (std::int64_t k = 0; k < s.K; ++k)
    gemm<T, false>(tb, s.Q, s.P, x + b0 * n_in + k * s.P, n_in, 1, w1t + k * s.P * s.Q, s.Q,
                   z + k * s.Q, kq, 1);
}

template <class T>
void forward_impl(const T* x, const T* w1, const T* w2, T* y, const Shape& s) {
  const std::int64_t kq = s.K * s.Q, n_out = s.n_out();
  constexpr std::int64_t W = Vec<typename Real<T>::type>::width;
  const bool interleaved = interleaved_ok<T>(s.L) && s.Q % W == 0;
  std::vector<T> w1t(static_cast<std::size_t>(s.K * s.P * s.Q)), w2t, w2q;
  transpose_blocks(w1, s.K, s.Q, s.P, w1t.data(), false);
  if (interleaved) {
    w2q = interleaved_weights(w2, s.L, s.S, s.R, false);
  } else {
    w2t.resize(static_cast<std::size_t>(s.L * s.R * s.S));
    transpose_blocks(w2, s.L, s.S, s.R, w2t.data(), false);
  }
  const std::int64_t tile = tile_rows<T>(kq);
  const std::int64_t tiles = (s.batch + tile - 1) / tile;
  parallel_for(0, tiles, 1, [&](std::int64_t t0, std::int64_t t1) {
    T* z = scratch<T>(0, static_cast<std::size_t>(panel_size<T>(tile, kq)));
    T* edge = scratch<T>(1, static_cast<std::size_t>(interleaved ? kMB * s.n_in() : 0));
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t b0 = t * tile, tb = std::min(tile, s.batch - b0);
      if (interleaved) {
        stage1_to_panel(x, w1t.data(), z, edge, b0, tb, s);
        panel_products(tb, s.S, s.R, s.L, z, w2q.data(), y + b0 * n_out, n_out);
        continue;
      }
      stage1(x, w1t.data(), z, b0, tb, s);
      // Stage 2, block l: Z'_l[b][r] = Z[b][r*L + l] (stride-L columns of Z), and
      // y[b][s*L + l] = sum_r Z'_l[b][r] w2[l][s][r] (stride-L columns of y).
      for (std::int64_t l = 0; l < s.L; ++l)
        gemm<T, false>(tb, s.S, s.R, z + l, kq, s.L, w2t.data() + l * s.R * s.S, s.S,
                       y + b0 * n_out + l, n_out, s.L);
    }
  });
}

// Adjoint stage 2 then stage 1 for rows [b0, b0+tb): dz (tb x KQ) then dx.
template <class T>
void adjoint_tile(const T* dy, const T* w1c, const T* w2c, const T* w2q, T* panel, T* dz, T* dx,
                  std::int64_t b0, std::int64_t tb, const Shape& s) {
  const std::int64_t kq = s.K * s.Q, n_out = s.n_out(), n_in = s.n_in();
  // dz[b][r*L + l] = sum_s dy[b][s*L + l] conj(w2[l][s][r])
  if (w2q != nullptr) {  // panel path: dy of the tile packed, then vectorised over l
    pack_panel(tb, s.S, s.L, dy + b0 * n_out, n_out, panel);
    panel_products(tb, s.R, s.S, s.L, panel, w2q, dz, kq);
  } else {
    for (std::int64_t l = 0; l < s.L; ++l)
      gemm<T, false>(tb, s.R, s.S, dy + b0 * n_out + l, n_out, s.L, w2c + l * s.S * s.R, s.R, dz + l, kq, s.L);
  }
  // dx[b][k*P + p] = sum_q dz[b][k*Q + q] conj(w1[k][q][p])
  for (std::int64_t k = 0; k < s.K; ++k)
    gemm<T, false>(tb, s.P, s.Q, dz + k * s.Q, kq, 1, w1c + k * s.Q * s.P, s.P, dx + b0 * n_in + k * s.P, n_in, 1);
}

template <class T>
std::vector<T> conjugated(const T* w, std::int64_t size) {
  std::vector<T> out(static_cast<std::size_t>(size));
  for (std::int64_t i = 0; i < size; ++i) out[static_cast<std::size_t>(i)] = conj_of(w[i]);
  return out;
}

template <class T>
void adjoint_impl(const T* y, const T* w1, const T* w2, T* x, const Shape& s) {
  const std::int64_t kq = s.K * s.Q;
  const auto w1c = conjugated(w1, s.K * s.Q * s.P), w2c = conjugated(w2, s.L * s.S * s.R);
  const std::vector<T> w2q = interleaved_ok<T>(s.L) ? interleaved_weights(w2, s.L, s.R, s.S, true) : std::vector<T>();
  const std::int64_t tiles = (s.batch + kTile - 1) / kTile;
  parallel_for(0, tiles, 1, [&](std::int64_t t0, std::int64_t t1) {
    T* dz = scratch<T>(0, static_cast<std::size_t>(kTile * kq));
    T* panel = scratch<T>(1, static_cast<std::size_t>(w2q.empty() ? 0 : panel_size<T>(kTile, s.n_out())));
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t b0 = t * kTile;
      adjoint_tile(y, w1c.data(), w2c.data(), w2q.empty() ? nullptr : w2q.data(), panel, dz, x, b0, std::min(kTile, s.batch - b0), s);
    }
  });
}

template <class T>
void backward_impl(const T* x, const T* w1, const T* w2, const T* dy, T* dx, T* dw1, T* dw2,
                   const Shape& s) {
  const std::int64_t kq = s.K * s.Q, n_in = s.n_in(), n_out = s.n_out();
  const std::int64_t size1 = s.K * s.Q * s.P, size2 = s.L * s.S * s.R;
  std::vector<T> w1t(static_cast<std::size_t>(size1)), w2t(static_cast<std::size_t>(size2));
  transpose_blocks(w1, s.K, s.Q, s.P, w1t.data(), false);
  transpose_blocks(w2, s.L, s.S, s.R, w2t.data(), false);
  const auto w1c = conjugated(w1, size1), w2c = conjugated(w2, size2);
  const std::vector<T> w2q = interleaved_ok<T>(s.L) ? interleaved_weights(w2, s.L, s.R, s.S, true) : std::vector<T>();
  const std::int64_t tiles = (s.batch + kTile - 1) / kTile;
  // A fixed number of batch chunks (depends only on the batch size), each accumulating its own
  // weight-gradient partial over its tiles in order; partials are added in chunk order below.
  const std::int64_t chunks = std::min<std::int64_t>(tiles, 16);
  std::vector<T> part1(static_cast<std::size_t>(std::max<std::int64_t>(chunks, 1) * size1), T(0));
  std::vector<T> part2(static_cast<std::size_t>(std::max<std::int64_t>(chunks, 1) * size2), T(0));
  parallel_for_chunks(chunks, [&](std::int64_t c) {
    const std::int64_t t_begin = tiles * c / chunks, t_end = tiles * (c + 1) / chunks;
    T* z = scratch<T>(0, static_cast<std::size_t>(kTile * kq));
    T* dz = scratch<T>(1, static_cast<std::size_t>(kTile * kq));
    T* zc = scratch<T>(2, static_cast<std::size_t>(kTile * std::max(s.R, s.P)));
    T* panel = scratch<T>(3, static_cast<std::size_t>(w2q.empty() ? 0 : panel_size<T>(kTile, n_out)));
    T* g1 = part1.data() + c * size1;
    T* g2 = part2.data() + c * size2;
    for (std::int64_t t = t_begin; t < t_end; ++t) {
      const std::int64_t b0 = t * kTile, tb = std::min(kTile, s.batch - b0);
      stage1(x, w1t.data(), z, b0, tb, s);                      // recompute the intermediate
      adjoint_tile(dy, w1c.data(), w2c.data(), w2q.empty() ? nullptr : w2q.data(), panel, dz, dx, b0, tb, s);  // dz and dx
      for (std::int64_t l = 0; l < s.L; ++l) {
        // dw2[l][s][r] += sum_b dy[b][s*L + l] conj(z[b][r*L + l])
        for (std::int64_t b = 0; b < tb; ++b)
          for (std::int64_t r = 0; r < s.R; ++r) zc[b * s.R + r] = conj_of(z[b * kq + r * s.L + l]);
        gemm<T, true>(s.S, s.R, tb, dy + b0 * n_out + l, s.L, n_out, zc, s.R, g2 + l * s.S * s.R, s.R, 1);
      }
      for (std::int64_t k = 0; k < s.K; ++k) {
        // dw1[k][q][p] += sum_b dz[b][k*Q + q] conj(x[b][k*P + p])
        for (std::int64_t b = 0; b < tb; ++b)
          for (std::int64_t p = 0; p < s.P; ++p) zc[b * s.P + p] = conj_of(x[(b0 + b) * n_in + k * s.P + p]);
        gemm<T, true>(s.Q, s.P, tb, dz + k * s.Q, 1, kq, zc, s.P, g1 + k * s.Q * s.P, s.P, 1);
      }
    }
  });
  // Chunk partials, added in chunk order (parallel over weight elements: each element's sum
  // has the same order whatever thread computes it).
  auto reduce = [&](const std::vector<T>& part, std::int64_t size, T* out) {
    parallel_for(0, size, grain_for(size, 8 * chunks), [&](std::int64_t i0, std::int64_t i1) {
      for (std::int64_t i = i0; i < i1; ++i) {
        T acc = chunks > 0 ? part[static_cast<std::size_t>(i)] : T(0);
        for (std::int64_t c = 1; c < chunks; ++c) acc += part[static_cast<std::size_t>(c * size + i)];
        out[i] = acc;
      }
    });
  };
  reduce(part1, size1, dw1);
  reduce(part2, size2, dw2);
}

}  // namespace

#define FASTCORE_MONARCH_ENTRY(suffix, T)                                                        \
  void multiply_##suffix(const T* x, const T* w1, const T* w2, T* y, const Shape& s) {        \
    forward_impl(x, w1, w2, y, s);                                                             \
  }                                                                                            \
  void adjoint_##suffix(const T* y, const T* w1, const T* w2, T* x, const Shape& s) {         \
    adjoint_impl(y, w1, w2, x, s);                                                             \
  }                                                                                            \
  void backward_##suffix(const T* x, const T* w1, const T* w2, const T* dy, T* dx, T* dw1,    \
                         T* dw2, const Shape& s) {                                             \
    backward_impl(x, w1, w2, dy, dx, dw1, dw2, s);                                             \
  }
FASTCORE_MONARCH_ENTRY(f32, float)
FASTCORE_MONARCH_ENTRY(f64, double)
FASTCORE_MONARCH_ENTRY(c64, std::complex<float>)
FASTCORE_MONARCH_ENTRY(c128, std::complex<double>)
#undef FASTCORE_MONARCH_ENTRY

}  // namespace FASTCORE_ISA_NS
}  // namespace monarch
}  // namespace fastcore
