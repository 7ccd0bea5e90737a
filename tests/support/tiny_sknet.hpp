// A reduced SKNet-26 (the shapes of `--arch sknet26 --planes 4,8,16,32 --base-width 32 --groups 4
// --reduction 4 --min-width 8 --stem-width 8`) with seeded random weights, and bit-exact comparison of
// the engine's results, for the engine tests.
#pragma once

#include <sknet/models/prepared_network.hpp>
#include <sknet/sknet.hpp>

#include <cstring>
#include <string>

namespace sknet_test {

inline sknet::SKNetConfig tiny_sknet26_config() {
  sknet::SKNetConfig c;
  c.layers = {2, 2, 2, 2};
  c.planes = {4, 8, 16, 32};
  c.base_width = 32;
  c.groups = 4;
  c.reduction = 4;
  c.min_width = 8;
  c.stem_width = 8;
  c.num_classes = 10;
  c.paths = 2;
  return c;
}

/// Seeded input in [-1, 1).
inline sknet::Tensor4<float> seeded_input(sknet::Index n, sknet::Index h, sknet::Index w, sknet::Index c, unsigned seed) {
  sknet::Tensor4<float> x(n, h, w, c);
  unsigned s = seed * 2654435761u + 1;
  for (sknet::Index i = 0; i < x.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    x.data()[i] = float(s >> 8) / float(1u << 24) * 2.0f - 1.0f;
  }
  return x;
}

/// Logits and attention maps of one forward.
struct EngineResult {
  sknet::Tensor2<float> logits;
  sknet::AttentionMaps<float> attention;
};

/// Same dimensions and the same bits everywhere (names of the attention maps included).
inline bool bit_equal(const EngineResult& a, const EngineResult& b) {
  if (a.logits.dimensions() != b.logits.dimensions() || a.attention.size() != b.attention.size()) return false;
  if (std::memcmp(a.logits.data(), b.logits.data(), sizeof(float) * std::size_t(a.logits.size())) != 0) return false;
  for (std::size_t u = 0; u < a.attention.size(); ++u) {
    const auto& x = a.attention[u];
    const auto& y = b.attention[u];
    if (x.first != y.first || x.second.dimensions() != y.second.dimensions()) return false;
    if (std::memcmp(x.second.data(), y.second.data(), sizeof(float) * std::size_t(x.second.size())) != 0) return false;
  }
  return true;
}

}  // namespace sknet_test
