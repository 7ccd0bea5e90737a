// sknet: SKNet networks (ResNeXt bottlenecks with SK convolutions) and the ResNeXt baseline, as
// reference modules built from their network plan (models/network_plan.hpp).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/models/resnet_stem.hpp"
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

/// The attention weights of every SK unit of one forward, in network order: (unit name, [N, M, C]).
template <class Scalar>
using AttentionMaps = std::vector<std::pair<std::string, Tensor3<Scalar>>>;

/// An SKNet with M paths in every SK convolution. Input NHWC [N, H, W, in_channels] (or NCHW
/// through forward_nchw); output logits [N, num_classes]. Parameter names follow timm's
/// skresnext50_32x4d: conv1.weight, bn1.*, layer{s}.{u}.<SKUnit names>, fc.weight, fc.bias.
template <class Scalar, int M = 2>
class SKNet : public Module {
 public:
  explicit SKNet(const SKNetConfig& config)
      : Module("SKNet"),
        config_(validated(config)),
        stem_(sknet_plan(config, M)),
        fc_(head_options(config), "fc") {
    detail::require<ConfigError>(config.block == BlockKind::bottleneck, "SKNet", "block kind", "bottleneck", "basic");
    for (const BlockPlan& b : sknet_plan(config, M).blocks) units_.emplace_back(b.sk_unit().avg_down(b.avg_down), b.name);
  }

  /// Throws ConfigError unless `config` describes an SKNet with M paths whose parameters fit
  /// SKNetConfig::kMaxParameters (checked before anything is allocated). unit_plan,
  /// stem_options and head_options assume a validated config.
  static void validate_config(const SKNetConfig& config) {
    config.validate("SKNet");
    detail::require<ConfigError>(config.paths == 0 || config.paths == M, "SKNet",
                                 "paths (M, fixed by the template argument)", M, config.paths);
    sknet_plan(config, M).check_buildable();
  }

  /// The stem convolution of `config` (followed by BN and ReLU).
  static Conv2dOptions stem_options(const SKNetConfig& c) { return sknet_stem_options(c); }
  /// The classifier of `config`.
  static LinearOptions head_options(const SKNetConfig& c) { return sknet_head_options(c); }
  /// The network plan of `config` (sknet_plan with M paths).
  static NetworkPlan plan(const SKNetConfig& config) { return sknet_plan(config, M); }

  const SKNetConfig& config() const { return config_; }
  const ResNetStem<Scalar>& stem() const { return stem_; }
  bool has_max_pool() const { return stem_.pool().has_value(); }
  const Linear<Scalar>& fc() const { return fc_; }
  std::size_t num_units() const { return units_.size(); }
  SKUnit<Scalar, M>& unit(std::size_t i) { return units_[i]; }
  const SKUnit<Scalar, M>& unit(std::size_t i) const { return units_[i]; }
  std::vector<std::string> unit_names() const {
    std::vector<std::string> names;
    for (const auto& u : units_) names.push_back(u.name());
    return names;
  }

  /// requires: input NHWC [N, H, W, in_channels] large enough for every stride (e.g. >= 32x32 with
  /// the ImageNet stem). ensures: returns logits [N, num_classes]; when `attention` is given it
  /// receives every unit's attention. const and re-entrant.
  Tensor2<Scalar> forward(const ConstTensorMap4<Scalar>& input, AttentionMaps<Scalar>* attention) const {
    detail::require<ShapeError>(input.dimension(3) == config_.in_channels, label(),
                                "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) +
                                    ")",
                                config_.in_channels, input.dimension(3));
    Tensor4<Scalar> x = stem_.forward(input);
    if (attention) attention->clear();
    Tensor3<Scalar> a;
    for (const auto& unit : units_) {
      x = unit.forward(view(x), a);
      if (attention) attention->emplace_back(unit.name(), a);
    }
    return fc_.forward(global_avg_pool(x));
  }

  /// As above, keeping the attention maps for attention() / attention_maps().
  Tensor2<Scalar> forward(const ConstTensorMap4<Scalar>& input) { return forward(input, &attention_); }
  Tensor2<Scalar> forward(const Tensor4<Scalar>& input) { return forward(view(input), &attention_); }
  /// PyTorch-ordered input [N, C, H, W] (converted once at the boundary).
  Tensor2<Scalar> forward_nchw(const ConstTensorMap4<Scalar>& input) { return forward(to_nhwc<Scalar>(input)); }

  const AttentionMaps<Scalar>& attention_maps() const { return attention_; }
  /// The attention [N, M, C] of unit `name` ("layer1.0", ...) from the last forward that kept it;
  /// RuntimeError for a name that is not a unit (or before the first forward).
  const Tensor3<Scalar>& attention(const std::string& name) const {
    for (const auto& entry : attention_)
      if (entry.first == name) return entry.second;
    detail::fail<RuntimeError>(label(), "attention of unit", "one of " + unit_list(), "'" + name + "'");
  }

  /// Per-layer output shapes, parameters and multiply-adds for an N x H x W input (nothing runs;
  /// see summarize_sknet).
  NetworkSummary summary(Index height, Index width, Index batch = 1) const {
    return summarize_sknet(config_, M, height, width, batch);
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    stem_.visit_parameters(prefix, visit);
    for (auto& unit : units_) unit.visit_parameters(detail::join_name(prefix, unit.name()), visit);
    fc_.visit_parameters(detail::join_name(prefix, "fc"), visit);
  }

 private:
  static const SKNetConfig& validated(const SKNetConfig& config) {
    validate_config(config);
    return config;
  }
  std::string unit_list() const {
    return units_.empty() ? std::string("(none)") : units_.front().name() + " .. " + units_.back().name();
  }

  SKNetConfig config_;
  ResNetStem<Scalar> stem_;
  std::vector<SKUnit<Scalar, M>> units_;
  Linear<Scalar> fc_;
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

/// Calls f(std::integral_constant<int, M>{}) for a run-time path count M in 1..4, so code that
/// reads M from a file or a command line can instantiate SKNet<Scalar, M>.
template <class F>
decltype(auto) with_paths(Index m, F&& f) {
  switch (m) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: detail::fail<ConfigError>("sknet", "paths M", "1, 2, 3 or 4", m);
  }
}

}  // namespace sknet
