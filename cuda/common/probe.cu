#include "cuda/common/launch.cuh"
#include "cuda/common/probe.cuh"
#include "cuda/common/vec.cuh"

namespace fastcore {
namespace cuda {
namespace {

// 16-byte packs for the aligned bulk, then the byte tail. Grid-stride so any size works.
__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, std::size_t n_packs,
                            const unsigned char* __restrict__ src_tail, unsigned char* __restrict__ dst_tail,
                            std::size_t n_tail) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n_packs; i += stride)
    dst[i] = src[i];
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n_tail; i += stride)
    dst_tail[i] = src_tail[i];
}

__global__ void copy_bytes_kernel(const unsigned char* __restrict__ src, unsigned char* __restrict__ dst,
                                  std::size_t n) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    dst[i] = src[i];
}

}  // namespace

void copy_bytes(const void* src, void* dst, std::size_t nbytes, cudaStream_t stream) {
  if (nbytes == 0) return;
  const DeviceInfo& dev = device_info();
  const unsigned block = 256;
  // Enough blocks to fill every SM several times over; grid-stride covers the rest.
  const std::size_t max_blocks = static_cast<std::size_t>(dev.sm_count) * 8;
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  if (is_pack_aligned<unsigned char, 16>(s) && is_pack_aligned<unsigned char, 16>(d)) {
    const std::size_t n_packs = nbytes / 16, n_tail = nbytes % 16;
    const std::size_t blocks = std::min(max_blocks, std::max<std::size_t>(1, ceil_div<std::size_t>(n_packs, block)));
    launch("copy_kernel", copy_kernel, dim3(static_cast<unsigned>(blocks)), dim3(block), 0, stream,
           reinterpret_cast<const uint4*>(s), reinterpret_cast<uint4*>(d), n_packs,
           s + n_packs * 16, d + n_packs * 16, n_tail);
  } else {
    const std::size_t blocks = std::min(max_blocks, ceil_div<std::size_t>(nbytes, block));
    launch("copy_bytes_kernel", copy_bytes_kernel, dim3(static_cast<unsigned>(blocks)), dim3(block), 0,
           stream, s, d, nbytes);
  }
}

}  // namespace cuda
}  // namespace fastcore
