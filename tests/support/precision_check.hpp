// The check every reduced-precision engine test shares: a network prepared at a precision, for every
// ISA this CPU runs and 1 and 2 threads, against the float reference network's logits and attention.
#pragma once

#include <catch2/catch.hpp>

#include <sknet/fast.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "support/compare.hpp"

namespace sknet_test {

/// What a reduced-precision forward must stay within: max |logit error| / max |logit|, and the
/// largest absolute attention error.
struct PrecisionBounds {
  double logits;
  double attention;
};

/// Prepares `net` at `precision` (int8: with `ranges`) for every ISA and 1, 2 threads, runs x and checks
/// the logits and attention against the reference's `want` and `want_attention` within `bounds`, and
/// that the result differs from float at all (it really ran at that precision).
template <class Net>
void check_precision(const Net& net, const sknet::Tensor4<float>& x, const sknet::Tensor2<float>& want,
                     const sknet::AttentionMaps<float>& want_attention, sknet::kernels::Precision precision,
                     const std::shared_ptr<const sknet::ActivationRanges>& ranges, PrecisionBounds bounds,
                     const std::string& what) {
  using namespace sknet;
  for (int isa = 0; isa <= int(kernels::cpu_isa()); ++isa)
    for (int threads : {1, 2}) {
      const PreparedNetwork fast = prepare(net, PrepareOptions(threads, false, kernels::Isa(isa), precision, ranges));
      REQUIRE(fast.precision() == precision);
      const Tensor2<float> got = fast.forward(x);
      const double rel = relative_linf(got.data(), want.data(), std::size_t(want.size()));
      INFO(what << ", " << kernels::precision_name(precision) << ", " << kernels::isa_name(kernels::Isa(isa))
                << ", threads " << threads << ", batch " << x.dimension(0) << ": logits error / max |logit| = " << rel);
      CHECK(rel <= bounds.logits);
      CHECK(rel > 0.0);
      REQUIRE(fast.attention_maps().size() == want_attention.size());
      const auto worst = worst_difference(fast.attention_maps(), want_attention);
      INFO(worst.second << ": attention error " << worst.first);
      CHECK(worst.first <= bounds.attention);
    }
}

/// A NaN in image 1 of a batch of 2 (33x33, C channels) gives that image NaN logits and image 0 finite
/// ones.
inline void check_nan_propagation(const sknet::PreparedNetwork& fast, sknet::Index channels) {
  sknet::Tensor4<float> x(2, 33, 33, channels);
  x.setConstant(0.25f);
  x(1, 16, 16, channels - 1) = std::numeric_limits<float>::quiet_NaN();
  const sknet::Tensor2<float> y = fast.forward(x);
  for (sknet::Index k = 0; k < y.dimension(1); ++k) {
    CHECK(std::isfinite(y(0, k)));
    CHECK(std::isnan(y(1, k)));
  }
}

}  // namespace sknet_test
