// sknet: SKNet networks (ResNeXt bottlenecks with SK convolutions), their presets and summaries.
#pragma once

#include <iomanip>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/linear.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/sk/sk_unit.hpp"

namespace sknet {

/// The first layers of the network.
enum class Stem {
  imagenet,  ///< 7x7 stride-2 conv (no bias) + BN + ReLU + 3x3 stride-2 max pool with padding 1
  small,     ///< 3x3 stride-1 conv (no bias) + BN + ReLU, no pooling (for small images)
};

/// Everything that shapes an SKNet. The defaults are SKNet-50 on ImageNet: SK[2, 32, 16], L = 32,
/// ResNeXt 32x4d widths (unit width = floor(planes * base_width / 64) * groups, output 4 * planes).
struct SKNetConfig {
  std::vector<Index> layers{3, 4, 6, 3};         ///< SK units per stage
  std::vector<Index> planes{64, 128, 256, 512};  ///< per stage; a unit outputs 4 * planes channels
  std::vector<Index> strides{1, 2, 2, 2};        ///< stride of the first unit of each stage
  Index paths = 0;       ///< M; 0 means "the network's template argument"
  Index groups = 32;     ///< G
  Index reduction = 16;  ///< r
  Index min_width = 32;  ///< L
  Index base_width = 4;
  Index num_classes = 1000;
  Index in_channels = 3;
  Index stem_width = 64;
  Stem stem = Stem::imagenet;
  BranchKernel branch_kernel = BranchKernel::dilated;

  static constexpr Index expansion = 4;
  /// floor(planes * base_width / 64) * groups; ConfigError naming the field on overflow.
  Index unit_width(std::size_t stage) const {
    const std::string what = "unit width of stage " + std::to_string(stage + 1);
    const Index scaled =
        detail::checked_mul(planes[stage], base_width, "SKNetConfig", what + " (planes * base_width)");
    return detail::checked_mul(scaled / 64, groups, "SKNetConfig", what + " (* groups)");
  }
  /// expansion * planes; ConfigError naming the field on overflow.
  Index stage_channels(std::size_t stage) const {
    return detail::checked_mul(expansion, planes[stage], "SKNetConfig",
                               "channels of stage " + std::to_string(stage + 1) + " (4 * planes)");
  }

  /// Throws ConfigError naming the offending field (also when its arithmetic overflows).
  void validate(const std::string& who) const {
    using detail::require;
    require<ConfigError>(!layers.empty(), who, "number of stages", ">= 1", 0);
    require<ConfigError>(planes.size() == layers.size(), who, "planes per stage (one per stage)", layers.size(),
                         planes.size());
    require<ConfigError>(strides.size() == layers.size(), who, "strides per stage (one per stage)", layers.size(),
                         strides.size());
    require<ConfigError>(base_width >= 1, who, "base_width", ">= 1", base_width);
    require<ConfigError>(groups >= 1, who, "groups", ">= 1", groups);
    Index units = 0;
    for (std::size_t s = 0; s < layers.size(); ++s) {
      const std::string stage = " of stage " + std::to_string(s + 1);
      require<ConfigError>(layers[s] >= 1, who, "units" + stage, ">= 1", layers[s]);
      require<ConfigError>(planes[s] >= 1, who, "planes" + stage, ">= 1", planes[s]);
      require<ConfigError>(strides[s] >= 1, who, "stride" + stage, ">= 1", strides[s]);
      require<ConfigError>(unit_width(s) >= 1, who,
                           "unit width" + stage + " = floor(planes * base_width / 64) * groups", ">= 1",
                           unit_width(s));
      stage_channels(s);  // throws on overflow
      units = detail::checked_add(units, layers[s], who, "number of SK units");
    }
    require<ConfigError>(units <= kMaxUnits, who, "number of SK units (sum of layers)",
                         "at most " + std::to_string(kMaxUnits), units);
    require<ConfigError>(num_classes >= 1, who, "num_classes", ">= 1", num_classes);
    require<ConfigError>(in_channels >= 1, who, "in_channels", ">= 1", in_channels);
    require<ConfigError>(stem_width >= 1, who, "stem_width", ">= 1", stem_width);
  }

  /// Upper bound on the SK units of a network (SKNet-101 has 33).
  static constexpr Index kMaxUnits = 10000;
  /// Upper bound on the learnable parameters of a network: 2^31 (8 GiB as float32; SKNet-101
  /// has 48.7 M). A larger network is refused with a ConfigError before anything is allocated.
  static constexpr Index kMaxParameters = Index(1) << 31;
};

/// The paper's depths: SKNet-26 {2,2,2,2}, SKNet-50 {3,4,6,3}, SKNet-101 {3,4,23,3}.
/// `arch` is "sknet26", "sknet50" or "sknet101"; anything else throws ConfigError.
inline std::vector<Index> sknet_depths(const std::string& arch) {
  if (arch == "sknet26") return {2, 2, 2, 2};
  if (arch == "sknet50") return {3, 4, 6, 3};
  if (arch == "sknet101") return {3, 4, 23, 3};
  detail::fail<ConfigError>("sknet", "architecture", "sknet26, sknet50 or sknet101", "'" + arch + "'");
}

/// One row of a network summary.
struct LayerSummary {
  std::string name, type;
  std::array<Index, 4> output;  ///< NHWC
  Index params = 0;             ///< learnable values (BN running statistics excluded)
  Index macs = 0;               ///< multiply-adds of convolutions and fully connected layers
};

struct NetworkSummary {
  std::vector<LayerSummary> layers;
  Index params = 0, macs = 0;
  /// A table, then the two lines "params: N" and "macs: N".
  std::string to_string() const {
    std::ostringstream os;
    os << std::left << std::setw(22) << "layer" << std::setw(12) << "type" << std::setw(24) << "output (NHWC)"
       << std::right << std::setw(12) << "params" << std::setw(16) << "macs" << "\n";
    for (const auto& l : layers)
      os << std::left << std::setw(22) << l.name << std::setw(12) << l.type << std::setw(24)
         << shape_string(l.output) << std::right << std::setw(12) << l.params << std::setw(16) << l.macs << "\n";
    os << "params: " << params << "\nmacs: " << macs << "\n";
    return os.str();
  }
};

/// The stem convolution of `config` (followed by BN and ReLU).
inline Conv2dOptions sknet_stem_options(const SKNetConfig& c) {
  return c.stem == Stem::imagenet ? Conv2dOptions(c.in_channels, c.stem_width, 7).stride(2).padding(3).bias(false)
                                  : Conv2dOptions(c.in_channels, c.stem_width, 3).padding(1).bias(false);
}

/// The max pool after the ImageNet stem.
inline MaxPool2dOptions sknet_pool_options() { return MaxPool2dOptions(3).stride(2).padding(1); }

/// The classifier of `config`.
inline LinearOptions sknet_head_options(const SKNetConfig& c) {
  return LinearOptions(c.stage_channels(c.layers.size() - 1), c.num_classes);
}

/// The options of unit `u` of stage `s` of `config` with `paths` SK paths, and its input channels.
inline SKUnitOptions sknet_unit_options(const SKNetConfig& config, Index paths, std::size_t s, Index u) {
  const Index in = u > 0 ? config.stage_channels(s) : s > 0 ? config.stage_channels(s - 1) : config.stem_width;
  const Index width = config.unit_width(s);
  const SKConvOptions sk = SKConvOptions(width)
                               .paths(paths)
                               .groups(config.groups)
                               .reduction(config.reduction)
                               .min_width(config.min_width)
                               .stride(u == 0 ? config.strides[s] : 1)
                               .branch_kernel(config.branch_kernel);
  return SKUnitOptions(in, config.stage_channels(s), sk);
}

namespace detail {

/// Learnable values of a conv + BN (weight and bias of the BN).
inline Index conv_bn_parameters(const Conv2dOptions& conv, const std::string& layer) {
  return checked_add(conv_parameters(conv, layer), checked_mul(Index(2), conv.out_channels(), layer, "parameters"),
                     layer, "parameters");
}

/// The three convolutions and the shortcut of an SK unit named `name` ("layer1.0").
struct UnitParts {
  Conv2dOptions conv1, conv3;
  std::optional<Conv2dOptions> downsample;
  explicit UnitParts(const SKUnitOptions& o)
      : conv1(Conv2dOptions(o.in_channels(), o.width(), 1).bias(false)),
        conv3(Conv2dOptions(o.width(), o.out_channels(), 1).bias(false)) {
    if (o.has_downsample())
      downsample = Conv2dOptions(o.in_channels(), o.out_channels(), 1).stride(o.stride()).bias(false);
  }
};

/// Learnable values of one SK unit.
inline Index sk_unit_parameters(const SKUnitOptions& o, Index paths, const std::string& layer) {
  const UnitParts parts(o);
  Index total = checked_add(conv_bn_parameters(parts.conv1, layer), sk_conv_parameters(o.sk(), paths, layer), layer,
                            "parameters");
  total = checked_add(total, conv_bn_parameters(parts.conv3, layer), layer, "parameters");
  if (parts.downsample) total = checked_add(total, conv_bn_parameters(*parts.downsample, layer), layer, "parameters");
  return total;
}

}  // namespace detail

/// The learnable parameters of the SKNet `config` with `paths` SK paths, from the options alone
/// (one step per stage, nothing built). Requires a config that passes config.validate; throws
/// ConfigError naming the field when the count overflows.
inline Index sknet_parameter_count(const SKNetConfig& config, Index paths) {
  using detail::checked_add;
  using detail::checked_mul;
  const std::string who = "SKNet";
  Index total = detail::conv_bn_parameters(sknet_stem_options(config), who);
  for (std::size_t s = 0; s < config.layers.size(); ++s) {
    const std::string stage = "parameters of stage " + std::to_string(s + 1);
    const Index first = detail::sk_unit_parameters(sknet_unit_options(config, paths, s, 0), paths, who);
    total = checked_add(total, first, who, stage);
    if (config.layers[s] > 1) {
      const Index rest = detail::sk_unit_parameters(sknet_unit_options(config, paths, s, 1), paths, who);
      total = checked_add(total, checked_mul(config.layers[s] - 1, rest, who, stage), who, stage);
    }
  }
  const LinearOptions head = sknet_head_options(config);
  const Index fc = checked_add(checked_mul(head.in_features(), head.out_features(), who, "parameters of fc"),
                               head.out_features(), who, "parameters of fc");
  return checked_add(total, fc, who, "parameters");
}

/// Per-layer output shapes, parameters and multiply-adds of the SKNet `config` with `paths` SK
/// paths on an N x H x W input, from the shapes alone: no layer is built and no weight is
/// allocated (SKNet::summary and `sknet info` use it). Throws ConfigError for an invalid config
/// or a count that overflows, ShapeError (naming the layer) for an input too small for it.
inline NetworkSummary summarize_sknet(const SKNetConfig& config, Index paths, Index height, Index width,
                                      Index batch = 1) {
  config.validate("SKNet");
  NetworkSummary s;
  const std::string who = "SKNet summary";
  std::array<Index, 4> dims{batch, height, width, config.in_channels};
  const auto add = [&](const std::string& name, const std::string& type, const std::array<Index, 4>& out,
                       Index params, Index macs) {
    s.layers.push_back({name, type, out, params, macs});
    s.params = detail::checked_add(s.params, params, who, "parameters");
    s.macs = detail::checked_add(s.macs, macs, who, "multiply-adds");
  };
  const auto conv_row = [&](const std::string& name, const std::string& conv_name, const Conv2dOptions& conv,
                            const std::array<Index, 4>& in) {
    const std::string label = detail::layer_label("Conv2d", conv_name);
    const kernels::ConvGeometry g = conv_geometry(conv, in, label);
    const std::array<Index, 4> out{g.n, g.oh, g.ow, g.oc};
    add(name, "ConvBnAct", out, detail::conv_bn_parameters(conv, label), conv_macs(g, label));
    return out;
  };
  dims = conv_row("conv1+bn1", "conv1", sknet_stem_options(config), dims);
  if (config.stem == Stem::imagenet) {
    const MaxPool2dOptions pool = sknet_pool_options();
    const std::string label = detail::layer_label("MaxPool2d", "maxpool");
    const Index oh = out_extent(dims[1], pool.kernel_size(), pool.stride(), pool.padding(), 1);
    const Index ow = out_extent(dims[2], pool.kernel_size(), pool.stride(), pool.padding(), 1);
    detail::require<ShapeError>(oh >= 1 && ow >= 1, label, "output size for NHWC input " + shape_string(dims),
                                ">= 1x1",
                                std::to_string(oh) + "x" + std::to_string(ow));
    dims = {dims[0], oh, ow, dims[3]};
    add("maxpool", "MaxPool2d", dims, 0, 0);
  }
  for (std::size_t st = 0; st < config.layers.size(); ++st)
    for (Index u = 0; u < config.layers[st]; ++u) {
      const std::string name = "layer" + std::to_string(st + 1) + "." + std::to_string(u);
      const SKUnitOptions options = sknet_unit_options(config, paths, st, u);
      const detail::UnitParts parts(options);
      const std::array<Index, 4> in = dims;
      const auto a = conv_row(name + ".conv1", name + ".conv1.conv", parts.conv1, in);
      const std::string sk_name = name + ".conv2", sk_label = detail::layer_label("SKConv", sk_name);
      const kernels::ConvGeometry g = conv_geometry(options.sk().branch_conv(0), a,
                                                    detail::layer_label("Conv2d", sk_name + ".paths.0.conv"));
      const std::array<Index, 4> b{g.n, g.oh, g.ow, g.oc};
      add(sk_name, "SKConv", b, sk_conv_parameters(options.sk(), paths, sk_label),
          sk_conv_macs(options.sk(), paths, a, sk_label, sk_name));
      const auto c = conv_row(name + ".conv3", name + ".conv3.conv", parts.conv3, b);
      if (parts.downsample) conv_row(name + ".downsample", name + ".downsample.0", *parts.downsample, in);
      dims = c;
    }
  const LinearOptions head = sknet_head_options(config);
  add("global_pool", "AvgPool", {batch, 1, 1, dims[3]}, 0, 0);
  const Index fc_weights = detail::checked_mul(head.in_features(), head.out_features(), who, "fc parameters");
  const Index fc_params = detail::checked_add(fc_weights, head.out_features(), who, "fc parameters");
  const Index fc_macs = detail::checked_mul(detail::checked_mul(batch, head.in_features(), who, "fc multiply-adds"),
                                            head.out_features(), who, "fc multiply-adds");
  add("fc", "Linear", {batch, 1, 1, config.num_classes}, fc_params, fc_macs);
  return s;
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
        stem_(stem_options(config), true, "", "conv1", "bn1"),
        fc_(head_options(config), "fc") {
    if (config.stem == Stem::imagenet) pool_.emplace(sknet_pool_options(), "maxpool");
    for (const auto& unit : unit_plan(config)) units_.emplace_back(unit.second, unit.first);
  }

  /// Throws ConfigError unless `config` describes an SKNet with M paths whose parameters fit
  /// SKNetConfig::kMaxParameters (checked before anything is allocated). unit_plan,
  /// stem_options and head_options assume a validated config.
  static void validate_config(const SKNetConfig& config) {
    config.validate("SKNet");
    detail::require<ConfigError>(config.paths == 0 || config.paths == M, "SKNet",
                                 "paths (M, fixed by the template argument)", M, config.paths);
    const Index params = sknet_parameter_count(config, M);
    detail::require<ConfigError>(params <= SKNetConfig::kMaxParameters, "SKNet",
                                 "learnable parameters (at most 2^31, 8 GiB of float32)",
                                 "<= " + std::to_string(SKNetConfig::kMaxParameters), params);
  }

  /// The stem convolution of `config` (followed by BN and ReLU).
  static Conv2dOptions stem_options(const SKNetConfig& c) { return sknet_stem_options(c); }
  /// The classifier of `config`.
  static LinearOptions head_options(const SKNetConfig& c) { return sknet_head_options(c); }
  /// Every SK unit of `config` in network order, with its name ("layer1.0", ...).
  static std::vector<std::pair<std::string, SKUnitOptions>> unit_plan(const SKNetConfig& config) {
    std::vector<std::pair<std::string, SKUnitOptions>> plan;
    for (std::size_t s = 0; s < config.layers.size(); ++s)
      for (Index u = 0; u < config.layers[s]; ++u)
        plan.emplace_back("layer" + std::to_string(s + 1) + "." + std::to_string(u),
                          sknet_unit_options(config, M, s, u));
    return plan;
  }

  const SKNetConfig& config() const { return config_; }
  const ConvBnAct<Scalar>& stem() const { return stem_; }
  bool has_max_pool() const { return pool_.has_value(); }
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
    if (pool_) x = pool_->forward(x);
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
  ConvBnAct<Scalar> stem_;
  std::optional<MaxPool2d<Scalar>> pool_;
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
