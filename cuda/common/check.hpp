// CUDA error checking for host code (.cu and .cpp). Every runtime call and every launch is
// checked; a failure becomes fastcore::CudaError (a std::runtime_error), which the _cuda module
// exposes to Python as fastcore.CudaError (a RuntimeError) carrying CUDA's own error name and
// string plus the call that failed.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace fastcore {
namespace cuda {

struct CudaError : std::runtime_error {
  CudaError(cudaError_t code, const std::string& message)
      : std::runtime_error(message), code(code) {}
  cudaError_t code;
};

// "CUDA error cudaErrorMemoryAllocation (out of memory) in <what> at file:line"
std::string describe_error(cudaError_t code, const char* what, const char* file, int line);

inline void check(cudaError_t code, const char* what, const char* file, int line) {
  if (code != cudaSuccess) {
    (void)cudaGetLastError();  // clear a non-sticky error so later calls start clean
    throw CudaError(code, describe_error(code, what, file, line));
  }
}

}  // namespace cuda
}  // namespace fastcore

#define FASTCORE_CUDA_CHECK(expr) ::fastcore::cuda::check((expr), #expr, __FILE__, __LINE__)
