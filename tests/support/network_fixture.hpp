// The network config a PyTorch fixture was generated from, read off its safetensors metadata
// (tools/gen_net_fixtures.py): the fields every ResNeXt-layout family shares.
#pragma once

#include <catch2/catch.hpp>
#include <sknet/models/network.hpp>

#include <algorithm>
#include <cmath>
#include <sknet/state_dict.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "compare.hpp"
#include "safetensors_fixture.hpp"

namespace sknet_test {

/// "1,2,3" -> {1, 2, 3}.
inline std::vector<sknet::Index> int_list(const std::string& text) {
  std::vector<sknet::Index> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

/// Depths, widths, strides, groups, classes, input channels and stem of fixture `f`; the SK fields
/// (paths, reduction, min_width) keep their defaults.
inline sknet::SKNetConfig network_config_from(const Fixture& f) {
  sknet::SKNetConfig c;
  c.layers = int_list(f.meta("layers"));
  c.planes = int_list(f.meta("planes"));
  c.strides = int_list(f.meta("strides"));
  c.groups = f.meta_int("groups");
  c.base_width = f.meta_int("base_width");
  c.num_classes = f.meta_int("num_classes");
  c.in_channels = f.meta_int("in_chans");
  c.stem_width = f.meta_int("stem_width");
  c.stem = f.meta("stem") == "small" ? sknet::Stem::small : sknet::Stem::imagenet;
  return c;
}

/// L-infinity error of the logits relative to max |logit| (the acceptance measure of the fixtures);
/// `actual` holds as many values as `expected`.
inline double relative_linf(const float* actual, const sknet::NamedTensor<float>& expected) {
  return relative_linf(actual, expected.values.data(), expected.values.size());  // compare.hpp
}
inline double relative_linf(const sknet::Tensor2<float>& actual, const sknet::NamedTensor<float>& expected) {
  return relative_linf(actual.data(), expected);
}

/// The acceptance checks of a network fixture: logits within 1e-4 of max |logit|, every attention map
/// (by unit name) within 1e-5 absolute.
inline void check_network_outputs(const sknet::Tensor2<float>& logits, const sknet::AttentionMaps<float>& attention,
                                  const sknet::NamedTensor<float>& want_logits,
                                  const sknet::StateDict<float>& want_attention, const std::string& what) {
  INFO(what);
  REQUIRE(std::vector<sknet::Index>{logits.dimension(0), logits.dimension(1)} == want_logits.shape);
  const double rel = relative_linf(logits, want_logits);
  INFO("logits L-inf error / max |logit| = " << rel);
  CHECK(rel <= 1e-4);
  REQUIRE(attention.size() == want_attention.size());
  for (const auto& [unit, a] : attention) {
    const sknet::NamedTensor<float>& want = want_attention.at(unit);
    REQUIRE(std::vector<sknet::Index>(a.dimensions().begin(), a.dimensions().end()) == want.shape);
    SKNET_CHECK_CLOSE(a, want.values, (Tolerance{1e-5, 0.0}), what + " attention " + unit);
  }
}

}  // namespace sknet_test
