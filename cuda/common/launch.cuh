// Kernel launch helper for .cu files: every launch goes through launch(), which
//  - does nothing for an empty grid (a zero-sized problem is not an error),
//  - checks the grid and block against the device's and (for blocks over 256 threads) the
//    kernel's limits and raises instead of failing later,
//  - opts in to more than 48 KiB of dynamic shared memory when the kernel asks for it,
//  - launches on the caller's stream (the current CuPy stream, passed down from Python),
//  - checks the launch with cudaGetLastError and throws CudaError naming the kernel.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>

#include "cuda/common/check.hpp"
#include "cuda/common/device.hpp"

namespace fastcore {
namespace cuda {

// ceil(a / b) for positive b.
template <class T>
__host__ __device__ constexpr T ceil_div(T a, T b) {
  return (a + b - 1) / b;
}

// Blocks to launch for a grid-stride kernel with `work_blocks` blocks' worth of work: all of them
// up to 2^30 (the kernel's loop covers the rest), 0 when there is no work (launch() then skips).
inline unsigned grid_stride_blocks(std::int64_t work_blocks) {
  constexpr std::int64_t kMaxBlocks = std::int64_t(1) << 30;
  return static_cast<unsigned>(work_blocks <= 0 ? 0 : work_blocks < kMaxBlocks ? work_blocks : kMaxBlocks);
}

// The kernel's compiled limits: maxThreadsPerBlock (its __launch_bounds__ and register count)
// and sharedSizeBytes (its static shared memory); cached (device.hpp).
template <class... KernelArgs>
cudaFuncAttributes kernel_attributes(const char* name, void (*kernel)(KernelArgs...)) {
  return cached_kernel_attributes(reinterpret_cast<const void*>(kernel), name);
}

// The most dynamic shared memory a kernel with these attributes can be launched with on `dev`:
// static shared memory counts against the same per-block opt-in limit.
inline std::size_t dynamic_shared_limit(const cudaFuncAttributes& attributes, const DeviceInfo& dev) {
  return dev.shared_mem_per_block_optin > attributes.sharedSizeBytes
             ? dev.shared_mem_per_block_optin - attributes.sharedSizeBytes
             : 0;
}

// The same for a kernel on the current device (for callers choosing between schedules).
template <class... KernelArgs>
std::size_t max_dynamic_shared_bytes(const char* name, void (*kernel)(KernelArgs...)) {
  return dynamic_shared_limit(kernel_attributes(name, kernel), device_info());
}

template <class... KernelArgs, class... Args>
void launch(const char* name, void (*kernel)(KernelArgs...), dim3 grid, dim3 block,
            std::size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  const DeviceInfo& dev = device_info();
  if (grid.y > static_cast<unsigned>(dev.max_grid_y) || grid.z > static_cast<unsigned>(dev.max_grid_z)) {
    throw CudaError(cudaErrorInvalidConfiguration,
                    std::string("launch of ") + name + ": grid.y/grid.z exceed the device limit");
  }
  const unsigned threads = block.x * block.y * block.z;
  if (threads > static_cast<unsigned>(dev.max_threads_per_block)) {
    throw CudaError(cudaErrorInvalidConfiguration,
                    std::string("launch of ") + name + ": block has too many threads");
  }
  // Large blocks and large shared memory depend on the kernel's compiled limits (one query).
  const bool big_block = threads > 256, big_shared = shared_bytes > dev.shared_mem_per_block;
  if (big_block || big_shared) {
    const cudaFuncAttributes attributes = kernel_attributes(name, kernel);
    // A large block may need more registers than an SM has (cudaErrorLaunchOutOfResources at
    // launch): the kernel's thread limit says so first.
    if (threads > static_cast<unsigned>(attributes.maxThreadsPerBlock)) {
      throw CudaError(cudaErrorInvalidConfiguration,
                      std::string("launch of ") + name + ": block exceeds the kernel's thread limit (" +
                          std::to_string(attributes.maxThreadsPerBlock) + ")");
    }
    if (big_shared) {
      // Above the default 48 KiB the kernel must opt in.
      const std::size_t dynamic_limit = dynamic_shared_limit(attributes, dev);
      if (shared_bytes > dynamic_limit) {
        throw CudaError(cudaErrorInvalidConfiguration,
                        std::string("launch of ") + name + ": needs more shared memory than the device has");
      }
      // Raise the kernel's limit to that maximum, not to this launch's size: the attribute is per
      // kernel, so with several host threads launching the same kernel at different sizes, a
      // per-launch value could be lowered by one thread just before another thread's launch.
      check(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic_limit)),
            name, __FILE__, __LINE__);
    }
  }
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  check(cudaGetLastError(), name, __FILE__, __LINE__);
}

}  // namespace cuda
}  // namespace fastcore
