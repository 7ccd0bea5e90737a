// sknet: the network plan, one description of a residual network (stem, named blocks, head) that
// every path walks: the reference modules (SKNet, ResNeXt), summaries (shapes, parameters,
// multiply-adds), the checkpoint's expected keys, the prepared engine and its workspace planner.
// Family builders produce it: sknet_plan (SKNet-26/50/101 and any SKNetConfig) and resnext_plan (the
// paper's ResNeXt baseline: the same network with each SK convolution replaced by one grouped 3x3
// convolution + BN + ReLU).
#pragma once

#include <array>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sknet/ops/conv2d.hpp"
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
    return detail::checked_mul(detail::checked_mul(planes[stage], base_width, "SKNetConfig", what + " (planes * base_width)") / 64,
                               groups, "SKNetConfig", what + " (* groups)");
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

/// The depths of the named architectures: "sknet26" / "resnext26" {2,2,2,2}, "sknet50" / "resnext50"
/// {3,4,6,3}, "sknet101" / "resnext101" {3,4,23,3}; anything else throws ConfigError.
inline std::vector<Index> architecture_depths(const std::string& arch) {
  for (const char* family : {"sknet", "resnext"})
    for (const char* depth : {"26", "50", "101"})
      if (arch == std::string(family) + depth) return sknet_depths(std::string("sknet") + depth);
  detail::fail<ConfigError>("sknet", "architecture", "sknet26, sknet50, sknet101, resnext26, resnext50 or resnext101",
                            "'" + arch + "'");
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

}  // namespace detail

/// The 3x3 convolution in the middle of a bottleneck block.
enum class Middle {
  sk,       ///< an SK convolution (SKNet)
  grouped,  ///< one grouped 3x3 convolution + BN + ReLU (ResNeXt)
};

/// One residual bottleneck block: 1x1 conv (BN, ReLU) -> middle (stride here) -> 1x1 conv (BN), plus
/// the shortcut (identity, or a 1x1 conv with stride + BN projection when the shape changes), ReLU.
struct BlockPlan {
  std::string name;  ///< its checkpoint prefix, "layer1.0"
  Middle middle = Middle::sk;
  Index in = 0, width = 0, out = 0, stride = 1;
  SKConvOptions sk{1};  ///< Middle::sk: the SK convolution (width channels, the block's stride)
  Index paths = 0;      ///< Middle::sk: M
  Index groups = 1;     ///< Middle::grouped: G

  bool has_downsample() const { return stride != 1 || in != out; }
  Conv2dOptions conv1() const { return Conv2dOptions(in, width, 1).bias(false); }
  Conv2dOptions conv3() const { return Conv2dOptions(width, out, 1).bias(false); }
  Conv2dOptions grouped_conv() const {
    return Conv2dOptions(width, width, 3).stride(stride).padding(1).groups(groups).bias(false);
  }
  Conv2dOptions downsample() const { return Conv2dOptions(in, out, 1).stride(stride).bias(false); }
  SKUnitOptions sk_unit() const { return SKUnitOptions(in, out, sk); }
  /// Checkpoint names (relative to `name`) of conv1's conv and BN, the middle's (grouped only),
  /// conv3's, and the downsample's: timm's skresnext / resnext conventions.
  struct Names {
    std::string conv1, bn1, conv2, bn2, conv3, bn3, downsample_conv, downsample_bn;
  };
  Names names() const {
    if (middle == Middle::sk) return {"conv1.conv", "conv1.bn", "", "", "conv3.conv", "conv3.bn", "downsample.0", "downsample.1"};
    return {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "downsample.0", "downsample.1"};
  }
  /// Learnable values of the block.
  Index parameters() const {
    const std::string who = name;
    Index total = detail::checked_add(detail::conv_bn_parameters(conv1(), who), detail::conv_bn_parameters(conv3(), who),
                                      who, "parameters");
    const Index mid = middle == Middle::sk ? sk_conv_parameters(sk, paths, who) : detail::conv_bn_parameters(grouped_conv(), who);
    total = detail::checked_add(total, mid, who, "parameters");
    if (has_downsample()) total = detail::checked_add(total, detail::conv_bn_parameters(downsample(), who), who, "parameters");
    return total;
  }
};

/// A whole network: stem conv (BN, ReLU), optional max pool, the blocks in order, global average
/// pool and the fully connected classifier.
struct NetworkPlan {
  std::string family;  ///< "sknet" or "resnext"
  SKNetConfig config;  ///< what it was built from (validated)
  Index paths = 0;     ///< M of the SK blocks (0: none)
  Conv2dOptions stem{1, 1, 1};
  std::optional<MaxPool2dOptions> pool;
  std::vector<BlockPlan> blocks;
  LinearOptions head{1, 1};

  /// Learnable values (BN running statistics excluded).
  Index parameters() const {
    const std::string who = family;
    Index total = detail::conv_bn_parameters(stem, who);
    for (const BlockPlan& b : blocks) total = detail::checked_add(total, b.parameters(), who, "parameters");
    const Index fc = detail::checked_add(detail::checked_mul(head.in_features(), head.out_features(), who, "parameters of fc"),
                                         head.out_features(), who, "parameters of fc");
    return detail::checked_add(total, fc, who, "parameters");
  }

  /// Throws ConfigError unless the network's parameters fit SKNetConfig::kMaxParameters: checked before
  /// anything is allocated by whatever builds the network (a summary needs no such bound).
  void check_buildable() const {
    const Index params = parameters();
    detail::require<ConfigError>(params <= SKNetConfig::kMaxParameters, family,
                                 "learnable parameters (at most 2^31, 8 GiB of float32)",
                                 "<= " + std::to_string(SKNetConfig::kMaxParameters), params);
  }

  /// Per-layer output shapes, parameters and multiply-adds on an N x H x W input, from the shapes alone
  /// (nothing is built or allocated). Throws ConfigError when a count overflows, ShapeError (naming
  /// the layer) for an input too small for the network.
  NetworkSummary summary(Index height, Index width, Index batch = 1) const {
    NetworkSummary s;
    const std::string who = family + " summary";
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
    dims = conv_row("conv1+bn1", "conv1", stem, dims);
    if (pool) {
      const std::string label = detail::layer_label("MaxPool2d", "maxpool");
      const Index oh = out_extent(dims[1], pool->kernel_size(), pool->stride(), pool->padding(), 1);
      const Index ow = out_extent(dims[2], pool->kernel_size(), pool->stride(), pool->padding(), 1);
      detail::require<ShapeError>(oh >= 1 && ow >= 1, label, "output size for NHWC input " + shape_string(dims),
                                  ">= 1x1", std::to_string(oh) + "x" + std::to_string(ow));
      dims = {dims[0], oh, ow, dims[3]};
      add("maxpool", "MaxPool2d", dims, 0, 0);
    }
    for (const BlockPlan& b : blocks) {
      const BlockPlan::Names n = b.names();
      const std::array<Index, 4> in = dims;
      const auto a = conv_row(b.name + ".conv1", b.name + "." + n.conv1, b.conv1(), in);
      std::array<Index, 4> mid;
      if (b.middle == Middle::sk) {
        const std::string sk_name = b.name + ".conv2", sk_label = detail::layer_label("SKConv", sk_name);
        const kernels::ConvGeometry g =
            conv_geometry(b.sk.branch_conv(0), a, detail::layer_label("Conv2d", sk_name + ".paths.0.conv"));
        mid = {g.n, g.oh, g.ow, g.oc};
        add(sk_name, "SKConv", mid, sk_conv_parameters(b.sk, b.paths, sk_label),
            sk_conv_macs(b.sk, b.paths, a, sk_label, sk_name));
      } else {
        mid = conv_row(b.name + ".conv2", b.name + "." + n.conv2, b.grouped_conv(), a);
      }
      const auto c = conv_row(b.name + ".conv3", b.name + "." + n.conv3, b.conv3(), mid);
      if (b.has_downsample()) conv_row(b.name + ".downsample", b.name + "." + n.downsample_conv, b.downsample(), in);
      dims = c;
    }
    add("global_pool", "AvgPool", {batch, 1, 1, dims[3]}, 0, 0);
    const Index fc_params = detail::checked_add(detail::checked_mul(head.in_features(), head.out_features(), who, "fc parameters"),
                                                head.out_features(), who, "fc parameters");
    const Index fc_macs = detail::checked_mul(detail::checked_mul(batch, head.in_features(), who, "fc multiply-adds"),
                                              head.out_features(), who, "fc multiply-adds");
    add("fc", "Linear", {batch, 1, 1, head.out_features()}, fc_params, fc_macs);
    return s;
  }
};

namespace detail {
/// The stem, pool, blocks and head of a ResNeXt-layout network (blocks from make_block(stage, unit, name)).
template <class MakeBlock>
NetworkPlan residual_plan(const std::string& family, const SKNetConfig& config, Index paths, MakeBlock&& make_block) {
  config.validate(family);
  NetworkPlan p;
  p.family = family;
  p.config = config;
  p.paths = paths;
  p.stem = sknet_stem_options(config);
  if (config.stem == Stem::imagenet) p.pool = sknet_pool_options();
  for (std::size_t s = 0; s < config.layers.size(); ++s)
    for (Index u = 0; u < config.layers[s]; ++u)
      p.blocks.push_back(make_block(s, u, "layer" + std::to_string(s + 1) + "." + std::to_string(u)));
  p.head = sknet_head_options(config);
  return p;
}
}  // namespace detail

/// The SKNet of `config` with `paths` (M) SK paths: ResNeXt bottlenecks with SK convolutions.
/// Throws ConfigError for an invalid config.
inline NetworkPlan sknet_plan(const SKNetConfig& config, Index paths) {
  return detail::residual_plan("sknet", config, paths, [&](std::size_t s, Index u, const std::string& name) {
    const SKUnitOptions o = sknet_unit_options(config, paths, s, u);
    BlockPlan b;
    b.name = name;
    b.middle = Middle::sk;
    b.in = o.in_channels(), b.width = o.width(), b.out = o.out_channels(), b.stride = o.stride();
    b.sk = o.sk();
    b.paths = paths;
    return b;
  });
}

/// ResNeXt (the paper's baseline) of `config`: the same widths, strides and stem, each SK convolution
/// replaced by one grouped 3x3 convolution (config.groups groups) + BN + ReLU. timm's resnext50_32x4d
/// names (layer1.0.conv1.weight, bn1, conv2, bn2, conv3, bn3, downsample.0/1).
inline NetworkPlan resnext_plan(const SKNetConfig& config) {
  return detail::residual_plan("resnext", config, 0, [&](std::size_t s, Index u, const std::string& name) {
    const SKUnitOptions o = sknet_unit_options(config, 1, s, u);
    BlockPlan b;
    b.name = name;
    b.middle = Middle::grouped;
    b.in = o.in_channels(), b.width = o.width(), b.out = o.out_channels(), b.stride = o.stride();
    b.groups = config.groups;
    return b;
  });
}

/// The plan of a named architecture: "sknet26", "sknet50", "sknet101" (paths M) or "resnext26",
/// "resnext50", "resnext101" (config.layers replaced by the depths unless keep_layers).
inline NetworkPlan network_plan(const std::string& arch, SKNetConfig config, Index paths, bool keep_layers = false) {
  if (!keep_layers) config.layers = architecture_depths(arch);
  return arch.rfind("resnext", 0) == 0 ? resnext_plan(config) : sknet_plan(config, paths);
}

}  // namespace sknet
