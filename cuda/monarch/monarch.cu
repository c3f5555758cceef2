// Fused Monarch multiply kernels (see monarch.cuh for the layout and the contract).
//
// Index maps used throughout (notes/monarch.md §1.2), for one batch row:
//   stage 1 (forward)   z[i] = Σ_p w1[k][q][p] · x[k·P + p],          i = k·Q + q
//   P_mid               zp[l][r] = z[r·L + l]                          (block l = i mod L, r = i div L)
//   stage 2 (forward)   y[s·L + l] = Σ_r w2[l][s][r] · zp[l][r]        (P_out: output column s·L + l)
//   adjoint stage 1     dz[r·L + l] = Σ_s w2[l][s][r] · v[s·L + l]
//   adjoint stage 2     out[k·P + p] = Σ_q w1[k][q][p] · dz[k·Q + q]
// These are exactly the reshapes/transposes of the CuPy composition in python/fastcore/monarch.py
// and of the dense oracle fastcore.reference.monarch.
//
// Offsets into global tensors are int64 (B·n and the weight sizes can pass 2^31). Offsets into
// shared memory are int: plan() only accepts tiles whose intermediate fits in the device's shared
// memory (< 2^18 bytes on every GPU so far), so every shared index is far below 2^31.
#include "cuda/monarch/monarch.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "common/errors.hpp"
#include "cuda/common/launch.cuh"
#include "cuda/common/vec.cuh"

namespace fastcore {
namespace cuda {
namespace monarch {

namespace {

using i64 = std::int64_t;

// 256 threads (8 warps) per block for both kernels: enough warps to cover the global-load latency
// of the weight rows while the big shared-memory tiles allow only one or two blocks per SM.
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Tensor-core tile: WMMA m16n16k16, so a block's tile is 16 batch rows (the M dimension).
constexpr int kTcRows = 16;
constexpr int kFrag = 16;
// Per-warp float scratch for one 16x16 accumulator tile (WMMA fragments have an opaque register
// layout, so a tile goes through shared memory before its elements are scattered).
constexpr int kScratchFloats = kFrag * kFrag;
constexpr std::size_t kTcScratchBytes = static_cast<std::size_t>(kWarps) * kScratchFloats * sizeof(float);
// SIMT tiles: at most 8 rows (8 float accumulators per thread and 8x reuse of every weight element
// loaded); fewer rows when the tile's float32 intermediate would not fit in shared memory.
constexpr int kSimtMaxRows = 8;
// Below this many rows per tile (when the batch has at least this many rows) every weight element is
// re-read from L2 for too few rows and the cuBLAS composition is preferred (plan() returns kNone).
constexpr int kSimtMinRows = 4;

// Rows of a tile that exist: min(tile size, rows left), rows left >= 1 inside the tile loops.
__device__ __forceinline__ int tile_rows(int tile, i64 left) {
  return left < tile ? static_cast<int>(left) : tile;
}

struct Dims {
  i64 batch;        // rows this launch covers, counted from row_begin
  i64 row_begin;    // first batch row of this launch
  i64 n_in, n_mid, n_out;
  i64 K, Q, P, L, S, R;
};

// ---- SIMT kernels: any block sizes, float32 FMA chains, float32 intermediate in shared memory -----
//
// A block takes kRows batch rows; each thread owns whole output elements (one FMA chain over the
// block's inner dimension per element, for all kRows rows at once, so each weight element loaded
// feeds kRows FMAs). Rows past the end of the batch (last tile only) read the tile's last valid row
// instead (valid memory, finite values) and are never stored.
//
// Shared memory: z[b·n_mid + i] (float), b < kRows, i < n_mid. Stage 1 writes it at the
// intermediate index i (consecutive threads, consecutive words: no bank conflicts).

template <class T, int kRows>
__global__ void __launch_bounds__(kThreads)
    simt_forward_kernel(const T* __restrict__ x, const T* __restrict__ w1, const T* __restrict__ w2,
                        T* __restrict__ y, Dims d) {
  extern __shared__ float z[];
  const int n_mid = static_cast<int>(d.n_mid);  // fits: n_mid·kRows floats are in shared memory
  const i64 ntiles = ceil_div<i64>(d.batch, kRows);
  for (i64 tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const i64 row0 = d.row_begin + tile * kRows;
    const int rows = tile_rows(kRows, d.row_begin + d.batch - row0);
    i64 xoff[kRows];  // clamped row offsets into x
#pragma unroll
    for (int b = 0; b < kRows; ++b) xoff[b] = (row0 + min(b, rows - 1)) * d.n_in;

    // Stage 1: z[b][i] = Σ_p w1[k][q][p] · x[row0 + b][k·P + p], i = k·Q + q.
    for (int i = threadIdx.x; i < n_mid; i += kThreads) {
      const i64 k = i / d.Q;
      const T* wrow = w1 + static_cast<i64>(i) * d.P;  // w1[k][q][:] starts at (k·Q + q)·P = i·P
      const T* xk = x + k * d.P;
      float acc[kRows];
#pragma unroll
      for (int b = 0; b < kRows; ++b) acc[b] = 0.f;
      for (i64 p = 0; p < d.P; ++p) {
        const float w = to_float(wrow[p]);
#pragma unroll
        for (int b = 0; b < kRows; ++b) acc[b] = fmaf(w, to_float(xk[xoff[b] + p]), acc[b]);
      }
#pragma unroll
      for (int b = 0; b < kRows; ++b) z[b * n_mid + i] = acc[b];
    }
    __syncthreads();

    // Stage 2, one thread per output column o = s·L + l (P_out folded: the store goes straight to
    // column o, so consecutive threads store consecutive columns). Block l reads its input
    // zp[l][r] = z[r·L + l] (P_mid folded into the shared-memory address; consecutive threads read
    // consecutive l: no bank conflicts).
    for (i64 o = threadIdx.x; o < d.n_out; o += kThreads) {
      const i64 s = o / d.L;
      const int l = static_cast<int>(o - s * d.L);
      const T* wrow = w2 + (l * d.S + s) * d.R;  // w2[l][s][:]
      const int L = static_cast<int>(d.L);       // L ≤ n_mid: fits
      float acc[kRows];
#pragma unroll
      for (int b = 0; b < kRows; ++b) acc[b] = 0.f;
      for (int r = 0; r < static_cast<int>(d.R); ++r) {
        const float w = to_float(wrow[r]);
        const int zi = r * L + l;  // < L·R = n_mid
#pragma unroll
        for (int b = 0; b < kRows; ++b) acc[b] = fmaf(w, z[b * n_mid + zi], acc[b]);
      }
#pragma unroll
      for (int b = 0; b < kRows; ++b)
        if (b < rows) y[(row0 + b) * d.n_out + o] = from_float<T>(acc[b]);
    }
    __syncthreads();  // z is rewritten by the next tile
  }
}

// Adjoint (real types): out = v · M, i.e. the stages in reverse with transposed blocks and the
// inverse permutations: v's column s·L + l feeds block l (P_outᵀ), the block-l result at offset r
// goes to intermediate index r·L + l (P_midᵀ), stage 2 reads dz[k·Q + q] contiguously.
template <class T, int kRows>
__global__ void __launch_bounds__(kThreads)
    simt_adjoint_kernel(const T* __restrict__ v, const T* __restrict__ w1, const T* __restrict__ w2,
                        T* __restrict__ out, Dims d) {
  extern __shared__ float z[];
  const int n_mid = static_cast<int>(d.n_mid);
  const i64 ntiles = ceil_div<i64>(d.batch, kRows);
  for (i64 tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const i64 row0 = d.row_begin + tile * kRows;
    const int rows = tile_rows(kRows, d.row_begin + d.batch - row0);
    i64 voff[kRows];
#pragma unroll
    for (int b = 0; b < kRows; ++b) voff[b] = (row0 + min(b, rows - 1)) * d.n_out;

    // Stage 1: dz[b][i] = Σ_s w2[l][s][r] · v[row0 + b][s·L + l] with i = r·L + l. Consecutive
    // threads take consecutive i, i.e. consecutive l: the v reads are coalesced.
    for (int i = threadIdx.x; i < n_mid; i += kThreads) {
      const i64 r = i / d.L;
      const i64 l = i - r * d.L;
      const T* wcol = w2 + l * d.S * d.R + r;  // w2[l][s][r] = wcol[s·R]
      const T* vl = v + l;                      // v[row][s·L + l] = vl[row·n_out + s·L]
      float acc[kRows];
#pragma unroll
      for (int b = 0; b < kRows; ++b) acc[b] = 0.f;
      for (i64 s = 0; s < d.S; ++s) {
        const float w = to_float(wcol[s * d.R]);
#pragma unroll
        for (int b = 0; b < kRows; ++b) acc[b] = fmaf(w, to_float(vl[voff[b] + s * d.L]), acc[b]);
      }
#pragma unroll
      for (int b = 0; b < kRows; ++b) z[b * n_mid + i] = acc[b];
    }
    __syncthreads();

    // Stage 2: out[b][k·P + p] = Σ_q w1[k][q][p] · dz[b][k·Q + q]; one thread per output column
    // (coalesced w1 reads and stores; the dz reads are warp broadcasts).
    for (i64 j = threadIdx.x; j < d.n_in; j += kThreads) {
      const i64 k = j / d.P;
      const i64 p = j - k * d.P;
      const T* wcol = w1 + k * d.Q * d.P + p;  // w1[k][q][p] = wcol[q·P]
      const int zk = static_cast<int>(k * d.Q);  // < n_mid
      float acc[kRows];
#pragma unroll
      for (int b = 0; b < kRows; ++b) acc[b] = 0.f;
      for (int q = 0; q < static_cast<int>(d.Q); ++q) {
        const float w = to_float(wcol[q * d.P]);
#pragma unroll
        for (int b = 0; b < kRows; ++b) acc[b] = fmaf(w, z[b * n_mid + zk + q], acc[b]);
      }
#pragma unroll
      for (int b = 0; b < kRows; ++b)
        if (b < rows) out[(row0 + b) * d.n_in + j] = from_float<T>(acc[b]);
    }
    __syncthreads();
  }
}

// ---- Tensor-core forward (16-bit storage, P, Q, R, S multiples of 16, full 16-row tiles) ---------
//
// Shared memory: [kWarps][16·16] float scratch, then zs, the tile's intermediate in the storage
// type, laid out per second-stage block as the column-major 16 x R WMMA A operand of stage 2:
//   zs[(l·R + r)·16 + b] = z[b][r·L + l]        (b < 16, l < L, r < R; L·R·16 elements)
// Stage 1 computes 16x16 tiles Z_k[b][q] = Σ_p X_k[b][p] · w1[k][q][p] (A = x rows straight from
// global memory, row-major with ld n_in; B = w1[k]ᵀ, i.e. w1[k] read column-major with ld P), and its
// epilogue stores each element at its P_mid position in zs (this is the permutation: there is no
// separate copy pass). Stage 2 computes Y_l[b][s] = Σ_r zs_l[b][r] · w2[l][s][r] (B = w2[l]ᵀ,
// column-major with ld R) and its epilogue stores y[row0 + b][s·L + l] (P_out).
// WMMA pointer rules (checked by plan()): 32-byte aligned x, w1, w2 bases, and every tile offset
// here is a multiple of 16 elements (P, Q, R, S ≡ 0 mod 16), so every fragment address is 32-byte
// aligned; leading dimensions n_in, P, R, 16 are multiples of 8 elements.
template <class T>
__global__ void __launch_bounds__(kThreads)
    tc_forward_kernel(const T* __restrict__ x, const T* __restrict__ w1, const T* __restrict__ w2,
                      T* __restrict__ y, Dims d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // unreachable: plan() picks this kernel only on compute capability >= 8.0
#else
  using namespace nvcuda;
  extern __shared__ __align__(128) unsigned char smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* scratch = reinterpret_cast<float*>(smem) + warp * kScratchFloats;
  T* zs = reinterpret_cast<T*>(smem + kTcScratchBytes);  // kTcScratchBytes is a multiple of 128
  const int Q = static_cast<int>(d.Q), L = static_cast<int>(d.L), R = static_cast<int>(d.R);
  const int q_tiles = Q / kFrag, p_tiles = static_cast<int>(d.P / kFrag);
  const int r_tiles = R / kFrag;
  const i64 s_tiles = d.S / kFrag;
  const int units1 = static_cast<int>(d.K) * q_tiles;  // = n_mid / 16
  const i64 units2 = d.L * s_tiles;                    // = n_out / 16
  const i64 ntiles = d.batch / kTcRows;                // full tiles only (plan() makes batch a multiple)

  for (i64 tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const i64 row0 = d.row_begin + tile * kTcRows;

    // Stage 1: warps take the (k, q-tile) units round-robin.
    for (int u = warp; u < units1; u += kWarps) {
      const int k = u / q_tiles, qt = u % q_tiles;
      wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc;
      wmma::fill_fragment(acc, 0.f);
      const T* xa = x + row0 * d.n_in + static_cast<i64>(k) * d.P;      // X_k: 16 rows, ld n_in
      const T* wb = w1 + (static_cast<i64>(k) * Q + qt * kFrag) * d.P;  // rows qt·16.. of w1[k]
      for (int pt = 0; pt < p_tiles; ++pt) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, T, wmma::col_major> bf;
        wmma::load_matrix_sync(a, xa + pt * kFrag, static_cast<unsigned>(d.n_in));
        wmma::load_matrix_sync(bf, wb + pt * kFrag, static_cast<unsigned>(d.P));
        wmma::mma_sync(acc, a, bf, acc);
      }
      // scratch[qq·16 + b] = Z_k[b][qt·16 + qq] (column-major, so lanes reading consecutive b
      // below read consecutive words).
      wmma::store_matrix_sync(scratch, acc, kFrag, wmma::mem_col_major);
      __syncwarp();
      // P_mid folded into the store address: intermediate i = k·Q + qt·16 + qq goes to block
      // l = i mod L, offset r = i div L, i.e. zs[(l·R + r)·16 + b]. Lanes 0-15 (16-31) write 16
      // consecutive b of one i: two 32-byte runs per store instruction.
      for (int e = lane; e < kScratchFloats; e += 32) {
        const int b = e % kFrag, qq = e / kFrag;
        const int i = k * Q + qt * kFrag + qq;  // < K·Q = n_mid
        const int l = i % L, r = i / L;         // r < R since i < L·R
        zs[(l * R + r) * kFrag + b] = from_float<T>(scratch[qq * kFrag + b]);
      }
      __syncwarp();  // the scratch is overwritten by this warp's next unit
    }
    __syncthreads();  // all of zs written before any warp reads it

    // Stage 2: warps take the (l, s-tile) units round-robin.
    for (i64 u = warp; u < units2; u += kWarps) {
      const int l = static_cast<int>(u / s_tiles);
      const i64 st = u % s_tiles;
      wmma::fragment<wmma::accumulator, kFrag, kFrag, kFrag, float> acc;
      wmma::fill_fragment(acc, 0.f);
      const T* za = zs + l * R * kFrag;                                   // zp_l: 16 x R, col-major, ld 16
      const T* wb = w2 + (static_cast<i64>(l) * d.S + st * kFrag) * R;  // rows st·16.. of w2[l]
      for (int rt = 0; rt < r_tiles; ++rt) {
        wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFrag, T, wmma::col_major> a;
        wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFrag, T, wmma::col_major> bf;
        wmma::load_matrix_sync(a, za + rt * kFrag * kFrag, kFrag);
        wmma::load_matrix_sync(bf, wb + rt * kFrag, static_cast<unsigned>(R));
        wmma::mma_sync(acc, a, bf, acc);
      }
      // scratch[b·16 + ss] = Y_l[b][st·16 + ss] (row-major: lanes below walk ss).
      wmma::store_matrix_sync(scratch, acc, kFrag, wmma::mem_row_major);
      __syncwarp();
      // P_out folded into the store address: block l's output s goes to column s·L + l. Lanes
      // 0-15 write 16 consecutive s of one row (stride L elements).
      for (int e = lane; e < kScratchFloats; e += 32) {
        const int b = e / kFrag, ss = e % kFrag;
        y[(row0 + b) * d.n_out + (st * kFrag + ss) * d.L + l] = from_float<T>(scratch[b * kFrag + ss]);
      }
      __syncwarp();
    }
    __syncthreads();  // zs is rewritten by the next tile
  }
#endif
}

// ---- planning ------------------------------------------------------------------------------------

struct Checked {
  i64 n_in, n_mid, n_out;
};

Checked check_params(const Params& p) {
  if (p.dtype < kF32 || p.dtype > kBF16) throw_value_error("monarch: unknown dtype code ", p.dtype);
  if (p.batch < 0) throw_value_error("monarch: batch must be >= 0, got ", p.batch);
  if (p.K < 1 || p.Q < 1 || p.P < 1 || p.L < 1 || p.S < 1 || p.R < 1)
    throw_value_error("monarch: block sizes must be >= 1, got w1 (", p.K, ", ", p.Q, ", ", p.P, "), w2 (", p.L,
                      ", ", p.S, ", ", p.R, ")");
  Checked c;
  c.n_in = checked_mul(p.K, p.P, "monarch n_in");
  c.n_mid = checked_mul(p.K, p.Q, "monarch K·Q");
  c.n_out = checked_mul(p.L, p.S, "monarch n_out");
  if (checked_mul(p.L, p.R, "monarch L·R") != c.n_mid)
    throw_value_error("monarch: w2 (", p.L, ", ", p.S, ", ", p.R, ") does not match w1 (", p.K, ", ", p.Q, ", ", p.P,
                      "): L·R must equal K·Q");
  (void)checked_mul(c.n_mid, p.P, "monarch w1 size");
  (void)checked_mul(c.n_out, p.R, "monarch w2 size");
  (void)checked_mul(p.batch, c.n_in, "monarch batch·n_in");
  (void)checked_mul(p.batch, c.n_out, "monarch batch·n_out");
  if (p.batch > 0 && (p.in == nullptr || p.w1 == nullptr || p.w2 == nullptr || p.out == nullptr))
    throw_value_error("monarch: null pointer");
  return c;
}

bool aligned32(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 32 == 0; }

// Rows per SIMT tile for `count` batch rows: the smallest power of two >= count, at most 8,
// halved until the float32 intermediate (rows·n_mid·4 bytes) fits; 0 when that leaves fewer than
// min(count rounded up, 4) rows (see kSimtMinRows).
int simt_rows(i64 n_mid, i64 count, std::size_t smem_limit) {
  int want = 1;
  while (want < kSimtMaxRows && want < count) want *= 2;
  int rows = want;
  while (rows >= 1 && static_cast<std::size_t>(rows) * static_cast<std::size_t>(n_mid) * sizeof(float) > smem_limit)
    rows /= 2;
  return rows >= std::min(want, kSimtMinRows) ? rows : 0;
}

std::size_t simt_shared_bytes(int rows, i64 n_mid) {
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(n_mid) * sizeof(float);
}

template <class T, int kRows>
void launch_simt_rows(const Params& p, const Dims& d, cudaStream_t stream) {
  const i64 tiles = ceil_div<i64>(d.batch, kRows);
  const dim3 grid(grid_stride_blocks(tiles));  // blocks loop over the tiles beyond it
  const std::size_t smem = simt_shared_bytes(kRows, d.n_mid);
  if (p.adjoint)
    launch("monarch_simt_adjoint", simt_adjoint_kernel<T, kRows>, grid, dim3(kThreads), smem, stream,
           static_cast<const T*>(p.in), static_cast<const T*>(p.w1), static_cast<const T*>(p.w2),
           static_cast<T*>(p.out), d);
  else
    launch("monarch_simt_forward", simt_forward_kernel<T, kRows>, grid, dim3(kThreads), smem, stream,
           static_cast<const T*>(p.in), static_cast<const T*>(p.w1), static_cast<const T*>(p.w2),
           static_cast<T*>(p.out), d);
}

template <class T>
void launch_simt(const Params& p, const Dims& d, int rows, cudaStream_t stream) {
  switch (rows) {
    case 8: return launch_simt_rows<T, 8>(p, d, stream);
    case 4: return launch_simt_rows<T, 4>(p, d, stream);
    case 2: return launch_simt_rows<T, 2>(p, d, stream);
    case 1: return launch_simt_rows<T, 1>(p, d, stream);
    default: throw CudaError(cudaErrorInvalidValue, "monarch: bad SIMT tile size");
  }
}

template <class T>
void launch_tc(const Params& p, const Dims& d, std::size_t smem, cudaStream_t stream) {
  const i64 tiles = d.batch / kTcRows;
  const dim3 grid(grid_stride_blocks(tiles));  // blocks loop over the tiles beyond it
  launch("monarch_tc_forward", tc_forward_kernel<T>, grid, dim3(kThreads), smem, stream,
         static_cast<const T*>(p.in), static_cast<const T*>(p.w1), static_cast<const T*>(p.w2),
         static_cast<T*>(p.out), d);
}

template <class T>
void run(const Params& p, const Plan& plan, const Dims& all, cudaStream_t stream) {
  Dims d = all;
  if constexpr (!std::is_same_v<T, float>) {  // float storage has no 16x16x16 WMMA (plan() agrees)
    if (plan.kernel == Kernel::kTensorCore) {
      d.batch = plan.tc_rows;
      launch_tc<T>(p, d, plan.shared_bytes, stream);
      // Leftover rows (batch mod 16) go through the SIMT kernel on the same stream; its tile fits
      // whenever the tensor-core tile does (8·n_mid·4 bytes <= 16·n_mid·2 + scratch).
      d.row_begin = plan.tc_rows;
      d.batch = all.batch - plan.tc_rows;
      if (d.batch == 0) return;
      const int rows = simt_rows(d.n_mid, d.batch, device_info().shared_mem_per_block_optin);
      if (rows == 0) throw CudaError(cudaErrorInvalidValue, "monarch: no SIMT tile for the leftover rows");
      launch_simt<T>(p, d, rows, stream);
      return;
    }
  }
  launch_simt<T>(p, d, plan.rows, stream);
}

}  // namespace

Plan plan(const Params& p) {
  const Checked c = check_params(p);
  Plan out;
  if (p.batch == 0) return out;
  const DeviceInfo& dev = device_info();
  const std::size_t limit = dev.shared_mem_per_block_optin;
  const bool sixteen_bit = p.dtype == kF16 || p.dtype == kBF16;
  // WMMA leading dimensions are unsigned 32-bit: n_in (x's row stride) must fit.
  const bool tc_shape = p.P % kFrag == 0 && p.Q % kFrag == 0 && p.R % kFrag == 0 && p.S % kFrag == 0 &&
                        c.n_in <= std::numeric_limits<std::int32_t>::max();
  if (!p.adjoint && sixteen_bit && tc_shape && dev.cc_major >= 8 && p.batch >= kTcRows &&
      aligned32(p.in) && aligned32(p.w1) && aligned32(p.w2)) {
    // 16 rows of the intermediate in the storage type plus the per-warp scratch.
    const std::size_t smem = kTcScratchBytes + static_cast<std::size_t>(kTcRows) *
                                                   static_cast<std::size_t>(c.n_mid) * 2;
    if (smem <= limit) {
      out.kernel = Kernel::kTensorCore;
      out.rows = kTcRows;
      out.shared_bytes = smem;
      out.tc_rows = p.batch / kTcRows * kTcRows;
      return out;
    }
  }
  const int rows = simt_rows(c.n_mid, p.batch, limit);
  if (rows > 0) {
    out.kernel = Kernel::kSimt;
    out.rows = rows;
    out.shared_bytes = simt_shared_bytes(rows, c.n_mid);
  }
  return out;
}

bool multiply(const Params& p, cudaStream_t stream) {
  const Plan pl = plan(p);
  if (p.batch == 0) return true;
  if (pl.kernel == Kernel::kNone) return false;
  Dims d;
  d.batch = p.batch;
  d.row_begin = 0;
  d.n_in = p.K * p.P;
  d.n_mid = p.K * p.Q;
  d.n_out = p.L * p.S;
  d.K = p.K, d.Q = p.Q, d.P = p.P, d.L = p.L, d.S = p.S, d.R = p.R;
  switch (p.dtype) {
    case kF32: run<float>(p, pl, d, stream); break;
    case kF16: run<__half>(p, pl, d, stream); break;
    case kBF16: run<__nv_bfloat16>(p, pl, d, stream); break;
    default: throw CudaError(cudaErrorInvalidValue, "monarch: unknown dtype code");
  }
  return true;
}

}  // namespace monarch
}  // namespace cuda
}  // namespace fastcore
