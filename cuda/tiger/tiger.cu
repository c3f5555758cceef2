// Tiger step kernels (see tiger.cuh for the two-launch structure).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>

#include "common/errors.hpp"
#include "cuda/common/check.hpp"
#include "cuda/common/launch.cuh"
#include "cuda/common/reduce.cuh"
#include "cuda/common/vec.cuh"
#include "cuda/tiger/tiger.cuh"

namespace fastcore {
namespace cuda {
namespace tiger {

namespace {

constexpr int kThreads = 256;          // 8 warps
constexpr long long kTile = 8192;      // elements per tile for element-wise tensors (32 per thread)
constexpr long long kRowTile = 8192;   // target elements per tile for row-aligned tensors

struct Meta {
  void* p;
  void* m;
  const void* g;
  long long n, row_len;
  long long tile_begin, n_tiles;
  long long rows_per_tile;  // > 0: tiles hold whole rows (row RMS or lazy rows)
  long long row_off;        // first entry of this tensor in row_eta
  double lr_t_mult;         // (lr on the last micro-step of a cycle, else 0) * lr_mult
  double wd, centre;
  unsigned long long sr_key;
  int p_dtype, m_dtype, rms_mode, lazy;
  int need_rms_tensor;  // launch 1 computes the whole-tensor RMS
  int need_rms_row;     // launch 1 computes the row RMS
  int detect;           // launch 1 checks g
};

struct Scalars {
  float b1, b2, c1, c2, beta, shrink;
  double rms_floor;
  int first, final_step, accum_gt1, action, nan_only, global_scope, strict, lion, sr;
};

struct Work {
  const Meta* meta;
  const long long* tile_prefix;  // n_tensors + 1 entries
  long long n_tensors;
  unsigned* ticket;       // per tensor, 0 on entry
  unsigned* global_flag;  // 1 word
  double* eta;            // per tensor
  unsigned* flag;         // per tensor
  double* tile_sumsq;     // per tile
  unsigned* tile_flag;    // per tile
  double* row_eta;        // per row of row-RMS tensors
};

// ---- storage <-> float ----------------------------------------------------------------------
__device__ __forceinline__ float load_as_float(const void* base, int dtype, long long i) {
  switch (dtype) {
    case kF16: return __half2float(static_cast<const __half*>(base)[i]);
    case kBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

// Stochastic rounding float -> bfloat16: add 16 random bits below the bfloat16 mantissa and
// truncate, so x rounds up with probability equal to its distance from the lower neighbour.
// NaN and Inf are rounded to nearest (no random bits may turn them into something else).
__device__ __forceinline__ __nv_bfloat16 bf16_stochastic(float x, unsigned rnd) {
  if (!isfinite(x)) return __float2bfloat16_rn(x);
  __nv_bfloat16_raw r;
  r.x = static_cast<unsigned short>((__float_as_uint(x) + rnd) >> 16);
  return __nv_bfloat16(r);
}

__device__ __forceinline__ void store_from_float(void* base, int dtype, long long i, float v, bool sr,
                                                 unsigned long long key) {
  switch (dtype) {
    case kF16: static_cast<__half*>(base)[i] = __float2half_rn(v); break;
    case kBF16:
      static_cast<__nv_bfloat16*>(base)[i] =
          sr ? bf16_stochastic(v, sr_bits(key, static_cast<unsigned long long>(i))) : __float2bfloat16_rn(v);
      break;
    default: static_cast<float*>(base)[i] = v;
  }
}

// ---- the arithmetic: the reference's form, each operation rounded once (no FMA) -------------
__device__ __forceinline__ float sign_of(float x) { return x > 0.f ? 1.f : (x < 0.f ? -1.f : x); }

__device__ __forceinline__ float momentum(float b1, float m, float b2, float g) {
  return __fadd_rn(__fmul_rn(b1, m), __fmul_rn(b2, g));
}
__device__ __forceinline__ float descend(float p, float eta, float dir, float wd) {
  return __fsub_rn(p, __fmul_rn(eta, __fadd_rn(dir, __fmul_rn(wd, p))));
}
__device__ __forceinline__ float shrink_to(float p, float s, float c) { return __fadd_rn(__fmul_rn(__fsub_rn(p, c), s), c); }

__device__ __forceinline__ bool is_bad(float g, int nan_only) {
  return nan_only ? (g != g) : !isfinite(g);
}

__device__ __forceinline__ double floored(double rms, double floor) { return rms < floor ? floor : rms; }

// Tile -> tensor by binary search over the tile prefix (thread 0), broadcast through shared memory.
__device__ __forceinline__ long long find_tensor(const Work& w, long long tile) {
  __shared__ long long t_shared;
  if (threadIdx.x == 0) {
    long long lo = 0, hi = w.n_tensors - 1;
    while (lo < hi) {  // last t with tile_prefix[t] <= tile
      const long long mid = (lo + hi + 1) / 2;
      if (w.tile_prefix[mid] <= tile) lo = mid; else hi = mid - 1;
    }
    t_shared = lo;
  }
  __syncthreads();
  return t_shared;
}

// Element range [lo, hi) of tile `lt` of a tensor, and for row-aligned tiles the row range.
struct Range {
  long long lo, hi, r0, r1;
};
__device__ __forceinline__ Range tile_range(const Meta& mt, long long lt) {
  Range r;
  if (mt.rows_per_tile > 0) {
    const long long rows = mt.n / mt.row_len;
    r.r0 = lt * mt.rows_per_tile;
    r.r1 = min(rows, r.r0 + mt.rows_per_tile);
    r.lo = r.r0 * mt.row_len;
    r.hi = r.r1 * mt.row_len;
  } else {
    r.lo = lt * kTile;
    r.hi = min(mt.n, r.lo + kTile);
    r.r0 = r.r1 = 0;
  }
  return r;
}

// ---- launch 1: RMS partials, row RMS, non-finite flags, per-tensor finalisation ----------------
__global__ void __launch_bounds__(kThreads) reduce_kernel(Work w, Scalars sc) {
  __shared__ double scratch[32];
  __shared__ int last_shared;
  const long long tile = blockIdx.x;
  const long long t = find_tensor(w, tile);
  const Meta& mt = w.meta[t];
  if (!(mt.need_rms_tensor || mt.need_rms_row || mt.detect)) return;
  const Range rg = tile_range(mt, tile - mt.tile_begin);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

  if (mt.need_rms_row) {  // a warp per row, lanes strided, fixed-order butterfly: deterministic
    const long long L = mt.row_len;
    for (long long r = rg.r0 + warp; r < rg.r1; r += kThreads / 32) {
      double s = 0.0;
      for (long long j = lane; j < L; j += 32) {
        const double v = load_as_float(mt.p, mt.p_dtype, r * L + j);
        s = __dadd_rn(s, __dmul_rn(v, v));
      }
      s = warp_reduce(s, SumOp{});
      if (lane == 0)
        w.row_eta[mt.row_off + r] = mt.lr_t_mult * floored(sqrt(s / static_cast<double>(L)), sc.rms_floor);
    }
  }
  double part = 0.0;
  int bad = 0;
  for (long long i = rg.lo + threadIdx.x; i < rg.hi; i += kThreads) {
    if (mt.need_rms_tensor) {
      const double v = load_as_float(mt.p, mt.p_dtype, i);
      part = __dadd_rn(part, __dmul_rn(v, v));
    }
    if (mt.detect) bad |= is_bad(load_as_float(mt.g, mt.p_dtype, i), sc.nan_only);
  }
  if (!(mt.need_rms_tensor || mt.detect)) return;
  part = block_reduce(part, SumOp{}, scratch);
  bad = __syncthreads_or(bad);
  if (threadIdx.x == 0) {
    w.tile_sumsq[tile] = part;
    w.tile_flag[tile] = bad ? 1u : 0u;
    __threadfence();  // publish the partials before taking a ticket
    last_shared = atomicAdd(&w.ticket[t], 1u) == static_cast<unsigned>(mt.n_tiles - 1);
  }
  __syncthreads();
  if (!last_shared) return;
  // The last tile of the tensor combines all its tiles' partials in a fixed order.
  __threadfence();
  double s = 0.0;
  int any = 0;
  for (long long j = threadIdx.x; j < mt.n_tiles; j += kThreads) {
    s = __dadd_rn(s, __ldcg(&w.tile_sumsq[mt.tile_begin + j]));
    any |= __ldcg(&w.tile_flag[mt.tile_begin + j]) != 0u;
  }
  s = block_reduce(s, SumOp{}, scratch);
  any = __syncthreads_or(any);
  if (threadIdx.x == 0) {
    if (mt.need_rms_tensor)
      w.eta[t] = mt.lr_t_mult * floored(sqrt(s / static_cast<double>(mt.n)), sc.rms_floor);
    if (mt.detect) {
      w.flag[t] = any ? 1u : 0u;
      if (any) atomicOr(w.global_flag, 1u);
    }
    w.ticket[t] = 0u;
  }
}

// ---- launch 2: the update ---------------------------------------------------------------------
__device__ __forceinline__ void update_values(const Scalars& sc, float g, float& m, float& p, float eta, float wd) {
  float mn, dir;
  if (sc.lion) {
    dir = sign_of(momentum(sc.b1, m, sc.b2, g));
    mn = momentum(sc.c1, m, sc.c2, g);
  } else {
    mn = momentum(sc.b1, m, sc.b2, g);
    dir = sign_of(mn);
  }
  m = mn;
  p = descend(p, eta, dir, wd);
}

__device__ __forceinline__ void update_element(const Meta& mt, const Scalars& sc, long long i, float eta, float wd) {
  const float g = load_as_float(mt.g, mt.p_dtype, i);
  float m = load_as_float(mt.m, mt.m_dtype, i);
  float p = load_as_float(mt.p, mt.p_dtype, i);
  update_values(sc, g, m, p, eta, wd);
  store_from_float(mt.m, mt.m_dtype, i, m, false, 0);
  store_from_float(mt.p, mt.p_dtype, i, p, sc.sr != 0, mt.sr_key);
}

// Elements handled per thread per round in the element-wise loops: every load of a round is
// issued before its stores, so each thread keeps kIlp * 3 loads in flight (the pointers are
// untyped, so the compiler could not reorder loads across the stores by itself).
constexpr int kIlp = 4;

__global__ void __launch_bounds__(kThreads) update_kernel(Work w, Scalars sc, unsigned char* flags_out) {
  const long long tile = blockIdx.x;
  const long long t = find_tensor(w, tile);
  const Meta& mt = w.meta[t];
  const bool flagged = w.flag[t] != 0u || (sc.global_scope && *w.global_flag != 0u);
  if (tile == mt.tile_begin && threadIdx.x == 0) flags_out[t] = flagged ? 1 : 0;
  if (mt.n == 0) return;
  const Range rg = tile_range(mt, tile - mt.tile_begin);
  const float s = sc.shrink, c = static_cast<float>(mt.centre);
  const bool sr = sc.sr != 0;

  if (flagged) {
    const bool shrink = sc.strict || (sc.final_step && sc.action == 0);
    const bool decay = !sc.strict && sc.accum_gt1 && sc.first;
    for (long long i = rg.lo + threadIdx.x; i < rg.hi; i += kThreads) {
      if (decay)
        store_from_float(mt.m, mt.m_dtype, i, __fmul_rn(sc.beta, load_as_float(mt.m, mt.m_dtype, i)), false, 0);
      if (shrink)
        store_from_float(mt.p, mt.p_dtype, i, shrink_to(load_as_float(mt.p, mt.p_dtype, i), s, c), sr, mt.sr_key);
    }
    return;
  }
  if (!sc.final_step && !sc.strict) {  // hidden accumulation: theta neither read nor written
    for (long long base = rg.lo + threadIdx.x; base < rg.hi; base += kThreads * kIlp) {
      float g[kIlp], m[kIlp];
#pragma unroll
      for (int j = 0; j < kIlp; ++j) {
        const long long i = base + j * kThreads;
        if (i < rg.hi) {
          g[j] = load_as_float(mt.g, mt.p_dtype, i);
          m[j] = load_as_float(mt.m, mt.m_dtype, i);
        }
      }
#pragma unroll
      for (int j = 0; j < kIlp; ++j) {
        const long long i = base + j * kThreads;
        if (i < rg.hi) store_from_float(mt.m, mt.m_dtype, i, momentum(sc.b1, m[j], sc.b2, g[j]), false, 0);
      }
    }
    return;
  }
  const float wd = static_cast<float>(mt.wd);
  if (mt.rows_per_tile == 0) {
    const float eta = static_cast<float>(w.eta[t]);
    for (long long base = rg.lo + threadIdx.x; base < rg.hi; base += kThreads * kIlp) {
      float g[kIlp], m[kIlp], p[kIlp];
#pragma unroll
      for (int j = 0; j < kIlp; ++j) {
        const long long i = base + j * kThreads;
        if (i < rg.hi) {
          g[j] = load_as_float(mt.g, mt.p_dtype, i);
          m[j] = load_as_float(mt.m, mt.m_dtype, i);
          p[j] = load_as_float(mt.p, mt.p_dtype, i);
        }
      }
#pragma unroll
      for (int j = 0; j < kIlp; ++j) {
        const long long i = base + j * kThreads;
        if (i < rg.hi) {
          update_values(sc, g[j], m[j], p[j], eta, wd);
          store_from_float(mt.m, mt.m_dtype, i, m[j], false, 0);
          store_from_float(mt.p, mt.p_dtype, i, p[j], sr, mt.sr_key);
        }
      }
    }
    return;
  }
  // Row-aligned tiles: a warp per row (lazy rows: skip a row whose gradient is all zero).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long L = mt.row_len;
  for (long long r = rg.r0 + warp; r < rg.r1; r += kThreads / 32) {
    if (mt.lazy) {
      int nonzero = 0;
      for (long long j = lane; j < L && !nonzero; j += 32) nonzero = load_as_float(mt.g, mt.p_dtype, r * L + j) != 0.f;
      if (!__any_sync(0xffffffffu, nonzero)) continue;
    }
    const float eta = static_cast<float>(mt.rms_mode == 2 ? w.row_eta[mt.row_off + r] : w.eta[t]);
    for (long long j = lane; j < L; j += 32) update_element(mt, sc, r * L + j, eta, wd);
  }
}

std::size_t align16(std::size_t x) { return (x + 15) & ~static_cast<std::size_t>(15); }

}  // namespace

int step(const std::vector<TensorHost>& tensors, const StepHost& a, std::uint8_t* flags_out, cudaStream_t stream) {
  const auto n = static_cast<long long>(tensors.size());
  if (n == 0) return 0;
  FASTCORE_CHECK(a.accum >= 1 && a.step >= 0, "tiger (cuda): bad step/accum");
  const bool first = a.step % a.accum == 0;
  const bool final_step = (a.step + 1) % a.accum == 0;
  const bool want_rms = final_step || a.strict;
  const bool detecting = a.action != 2 || a.strict;

  std::vector<Meta> meta(static_cast<std::size_t>(n));
  std::vector<long long> prefix(static_cast<std::size_t>(n) + 1, 0);
  std::vector<double> eta(static_cast<std::size_t>(n), 0.0);
  std::vector<unsigned> flag(static_cast<std::size_t>(n), 0u);
  unsigned global_flag = 0;
  long long tiles = 0, rows_total = 0;
  bool need_reduce = false;
  for (long long i = 0; i < n; ++i) {
    const TensorHost& t = tensors[static_cast<std::size_t>(i)];
    FASTCORE_CHECK(t.n >= 0 && t.row_len >= 1 && t.n % t.row_len == 0, "tiger (cuda): tensor ", i, " has bad sizes");
    Meta& mt = meta[static_cast<std::size_t>(i)];
    mt.p = t.p;
    mt.m = t.m;
    mt.g = t.g;
    mt.n = t.n;
    mt.row_len = t.row_len;
    mt.p_dtype = t.p_dtype;
    mt.m_dtype = t.m_dtype;
    mt.rms_mode = t.rms_mode;
    mt.lazy = t.lazy_rows ? 1 : 0;
    mt.wd = t.weight_decay;
    mt.centre = t.centre;
    mt.lr_t_mult = (final_step ? a.lr : 0.0) * t.lr_mult;
    mt.sr_key = sr_key(a.seed, static_cast<std::uint64_t>(a.step), static_cast<std::uint64_t>(i));
    const bool rows = t.rms_mode == 2 || t.lazy_rows;
    mt.rows_per_tile = rows ? std::max<long long>(1, kRowTile / t.row_len) : 0;
    const long long n_tiles = t.n == 0 ? 1
                              : rows ? (t.n / t.row_len + mt.rows_per_tile - 1) / mt.rows_per_tile
                                     : (t.n + kTile - 1) / kTile;
    mt.tile_begin = tiles;
    mt.n_tiles = n_tiles;
    prefix[static_cast<std::size_t>(i)] = tiles;
    tiles += n_tiles;
    mt.need_rms_tensor = want_rms && t.rms_mode == 1 && t.n > 0;
    mt.need_rms_row = want_rms && t.rms_mode == 2 && t.n > 0;
    mt.detect = detecting && (t.found_inf < 0 || a.strict) && t.n > 0;
    mt.row_off = rows_total;
    if (mt.need_rms_row) rows_total += t.n / t.row_len;
    need_reduce = need_reduce || mt.need_rms_tensor || mt.need_rms_row || mt.detect;
    // What the host already knows: eta without RMS, and the caller's found_inf.
    eta[static_cast<std::size_t>(i)] = mt.lr_t_mult;
    if (detecting && !a.strict && t.found_inf > 0) {
      flag[static_cast<std::size_t>(i)] = 1u;
      global_flag = 1u;
    }
  }
  prefix[static_cast<std::size_t>(n)] = tiles;
  FASTCORE_CHECK(tiles < 2147483647LL, "tiger (cuda): too many tiles for one launch");

  // Workspace: [meta | prefix | ticket | global | eta | flag] copied from the host, then
  // [tile_sumsq | tile_flag | row_eta] written by launch 1.
  const std::size_t un = static_cast<std::size_t>(n), ut = static_cast<std::size_t>(tiles);
  const std::size_t off_meta = 0;
  const std::size_t off_prefix = align16(off_meta + un * sizeof(Meta));
  const std::size_t off_ticket = align16(off_prefix + (un + 1) * sizeof(long long));
  const std::size_t off_global = align16(off_ticket + un * sizeof(unsigned));
  const std::size_t off_eta = align16(off_global + sizeof(unsigned));
  const std::size_t off_flag = align16(off_eta + un * sizeof(double));
  const std::size_t init_bytes = align16(off_flag + un * sizeof(unsigned));
  const std::size_t off_tile_sumsq = init_bytes;
  const std::size_t off_tile_flag = align16(off_tile_sumsq + ut * sizeof(double));
  const std::size_t off_row_eta = align16(off_tile_flag + ut * sizeof(unsigned));
  const std::size_t total = align16(off_row_eta + static_cast<std::size_t>(rows_total) * sizeof(double));

  std::vector<unsigned char> image(init_bytes, 0);
  std::memcpy(image.data() + off_meta, meta.data(), un * sizeof(Meta));
  std::memcpy(image.data() + off_prefix, prefix.data(), (un + 1) * sizeof(long long));
  std::memcpy(image.data() + off_global, &global_flag, sizeof(unsigned));
  std::memcpy(image.data() + off_eta, eta.data(), un * sizeof(double));
  std::memcpy(image.data() + off_flag, flag.data(), un * sizeof(unsigned));

  unsigned char* ws = nullptr;
  FASTCORE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ws), total, stream));
  int launches = 0;
  try {
    // Pageable source: the call returns once the image is staged, so `image` may go away after.
    FASTCORE_CUDA_CHECK(cudaMemcpyAsync(ws, image.data(), init_bytes, cudaMemcpyHostToDevice, stream));
    Work w;
    w.meta = reinterpret_cast<const Meta*>(ws + off_meta);
    w.tile_prefix = reinterpret_cast<const long long*>(ws + off_prefix);
    w.n_tensors = n;
    w.ticket = reinterpret_cast<unsigned*>(ws + off_ticket);
    w.global_flag = reinterpret_cast<unsigned*>(ws + off_global);
    w.eta = reinterpret_cast<double*>(ws + off_eta);
    w.flag = reinterpret_cast<unsigned*>(ws + off_flag);
    w.tile_sumsq = reinterpret_cast<double*>(ws + off_tile_sumsq);
    w.tile_flag = reinterpret_cast<unsigned*>(ws + off_tile_flag);
    w.row_eta = reinterpret_cast<double*>(ws + off_row_eta);

    Scalars sc;
    sc.first = first;
    sc.final_step = final_step;
    sc.accum_gt1 = a.accum > 1;
    const double b1 = first ? a.beta : 1.0;
    double b2 = a.lion ? 1.0 - a.beta : (1.0 - a.beta) / static_cast<double>(a.accum);
    double c2 = 1.0 - a.beta2;
    if (a.maximize) {  // b2*(-g) == -(b2*g) exactly
      b2 = -b2;
      c2 = -c2;
    }
    sc.b1 = static_cast<float>(b1);
    sc.b2 = static_cast<float>(b2);
    sc.c1 = static_cast<float>(a.beta2);
    sc.c2 = static_cast<float>(c2);
    sc.beta = static_cast<float>(a.beta);
    sc.shrink = static_cast<float>(a.shrink_ratio);
    sc.rms_floor = a.rms_floor;
    sc.action = a.action;
    sc.nan_only = a.nan_only || a.strict;
    sc.global_scope = a.global_scope && !a.strict;
    sc.strict = a.strict;
    sc.lion = a.lion;
    sc.sr = a.stochastic_rounding;

    const dim3 grid(static_cast<unsigned>(tiles)), block(kThreads);
    if (need_reduce) {
      launch("tiger_reduce_kernel", reduce_kernel, grid, block, 0, stream, w, sc);
      ++launches;
    }
    launch("tiger_update_kernel", update_kernel, grid, block, 0, stream, w, sc,
           static_cast<unsigned char*>(flags_out));
    ++launches;
  } catch (...) {
    (void)cudaFreeAsync(ws, stream);
    throw;
  }
  FASTCORE_CUDA_CHECK(cudaFreeAsync(ws, stream));
  return launches;
}

}  // namespace tiger
}  // namespace cuda
}  // namespace fastcore
