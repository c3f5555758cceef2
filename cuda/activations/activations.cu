// Probability maps on the GPU. Three row schedules share one implementation of each algorithm
// (the Reducer decides who cooperates on a row):
//  - inner == 1 (the axis is the last one), rows of at most kWarpRowMaxBytes: a warp per row
//    (WarpReducer, shuffles only; the column kernel below with stride 1), kColumnWarps rows a block.
//  - inner == 1, longer rows: a block per row (BlockReducer, the deterministic
//    block_reduce of cuda/common/reduce.cuh). When the row fits in shared memory the block first
//    copies it there (16-byte loads where aligned) and every pass reads that copy, so global
//    memory sees one read and one write per element, the floor; longer rows make each pass
//    re-read global memory (L1/L2 serve the repeats): no row-length cap.
//  - inner > 1 with fewer than kWarpColumnsBelow columns: a warp per (outer, inner) column
//    (WarpReducer, shuffles only), the lanes walking the axis with stride `inner`; the warps of a
//    block take neighbouring columns, so they share the sectors they load.
//  - inner > 1 with many columns: a thread per column (ThreadReducer); neighbouring threads read
//    neighbouring addresses, so the loads stay coalesced and there is parallelism enough.
// The algorithms are those of cpp/activations/rows.simd.cpp (notes/activations.md §6): softmax
// as max / exp-sum / write; sparsemax by Michelot's iteration from tau = max - 1; 1.5-entmax by
// Newton from below with the exact closed-form finish; alpha-entmax by safeguarded Newton /
// bisection; a bisection fallback guarantees a threshold if an iteration cap is ever reached.
#include "cuda/activations/activations.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "cuda/common/launch.cuh"
#include "cuda/common/reduce.cuh"
#include "cuda/common/vec.cuh"

namespace fastcore {
namespace cuda {
namespace activations {

namespace {

constexpr int kMaxPasses = 100;
constexpr int kSoftmax = 0, kLogSoftmax = 1, kSparsemax = 2, kEntmax15 = 3, kBisect = 4;

struct MinOp {
  __device__ __forceinline__ double operator()(double a, double b) const { return (a < b || a != a) ? a : b; }
};

__device__ __forceinline__ float dexp(float v) { return expf(v); }
__device__ __forceinline__ double dexp(double v) { return exp(v); }
__device__ __forceinline__ float dlog(float v) { return logf(v); }
__device__ __forceinline__ double dlog(double v) { return log(v); }
__device__ __forceinline__ float dsqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double dsqrt(double v) { return sqrt(v); }

template <class C>
__device__ __forceinline__ C inf_of() { return static_cast<C>(INFINITY); }

__device__ __forceinline__ double to_double(float v) { return static_cast<double>(v); }
__device__ __forceinline__ double to_double(double v) { return v; }

template <class T>
__device__ __forceinline__ T store_value(acc_t<T> v) {
  if constexpr (sizeof(T) == 8) return v; else return from_float<T>(v);
}

// A whole block reduces one row: every thread gets the same result (deterministic order).
struct BlockReducer {
  double* scratch_d;
  float* scratch_f;
  __device__ std::int64_t first() const { return threadIdx.x; }
  __device__ std::int64_t step() const { return blockDim.x; }
  __device__ double sum(double v) const { return block_reduce(v, SumOp{}, scratch_d); }
  __device__ float sum(float v) const { return block_reduce(v, SumOp{}, scratch_f); }
  __device__ double max(double v) const { return block_reduce(v, MaxOp{}, scratch_d); }
  __device__ float max(float v) const { return block_reduce(v, MaxOp{}, scratch_f); }
  __device__ double min(double v) const { return block_reduce(v, MinOp{}, scratch_d); }
};

// One thread owns the row: its partial result is already the total.
struct ThreadReducer {
  __device__ std::int64_t first() const { return 0; }
  __device__ std::int64_t step() const { return 1; }
  template <class V> __device__ V sum(V v) const { return v; }
  template <class V> __device__ V max(V v) const { return v; }
  template <class V> __device__ V min(V v) const { return v; }
};

// A warp owns the row: lanes stride through it, butterfly shuffles reduce (every lane gets the
// same result, in a fixed order). Control flow may differ between warps of a block: no barriers.
struct WarpReducer {
  __device__ std::int64_t first() const { return threadIdx.x & 31; }
  __device__ std::int64_t step() const { return 32; }
  template <class V> __device__ V sum(V v) const { return warp_reduce(v, SumOp{}); }
  template <class V> __device__ V max(V v) const { return warp_reduce(v, MaxOp{}); }
  __device__ double min(double v) const { return warp_reduce(v, MinOp{}); }
};

// One row: element i at x[i * stride]; mask bytes share the layout.
template <class T>
struct RowView {
  const T* x;
  const std::uint8_t* mask;
  T* y;
  std::int64_t n, stride;
  __device__ bool kept(std::int64_t i) const { return mask == nullptr || mask[i * stride] != 0; }
};

template <class T, class R>
__device__ void fill_row(const RowView<T>& row, const R& red, acc_t<T> value) {
  for (std::int64_t i = red.first(); i < row.n; i += red.step()) row.y[i * row.stride] = store_value<T>(value);
}

template <class T, class R>
__device__ void softmax_row(const RowView<T>& row, acc_t<T> scale, bool log, const R& red) {
  using C = acc_t<T>;
  auto z = [&](std::int64_t i) -> C {
    return row.kept(i) ? to_float(row.x[i * row.stride]) * scale : -inf_of<C>();
  };
  C m = -inf_of<C>();
  for (std::int64_t i = red.first(); i < row.n; i += red.step()) m = MaxOp{}(m, z(i));
  m = red.max(m);  // NaN-propagating max: a NaN anywhere makes the row NaN
  if (m != m || m == inf_of<C>()) return fill_row(row, red, static_cast<C>(NAN));
  if (m == -inf_of<C>()) return fill_row(row, red, log ? -inf_of<C>() : C(0));
  C s = 0;
  for (std::int64_t i = red.first(); i < row.n; i += red.step()) s += dexp(z(i) - m);
  s = red.sum(s);
  if (log) {
    const C log_s = dlog(s);
    for (std::int64_t i = red.first(); i < row.n; i += red.step())
      row.y[i * row.stride] = store_value<T>((z(i) - m) - log_s);
  } else {
    const C inv = C(1) / s;
    for (std::int64_t i = red.first(); i < row.n; i += red.step())
      row.y[i * row.stride] = store_value<T>(dexp(z(i) - m) * inv);
  }
}

// alpha-entmax threshold on d = (alpha-1)(z - max z): S(tau) = sum (d - tau)_+^b, b = 1/(alpha-1),
// S(tau) = 1 in the bracket [-1, -n_active^(1-alpha)]. Newton steps on g = S^(1/b) - 1 (as the
// CPU's bisect_tau: tau += (S - S^(2-alpha)) / Q1, Q1 = sum (d - tau)_+^(b-1)), for b >= 2 Halley
// steps (also Q2 = sum (d - tau)_+^(b-2): the Newton step / (1 - L/2), L = g g''/g'^2 =
// (1 - S^(-1/b)) (b - 1) (S Q2/Q1^2 - 1), Newton where |L| >= 1), replaced by bisection outside
// the bracket; a step that no longer moves tau ends the iteration before the bracket check
// (which would otherwise turn it into a bisection and walk the bracket down to rounding).
// *sum_at_tau: S at the returned tau when the last pass was there (the output's renormalisation
// then needs no pass of its own: the same sum in the same order, so the same bits), else -1.
template <class D, class R>
__device__ double bisect_tau(const D& d, std::int64_t n, double alpha, double active, int n_iter,
                             const R& red, double* sum_at_tau) {
  *sum_at_tau = -1.0;
  const double inv_beta = 1.0 / (alpha - 1.0);
  const bool halley = inv_beta >= 2.0;
  double lo = -1.0, hi = -pow(active, 1.0 - alpha);
  if (!(hi > lo)) return lo;
  double tau = lo;
  const int cap = n_iter > 0 ? n_iter : 200;
  const bool concave = inv_beta < 1.0;  // alpha > 2
  for (int it = 0; it < cap; ++it) {
    // q2: Halley's Q2 for b >= 2; otherwise the number of entries above tau (one accumulator for
    // both: a separate counter made the warp kernel spill)
    double sum_p = 0.0, q1 = 0.0, q2 = 0.0;
    for (std::int64_t i = red.first(); i < n; i += red.step()) {
      const double u = d(i) - tau;
      if (u > 0) {
        const double p = pow(u, inv_beta), inv_u = 1.0 / u;
        sum_p += p;
        q1 += p * inv_u;
        q2 += halley ? p * inv_u * inv_u : 1.0;
      }
    }
    sum_p = red.sum(sum_p);
    q1 = red.sum(q1);
    if (halley || concave) q2 = red.sum(q2);  // uniform across the block: every thread takes the branch
    const double f = sum_p - 1.0;
    if (f == 0.0) {
      *sum_at_tau = sum_p;
      return tau;
    }
    if (f > 0) lo = tau; else hi = tau;
    const bool has_slope = q1 > 0.0;
    double next = 0.5 * (lo + hi);
    if (has_slope) {
      const double s_pow = pow(sum_p, 2.0 - alpha);
      double step = (sum_p - s_pow) / q1;
      if (halley) {
        const double L = (1.0 - s_pow / sum_p) * (inv_beta - 1.0) * (sum_p * q2 / (q1 * q1) - 1.0);
        if (L > -1.0 && L < 1.0) step /= 1.0 - 0.5 * L;
      }
      next = tau + step;
    }
    // converged for b >= 1; for b < 1 an entry just inside the support can make the step vanish
    // far from the root (rows.simd.cpp's bisect_tau): accepted only when S is 1 to rounding
    // (the tolerance scales with the entries above tau, q2 here: the CPU's list of survivors, or
    // fewer after a pass with S < 1, which is then only stricter)
    const bool converged =
        has_slope && next == tau && (!concave || fabs(f) <= 4.0 * 2.220446049250313e-16 * q2);
    if (!converged && !(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (converged || next == tau || hi - lo <= 4 * 2.220446049250313e-16 * fabs(tau)) {
      *sum_at_tau = sum_p;
      return tau;
    }
    tau = next;
  }
  return tau;
}

template <class T, class R>
__device__ void sparse_row(const RowView<T>& row, int map, double scale, double alpha, int n_iter,
                           const R& red) {
  const double factor = map == kSparsemax ? scale : map == kEntmax15 ? 0.5 * scale : (alpha - 1.0) * scale;
  const double inf = INFINITY;
  auto z = [&](std::int64_t i) -> double {
    return row.kept(i) ? to_double(to_float(row.x[i * row.stride])) * factor : -inf;
  };
  double m = -inf, active = 0.0;
  for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
    const double v = z(i);
    m = MaxOp{}(m, v);
    active += v > -inf ? 1.0 : 0.0;
  }
  m = red.max(m);
  active = red.sum(active);
  if (m != m || m == inf) return fill_row(row, red, static_cast<acc_t<T>>(NAN));
  if (m == -inf) return fill_row(row, red, acc_t<T>(0));
  auto d = [&](std::int64_t i) { return z(i) - m; };

  double tau = -1.0;
  bool exact = false;
  if (map == kSparsemax) {
    // Michelot: tau <- (sum_{d > tau} d - 1) / #{d > tau} until the support stops changing.
    double count = -1.0;
    for (int it = 0; it < kMaxPasses; ++it) {
      double s = 0.0, c = 0.0;
      for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
        const double v = d(i);
        if (v > tau) s += v, c += 1.0;
      }
      s = red.sum(s);
      c = red.sum(c);
      if (c == count) { exact = true; break; }
      const double next = (s - 1.0) / c;
      if (count >= 0 && !(next >= tau)) break;
      count = c;
      tau = next;
    }
  } else if (map == kEntmax15) {
    // Newton on sum (d - tau)_+^2 = 1 from below; finish with the closed-form root of the
    // support, accepted only when it is consistent with that support (then it is exact).
    for (int it = 0; it < kMaxPasses; ++it) {
      double s1 = 0.0, s2 = 0.0, c = 0.0, lowest = inf;
      for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
        const double v = d(i);
        if (v > tau) {
          const double u = v - tau;
          s1 += u, s2 += u * u, c += 1.0;
          lowest = v < lowest ? v : lowest;
        }
      }
      s1 = red.sum(s1);
      s2 = red.sum(s2);
      c = red.sum(c);
      lowest = red.min(lowest);
      const double mu = s1 / c;
      const double rad = 1.0 / c - (s2 / c - mu * mu);
      const double root = tau + mu - sqrt(rad > 0 ? rad : 0.0);
      if (root >= tau && lowest >= root) { tau = root; exact = true; break; }
      const double next = tau + (s2 - 1.0) / (2.0 * s1);
      if (!(next > tau)) break;
      tau = next;
    }
  }
  const double effective_alpha = map == kSparsemax ? 2.0 : map == kEntmax15 ? 1.5 : alpha;
  double sum_at_tau = -1.0;
  if (!exact)
    tau = bisect_tau(d, row.n, effective_alpha, active, map == kBisect ? n_iter : 0, red, &sum_at_tau);

  if (map == kSparsemax || map == kEntmax15) {
    for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
      const double u = d(i) - tau;
      const double p = u > 0 ? (map == kSparsemax ? u : u * u) : 0.0;
      row.y[i * row.stride] = store_value<T>(static_cast<acc_t<T>>(p));
    }
    return;
  }
  const double inv_beta = 1.0 / (alpha - 1.0);
  double total = sum_at_tau;  // the iteration's last sum when it was taken at tau (uniform)
  if (total < 0.0) {  // an n_iter stop: one more pass
    total = 0.0;
    for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
      const double u = d(i) - tau;
      total += u > 0 ? pow(u, inv_beta) : 0.0;
    }
    total = red.sum(total);
  }
  const double inv_total = total > 0 ? 1.0 / total : 0.0;  // renormalise (as entmax does)
  for (std::int64_t i = red.first(); i < row.n; i += red.step()) {
    const double u = d(i) - tau;
    row.y[i * row.stride] = store_value<T>(static_cast<acc_t<T>>(u > 0 ? pow(u, inv_beta) * inv_total : 0.0));
  }
}

// kSparse = false: kernels for softmax and log-softmax alone, so their register count is their
// own (in the kernel shared with the sparse maps, whose threshold iterations take ~80 registers a
// thread in the column kernels, softmax's resident warps per SM were cut by a quarter).
// kSparse = true keeps the shared kernel as it was: the sparse maps alone compiled to 95
// registers in the warp kernel (ptxas, sm_90), 2 blocks an SM instead of 3.
template <bool kSparse, class T, class R>
__device__ void forward_row(const RowView<T>& row, const ForwardParams& p, const R& red) {
  if (!kSparse || p.map == kSoftmax || p.map == kLogSoftmax)
    softmax_row(row, static_cast<acc_t<T>>(p.scale), p.map == kLogSoftmax, red);
  else
    sparse_row(row, p.map, p.scale, p.alpha, p.n_iter, red);
}

// Block sizes. A row block has up to kMaxRowThreads threads (threads_for_row); the launch bound
// makes the compiler keep the row kernels within 64 registers a thread, else a 1024-thread block
// cannot launch (cudaErrorLaunchOutOfResources: 65536 registers per SM on sm_80..sm_90).
constexpr unsigned kMaxRowThreads = 1024;
constexpr unsigned kColumnThreads = 256;
constexpr unsigned kColumnWarps = kColumnThreads / 32;
// Below this many columns a thread per column leaves most of a large GPU idle (132 SMs x 2048
// threads on an H100); a warp per column gives 32x the parallelism.
constexpr std::int64_t kWarpColumnsBelow = std::int64_t(1) << 18;
// Rows (inner == 1) of at most this many bytes take a warp each: shuffles instead of the block
// schedule's barriers and shared-memory reductions, and kColumnWarps rows a block instead of one
// (a one-warp block per short row caps an SM at 32 resident warps). Every pass re-reads the row
// from global memory; L1 serves the repeats of a row this short.
constexpr std::int64_t kWarpRowMaxBytes = 2048;

// The block copies n elements from global memory into shared memory: 16-byte packs when the
// source is 16-byte aligned (the destination always is), several loads in flight per thread.
template <class T>
__device__ void copy_row_to_shared(const T* __restrict__ src, T* __restrict__ dst, std::int64_t n) {
  constexpr int kPerPack = 16 / sizeof(T);
  constexpr int kUnroll = 4;
  std::int64_t done = 0;
  if ((reinterpret_cast<std::uintptr_t>(src) & 15) == 0) {
    const std::int64_t packs = n / kPerPack;
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    const std::int64_t stride = blockDim.x;
    for (std::int64_t i = threadIdx.x; i < packs; i += kUnroll * stride) {
      uint4 v[kUnroll];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (i + k * stride < packs) v[k] = s[i + k * stride];
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        if (i + k * stride < packs) d[i + k * stride] = v[k];
    }
    done = packs * kPerPack;
  }
  for (std::int64_t i = done + threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
}

// Dynamic shared memory, 16-byte aligned, for the cached-row kernels.
__device__ __forceinline__ unsigned char* row_cache() {
  extern __shared__ __align__(16) unsigned char row_cache_bytes[];
  return row_cache_bytes;
}

template <class T, bool kSparse>
__global__ void __launch_bounds__(kMaxRowThreads) forward_rows_kernel(ForwardParams p) {
  __shared__ double scratch_d[32];
  __shared__ float scratch_f[32];
  const BlockReducer red{scratch_d, scratch_f};
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  for (std::int64_t r = blockIdx.x; r < p.outer; r += gridDim.x) {
    const RowView<T> row{x + r * p.n, p.mask ? p.mask + r * p.n : nullptr, y + r * p.n, p.n, 1};
    forward_row<kSparse>(row, p, red);
  }
}

// As forward_rows_kernel, the row read once into shared memory (n * sizeof(T) bytes).
template <class T, bool kSparse>
__global__ void __launch_bounds__(kMaxRowThreads) forward_rows_cached_kernel(ForwardParams p) {
  __shared__ double scratch_d[32];
  __shared__ float scratch_f[32];
  const BlockReducer red{scratch_d, scratch_f};
  T* cached = reinterpret_cast<T*>(row_cache());
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  for (std::int64_t r = blockIdx.x; r < p.outer; r += gridDim.x) {
    copy_row_to_shared(x + r * p.n, cached, p.n);
    __syncthreads();
    const RowView<T> row{cached, p.mask ? p.mask + r * p.n : nullptr, y + r * p.n, p.n, 1};
    forward_row<kSparse>(row, p, red);
    __syncthreads();  // every pass has read the copy before the next row overwrites it
  }
}

// Columns: a thread (ThreadReducer) or a warp (WarpReducer) per (outer, inner) column; with
// inner == 1 the columns are the rows (a warp per short row).
template <class T, bool kSparse, class Reducer>
__global__ void __launch_bounds__(kColumnThreads) forward_columns_kernel(ForwardParams p) {
  constexpr bool kPerWarp = std::is_same<Reducer, WarpReducer>::value;
  const Reducer red{};
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const std::int64_t columns = p.outer * p.inner;
  const std::int64_t per_block = kPerWarp ? kColumnWarps : kColumnThreads;
  const std::int64_t slot = kPerWarp ? threadIdx.x / 32 : threadIdx.x;
  // t is the same for all lanes of a warp in the per-warp schedule: the loop is warp-uniform.
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * per_block + slot; t < columns;
       t += static_cast<std::int64_t>(gridDim.x) * per_block) {
    const std::int64_t o = t / p.inner, c = t % p.inner;
    const std::int64_t base = o * p.n * p.inner + c;
    const RowView<T> row{x + base, p.mask ? p.mask + base : nullptr, y + base, p.n, p.inner};
    forward_row<kSparse>(row, p, red);
  }
}

// Backward from the forward output: dx = scale * J^T dy (notes/activations.md §7).
template <class T, class R>
__device__ void backward_row(const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t stride,
                             const BackwardParams& p, const R& red) {
  using C = acc_t<T>;
  const C scale = static_cast<C>(p.scale);
  auto Y = [&](std::int64_t i) -> C { return to_float(y[i * stride]); };
  auto DY = [&](std::int64_t i) -> C { return to_float(dy[i * stride]); };
  auto put = [&](std::int64_t i, C v) { dx[i * stride] = store_value<T>(v); };
  C nans = 0;
  for (std::int64_t i = red.first(); i < n; i += red.step()) nans += Y(i) != Y(i) ? C(1) : C(0);
  nans = red.sum(nans);
  if (nans > 0) {
    for (std::int64_t i = red.first(); i < n; i += red.step()) put(i, static_cast<C>(NAN));
    return;
  }
  if (p.map == kSoftmax) {
    C dot = 0;
    for (std::int64_t i = red.first(); i < n; i += red.step()) dot += Y(i) * DY(i);
    dot = red.sum(dot);
    for (std::int64_t i = red.first(); i < n; i += red.step()) put(i, (Y(i) * (DY(i) - dot)) * scale);
  } else if (p.map == kLogSoftmax) {
    C total = 0;
    for (std::int64_t i = red.first(); i < n; i += red.step()) total += Y(i) == -inf_of<C>() ? C(0) : DY(i);
    total = red.sum(total);
    for (std::int64_t i = red.first(); i < n; i += red.step())
      put(i, Y(i) == -inf_of<C>() ? C(0) : (DY(i) - dexp(Y(i)) * total) * scale);
  } else if (p.map == kSparsemax) {
    C count = 0, s = 0;
    for (std::int64_t i = red.first(); i < n; i += red.step()) {
      const bool on = Y(i) > C(0);
      count += on ? C(1) : C(0);
      s += on ? DY(i) : C(0);
    }
    count = red.sum(count);
    s = red.sum(s);
    const C mean = count > 0 ? s / count : C(0);
    for (std::int64_t i = red.first(); i < n; i += red.step()) put(i, Y(i) > C(0) ? (DY(i) - mean) * scale : C(0));
  } else {
    const bool is15 = p.map == kEntmax15;
    const double power = 2.0 - p.alpha;
    auto g = [&](std::int64_t i) -> C {
      const C v = Y(i);
      if (!(v > C(0))) return C(0);
      return is15 ? dsqrt(v) : static_cast<C>(pow(to_double(v), power));
    };
    C sg = 0, sgd = 0;
    for (std::int64_t i = red.first(); i < n; i += red.step()) {
      const C gi = g(i);
      sg += gi;
      sgd += gi * DY(i);
    }
    sg = red.sum(sg);
    sgd = red.sum(sgd);
    const C ratio = sg > 0 ? sgd / sg : C(0);
    for (std::int64_t i = red.first(); i < n; i += red.step()) {
      const C gi = g(i);
      put(i, gi == C(0) ? C(0) : (gi * (DY(i) - ratio)) * scale);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kMaxRowThreads) backward_rows_kernel(BackwardParams p) {
  __shared__ double scratch_d[32];
  __shared__ float scratch_f[32];
  const BlockReducer red{scratch_d, scratch_f};
  for (std::int64_t r = blockIdx.x; r < p.outer; r += gridDim.x) {
    const std::int64_t base = r * p.n;
    backward_row(static_cast<const T*>(p.y) + base, static_cast<const T*>(p.dy) + base,
                 static_cast<T*>(p.dx) + base, p.n, 1, p, red);
  }
}

// Bytes of the y copy in the backward row cache, rounded up so the dy copy is 16-byte aligned.
__host__ __device__ constexpr std::size_t cached_y_bytes(std::int64_t n, std::size_t elem) {
  return (static_cast<std::size_t>(n) * elem + 15) / 16 * 16;
}

// As backward_rows_kernel, y and dy read once into shared memory.
template <class T>
__global__ void __launch_bounds__(kMaxRowThreads) backward_rows_cached_kernel(BackwardParams p) {
  __shared__ double scratch_d[32];
  __shared__ float scratch_f[32];
  const BlockReducer red{scratch_d, scratch_f};
  T* y_cached = reinterpret_cast<T*>(row_cache());
  T* dy_cached = reinterpret_cast<T*>(row_cache() + cached_y_bytes(p.n, sizeof(T)));
  for (std::int64_t r = blockIdx.x; r < p.outer; r += gridDim.x) {
    const std::int64_t base = r * p.n;
    copy_row_to_shared(static_cast<const T*>(p.y) + base, y_cached, p.n);
    copy_row_to_shared(static_cast<const T*>(p.dy) + base, dy_cached, p.n);
    __syncthreads();
    backward_row<T>(y_cached, dy_cached, static_cast<T*>(p.dx) + base, p.n, 1, p, red);
    __syncthreads();  // every pass has read the copies before the next row overwrites them
  }
}

template <class T, class Reducer>
__global__ void __launch_bounds__(kColumnThreads) backward_columns_kernel(BackwardParams p) {
  constexpr bool kPerWarp = std::is_same<Reducer, WarpReducer>::value;
  const Reducer red{};
  const std::int64_t columns = p.outer * p.inner;
  const std::int64_t per_block = kPerWarp ? kColumnWarps : kColumnThreads;
  const std::int64_t slot = kPerWarp ? threadIdx.x / 32 : threadIdx.x;
  for (std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * per_block + slot; t < columns;
       t += static_cast<std::int64_t>(gridDim.x) * per_block) {
    const std::int64_t base = (t / p.inner) * p.n * p.inner + t % p.inner;
    backward_row(static_cast<const T*>(p.y) + base, static_cast<const T*>(p.dy) + base,
                 static_cast<T*>(p.dx) + base, p.n, p.inner, p, red);
  }
}

// Threads per row-block: enough for ~8 elements per thread, 32..kMaxRowThreads (a power of two).
unsigned threads_for_row(std::int64_t n) {
  unsigned t = 32;
  while (t < kMaxRowThreads && static_cast<std::int64_t>(t) * 8 < n) t *= 2;
  return t;
}

// Launches the schedule for p (see the top of the file). kernels/names: rows cached in shared
// memory (cached_bytes of it), rows from global memory, a warp per column (or per short row), a
// thread per column. elem_bytes: sizeof(T).
template <class Params>
void launch_schedule(void (*const kernels[4])(Params), const char* const names[4], std::size_t cached_bytes,
                     std::size_t elem_bytes, const Params& p, cudaStream_t stream) {
  if (p.inner == 1 && p.n * static_cast<std::int64_t>(elem_bytes) > kWarpRowMaxBytes) {
    const dim3 grid(grid_stride_blocks(p.outer)), block(threads_for_row(p.n));
    // The cached-row kernel when the copy fits beside its static shared memory (launch.cuh's limit).
    if (cached_bytes <= max_dynamic_shared_bytes(names[0], kernels[0])) {
      launch(names[0], kernels[0], grid, block, cached_bytes, stream, p);
    } else {
      launch(names[1], kernels[1], grid, block, 0, stream, p);
    }
    return;
  }
  // A warp per short row (inner == 1: the column kernel's column t is row t, stride 1), or per
  // column below kWarpColumnsBelow columns; else a thread per column.
  const std::int64_t columns = p.outer * p.inner;
  const int k = p.inner == 1 || columns < kWarpColumnsBelow ? 2 : 3;
  const std::int64_t columns_per_block = k == 2 ? kColumnWarps : kColumnThreads;
  launch(names[k], kernels[k], dim3(grid_stride_blocks(ceil_div<std::int64_t>(columns, columns_per_block))),
         dim3(kColumnThreads), 0, stream, p);
}

template <class T, bool kSparse>
void forward_family(const ForwardParams& p, cudaStream_t stream) {
  static const char* const names[4] = {"activations_forward_rows_cached", "activations_forward_rows",
                                       "activations_forward_warp_per_line", "activations_forward_columns"};
  void (*const kernels[4])(ForwardParams) = {forward_rows_cached_kernel<T, kSparse>, forward_rows_kernel<T, kSparse>,
                                             forward_columns_kernel<T, kSparse, WarpReducer>,
                                             forward_columns_kernel<T, kSparse, ThreadReducer>};
  launch_schedule(kernels, names, static_cast<std::size_t>(p.n) * sizeof(T), sizeof(T), p, stream);
}

template <class T>
void forward_typed(const ForwardParams& p, cudaStream_t stream) {
  if (p.map == kSoftmax || p.map == kLogSoftmax) return forward_family<T, false>(p, stream);
  forward_family<T, true>(p, stream);
}

template <class T>
void backward_typed(const BackwardParams& p, cudaStream_t stream) {
  static const char* const names[4] = {"activations_backward_rows_cached", "activations_backward_rows",
                                       "activations_backward_warp_per_line", "activations_backward_columns"};
  void (*const kernels[4])(BackwardParams) = {backward_rows_cached_kernel<T>, backward_rows_kernel<T>,
                                              backward_columns_kernel<T, WarpReducer>,
                                              backward_columns_kernel<T, ThreadReducer>};
  // y and dy, the dy copy starting 16-byte aligned
  launch_schedule(kernels, names, cached_y_bytes(p.n, sizeof(T)) + static_cast<std::size_t>(p.n) * sizeof(T),
                  sizeof(T), p, stream);
}

}  // namespace

void forward(const ForwardParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case kF32: return forward_typed<float>(p, stream);
    case kF16: return forward_typed<__half>(p, stream);
    case kBF16: return forward_typed<__nv_bfloat16>(p, stream);
    case kF64: return forward_typed<double>(p, stream);
    default: throw CudaError(cudaErrorInvalidValue, "activations.forward: unknown dtype code");
  }
}

void backward(const BackwardParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case kF32: return backward_typed<float>(p, stream);
    case kF16: return backward_typed<__half>(p, stream);
    case kBF16: return backward_typed<__nv_bfloat16>(p, stream);
    case kF64: return backward_typed<double>(p, stream);
    default: throw CudaError(cudaErrorInvalidValue, "activations.backward: unknown dtype code");
  }
}

}  // namespace activations
}  // namespace cuda
}  // namespace fastcore
