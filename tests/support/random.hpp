// Seeded random test data shared by the tests.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace sknet_test {

/// n floats drawn uniformly from [lo, hi) by std::mt19937(seed), in order (the same values on every run
/// and platform with the same standard library).
inline std::vector<float> uniform_floats(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

}  // namespace sknet_test
