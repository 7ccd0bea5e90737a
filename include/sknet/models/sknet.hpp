// sknet: SKNet networks (ResNeXt bottlenecks with SK convolutions) as reference modules: the Network
// of their plan (models/network_plan.hpp) with SKNet's accessors.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sknet/models/network.hpp"
#include "sknet/ops/conv_bn.hpp"

namespace sknet {

/// The learnable parameters of the SKNet `config` with `paths` SK paths, from the options alone
/// (nothing built). Throws ConfigError naming the field when the count overflows.
inline Index sknet_parameter_count(const SKNetConfig& config, Index paths) {
  return sknet_plan(config, paths).parameters();
}

/// Per-layer output shapes, parameters and multiply-adds of the SKNet `config` with `paths` SK
/// paths on an N x H x W input, from the shapes alone (NetworkPlan::summary).
inline NetworkSummary summarize_sknet(const SKNetConfig& config, Index paths, Index height, Index width,
                                      Index batch = 1) {
  return sknet_plan(config, paths).summary(height, width, batch);
}

/// An SKNet with M paths in every SK convolution: the Network of sknet_plan(config, M) whose blocks
/// are SKUnit<Scalar, M>, with the attention of the last forward kept by name. Input NHWC
/// [N, H, W, in_channels] (or NCHW through forward_nchw); output logits [N, num_classes]. Parameter
/// names follow timm's skresnext50_32x4d: conv1.weight, bn1.*, layer{s}.{u}.<SKUnit names>, fc.weight,
/// fc.bias.
template <class Scalar, int M = 2>
class SKNet : public Network<Scalar, M> {
  using Base = Network<Scalar, M>;

 public:
  explicit SKNet(const SKNetConfig& config) : Base(sknet_plan(validated(config), M), "SKNet") {}

  /// Throws ConfigError unless `config` describes an SKNet with M paths whose parameters fit
  /// SKNetConfig::kMaxParameters (checked before anything is allocated).
  static void validate_config(const SKNetConfig& config) {
    config.validate("SKNet");
    detail::require<ConfigError>(config.paths == 0 || config.paths == M, "SKNet",
                                 "paths (M, fixed by the template argument)", M, config.paths);
    detail::require<ConfigError>(config.block == BlockKind::bottleneck, "SKNet", "block kind", "bottleneck", "basic");
    sknet_plan(config, M).check_buildable();
  }

  /// The classifier of `config`.
  static LinearOptions head_options(const SKNetConfig& c) { return sknet_head_options(c); }
  /// The network plan of `config` (sknet_plan with M paths).
  static NetworkPlan plan(const SKNetConfig& config) { return sknet_plan(config, M); }
  using Base::plan;

  bool has_max_pool() const { return this->stem().pool().has_value(); }
  std::size_t num_units() const { return this->num_blocks(); }
  SKUnit<Scalar, M>& unit(std::size_t i) { return std::get<0>(this->block(i)); }
  const SKUnit<Scalar, M>& unit(std::size_t i) const { return std::get<0>(this->block(i)); }
  std::vector<std::string> unit_names() const {
    std::vector<std::string> names;
    for (const BlockPlan& b : this->plan().blocks) names.push_back(b.name);
    return names;
  }

  using Base::forward;
  /// As Network::forward, keeping the attention maps for attention() / attention_maps().
  Tensor2<Scalar> forward(const ConstTensorMap4<Scalar>& input) { return Base::forward(input, &attention_); }
  Tensor2<Scalar> forward(const Tensor4<Scalar>& input) { return Base::forward(view(input), &attention_); }
  /// PyTorch-ordered input [N, C, H, W] (converted once at the boundary).
  Tensor2<Scalar> forward_nchw(const ConstTensorMap4<Scalar>& input) { return forward(to_nhwc<Scalar>(input)); }

  const AttentionMaps<Scalar>& attention_maps() const { return attention_; }
  /// The attention [N, M, C] of unit `name` ("layer1.0", ...) from the last forward that kept it;
  /// RuntimeError for a name that is not a unit (or before the first forward).
  const Tensor3<Scalar>& attention(const std::string& name) const {
    for (const auto& entry : attention_)
      if (entry.first == name) return entry.second;
    const auto& blocks = this->plan().blocks;
    detail::fail<RuntimeError>(this->label(), "attention of unit",
                               "one of " + (blocks.empty() ? std::string("(none)") : blocks.front().name + " .. " + blocks.back().name),
                               "'" + name + "'");
  }

 private:
  static const SKNetConfig& validated(const SKNetConfig& config) {
    validate_config(config);
    return config;
  }
  AttentionMaps<Scalar> attention_;
};

/// SKNet-26/50/101: `config` with its depths replaced by the paper's.
template <class Scalar, int M = 2>
SKNet<Scalar, M> sknet26(SKNetConfig config = {}) {
  config.layers = sknet_depths("sknet26");
  return SKNet<Scalar, M>(config);
}
template <class Scalar, int M = 2>
SKNet<Scalar, M> sknet50(SKNetConfig config = {}) {
  config.layers = sknet_depths("sknet50");
  return SKNet<Scalar, M>(config);
}
template <class Scalar, int M = 2>
SKNet<Scalar, M> sknet101(SKNetConfig config = {}) {
  config.layers = sknet_depths("sknet101");
  return SKNet<Scalar, M>(config);
}

}  // namespace sknet
