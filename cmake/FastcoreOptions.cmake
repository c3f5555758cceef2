# Build options. Each can be given as an environment variable (handy for `pip install .` and CI)
# or as a CMake cache variable
#   pip install . -Ccmake.define.FASTCORE_CUDA=ON
# A set environment variable wins over the cache, so re-running a build in a persistent build
# directory with another FASTCORE_CUDA=... takes effect.

function(fastcore_option name default doc)
  if(DEFINED ENV{${name}} AND NOT "$ENV{${name}}" STREQUAL "")
    set(value "$ENV{${name}}")
  elseif(DEFINED ${name})
    set(value "${${name}}")
  else()
    set(value "${default}")
  endif()
  set(${name} "${value}" CACHE STRING "${doc}" FORCE)
endfunction()

fastcore_option(FASTCORE_CUDA AUTO "Build fastcore._cuda: AUTO (when nvcc is found), ON (required), OFF")
fastcore_option(FASTCORE_NATIVE OFF "Compile for the build machine (-march=native); local benchmarking only")
# Explicit architectures, never 'native': SASS for Ampere (80, 86), Ada (89) and Hopper (90),
# plus PTX for 90 so newer GPUs JIT-compile it. CI may pass a single one (e.g. 90) to save time.
fastcore_option(FASTCORE_CUDA_ARCHITECTURES "80-real;86-real;89-real;90-real;90-virtual"
                "CUDA architectures for fastcore._cuda (CMake CUDA_ARCHITECTURES syntax)")

# Sanitizers for the CPU module, e.g. "address,undefined" (CI's sanitizer job). Empty: none.
fastcore_option(FASTCORE_SANITIZE "" "Build fastcore._cpu with -fsanitize=<list> (e.g. address,undefined)")

string(TOUPPER "${FASTCORE_CUDA}" FASTCORE_CUDA)
if(NOT FASTCORE_CUDA MATCHES "^(AUTO|ON|OFF|TRUE|FALSE|1|0|YES|NO)$")
  message(FATAL_ERROR "FASTCORE_CUDA must be AUTO, ON or OFF (got '${FASTCORE_CUDA}')")
endif()
if(FASTCORE_CUDA_ARCHITECTURES MATCHES "native|all")
  message(FATAL_ERROR "FASTCORE_CUDA_ARCHITECTURES must be an explicit list (got '${FASTCORE_CUDA_ARCHITECTURES}')")
endif()

set(FASTCORE_BUILD_CUDA OFF)
if(FASTCORE_CUDA STREQUAL "AUTO")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(FASTCORE_BUILD_CUDA ON)
  else()
    message(STATUS "fastcore: nvcc not found, building without fastcore._cuda")
  endif()
elseif(FASTCORE_CUDA MATCHES "^(ON|TRUE|1|YES)$")
  include(CheckLanguage)
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "FASTCORE_CUDA=ON but no CUDA compiler (nvcc) was found. "
                        "Put nvcc on PATH or set CUDACXX, or build with FASTCORE_CUDA=OFF.")
  endif()
  set(FASTCORE_BUILD_CUDA ON)
endif()
if(FASTCORE_BUILD_CUDA)
  set(CMAKE_CUDA_ARCHITECTURES "${FASTCORE_CUDA_ARCHITECTURES}")
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
endif()
