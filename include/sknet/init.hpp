// sknet: deterministic random initialisation, for demos, benchmarks and tests without a checkpoint.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "sknet/parameters.hpp"

namespace sknet {

namespace detail {
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace detail

/// Fills every parameter of `layer` from a seeded generator:
///  - convolution / linear weights (rank >= 2): uniform in +-sqrt(3 / fan_in) (unit variance gain);
///  - biases: uniform in +-0.1;
///  - BN (rank-1 "weight"): 0.5..1.5, running_mean N(0, 0.1), running_var 0.5..2.0,
///    so the normalisation is non-trivial.
template <class Scalar, class Layer>
void randomize(Layer& layer, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  std::normal_distribution<double> normal(0.0, 0.1);
  layer.visit_parameters("", [&](ParameterRef<Scalar> p) {
    const Index n = p.size();
    if (p.shape.size() >= 2) {
      const double bound = std::sqrt(3.0 / double(n / p.shape[0]));
      for (Index i = 0; i < n; ++i) p.data[i] = static_cast<Scalar>(uniform(-bound, bound));
    } else if (detail::ends_with(p.name, "running_var")) {
      for (Index i = 0; i < n; ++i) p.data[i] = static_cast<Scalar>(uniform(0.5, 2.0));
    } else if (detail::ends_with(p.name, "running_mean")) {
      for (Index i = 0; i < n; ++i) p.data[i] = static_cast<Scalar>(normal(rng));
    } else if (detail::ends_with(p.name, "weight")) {
      for (Index i = 0; i < n; ++i) p.data[i] = static_cast<Scalar>(uniform(0.5, 1.5));
    } else {
      for (Index i = 0; i < n; ++i) p.data[i] = static_cast<Scalar>(uniform(-0.1, 0.1));
    }
  });
}

}  // namespace sknet
