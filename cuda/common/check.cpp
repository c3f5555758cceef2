#include "cuda/common/check.hpp"

#include <sstream>

namespace fastcore {
namespace cuda {

std::string describe_error(cudaError_t code, const char* what, const char* file, int line) {
  std::ostringstream s;
  s << "CUDA error " << cudaGetErrorName(code) << " (" << cudaGetErrorString(code) << ") in "
    << what;
  if (file) s << " at " << file << ":" << line;
  return s.str();
}

}  // namespace cuda
}  // namespace fastcore
