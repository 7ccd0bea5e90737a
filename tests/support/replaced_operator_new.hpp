// Replaces every form of the global operator new and delete for a test executable (include it in
// exactly one translation unit): each allocation first calls the test's hook
//   void sknet_test_on_allocation(std::size_t size, std::size_t align);
// (which may count, hold the thread or throw std::bad_alloc), then takes memory from malloc /
// aligned_alloc. Every form is replaced, so every delete matches its new (AddressSanitizer checks).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

void sknet_test_on_allocation(std::size_t size, std::size_t align);

namespace sknet_test {
inline void* replaced_allocate(std::size_t size, std::size_t align) {
  sknet_test_on_allocation(size, align);
  if (size == 0) size = 1;
  void* p = align <= alignof(std::max_align_t) ? std::malloc(size)
                                               : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (!p) throw std::bad_alloc();
  return p;
}
inline void* replaced_allocate_nothrow(std::size_t size) noexcept {
  try {
    return replaced_allocate(size, 0);
  } catch (...) {
    return nullptr;
  }
}
}  // namespace sknet_test

void* operator new(std::size_t size) { return sknet_test::replaced_allocate(size, 0); }
void* operator new[](std::size_t size) { return sknet_test::replaced_allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return sknet_test::replaced_allocate(size, std::size_t(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return sknet_test::replaced_allocate(size, std::size_t(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return sknet_test::replaced_allocate_nothrow(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return sknet_test::replaced_allocate_nothrow(size); }
// Each delete frees what the matching new took from malloc / aligned_alloc; g++ 12's
// -Wmismatched-new-delete (seen in the tsan build) cannot see that and warns on the free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
