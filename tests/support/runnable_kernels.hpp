// The kernels of a kernel-list table that this CPU runs; the others are reported as skipped (a
// Catch2 WARN naming each), so a sweep on a CPU without an ISA says what it did not test.
#pragma once

#include <catch2/catch.hpp>

#include <vector>

namespace sknet_test {

template <class Info>
std::vector<const Info*> runnable_kernels(const Info* list, int count) {
  std::vector<const Info*> v;
  for (int i = 0; i < count; ++i) {
    if (list[i].runs_here())
      v.push_back(&list[i]);
    else
      WARN("skipped: this CPU does not run " << list[i].name);
  }
  return v;
}

}  // namespace sknet_test
