// S4 CUDA kernels (see s4.cuh). Math as in the CPU kernels (cpp/s4/s4_kernels.simd.cpp): the
// conjugate pair shares one cancellation-safe denominator, the S4 nodes come from a double tan,
// the Vandermonde phase is anchored in double. Reductions are in a fixed order (no atomics), so
// results are deterministic run to run.
#include "cuda/s4/s4.cuh"

#include <cfloat>
#include <cuComplex.h>
#include <cuda_runtime.h>

#include "common/errors.hpp"
#include "cuda/common/launch.cuh"

namespace fastcore {
namespace cuda {
namespace s4 {

namespace {

constexpr int kThreads = 256;
constexpr int kTile = 256;        // states staged in shared memory per step (Cauchy forward)
constexpr int kVandChunk = 32;    // outputs per thread (Vandermonde)
constexpr int kNodeThreads = 128; // nodes per block (S4 spectrum)
constexpr double kPi = 3.14159265358979323846264338327950288;

// ---- Cauchy forward: one thread per (row, node); states staged through shared memory -------------
template <class T>
__global__ void __launch_bounds__(kThreads)
    cauchy_kernel(const T* __restrict__ v, const T* __restrict__ z, const T* __restrict__ w, T* __restrict__ out,
                  std::int64_t N, std::int64_t Lz, std::int64_t nblk, bool conj) {
  __shared__ T s_vr[kTile], s_vi[kTile], s_wr[kTile], s_wi[kTile];
  const std::int64_t b = blockIdx.x / nblk;
  const std::int64_t j = (blockIdx.x % nblk) * kThreads + threadIdx.x;
  const T zr = j < Lz ? z[2 * j] : T(0), zi = j < Lz ? z[2 * j + 1] : T(0);
  // denominators at the node scaled by g = 1/max(1, |zr| + |zi|) (finite for huge |z|)
  // (m capped at the largest finite T: past it g was 0 and the terms 0/0)
  const T m = fmin(fabs(zr) + fabs(zi), sizeof(T) == 4 ? T(FLT_MAX) : T(DBL_MAX));
  const T g = m > T(1) ? T(1) / m : T(1), pr = zr * g, pi = zi * g;
  T ar = T(0), ai = T(0);
  const T* vb = v + 2 * b * N;
  const T* wb = w + 2 * b * N;
  for (std::int64_t i0 = 0; i0 < N; i0 += kTile) {
    const int cnt = static_cast<int>(N - i0 < kTile ? N - i0 : kTile);
    __syncthreads();
    for (int t = threadIdx.x; t < cnt; t += kThreads) {
      s_vr[t] = vb[2 * (i0 + t)];
      s_vi[t] = vb[2 * (i0 + t) + 1];
      s_wr[t] = wb[2 * (i0 + t)];
      s_wi[t] = wb[2 * (i0 + t) + 1];
    }
    __syncthreads();
    for (int i = 0; i < cnt; ++i) {
      const T vr = s_vr[i], vi = s_vi[i], wr = s_wr[i], wi = s_wi[i];
      if (conj) {
        // 2 [z Re v - Re(v conj w)] / [(x - wr)^2 + (wi - y)(wi + y) + 2i y (x - wr)]
        const T dx = pr - wr * g, ws = wi * g;
        const T dr = dx * dx + (ws - pi) * (ws + pi), di = T(2) * pi * dx;
        const T inv = g / (dr * dr + di * di);  // times g again below: 1/D = g^2 conj(D')/|D'|^2
        // num * g formed at the scaled node (2 Re v z itself overflows for |z| near the float max)
        const T nr = T(-2) * (vr * wr + vi * wi) * g + T(2) * vr * pr, ni = T(2) * vr * pi;
        ar += (nr * dr + ni * di) * inv;
        ai += (ni * dr - nr * di) * inv;
      } else {
        const T dr = pr - wr * g, di = pi - wi * g;
        const T inv = g / (dr * dr + di * di);
        ar += (vr * dr + vi * di) * inv;
        ai += (vi * dr - vr * di) * inv;
      }
    }
  }
  if (j < Lz) {
    out[2 * (b * Lz + j)] = ar;
    out[2 * (b * Lz + j) + 1] = ai;
  }
}

// Sums the four rows red[q][0..kThreads) into red[q][0] by a fixed-order tree (the same
// additions in the same order on every run: deterministic). Called by all threads of the block
// after each wrote its red[q][threadIdx.x]; ends with the block synchronised.
template <class T>
__device__ void block_tree_sum4(T (&red)[4][kThreads]) {
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      for (int q = 0; q < 4; ++q) red[q][threadIdx.x] += red[q][threadIdx.x + s];
    __syncthreads();
  }
}

// ---- Cauchy backward: one block per (row, state), fixed-order block reduction over the nodes ------
template <class T>
__global__ void __launch_bounds__(kThreads)
    cauchy_backward_kernel(const T* __restrict__ v, const T* __restrict__ z, const T* __restrict__ w,
                           const T* __restrict__ g, T* __restrict__ dv, T* __restrict__ dw, std::int64_t N,
                           std::int64_t Lz, bool conj) {
  __shared__ T red[4][kThreads];
  const std::int64_t b = blockIdx.x / N, i = blockIdx.x % N;
  const T wr = w[2 * (b * N + i)], wi = w[2 * (b * N + i) + 1];
  T s1r = 0, s1i = 0, s2r = 0, s2i = 0;
  for (std::int64_t j = threadIdx.x; j < Lz; j += kThreads) {
    const T xr = z[2 * j], xi = z[2 * j + 1];
    const T gr = g[2 * (b * Lz + j)], gi = g[2 * (b * Lz + j) + 1];
    const T dr = xr - wr, di = xi - wi;  // e = 1/conj(z - w)
    const T inv = T(1) / (dr * dr + di * di);
    const T er = dr * inv, ei = di * inv;
    const T tr = gr * er - gi * ei, ti = gr * ei + gi * er;
    s1r += tr;
    s1i += ti;
    s2r += tr * er - ti * ei;
    s2i += tr * ei + ti * er;
    if (conj) {  // f = 1/(z - conj w), times conj(g)
      const T cr = xr - wr, ci = xi + wi;
      const T inv2 = T(1) / (cr * cr + ci * ci);
      const T fr = cr * inv2, fi = -ci * inv2;
      const T ur = gr * fr + gi * fi, ui = gr * fi - gi * fr;
      s1r += ur;
      s1i += ui;
      s2r += ur * fr - ui * fi;
      s2i += ur * fi + ui * fr;
    }
  }
  red[0][threadIdx.x] = s1r;
  red[1][threadIdx.x] = s1i;
  red[2][threadIdx.x] = s2r;
  red[3][threadIdx.x] = s2i;
  block_tree_sum4(red);
  if (threadIdx.x == 0) {
    const T vr = v[2 * (b * N + i)], vi = -v[2 * (b * N + i) + 1];  // conj(v)
    dv[2 * (b * N + i)] = red[0][0];
    dv[2 * (b * N + i) + 1] = red[1][0];
    dw[2 * (b * N + i)] = vr * red[2][0] - vi * red[3][0];
    dw[2 * (b * N + i) + 1] = vr * red[3][0] + vi * red[2][0];
  }
}

// ---- Vandermonde: one thread per (row, chunk of kVandChunk outputs) -------------------------------
// Anchor v e^{x l0} in double (exact phase), then kVandChunk - 1 multiplications by e^x in T.
template <class T>
__global__ void __launch_bounds__(kThreads)
    vandermonde_kernel(const double* __restrict__ v, const double* __restrict__ x, T* __restrict__ out,
                       std::int64_t N, std::int64_t L, std::int64_t nchunk, std::int64_t nblk, bool real_out) {
  const std::int64_t b = blockIdx.x / nblk;
  const std::int64_t c = (blockIdx.x % nblk) * kThreads + threadIdx.x;
  if (c >= nchunk) return;
  const std::int64_t l0 = c * kVandChunk;
  T accr[kVandChunk], acci[kVandChunk];
#pragma unroll
  for (int j = 0; j < kVandChunk; ++j) accr[j] = acci[j] = T(0);
  for (std::int64_t n = 0; n < N; ++n) {
    const std::int64_t idx = b * N + n;
    const double xr = x[2 * idx], xi = x[2 * idx + 1], vr = v[2 * idx], vi = v[2 * idx + 1];
    double sn, cs;
    sincos(xi * static_cast<double>(l0), &sn, &cs);
    const double m = exp(xr * static_cast<double>(l0)) * (real_out ? 2.0 : 1.0);
    const double anr = m * (vr * cs - vi * sn), ani = m * (vr * sn + vi * cs);
    double s1, c1;
    sincos(xi, &s1, &c1);
    const double m1 = exp(xr);
    const T ar = static_cast<T>(m1 * c1), ai = static_cast<T>(m1 * s1);
    T pr = static_cast<T>(anr), pi = static_cast<T>(ani);
#pragma unroll
    for (int j = 0; j < kVandChunk; ++j) {
      accr[j] += pr;
      acci[j] += pi;
      const T qr = pr * ar - pi * ai;
      pi = pr * ai + pi * ar;
      pr = qr;
    }
  }
#pragma unroll
  for (int j = 0; j < kVandChunk; ++j) {
    const std::int64_t l = l0 + j;
    if (l < L) {
      if (real_out) {
        out[b * L + l] = accr[j];
      } else {
        out[2 * (b * L + l)] = accr[j];
        out[2 * (b * L + l) + 1] = acci[j];
      }
    }
  }
}

// ---- Vandermonde backward: one block per (row, state); each thread a contiguous run of l with an
// exact double anchor at its start and double powers after it; fixed-order tree reduction --------
template <class T>
__global__ void __launch_bounds__(kThreads)
    vandermonde_backward_kernel(const double* __restrict__ v, const double* __restrict__ x,
                                const T* __restrict__ g, double* __restrict__ dv, double* __restrict__ dx,
                                std::int64_t N, std::int64_t L, bool real_out) {
  __shared__ double red[4][kThreads];
  const std::int64_t b = blockIdx.x / N, idx = blockIdx.x;  // idx = b * N + n
  const double xr = x[2 * idx], xi = x[2 * idx + 1];
  const std::int64_t per = (L + kThreads - 1) / kThreads;
  const std::int64_t l0 = threadIdx.x * per, l1 = l0 + per < L ? l0 + per : L;
  double s0r = 0, s0i = 0, s1r = 0, s1i = 0;
  if (l0 < l1) {
    double sn, cs, s1, c1;
    sincos(xi * static_cast<double>(l0), &sn, &cs);
    const double m0 = exp(xr * static_cast<double>(l0));
    double er = m0 * cs, ei = m0 * sn;  // e^{x l}
    sincos(xi, &s1, &c1);
    const double m1 = exp(xr), ar = m1 * c1, ai = m1 * s1;
    for (std::int64_t l = l0; l < l1; ++l) {
      double tr, ti;  // G_l conj(e)
      if (real_out) {
        const double G = 2.0 * static_cast<double>(g[b * L + l]);
        tr = G * er;
        ti = -G * ei;
      } else {
        const double gr = g[2 * (b * L + l)], gi = g[2 * (b * L + l) + 1];
        tr = gr * er + gi * ei;
        ti = gi * er - gr * ei;
      }
      s0r += tr;
      s0i += ti;
      s1r += static_cast<double>(l) * tr;
      s1i += static_cast<double>(l) * ti;
      const double nr = er * ar - ei * ai;
      ei = er * ai + ei * ar;
      er = nr;
    }
  }
  red[0][threadIdx.x] = s0r;
  red[1][threadIdx.x] = s0i;
  red[2][threadIdx.x] = s1r;
  red[3][threadIdx.x] = s1i;
  block_tree_sum4(red);
  if (threadIdx.x == 0) {
    const double vr = v[2 * idx], vi = -v[2 * idx + 1];  // conj(v)
    dv[2 * idx] = red[0][0];
    dv[2 * idx + 1] = red[1][0];
    dx[2 * idx] = vr * red[2][0] - vi * red[3][0];
    dx[2 * idx + 1] = vr * red[3][0] + vi * red[2][0];
  }
}

// ---- S4 spectrum: one thread per (channel h, node k); shared denominators, fused Woodbury ---------
__device__ inline cuDoubleComplex cd(double r, double i) { return make_cuDoubleComplex(r, i); }

template <class T>
__global__ void __launch_bounds__(kNodeThreads)
    dplr_spectrum_kernel(const T* __restrict__ alpha, const T* __restrict__ beta, const T* __restrict__ w,
                         T* __restrict__ khat, std::int64_t H, std::int64_t N, int rank, int channels,
                         std::int64_t L, std::int64_t nblk) {
  const std::int64_t h = blockIdx.x / nblk;
  const std::int64_t k = (blockIdx.x % nblk) * kNodeThreads + threadIdx.x;
  const std::int64_t nreg = (L + 1) / 2, nf = L / 2 + 1;
  if (k >= nreg) return;
  const int nc = channels + rank, np = (1 + rank) * nc;
  const double t = tan(kPi * static_cast<double>(k) / static_cast<double>(L));
  const double sd = 2.0 * t, gd = sd > 1.0 ? 1.0 / sd : 1.0;  // node scaling as on the CPU
  const T s = static_cast<T>(sd), g = static_cast<T>(gd), ss = static_cast<T>(sd * gd);
  T accr[kMaxProducts], acci[kMaxProducts];
#pragma unroll
  for (int p = 0; p < kMaxProducts; ++p) accr[p] = acci[p] = T(0);
  const T* al = alpha + h * np * N;
  const T* be = beta + h * np * N;
  for (std::int64_t n = 0; n < N; ++n) {
    const T wr = w[2 * (h * N + n)] * g, wi = w[2 * (h * N + n) + 1] * g;
    const T dr = wr * wr + (wi - ss) * (wi + ss), di = T(-2) * ss * wr;  // (z - w)(z - conj w), z = i s, scaled
    const T inv = g * g / (dr * dr + di * di);
    const T cr = dr * inv, ci = -di * inv;
#pragma unroll
    for (int p = 0; p < kMaxProducts; ++p) {
      if (p < np) {
        const T a = al[p * N + n], ni = s * be[p * N + n];
        accr[p] += a * cr - ni * ci;
        acci[p] += a * ci + ni * cr;
      }
    }
  }
  // Woodbury in double: (I + k11) x = k10, Khat_c = (1 + i t)(k00_c - k01_c . x)
  cuDoubleComplex M[kMaxRank][kMaxRank], x[kMaxRank];
  for (int i = 0; i < rank; ++i) {
    x[i] = cd(accr[channels + i], acci[channels + i]);  // a = 0 (B), c = C + i (Q_i)
    for (int q = 0; q < rank; ++q) {
      const int p = (1 + q) * nc + channels + i;
      M[i][q] = cd(accr[p] + (i == q ? 1.0 : 0.0), acci[p]);
    }
  }
  for (int col = 0; col < rank; ++col) {  // Gaussian elimination with partial pivoting
    int piv = col;
    for (int i = col + 1; i < rank; ++i)
      if (cuCabs(M[i][col]) > cuCabs(M[piv][col])) piv = i;
    if (piv != col) {
      for (int q = 0; q < rank; ++q) {
        const cuDoubleComplex tmp = M[col][q];
        M[col][q] = M[piv][q];
        M[piv][q] = tmp;
      }
      const cuDoubleComplex tmp = x[col];
      x[col] = x[piv];
      x[piv] = tmp;
    }
    for (int i = col + 1; i < rank; ++i) {
      const cuDoubleComplex f = cuCdiv(M[i][col], M[col][col]);
      for (int q = col; q < rank; ++q) M[i][q] = cuCsub(M[i][q], cuCmul(f, M[col][q]));
      x[i] = cuCsub(x[i], cuCmul(f, x[col]));
    }
  }
  for (int i = rank - 1; i >= 0; --i) {
    cuDoubleComplex acc = x[i];
    for (int q = i + 1; q < rank; ++q) acc = cuCsub(acc, cuCmul(M[i][q], x[q]));
    x[i] = cuCdiv(acc, M[i][i]);
  }
  const cuDoubleComplex f = cd(1.0, t);
  for (int c = 0; c < channels; ++c) {
    cuDoubleComplex val = cd(accr[c], acci[c]);
    for (int q = 0; q < rank; ++q) {
      const int p = (1 + q) * nc + c;
      val = cuCsub(val, cuCmul(cd(accr[p], acci[p]), x[q]));
    }
    val = cuCmul(val, f);
    khat[2 * ((c * H + h) * nf + k)] = static_cast<T>(cuCreal(val));
    khat[2 * ((c * H + h) * nf + k) + 1] = static_cast<T>(cuCimag(val));
  }
}

// ---- FFT convolution: the per-channel spectrum multiply (batch rows share S) ----------------------
template <class T>
__global__ void __launch_bounds__(kThreads)
    spectrum_multiply_kernel(T* __restrict__ X, const T* __restrict__ S, std::int64_t rows, std::int64_t H,
                             std::int64_t nf, bool conj) {
  const std::int64_t total = rows * nf;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(kThreads) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * kThreads) {
    const std::int64_t row = e / nf, i = e % nf, h = row % H;
    const T xr = X[2 * e], xi = X[2 * e + 1];
    const T sr = S[2 * (h * nf + i)], si = conj ? -S[2 * (h * nf + i) + 1] : S[2 * (h * nf + i) + 1];
    X[2 * e] = xr * sr - xi * si;
    X[2 * e + 1] = xr * si + xi * sr;
  }
}

std::int64_t checked_grid(std::int64_t blocks, const char* what) {
  FASTCORE_CHECK(blocks < 2147483647LL, what, ": problem too large for one launch");
  return blocks;
}

}  // namespace

template <class T>
void cauchy(const T* v, const T* z, const T* w, T* out, std::int64_t batch, std::int64_t N, std::int64_t Lz,
            bool conj, cudaStream_t stream) {
  const std::int64_t nblk = ceil_div<std::int64_t>(Lz, kThreads);
  const auto blocks = checked_grid(nblk * batch, "s4.cauchy");
  launch("s4_cauchy_kernel", cauchy_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream, v, z,
         w, out, N, Lz, nblk, conj);
}

template <class T>
void cauchy_backward(const T* v, const T* z, const T* w, const T* g, T* dv, T* dw, std::int64_t batch,
                     std::int64_t N, std::int64_t Lz, bool conj, cudaStream_t stream) {
  const auto blocks = checked_grid(batch * N, "s4.cauchy_backward");
  launch("s4_cauchy_backward_kernel", cauchy_backward_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads),
         0, stream, v, z, w, g, dv, dw, N, Lz, conj);
}

template <class T>
void vandermonde(const double* v, const double* x, T* out, std::int64_t batch, std::int64_t N, std::int64_t L,
                 bool real_out, cudaStream_t stream) {
  const std::int64_t nchunk = ceil_div<std::int64_t>(L, kVandChunk);
  const std::int64_t nblk = ceil_div<std::int64_t>(nchunk, kThreads);
  const auto blocks = checked_grid(nblk * batch, "s4.vandermonde");
  launch("s4_vandermonde_kernel", vandermonde_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0,
         stream, v, x, out, N, L, nchunk, nblk, real_out);
}

template <class T>
void vandermonde_backward(const double* v, const double* x, const T* g, double* dv, double* dx,
                          std::int64_t batch, std::int64_t N, std::int64_t L, bool real_out, cudaStream_t stream) {
  const auto blocks = checked_grid(batch * N, "s4.vandermonde_backward");
  launch("s4_vandermonde_backward_kernel", vandermonde_backward_kernel<T>, dim3(static_cast<unsigned>(blocks)),
         dim3(kThreads), 0, stream, v, x, g, dv, dx, N, L, real_out);
}

template <class T>
void dplr_spectrum(const T* alpha, const T* beta, const T* w, T* khat, std::int64_t H, std::int64_t N, int rank,
                   int channels, std::int64_t L, cudaStream_t stream) {
  FASTCORE_CHECK(rank >= 0 && rank <= kMaxRank && (1 + rank) * (channels + rank) <= kMaxProducts,
                 "s4.kernel_dplr (cuda): rank <= ", kMaxRank, " and (1 + rank)(C + rank) <= ", kMaxProducts,
                 " required");
  const std::int64_t nblk = ceil_div<std::int64_t>((L + 1) / 2, kNodeThreads);
  const auto blocks = checked_grid(nblk * H, "s4.kernel_dplr");
  launch("s4_dplr_spectrum_kernel", dplr_spectrum_kernel<T>, dim3(static_cast<unsigned>(blocks)),
         dim3(kNodeThreads), 0, stream, alpha, beta, w, khat, H, N, rank, channels, L, nblk);
}

template <class T>
void spectrum_multiply(T* X, const T* S, std::int64_t rows, std::int64_t H, std::int64_t nf, bool conj,
                       cudaStream_t stream) {
  const std::int64_t total = rows * nf;
  const std::int64_t blocks = std::min<std::int64_t>(ceil_div<std::int64_t>(total, kThreads), 65535LL * 32);
  launch("s4_spectrum_multiply_kernel", spectrum_multiply_kernel<T>, dim3(static_cast<unsigned>(blocks)),
         dim3(kThreads), 0, stream, X, S, rows, H, nf, conj);
}

#define FASTCORE_S4_CUDA_INSTANTIATE(T)                                                                        \
  template void cauchy<T>(const T*, const T*, const T*, T*, std::int64_t, std::int64_t, std::int64_t, bool,    \
                          cudaStream_t);                                                                       \
  template void cauchy_backward<T>(const T*, const T*, const T*, const T*, T*, T*, std::int64_t, std::int64_t, \
                                   std::int64_t, bool, cudaStream_t);                                          \
  template void vandermonde<T>(const double*, const double*, T*, std::int64_t, std::int64_t, std::int64_t,    \
                               bool, cudaStream_t);                                                            \
  template void vandermonde_backward<T>(const double*, const double*, const T*, double*, double*, std::int64_t, \
                                        std::int64_t, std::int64_t, bool, cudaStream_t);                       \
  template void dplr_spectrum<T>(const T*, const T*, const T*, T*, std::int64_t, std::int64_t, int, int,       \
                                 std::int64_t, cudaStream_t);                                                  \
  template void spectrum_multiply<T>(T*, const T*, std::int64_t, std::int64_t, std::int64_t, bool,             \
                                     cudaStream_t);

FASTCORE_S4_CUDA_INSTANTIATE(float)
FASTCORE_S4_CUDA_INSTANTIATE(double)

}  // namespace s4
}  // namespace cuda
}  // namespace fastcore
