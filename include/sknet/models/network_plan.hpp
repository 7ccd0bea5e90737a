// sknet: the network plan, one description of a residual network (stem, named blocks, head) that
// every path walks: the reference modules (SKNet, ResNeXt), summaries (shapes, parameters,
// multiply-adds), the checkpoint's expected keys, the prepared engine and its workspace planner.
// Family builders produce it from a NetworkConfig (the fields every ResNet-layout family shares):
//   sknet_plan     SKNet-26/50/101: ResNeXt bottlenecks whose 3x3 is an SK convolution (timm's
//                  skresnext50_32x4d names);
//   resnext_plan   the paper's ResNeXt baseline: one grouped 3x3 convolution + BN + ReLU instead, and
//                  with config.se its SENet (SE-ResNeXt) baseline (timm's resnext50_32x4d and
//                  seresnext50_32x4d names);
//   skresnet_plan  timm's skresnet18/34 (basic blocks whose first 3x3 is the SK convolution) and
//                  skresnet50/50d (bottlenecks, G = 1), with split-input SK paths;
//   sk_shufflenet_plan  SK-ShuffleNetV2: torchvision's ShuffleNetV2 units (channel split, branches,
//                  channel shuffle) whose 3x3 depthwise convolution is a depthwise SK convolution,
//                  then the conv5 1x1 block before the pool (torchvision's shufflenet_v2_x1_0 names).
// The named architectures (sknet50, skresnet18, ...) live in models/architectures.hpp.
#pragma once

#include <array>
#include <initializer_list>
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
  deep,      ///< ResNet-D: 3x3 stride-2 conv to stem_width, 3x3 conv to stem_width, 3x3 conv to
             ///< 2 * stem_width (each + BN + ReLU) + the max pool (timm's stem_type "deep")
  shufflenet,  ///< ShuffleNetV2: 3x3 stride-2 conv (no bias) + BN + ReLU (torchvision's conv1.0/conv1.1)
               ///< + the max pool
};

/// The residual block of every unit.
enum class BlockKind {
  bottleneck,  ///< 1x1 (BN, ReLU) -> 3x3 middle (stride) -> 1x1 (BN), + shortcut, ReLU; output 4 * planes
  basic,       ///< 3x3 (stride; the SK convolution in skresnet) -> 3x3 (BN), + shortcut, ReLU; output planes
  shuffle,     ///< ShuffleNetV2 unit (see BlockPlan); output planes
  pointwise,   ///< one 1x1 conv + BN + ReLU (ShuffleNetV2's conv5 before the pool); not a stage unit
};

/// Everything that shapes a ResNet-layout network (SKNet, ResNeXt, SE-ResNeXt, SK-ResNet). The
/// defaults are SKNet-50 on ImageNet: SK[2, 32, 16], L = 32, ResNeXt 32x4d widths (unit width =
/// floor(planes * base_width / 64) * groups, output 4 * planes).
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
  Stem stem = Stem::imagenet;  ///< (deep: stem_width is its first two convs' width; it outputs 2 * stem_width)
  BranchKernel branch_kernel = BranchKernel::dilated;
  /// The SK ablations (SKConvOptions): per-path kernel sizes, dilations and groups (empty: from
  /// branch_kernel, the m + 1 convention and `groups`), and the aggregation of the paths.
  std::vector<Index> path_kernels, path_dilations, path_groups;
  Aggregation aggregation = Aggregation::attention;
  BlockKind block = BlockKind::bottleneck;
  bool split_input = false;  ///< SK path m reads only the m-th M-th of the input channels (timm's skresnet)
  /// The SK attention width rule; unset: the paper's max(C / r, L) with `reduction` and `min_width`.
  std::optional<AttentionWidth> attention;
  /// d of every SK unit in order, overriding the rule (e.g. read off a checkpoint); empty: the rule.
  std::vector<Index> attention_widths;
  /// The squeeze-and-excitation gate after the last conv of every unit (SENet), by its width rule
  /// (timm: make_divisible(C / 16, 8) without the 0.9 bump); unset: none.
  std::optional<AttentionWidth> se;
  bool avg_down = false;  ///< ResNet-D shortcut: 2x2 average pool (stride) then a stride-1 1x1 conv + BN
  /// Channels of a 1x1 conv + BN + ReLU block after the last stage (ShuffleNetV2's conv5); 0: none.
  Index head_width = 0;

  /// Output channels per unit of planes: 4 for bottlenecks, 1 for basic blocks and shuffle units.
  Index expansion() const { return block == BlockKind::bottleneck ? 4 : 1; }
  /// Channels out of the stem.
  Index stem_channels() const { return stem == Stem::deep ? 2 * stem_width : stem_width; }
  /// The attention-width rule of the SK units.
  AttentionWidth attention_rule() const { return attention ? *attention : AttentionWidth::paper(reduction, min_width); }
  /// floor(planes * base_width / 64) * groups (bottleneck), planes (basic block); ConfigError naming
  /// the field on overflow.
  Index unit_width(std::size_t stage) const {
    if (block == BlockKind::basic) return planes[stage];
    if (block == BlockKind::shuffle) return planes[stage] / 2;  // each branch's channels
    const std::string what = "unit width of stage " + std::to_string(stage + 1);
    return detail::checked_mul(detail::checked_mul(planes[stage], base_width, "SKNetConfig", what + " (planes * base_width)") / 64,
                               groups, "SKNetConfig", what + " (* groups)");
  }
  /// expansion() * planes; ConfigError naming the field on overflow.
  Index stage_channels(std::size_t stage) const {
    return detail::checked_mul(expansion(), planes[stage], "SKNetConfig",
                               "channels of stage " + std::to_string(stage + 1) + " (expansion * planes)");
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
    require<ConfigError>(stem_width >= 1 && stem_width <= (Index(1) << 30), who, "stem_width", ">= 1", stem_width);
    attention_rule().validate(who);
    if (se) se->validate(who + " SE");
    require<ConfigError>(attention_widths.empty() || Index(attention_widths.size()) == units, who,
                         "attention widths (one per SK unit)", units, attention_widths.size());
    for (Index d : attention_widths) require<ConfigError>(d >= 1, who, "attention width", ">= 1", d);
    if (block == BlockKind::basic)
      require<ConfigError>(groups == 1 && base_width == 64, who, "groups and base_width of basic blocks", "1 and 64",
                           std::to_string(groups) + " and " + std::to_string(base_width));
    require<ConfigError>(block != BlockKind::pointwise, who, "block kind of the stages", "bottleneck, basic or shuffle",
                         "pointwise");
    require<ConfigError>(head_width >= 0, who, "head_width", ">= 0", head_width);
    if (block == BlockKind::shuffle)
      for (std::size_t s = 0; s < layers.size(); ++s)
        require<ConfigError>(planes[s] % 2 == 0 && planes[s] >= 2, who,
                             "channels of stage " + std::to_string(s + 1) + " (shuffle units split them in two halves)",
                             "even", planes[s]);
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

/// timm's SE gate width (SEModule): make_divisible(C / 16, 8) without the 0.9 bump.
inline AttentionWidth se_rule() {
  AttentionWidth a = AttentionWidth::divisible(1, 16, 8);
  a.round_limit_tenths = 0;
  return a;
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

/// The stem convolution of `config` (followed by BN and ReLU): the 7x7 or the small 3x3 one; for
/// the deep stem, its first convolution (see deep_stem_options).
inline Conv2dOptions sknet_stem_options(const SKNetConfig& c) {
  if (c.stem == Stem::deep || c.stem == Stem::shufflenet) return Conv2dOptions(c.in_channels, c.stem_width, 3).stride(2).padding(1).bias(false);
  return c.stem == Stem::imagenet ? Conv2dOptions(c.in_channels, c.stem_width, 7).stride(2).padding(3).bias(false)
                                  : Conv2dOptions(c.in_channels, c.stem_width, 3).padding(1).bias(false);
}

/// The convolutions of a stem, each followed by BN and ReLU, with their checkpoint names.
struct StemConv {
  Conv2dOptions conv;
  std::string conv_name, bn_name;
};
inline std::vector<StemConv> stem_convs(const SKNetConfig& c) {
  if (c.stem == Stem::shufflenet) return {{sknet_stem_options(c), "conv1.0", "conv1.1"}};
  if (c.stem != Stem::deep) return {{sknet_stem_options(c), "conv1", "bn1"}};
  return {{sknet_stem_options(c), "conv1.0", "conv1.1"},
          {Conv2dOptions(c.stem_width, c.stem_width, 3).padding(1).bias(false), "conv1.3", "conv1.4"},
          {Conv2dOptions(c.stem_width, c.stem_channels(), 3).padding(1).bias(false), "conv1.6", "bn1"}};
}

/// The max pool after the ImageNet stem.
inline MaxPool2dOptions sknet_pool_options() { return MaxPool2dOptions(3).stride(2).padding(1); }

/// The classifier of `config`.
inline LinearOptions sknet_head_options(const SKNetConfig& c) {
  return LinearOptions(c.head_width > 0 ? c.head_width : c.stage_channels(c.layers.size() - 1), c.num_classes);
}

/// The options of unit `u` of stage `s` of `config` with `paths` SK paths, and its input channels.
/// For a basic block the SK convolution is the block's first layer: in -> width.
/// `attention_width`: d of this unit when the config lists them (0: the config's rule).
inline SKUnitOptions sknet_unit_options(const SKNetConfig& config, Index paths, std::size_t s, Index u,
                                        Index attention_width = 0) {
  const Index in = u > 0 ? config.stage_channels(s) : s > 0 ? config.stage_channels(s - 1) : config.stem_channels();
  const Index width = config.unit_width(s);
  const Index sk_in = config.block == BlockKind::basic ? in : width;
  const SKConvOptions sk = SKConvOptions(sk_in, width)
                               .paths(paths)
                               .groups(config.groups)
                               .attention(attention_width > 0 ? AttentionWidth::fixed(attention_width)
                                                              : config.attention_rule())
                               .split_input(config.split_input)
                               .stride(u == 0 ? config.strides[s] : 1)
                               .branch_kernel(config.branch_kernel)
                               .path_kernels(config.path_kernels)
                               .path_dilations(config.path_dilations)
                               .path_groups(config.path_groups)
                               .aggregation(config.aggregation);
  return SKUnitOptions(in, config.stage_channels(s), sk);
}

namespace detail {

/// Learnable values of a conv + BN (weight and bias of the BN).
inline Index conv_bn_parameters(const Conv2dOptions& conv, const std::string& layer) {
  return checked_add(conv_parameters(conv, layer), checked_mul(Index(2), conv.out_channels(), layer, "parameters"),
                     layer, "parameters");
}

}  // namespace detail

/// The 3x3 convolution of a block that carries its stride: the middle of a bottleneck, the first
/// layer of a basic block.
enum class Middle {
  sk,       ///< an SK convolution (SKNet, SK-ResNet)
  grouped,  ///< one grouped 3x3 convolution + BN + ReLU (ResNeXt, SE-ResNeXt)
};

/// One block.
///   bottleneck: 1x1 conv (BN, ReLU) -> middle (stride here) -> 1x1 conv (BN) [-> SE gate]
///   basic:      middle (stride here; in -> width) -> 3x3 conv width -> out (BN) [-> SE gate]
/// plus the shortcut (identity, or when the shape changes a 1x1 conv with stride + BN, or with
/// avg_down a 2x2 average pool with stride then a 1x1 conv + BN), then ReLU.
///   shuffle (ShuffleNetV2, width = out / 2 channels per branch):
///     stride 1: x = [x1 | x2] (channel split); y = shuffle([x1 | branch2(x2)])
///     stride 2: y = shuffle([branch1(x) | branch2(x)])
///     branch1 = 3x3 depthwise conv (stride, BN) -> 1x1 conv in -> width (BN, ReLU);
///     branch2 = 1x1 conv (BN, ReLU) -> middle: the depthwise SK convolution (stride; G = C = width)
///               -> 1x1 conv width -> width (BN, ReLU);
///     shuffle = the channel shuffle with 2 groups: output channel 2k + g is channel g * width + k of
///     the concatenation (the first half goes to the even channels).
///   pointwise: 1x1 conv in -> out + BN + ReLU (conv5).
struct BlockPlan {
  std::string name;  ///< its checkpoint prefix, "layer1.0"
  BlockKind kind = BlockKind::bottleneck;
  Middle middle = Middle::sk;
  Index in = 0, width = 0, out = 0, stride = 1;
  SKConvOptions sk{1};  ///< Middle::sk: the SK convolution (the block's stride)
  Index paths = 0;      ///< Middle::sk: M
  Index groups = 1;     ///< Middle::grouped: G
  Index se_width = 0;   ///< the SE gate's hidden width (0: no SE gate)
  bool avg_down = false;

  bool has_downsample() const { return (kind == BlockKind::bottleneck || kind == BlockKind::basic) && (stride != 1 || in != out); }
  /// Whether the block writes an SK attention.
  bool has_attention() const { return middle == Middle::sk && kind != BlockKind::pointwise; }
  /// shuffle: whether it has branch1 (the downsampling unit: stride 2, the whole input to both branches).
  bool has_branch1() const { return kind == BlockKind::shuffle && stride != 1; }
  /// shuffle: the input channels of branch2 (all of them with branch1, else the second half).
  Index branch2_in() const { return has_branch1() ? in : in - width; }
  /// shuffle: branch1's depthwise 3x3 (in -> in, stride, padding 1).
  Conv2dOptions branch1_depthwise() const { return Conv2dOptions(in, in, 3).stride(stride).padding(1).groups(in).bias(false); }
  /// shuffle: branch1's 1x1 (in -> width).
  Conv2dOptions branch1_pointwise() const { return Conv2dOptions(in, width, 1).bias(false); }
  /// shuffle: branch2's first 1x1 (branch2_in() -> width) and last 1x1 (width -> width).
  Conv2dOptions branch2_first() const { return Conv2dOptions(branch2_in(), width, 1).bias(false); }
  Conv2dOptions branch2_last() const { return Conv2dOptions(width, width, 1).bias(false); }
  /// pointwise: the 1x1 conv.
  Conv2dOptions pointwise() const { return Conv2dOptions(in, out, 1).bias(false); }
  /// The bottleneck's first 1x1 convolution.
  Conv2dOptions conv1() const { return Conv2dOptions(in, width, 1).bias(false); }
  /// The last convolution: the bottleneck's 1x1, the basic block's second 3x3.
  Conv2dOptions conv3() const {
    return kind == BlockKind::basic ? Conv2dOptions(width, out, 3).padding(1).bias(false)
                                    : Conv2dOptions(width, out, 1).bias(false);
  }
  /// Middle::grouped: the grouped 3x3 convolution (in -> width for a basic block).
  Conv2dOptions grouped_conv() const {
    return Conv2dOptions(kind == BlockKind::basic ? in : width, width, 3).stride(stride).padding(1).groups(groups).bias(false);
  }
  /// The shortcut's 1x1 convolution (stride 1 after the average pool with avg_down).
  Conv2dOptions downsample() const { return Conv2dOptions(in, out, 1).stride(avg_down ? 1 : stride).bias(false); }
  /// The average pool of the avg_down shortcut (2x2 window, the block's stride, ceil mode, padding not
  /// counted), when the block has a stride.
  bool downsample_pools() const { return avg_down && stride != 1; }
  SKUnitOptions sk_unit() const { return SKUnitOptions(in, out, sk); }

  /// Checkpoint names (relative to `name`) of each convolution and BN: timm's conventions.
  ///   SK bottleneck (skresnext, skresnet50): conv1.conv/bn, conv2 = the SK convolution, conv3.conv/bn;
  ///   SK basic (skresnet18/34): conv1 = the SK convolution, conv2.conv/bn (here: conv3, bn3);
  ///   grouped (resnext, seresnext): conv1/bn1, conv2/bn2, conv3/bn3, se.fc1/fc2;
  ///   shortcut: downsample.0/1, or downsample.1/2 after avg_down's pool (downsample.0).
  struct Names {
    std::string conv1, bn1, conv2, bn2, conv3, bn3, downsample_conv, downsample_bn, se;
  };
  Names names() const {
    if (kind == BlockKind::pointwise) return {"0", "1", "", "", "", "", "", "", ""};
    // torchvision's branch2 indices; the SK convolution takes the depthwise conv's place (branch2.3)
    // and brings its own BN per path, so torchvision's branch2.4 BN has no counterpart.
    if (kind == BlockKind::shuffle) return {"branch2.0", "branch2.1", "branch2.3", "", "branch2.5", "branch2.6", "", "", ""};
    const std::string ds_conv = avg_down ? "downsample.1" : "downsample.0", ds_bn = avg_down ? "downsample.2" : "downsample.1";
    if (middle == Middle::sk && kind == BlockKind::basic) return {"", "", "conv1", "", "conv2.conv", "conv2.bn", ds_conv, ds_bn, "se"};
    if (middle == Middle::sk) return {"conv1.conv", "conv1.bn", "conv2", "", "conv3.conv", "conv3.bn", ds_conv, ds_bn, "se"};
    return {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3", ds_conv, ds_bn, "se"};
  }
  /// Learnable values of the SE gate: fc1 [se_width, out] + bias, fc2 [out, se_width] + bias.
  Index se_parameters() const {
    if (se_width == 0) return 0;
    const std::string who = name + ".se";
    const Index fc = detail::checked_mul(se_width, out, who, "parameters");
    return detail::checked_add(detail::checked_add(fc, fc, who, "parameters"), se_width + out, who, "parameters");
  }
  /// Learnable values of the block.
  Index parameters() const {
    const std::string who = name;
    const auto sum = [&](std::initializer_list<Index> parts) {
      Index t = 0;
      for (Index x : parts) t = detail::checked_add(t, x, who, "parameters");
      return t;
    };
    if (kind == BlockKind::pointwise) return detail::conv_bn_parameters(pointwise(), who);
    if (kind == BlockKind::shuffle)
      return sum({has_branch1() ? detail::conv_bn_parameters(branch1_depthwise(), who) : 0,
                  has_branch1() ? detail::conv_bn_parameters(branch1_pointwise(), who) : 0,
                  detail::conv_bn_parameters(branch2_first(), who), sk_conv_parameters(sk, paths, who),
                  detail::conv_bn_parameters(branch2_last(), who)});
    Index total = detail::conv_bn_parameters(conv3(), who);
    if (kind == BlockKind::bottleneck) total = detail::checked_add(total, detail::conv_bn_parameters(conv1(), who), who, "parameters");
    const Index mid = middle == Middle::sk ? sk_conv_parameters(sk, paths, who) : detail::conv_bn_parameters(grouped_conv(), who);
    total = detail::checked_add(total, mid, who, "parameters");
    if (has_downsample()) total = detail::checked_add(total, detail::conv_bn_parameters(downsample(), who), who, "parameters");
    return detail::checked_add(total, se_parameters(), who, "parameters");
  }
};

/// A whole network: the stem convolutions (each + BN + ReLU), optional max pool, the blocks in order,
/// global average pool and the fully connected classifier.
struct NetworkPlan {
  std::string family;  ///< "sknet", "resnext", "seresnext" or "skresnet" (see the builders below)
  SKNetConfig config;  ///< what it was built from (validated)
  Index paths = 0;     ///< M of the SK blocks (0: none)
  std::vector<StemConv> stem;
  std::optional<MaxPool2dOptions> pool;
  std::vector<BlockPlan> blocks;
  LinearOptions head{1, 1};

  /// Learnable values (BN running statistics excluded).
  Index parameters() const {
    const std::string who = family;
    Index total = 0;
    for (const StemConv& c : stem) total = detail::checked_add(total, detail::conv_bn_parameters(c.conv, who), who, "parameters");
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
    const auto pool_dims = [&](const std::string& name, Index kernel, Index stride, Index padding, bool ceil,
                               const std::array<Index, 4>& in) {
      const std::string label = detail::layer_label(name == "maxpool" ? "MaxPool2d" : "AvgPool2d", name);
      const Index oh = ceil ? (in[1] - 1) / stride + 1 : out_extent(in[1], kernel, stride, padding, 1);
      const Index ow = ceil ? (in[2] - 1) / stride + 1 : out_extent(in[2], kernel, stride, padding, 1);
      detail::require<ShapeError>(oh >= 1 && ow >= 1, label, "output size for NHWC input " + shape_string(in), ">= 1x1",
                                  std::to_string(oh) + "x" + std::to_string(ow));
      return std::array<Index, 4>{in[0], oh, ow, in[3]};
    };
    for (std::size_t i = 0; i < stem.size(); ++i)
      dims = conv_row(stem.size() == 1 ? "conv1+bn1" : "stem." + std::to_string(i), stem[i].conv_name, stem[i].conv, dims);
    if (pool) {
      dims = pool_dims("maxpool", pool->kernel_size(), pool->stride(), pool->padding(), false, dims);
      add("maxpool", "MaxPool2d", dims, 0, 0);
    }
    const auto sk_row = [&](const BlockPlan& b, const std::string& mid_name, const std::array<Index, 4>& a) {
      const std::string sk_label = detail::layer_label("SKConv", mid_name);
      std::array<Index, 4> path_in = a;
      path_in[3] = b.sk.path_in_channels(b.paths);
      const kernels::ConvGeometry g =
          conv_geometry(b.sk.branch_conv(0, b.paths), path_in, detail::layer_label("Conv2d", mid_name + ".paths.0.conv"));
      const std::array<Index, 4> mid{g.n, g.oh, g.ow, g.oc};
      add(mid_name, "SKConv", mid, sk_conv_parameters(b.sk, b.paths, sk_label), sk_conv_macs(b.sk, b.paths, a, sk_label, mid_name));
      return mid;
    };
    for (const BlockPlan& b : blocks) {
      const BlockPlan::Names n = b.names();
      const std::array<Index, 4> in = dims;
      if (b.kind == BlockKind::pointwise) {
        dims = conv_row(b.name, b.name + ".0", b.pointwise(), in);
        continue;
      }
      if (b.kind == BlockKind::shuffle) {
        std::array<Index, 4> out;
        if (b.has_branch1()) {
          const auto d = conv_row(b.name + ".branch1.0", b.name + ".branch1.0", b.branch1_depthwise(), in);
          out = conv_row(b.name + ".branch1.2", b.name + ".branch1.2", b.branch1_pointwise(), d);
        }
        std::array<Index, 4> x2 = in;
        x2[3] = b.branch2_in();
        const auto a = conv_row(b.name + ".branch2.0", b.name + ".branch2.0", b.branch2_first(), x2);
        const auto mid = sk_row(b, b.name + ".branch2.3", a);
        out = conv_row(b.name + ".branch2.5", b.name + ".branch2.5", b.branch2_last(), mid);
        out[3] = b.out;
        add(b.name + ".shuffle", "Shuffle", out, 0, 0);
        dims = out;
        continue;
      }
      const std::array<Index, 4> a = b.kind == BlockKind::bottleneck
                                         ? conv_row(b.name + ".conv1", b.name + "." + n.conv1, b.conv1(), in)
                                         : in;
      std::array<Index, 4> mid;
      const std::string mid_name = b.name + "." + n.conv2;
      if (b.middle == Middle::sk) {
        mid = sk_row(b, mid_name, a);
      } else {
        mid = conv_row(mid_name, mid_name, b.grouped_conv(), a);
      }
      const std::string last = b.kind == BlockKind::basic ? n.conv3.substr(0, n.conv3.find('.')) : "conv3";
      const auto c = conv_row(b.name + "." + last, b.name + "." + n.conv3, b.conv3(), mid);
      if (b.se_width > 0) {
        const Index macs = detail::checked_mul(detail::checked_mul(detail::checked_mul(Index(2), batch, who, "multiply-adds"),
                                                                   b.se_width, who, "multiply-adds"),
                                               b.out, who, "multiply-adds");
        add(b.name + ".se", "SqueezeExcite", c, b.se_parameters(), macs);
      }
      if (b.has_downsample()) {
        const std::array<Index, 4> pooled = b.downsample_pools() ? pool_dims(b.name + ".downsample.0", 2, b.stride, 0, true, in) : in;
        conv_row(b.name + ".downsample", b.name + "." + n.downsample_conv, b.downsample(), pooled);
      }
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
/// The stem, pool, blocks and head of a ResNet-layout network (blocks from make_block(stage, unit, name,
/// index of the unit in the network)); sets each block's kind, shortcut and SE gate from the config.
/// A plan of `family` with the stem (and max pool) of the validated `config`, no blocks yet.
inline NetworkPlan plan_with_stem(const std::string& family, const SKNetConfig& config, Index paths) {
  config.validate(family);
  NetworkPlan p;
  p.family = family;
  p.config = config;
  p.paths = paths;
  p.stem = stem_convs(config);
  if (config.stem != Stem::small) p.pool = sknet_pool_options();
  return p;
}

template <class MakeBlock>
NetworkPlan residual_plan(const std::string& family, const SKNetConfig& config, Index paths, MakeBlock&& make_block) {
  NetworkPlan p = plan_with_stem(family, config, paths);
  std::size_t index = 0;
  for (std::size_t s = 0; s < config.layers.size(); ++s)
    for (Index u = 0; u < config.layers[s]; ++u) {
      BlockPlan b = make_block(s, u, "layer" + std::to_string(s + 1) + "." + std::to_string(u), index++);
      b.kind = config.block;
      b.avg_down = config.avg_down;
      if (config.se) b.se_width = config.se->of(b.out);
      p.blocks.push_back(std::move(b));
    }
  p.head = sknet_head_options(config);
  return p;
}

/// A block with an SK convolution (sknet, skresnet).
inline BlockPlan sk_block(const SKNetConfig& config, Index paths, std::size_t s, Index u, const std::string& name,
                          std::size_t index) {
  const Index d = config.attention_widths.empty() ? 0 : config.attention_widths[index];
  const SKUnitOptions o = sknet_unit_options(config, paths, s, u, d);
  o.sk().validate(detail::layer_label("SKConv", name + (config.block == BlockKind::basic ? ".conv1" : ".conv2")), paths);
  BlockPlan b;
  b.name = name;
  b.middle = Middle::sk;
  b.in = o.in_channels(), b.width = o.width(), b.out = o.out_channels(), b.stride = o.stride();
  b.sk = o.sk();
  b.paths = paths;
  return b;
}
}  // namespace detail

/// The SKNet of `config` with `paths` (M) SK paths: ResNeXt bottlenecks with SK convolutions (timm's
/// skresnext50_32x4d). Throws ConfigError for an invalid config.
inline NetworkPlan sknet_plan(const SKNetConfig& config, Index paths) {
  detail::require<ConfigError>(!config.se, "sknet", "SE gate", "none on SK blocks", "set");
  return detail::residual_plan("sknet", config, paths, [&](std::size_t s, Index u, const std::string& name, std::size_t i) {
    return detail::sk_block(config, paths, s, u, name, i);
  });
}

/// timm's SK-ResNets (skresnet18/34: basic blocks; skresnet50/50d: bottlenecks with G = 1) of `config`
/// with `paths` SK paths: the same blocks as sknet_plan with timm's split-input SK convolutions;
/// the family name tells the checkpoint conventions apart.
inline NetworkPlan skresnet_plan(const SKNetConfig& config, Index paths) {
  NetworkPlan p = sknet_plan(config, paths);
  p.family = "skresnet";
  return p;
}

/// SK-ShuffleNetV2 of `config` with `paths` SK paths (config.block == shuffle; planes = each stage's
/// output channels, stem_width the stem's, head_width conv5's): stage s (named "stage{s+2}", as in
/// torchvision) starts with a downsampling unit (stride config.strides[s], branch1 on the whole input)
/// followed by stride-1 units; every unit's branch2 depthwise 3x3 is a depthwise SK convolution
/// (G = C = planes / 2, dilation m on path m, attention width by config's rule); branch1's depthwise
/// 3x3 stays a plain one. Then the conv5 block when head_width > 0, the pool and fc.
inline NetworkPlan sk_shufflenet_plan(const SKNetConfig& config, Index paths) {
  const std::string family = "sk_shufflenetv2";
  detail::require<ConfigError>(config.block == BlockKind::shuffle, family, "block kind", "shuffle", "another");
  detail::require<ConfigError>(!config.se && !config.avg_down, family, "SE gate and avg_down", "none", "set");
  detail::require<ConfigError>(paths >= 1, family, "SK paths", ">= 1", paths);
  NetworkPlan p = detail::plan_with_stem(family, config, paths);
  std::size_t index = 0;
  Index in = config.stem_channels();
  for (std::size_t s = 0; s < config.layers.size(); ++s)
    for (Index u = 0; u < config.layers[s]; ++u, ++index) {
      BlockPlan b;
      b.name = "stage" + std::to_string(s + 2) + "." + std::to_string(u);
      b.kind = BlockKind::shuffle;
      b.middle = Middle::sk;
      b.in = in, b.out = config.planes[s], b.width = config.unit_width(s);
      b.stride = u == 0 ? config.strides[s] : 1;
      detail::require<ConfigError>(b.stride != 1 || b.in == b.out, b.name,
                                   "input channels of a stride-1 shuffle unit (= its output channels)", b.out, b.in);
      const Index d = config.attention_widths.empty() ? 0 : config.attention_widths[index];
      b.sk = SKConvOptions(b.width, b.width)
                 .paths(paths)
                 .groups(b.width)
                 .attention(d > 0 ? AttentionWidth::fixed(d) : config.attention_rule())
                 .stride(b.stride)
                 .branch_kernel(config.branch_kernel);
      b.paths = paths;
      p.blocks.push_back(std::move(b));
      in = config.planes[s];
    }
  if (config.head_width > 0) {
    BlockPlan b;
    b.name = "conv5";
    b.kind = BlockKind::pointwise;
    b.middle = Middle::grouped;
    b.in = in, b.width = config.head_width, b.out = config.head_width;
    p.blocks.push_back(std::move(b));
  }
  p.head = sknet_head_options(config);
  return p;
}

/// ResNeXt (the paper's baseline) of `config`: the same widths, strides and stem, each SK convolution
/// replaced by one grouped 3x3 convolution (config.groups groups) + BN + ReLU; with config.se the
/// paper's SENet baseline (SE-ResNeXt). timm's resnext50_32x4d / seresnext50_32x4d names
/// (layer1.0.conv1.weight, bn1, conv2, bn2, conv3, bn3, se.fc1/fc2, downsample.0/1).
inline NetworkPlan resnext_plan(const SKNetConfig& config) {
  detail::require<ConfigError>(config.block == BlockKind::bottleneck, config.se ? "seresnext" : "resnext", "block kind",
                               "bottleneck", "basic");
  return detail::residual_plan(config.se ? "seresnext" : "resnext", config, 0,
                               [&](std::size_t s, Index u, const std::string& name, std::size_t) {
                                 const SKUnitOptions o = sknet_unit_options(config, 1, s, u);
                                 BlockPlan b;
                                 b.name = name;
                                 b.middle = Middle::grouped;
                                 b.in = o.in_channels(), b.width = o.width(), b.out = o.out_channels(), b.stride = o.stride();
                                 b.groups = config.groups;
                                 return b;
                               });
}

}  // namespace sknet
