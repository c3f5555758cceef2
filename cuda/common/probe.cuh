// Device probes used by benchmarks and tests: a vectorised device-to-device copy (the bandwidth
// floor for memory-bound kernels; cudaMemcpy can use copy engines with different behaviour).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace fastcore {
namespace cuda {

// dst[0:nbytes] = src[0:nbytes] with a grid-stride kernel and 16-byte accesses when aligned.
void copy_bytes(const void* src, void* dst, std::size_t nbytes, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastcore
