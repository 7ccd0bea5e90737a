// sknet kernels: AlignedArray, a 64-byte aligned heap array of a trivial type (packed weights, rings of
// input rows, workspaces): whole cache lines and aligned vector loads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace sknet {
namespace kernels {

struct AlignedDelete {
  template <class T>
  void operator()(T* p) const noexcept {
    ::operator delete[](p, std::align_val_t(64));
  }
};

template <class T>
using AlignedArray = std::unique_ptr<T[], AlignedDelete>;

/// max(n, 1) uninitialised values of T, 64-byte aligned; std::bad_alloc when memory runs out.
template <class T>
AlignedArray<T> allocate_aligned(std::size_t n) {
  static_assert(std::is_trivial<T>::value, "AlignedArray holds trivial values only");
  return AlignedArray<T>(static_cast<T*>(::operator new[](sizeof(T) * std::max<std::size_t>(n, 1), std::align_val_t(64))));
}

}  // namespace kernels
}  // namespace sknet
