// Per-thread scratch buffers that persist between calls: a fresh large std::vector per tile
// would be a fresh mmap and page faults on every call. `slot` tells the buffers one kernel uses
// at the same time apart; buffers of different element types are distinct. A pointer stays
// valid until the same thread asks the same (type, slot) for a larger size.
#pragma once

#include <cstddef>
#include <vector>

#include "common/errors.hpp"

namespace fastcore {
// Internal linkage on purpose: this header is included by per-ISA translation units
// (*.simd.cpp, built with -mavx2/-mavx512f) and baseline ones; one shared inline definition
// could be the AVX-512 build's copy at link time and then run on a CPU without AVX-512.
namespace {

constexpr int kScratchSlots = 4;

template <class E>
E* scratch(int slot, std::size_t size) {
  FASTCORE_CHECK(slot >= 0 && slot < kScratchSlots, "scratch: slot out of range");
  thread_local std::vector<E> buffers[kScratchSlots];
  auto& b = buffers[slot];
  if (b.size() < size) b.resize(size);
  return b.data();
}

}  // namespace
}  // namespace fastcore
