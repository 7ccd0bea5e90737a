// sknet kernels: AlignedArray, a 64-byte aligned heap array of a trivial type (packed weights, rings of
// input rows, workspaces): whole cache lines and aligned vector loads. Arrays of 2 MB and more start on
// a 2 MB boundary, span whole 2 MB pages and ask Linux for transparent huge pages.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sknet {
namespace kernels {

/// The size and alignment of a huge page (x86-64). At batch 1 a network's large packed weights (the
/// 2-8 MB 1x1 convolutions of stages 3 and 4) stream from DRAM once per forward; with 4 KB pages each
/// of their pages also costs a TLB miss (ResNeXt-50's 1x1s at 7x7 with cold weights: 5% slower).
inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

struct AlignedDelete {
  std::size_t alignment = 64;  ///< what the array was allocated with
  template <class T>
  void operator()(T* p) const noexcept {
    ::operator delete[](p, std::align_val_t(alignment));
  }
};

template <class T>
using AlignedArray = std::unique_ptr<T[], AlignedDelete>;

/// max(n, 1) uninitialised values of T, 64-byte aligned (from 2 MB on: whole huge pages, advised as
/// such on Linux, where the kernel's transparent_hugepage setting decides); std::bad_alloc when memory
/// runs out.
template <class T>
AlignedArray<T> allocate_aligned(std::size_t n) {
  static_assert(std::is_trivial<T>::value, "AlignedArray holds trivial values only");
  n = std::max<std::size_t>(n, 1);
  if (n > std::size_t(-1) / sizeof(T)) throw std::bad_alloc();
  const std::size_t bytes = sizeof(T) * n;
  if (bytes < kHugePageBytes)
    return AlignedArray<T>(static_cast<T*>(::operator new[](bytes, std::align_val_t(64))), AlignedDelete{64});
  if (bytes > std::size_t(-1) - kHugePageBytes) throw std::bad_alloc();
  const std::size_t pages = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = ::operator new[](pages, std::align_val_t(kHugePageBytes));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  ::madvise(p, pages, MADV_HUGEPAGE);  // a hint: failure only means 4 KB pages
#endif
  return AlignedArray<T>(static_cast<T*>(p), AlignedDelete{kHugePageBytes});
}

}  // namespace kernels
}  // namespace sknet
