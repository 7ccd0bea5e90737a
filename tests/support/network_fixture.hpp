// The network config a PyTorch fixture was generated from, read off its safetensors metadata
// (tools/gen_net_fixtures.py): the fields every ResNeXt-layout family shares.
#pragma once

#include <sknet/models/network_plan.hpp>

#include <algorithm>
#include <cmath>
#include <sknet/state_dict.hpp>
#include <sstream>
#include <string>
#include <vector>

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
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < expected.values.size(); ++i) {
    err = std::max(err, std::fabs(double(actual[i]) - double(expected.values[i])));
    scale = std::max(scale, std::fabs(double(expected.values[i])));
  }
  return err / scale;
}
inline double relative_linf(const sknet::Tensor2<float>& actual, const sknet::NamedTensor<float>& expected) {
  return relative_linf(actual.data(), expected);
}

}  // namespace sknet_test
