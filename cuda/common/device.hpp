// Cached device properties (cudaGetDeviceProperties is slow: ~ms). Host code only.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace fastcore {
namespace cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  int max_threads_per_block = 0;
  int max_threads_per_sm = 0;
  int warp_size = 32;
  std::size_t shared_mem_per_block = 0;        // default limit (48 KiB)
  std::size_t shared_mem_per_block_optin = 0;  // with cudaFuncAttributeMaxDynamicSharedMemorySize
  std::size_t shared_mem_per_sm = 0;
  std::size_t l2_cache_bytes = 0;
  std::size_t global_mem_bytes = 0;
  int max_grid_y = 65535, max_grid_z = 65535;
};

// Number of visible devices; 0 when there is no device or no (or too old a) driver.
int device_count();
// The device current on this host thread.
int current_device();
// Properties of `device` (the current one when -1), cached after the first query.
const DeviceInfo& device_info(int device = -1);
int runtime_version();

// The stream handle Python passes (cupy.cuda.get_current_stream().ptr; 0 = the legacy default
// stream) as a cudaStream_t. Every launcher takes the caller's stream this way.
inline cudaStream_t stream_from_handle(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

int driver_version();  // 0 when no driver is installed

// cudaFuncGetAttributes of `kernel` (a __global__ function's address) on the current device,
// cached per (kernel, device) after the first query: the launchers ask before every large launch,
// and the query costs microseconds. `name` names the kernel in a CudaError.
cudaFuncAttributes cached_kernel_attributes(const void* kernel, const char* name);

}  // namespace cuda
}  // namespace fastcore
