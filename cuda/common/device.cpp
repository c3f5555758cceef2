#include "cuda/common/device.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda/common/check.hpp"

namespace fastcore {
namespace cuda {

int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;  // cudaErrorNoDevice, cudaErrorInsufficientDriver, ...: no usable GPU
  }
  return n;
}

int current_device() {
  int d = 0;
  FASTCORE_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

const DeviceInfo& device_info(int device) {
  static std::mutex mutex;
  static std::vector<std::unique_ptr<DeviceInfo>> cache;
  if (device < 0) device = current_device();
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.empty()) {
    int n = 0;
    FASTCORE_CUDA_CHECK(cudaGetDeviceCount(&n));
    cache.resize(static_cast<std::size_t>(n));
  }
  if (device >= static_cast<int>(cache.size())) {
    check(cudaErrorInvalidDevice, "device_info", __FILE__, __LINE__);
  }
  auto& slot = cache[static_cast<std::size_t>(device)];
  if (!slot) {
    cudaDeviceProp p{};
    FASTCORE_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    auto info = std::make_unique<DeviceInfo>();
    info->index = device;
    info->name = p.name;
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->sm_count = p.multiProcessorCount;
    info->max_threads_per_block = p.maxThreadsPerBlock;
    info->max_threads_per_sm = p.maxThreadsPerMultiProcessor;
    info->warp_size = p.warpSize;
    info->shared_mem_per_block = p.sharedMemPerBlock;
    info->shared_mem_per_block_optin = p.sharedMemPerBlockOptin;
    info->shared_mem_per_sm = p.sharedMemPerMultiprocessor;
    info->l2_cache_bytes = static_cast<std::size_t>(p.l2CacheSize);
    info->global_mem_bytes = p.totalGlobalMem;
    info->max_grid_y = p.maxGridSize[1];
    info->max_grid_z = p.maxGridSize[2];
    slot = std::move(info);
  }
  return *slot;
}

cudaFuncAttributes cached_kernel_attributes(const void* kernel, const char* name) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, cudaFuncAttributes> cache;
  const std::pair<const void*, int> key{kernel, current_device()};
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto found = cache.find(key);
    if (found != cache.end()) return found->second;
  }
  cudaFuncAttributes attributes{};
  check(cudaFuncGetAttributes(&attributes, kernel), name, __FILE__, __LINE__);
  std::lock_guard<std::mutex> lock(mutex);
  cache.emplace(key, attributes);  // a racing thread's equal entry may already be there
  return attributes;
}

int runtime_version() {
  int v = 0;
  FASTCORE_CUDA_CHECK(cudaRuntimeGetVersion(&v));
  return v;
}

int driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return v;
}

}  // namespace cuda
}  // namespace fastcore
