// sknet: the named architectures (sknet50, skresnet18, seresnext50, ...): each is a family builder
// (models/network_plan.hpp) plus the config that makes it that network. The command line, the
// examples and the inferring loader all read this one table.
#pragma once

#include <string>
#include <vector>

#include "sknet/models/network_plan.hpp"

namespace sknet {

/// A named network: its family, its config (depths included), M of its SK convolutions (0: none)
/// and where its definition comes from.
struct Architecture {
  std::string name;    ///< "skresnet18", as in `sknet --arch`
  std::string family;  ///< "sknet", "skresnet", "resnext", "seresnext" or "sk_shufflenetv2": the plan builder
  SKNetConfig config;
  Index paths = 0;
  std::string source;         ///< where the structure and the parameter names come from
  bool public_weights = false;  ///< whether trained weights are published (timm's hub)
};

/// The side of the images a network of `config` is made for: 32 (CIFAR) with the small stem, else 224.
inline Index default_input_size(const SKNetConfig& config) { return config.stem == Stem::small ? 32 : 224; }

/// The plan of `family` for `config` with `paths` SK paths; ConfigError for an unknown family.
inline NetworkPlan family_plan(const std::string& family, const SKNetConfig& config, Index paths) {
  if (family == "sknet") return sknet_plan(config, paths);
  if (family == "skresnet") return skresnet_plan(config, paths);
  if (family == "sk_shufflenetv2") return sk_shufflenet_plan(config, paths);
  if (family == "resnext" || family == "seresnext") {
    SKNetConfig c = config;
    if (family == "seresnext" && !c.se) c.se = se_rule();
    if (family == "resnext") c.se.reset();
    return resnext_plan(c);
  }
  detail::fail<ConfigError>("sknet", "network family", "sknet, skresnet, resnext, seresnext or sk_shufflenetv2", "'" + family + "'");
}

namespace detail {
inline Architecture make_architecture(std::string name, std::string family, std::vector<Index> layers, Index paths,
                                      std::string source, bool weights, void (*adjust)(SKNetConfig&) = nullptr) {
  Architecture a;
  a.name = std::move(name), a.family = std::move(family), a.paths = paths;
  a.config.layers = std::move(layers);
  a.config.paths = paths;
  if (adjust) adjust(a.config);
  a.source = std::move(source), a.public_weights = weights;
  return a;
}
/// timm's skresnet18/34: basic blocks, G = 1, split-input SK paths, d = make_divisible(C / 8, 16).
inline void skresnet_basic(SKNetConfig& c) {
  c.block = BlockKind::basic, c.groups = 1, c.base_width = 64, c.split_input = true;
  c.attention = AttentionWidth::divisible(1, 8, 16);
}
/// timm's skresnet50: bottlenecks with G = 1, split-input SK paths, d = make_divisible(C / 16, 8).
inline void skresnet_bottleneck(SKNetConfig& c) {
  c.groups = 1, c.base_width = 64, c.split_input = true;
  c.attention = AttentionWidth::divisible(1, 16, 8);
}
/// skresnet50 with ResNet-D's deep stem (32, 32, 64) and average-pool shortcuts.
inline void skresnet_d(SKNetConfig& c) {
  skresnet_bottleneck(c);
  c.stem = Stem::deep, c.stem_width = 32, c.avg_down = true;
}
inline void se_resnext(SKNetConfig& c) { c.se = se_rule(); }

/// The CIFAR networks of the ResNeXt paper's section 5.3 layout (ResNeXt-29): a 3x3 stem of 64
/// channels without pooling, three stages of three bottlenecks (planes 64, 128, 256; strides 1, 2, 2;
/// outputs 256, 512, 1024), 100 classes (CIFAR-100; the paper also reports CIFAR-10: --classes 10).
inline void cifar29(SKNetConfig& c) {
  c.planes = {64, 128, 256}, c.strides = {1, 2, 2};
  c.stem = Stem::small, c.stem_width = 64, c.num_classes = 100;
}
/// ResNeXt-29 16x32d: 16 groups of 32 channels in stage 1 (widths 512, 1024, 2048).
inline void resnext29(SKNetConfig& c) {
  cifar29(c);
  c.groups = 16, c.base_width = 32;
}
/// SENet-29: ResNeXt-29 16x32d with timm's SE gate after the last conv of every unit.
inline void senet29(SKNetConfig& c) {
  resnext29(c);
  c.se = se_rule();
}
/// SKNet-29 on ResNeXt-29 16x32d, the reading closest to the paper's 27.7 M parameters: the same
/// widths (512, 1024, 2048), each of the M = 2 paths with 32 groups of half the width (16 channels),
/// so the two paths together cost what ResNeXt-29's one 3x3 does (as the paper's ablations balance
/// a second path with G = 64); d = max(C / 16, 32). 28.3 M parameters; the naive reading (both
/// paths 16 groups of 32) has 37.6 M (--groups 16 --base-width 32).
inline void sknet29(SKNetConfig& c) {
  cifar29(c);
  c.groups = 32, c.base_width = 16;
}
/// ShuffleNetV2 1.0x (torchvision shufflenet_v2_x1_0): a 24-wide 3x3 stride-2 stem + max pool, stages
/// of 116, 232, 464 channels, conv5 1024 wide; its SK convolutions depthwise (G = C) with the paper's
/// attention width max(C / 16, 32).
inline void shufflenet_v2_1x(SKNetConfig& c) {
  c.block = BlockKind::shuffle, c.stem = Stem::shufflenet;
  c.planes = {116, 232, 464}, c.strides = {2, 2, 2};
  c.stem_width = 24, c.head_width = 1024;
  c.groups = 1, c.base_width = 64;
  c.attention = AttentionWidth::paper(16, 32);
}
}  // namespace detail

/// Every named architecture, in the order `sknet --help` lists them.
inline const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = [] {
    using detail::make_architecture;
    const std::string paper = "the SKNet paper (Li et al., CVPR 2019); timm skresnext50_32x4d names";
    const std::string timm_sk = "timm sknet.py";
    const std::string resnext = "ResNeXt (Xie et al.), the paper's baseline; timm resnext50_32x4d names";
    std::vector<Architecture> t;
    t.push_back(make_architecture("sknet26", "sknet", {2, 2, 2, 2}, 2, paper, false));
    t.push_back(make_architecture("sknet50", "sknet", {3, 4, 6, 3}, 2, paper + " (timm skresnext50_32x4d)", true));
    t.push_back(make_architecture("sknet101", "sknet", {3, 4, 23, 3}, 2, paper, false));
    t.push_back(make_architecture("skresnet18", "skresnet", {2, 2, 2, 2}, 2, timm_sk + " skresnet18", true,
                                  detail::skresnet_basic));
    t.push_back(make_architecture("skresnet34", "skresnet", {3, 4, 6, 3}, 2, timm_sk + " skresnet34", true,
                                  detail::skresnet_basic));
    t.push_back(make_architecture("skresnet50", "skresnet", {3, 4, 6, 3}, 2, timm_sk + " skresnet50", false,
                                  detail::skresnet_bottleneck));
    t.push_back(make_architecture("skresnet50d", "skresnet", {3, 4, 6, 3}, 2, timm_sk + " skresnet50d", false,
                                  detail::skresnet_d));
    t.push_back(make_architecture("resnext26", "resnext", {2, 2, 2, 2}, 0, resnext, false));
    t.push_back(make_architecture("resnext50", "resnext", {3, 4, 6, 3}, 0, resnext, true));
    t.push_back(make_architecture("resnext101", "resnext", {3, 4, 23, 3}, 0, resnext, false));
    t.push_back(make_architecture("seresnext50", "seresnext", {3, 4, 6, 3}, 0,
                                  "SENet (Hu et al.), the paper's SENet-50 baseline; timm seresnext50_32x4d names", true,
                                  detail::se_resnext));
    const std::string cifar = "the SKNet paper's CIFAR networks (section 3.5) on ResNeXt-29 16x32d; timm-style names";
    t.push_back(make_architecture("sknet29", "sknet", {3, 3, 3}, 2, cifar, false, detail::sknet29));
    t.push_back(make_architecture("resnext29", "resnext", {3, 3, 3}, 0, cifar + " (the ResNeXt baseline)", false,
                                  detail::resnext29));
    t.push_back(make_architecture("senet29", "seresnext", {3, 3, 3}, 0, cifar + " (the SENet baseline)", false,
                                  detail::senet29));
    t.push_back(make_architecture("sk_shufflenetv2", "sk_shufflenetv2", {4, 8, 4}, 2,
                                  "the SKNet paper's SK-ShuffleNetV2 1.0x on torchvision's shufflenet_v2_x1_0 (names "
                                  "and structure); placement of the SK convolutions: sknet's reading",
                                  false, detail::shufflenet_v2_1x));
    return t;
  }();
  return table;
}

/// The names of every architecture, "a, b, ... or z".
inline std::string architecture_names() {
  std::string out;
  const auto& t = architectures();
  for (std::size_t i = 0; i < t.size(); ++i) out += (i == 0 ? "" : i + 1 == t.size() ? " or " : ", ") + t[i].name;
  return out;
}

/// The architecture called `name`; ConfigError listing every name otherwise.
inline const Architecture& architecture(const std::string& name) {
  for (const Architecture& a : architectures())
    if (a.name == name) return a;
  detail::fail<ConfigError>("sknet", "architecture", architecture_names(), "'" + name + "'");
}

/// The plan of architecture `name` with its config (optionally changed by the caller first).
inline NetworkPlan architecture_plan(const std::string& name) {
  const Architecture& a = architecture(name);
  return family_plan(a.family, a.config, a.paths);
}
inline NetworkPlan architecture_plan(const Architecture& a, const SKNetConfig& config) {
  return family_plan(a.family, config, a.paths);
}

}  // namespace sknet
