// sknet: the network a checkpoint holds, inferred from its parameter names and shapes alone (no
// tensor data is needed): the family (SKNet, SK-ResNet, ResNeXt, SE-ResNeXt), depth, stem, widths,
// groups, M, split input, the attention width of every SK unit, the SE widths and the classes; and,
// when a checkpoint does not fit a plan, the differences grouped by unit so that they read well in a
// terminal.
//
// What shapes cannot tell apart, by convention (timm's) unless the file's metadata says otherwise (as
// sknet's own fixtures and demo models write it): strides are 1, 2, 2, 2 (metadata "strides":
// "1,2,2"); an SK path whose input is exactly Cin / M channels per output (weight [C, Cin / M, 3, 3])
// splits the input (timm's skresnet, G = 1) rather than grouping it into M groups (metadata
// "split_input": "0" for the latter). The paper's ablations: each path's kernel size and groups come
// from its weight's shape, and a checkpoint without attn.* keys has sum aggregation; dilations do not
// show in a shape, so they come from the metadata's "path_dilations" ("1,1") when present, and
// otherwise follow the paper's and timm's convention: the n-th path, if 3x3, has dilation n (1, 2, ...),
// a larger kernel dilation 1 (true 5x5, 7x7 kernels).
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sknet/models/architectures.hpp"
#include "sknet/models/plan_layers.hpp"

namespace sknet {

/// Parameter name -> shape, as a checkpoint holds them (or as a plan expects them).
using ShapeMap = std::map<std::string, std::vector<Index>>;

/// A checkpoint that does not fit the network asked for: what() is a multi-line report (the
/// differences grouped by unit, then what the file holds), meant to be shown as it is.
class CheckpointMismatch : public FormatError {
 public:
  using FormatError::FormatError;
};

/// What infer_network found.
struct InferredNetwork {
  std::string family;        ///< sknet, skresnet, resnext, seresnext or sk_shufflenetv2
  SKNetConfig config;        ///< with config.paths = M for SK families
  Index paths = 0;           ///< M (0: no SK convolutions)
  std::string architecture;  ///< the named architecture it equals, or "" (a custom config)
  NetworkPlan plan() const { return family_plan(family, config, paths); }
  /// One line: "skresnet18 (family skresnet: basic blocks 2,2,2,2, ..., 1000 classes)".
  std::string description() const;
};

namespace detail {

inline std::string shape_text(const std::vector<Index>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// "layer3.12" of "layer3.12.conv1.weight" (or "stage3.12" of a ShuffleNetV2 key), or "" for keys
/// outside the units.
inline std::string unit_of(const std::string& key) {
  if (key.rfind("layer", 0) != 0 && key.rfind("stage", 0) != 0) return "";
  const auto dot = key.find('.');
  if (dot == std::string::npos) return "";
  const auto dot2 = key.find('.', dot + 1);
  return dot2 == std::string::npos ? "" : key.substr(0, dot2);
}

/// Groups "unit -> count" into "layer1.2, layer2.2-3: <what> (26 keys each)" lines (units with the
/// same count together, consecutive units of a stage as a range); keys outside units one per line.
inline std::vector<std::string> grouped_lines(const std::vector<std::string>& keys, const std::string& what) {
  std::map<std::string, Index> per_unit;
  std::vector<std::string> loose;
  for (const auto& k : keys) {
    const std::string u = unit_of(k);
    if (u.empty()) loose.push_back(k);
    else ++per_unit[u];
  }
  // count -> (prefix "layer" or "stage", stage) -> sorted unit indices
  std::map<Index, std::map<std::pair<std::string, Index>, std::vector<Index>>> by_count;
  for (const auto& [u, n] : per_unit) {
    const auto dot = u.find('.');
    by_count[n][{u.substr(0, 5), std::stoll(u.substr(5, dot - 5))}].push_back(std::stoll(u.substr(dot + 1)));
  }
  std::vector<std::string> lines;
  for (auto& [count, stages] : by_count) {
    std::string units;
    for (auto& [stage, idx] : stages) {
      std::sort(idx.begin(), idx.end());
      for (std::size_t i = 0; i < idx.size();) {
        std::size_t j = i;
        while (j + 1 < idx.size() && idx[j + 1] == idx[j] + 1) ++j;
        units += (units.empty() ? "" : ", ") + stage.first + std::to_string(stage.second) + "." + std::to_string(idx[i]) +
                 (j > i ? "-" + std::to_string(idx[j]) : "");
        i = j + 1;
      }
    }
    lines.push_back(units + ": " + what + " (" + std::to_string(count) + (count == 1 ? " key" : " keys") +
                    (per_unit.size() > 1 ? " each)" : ")"));
  }
  for (const auto& k : loose) lines.push_back(k + ": " + what);
  return lines;
}

}  // namespace detail

/// The differences between what `file` holds and what `expected` needs, one line each (grouped by
/// unit for missing and unexpected keys, at most `max_shape_lines` shape differences then a count).
/// Empty when they match.
inline std::vector<std::string> checkpoint_differences(const ShapeMap& file, const ShapeMap& expected,
                                                       std::size_t max_shape_lines = 12) {
  std::vector<std::string> missing, unexpected, lines;
  std::vector<std::string> reshaped;
  for (const auto& [k, s] : expected) {
    const auto it = file.find(k);
    if (it == file.end()) missing.push_back(k);
    else if (it->second != s)
      reshaped.push_back(k + ": " + detail::shape_text(it->second) + " in the file, " + detail::shape_text(s) + " expected");
  }
  for (const auto& [k, s] : file)
    if (!expected.count(k) && !(k.size() >= 20 && k.compare(k.size() - 20, 20, ".num_batches_tracked") == 0))
      unexpected.push_back(k);
  for (auto& l : detail::grouped_lines(missing, "missing")) lines.push_back(std::move(l));
  for (auto& l : detail::grouped_lines(unexpected, "not expected")) lines.push_back(std::move(l));
  for (std::size_t i = 0; i < reshaped.size() && i < max_shape_lines; ++i) lines.push_back(reshaped[i]);
  if (reshaped.size() > max_shape_lines)
    lines.push_back("... and " + std::to_string(reshaped.size() - max_shape_lines) + " more keys with another shape");
  return lines;
}

/// The expected names and shapes of a plan's checkpoint.
inline ShapeMap plan_shapes(const NetworkPlan& plan) {
  ShapeMap out;
  for (const auto& [k, s] : expected_parameters(plan)) out[k] = s;
  return out;
}

namespace detail {

inline const std::vector<Index>& shape_at(const ShapeMap& m, const std::string& key, std::size_t rank,
                                          const std::string& source) {
  const auto it = m.find(key);
  if (it == m.end())
    fail<FormatError>(source, "parameter '" + key + "'", "present (to recognise the network)", "missing");
  if (it->second.size() != rank)
    fail<FormatError>(source, "rank of '" + key + "'", rank, it->second.size());
  return it->second;
}

inline bool has(const ShapeMap& m, const std::string& key) { return m.count(key) > 0; }

/// The stage strides of the file's metadata entry "strides" ("1,2,2,1"), if it has one.
/// The metadata entry `key` as comma-separated integers, or nothing when the file has none; FormatError
/// naming `source` when it is not such a list.
inline std::optional<std::vector<Index>> metadata_ints(const std::map<std::string, std::string>& metadata,
                                                       const std::string& key, const std::string& source) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return std::nullopt;
  std::vector<Index> values;
  std::size_t begin = 0;
  try {
    while (begin <= it->second.size()) {
      const std::size_t end = std::min(it->second.find(',', begin), it->second.size());
      std::size_t used = 0;
      const std::string item = it->second.substr(begin, end - begin);
      values.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
      begin = end + 1;
    }
  } catch (const std::exception&) {
    fail<FormatError>(source, "metadata '" + key + "'", "comma-separated integers", "'" + it->second + "'");
  }
  return values;
}

/// The stage strides from the metadata's "strides" entry (one per stage), or nothing.
inline std::optional<std::vector<Index>> metadata_strides(const std::map<std::string, std::string>& metadata,
                                                          std::size_t stages, const std::string& source) {
  std::optional<std::vector<Index>> strides = metadata_ints(metadata, "strides", source);
  if (strides)
    require<FormatError>(strides->size() == stages, source, "metadata 'strides' (one per stage)", stages, strides->size());
  return strides;
}

/// Sets r.config's attention rule to the first rule (the paper's and timm's, then the same forms with
/// other numbers, for reduced networks) that gives every SK unit of r's plan its width in `d`, or
/// lists the widths unit by unit when none does.
inline void infer_attention_rule(InferredNetwork& r, const std::vector<Index>& d) {
  SKNetConfig& c = r.config;
  std::vector<AttentionWidth> rules{AttentionWidth::paper(16, 32), AttentionWidth::divisible(1, 8, 16),
                                    AttentionWidth::divisible(1, 16, 8), AttentionWidth::divisible(1, 16, 32)};
  for (Index den : {16, 8, 4, 2})
    for (Index k : {32, 16, 8, 4, 2, 1}) rules.push_back(AttentionWidth::paper(den, k)), rules.push_back(AttentionWidth::divisible(1, den, k));
  for (const AttentionWidth& rule : rules) {
    SKNetConfig trial = c;
    trial.attention = rule;
    std::vector<Index> got;
    try {
      for (const BlockPlan& b : family_plan(r.family, trial, r.paths).blocks)
        if (b.has_attention()) got.push_back(b.sk.attention_width());
    } catch (const ConfigError&) {
      continue;
    }
    if (got == d) {
      c.attention = rule;
      return;
    }
  }
  c.attention_widths = d;
}

/// Checks that the plan of what was inferred fits `file` exactly (FormatError naming the differences
/// otherwise) and names the architecture with the same plan (classes aside), if any; the parameter
/// count and depth rule out most candidates before their names and shapes are built.
inline void finish_inference(InferredNetwork& r, const ShapeMap& file, const std::string& source) {
  NetworkPlan plan;
  try {
    plan = r.plan();
  } catch (const ConfigError& e) {
    throw FormatError(source + ": recognised a " + r.family + " network, but its shapes give no valid config: " + e.what());
  }
  const std::vector<std::string> diff = checkpoint_differences(file, plan_shapes(plan));
  if (!diff.empty()) {
    std::string message = source + ": looks like a " + r.family + " network, but does not fit one:";
    for (const auto& l : diff) message += "\n  " + l;
    throw FormatError(message);
  }
  // A named architecture with the same plan (classes aside); the parameter count and depth rule out
  // most candidates before their names and shapes are built. Every named SK network has the default
  // paths, so paths with other dilations (which the shapes do not show) name none.
  const Index params = plan.parameters();
  const bool default_paths = std::all_of(plan.blocks.begin(), plan.blocks.end(), [](const BlockPlan& b) {
    return b.middle != Middle::sk || b.kind == BlockKind::pointwise || b.paths == 0 || b.sk.default_paths(b.paths);
  });
  for (const Architecture& a : architectures()) {
    if (!default_paths) break;
    if (a.family != r.family) continue;
    SKNetConfig named = a.config;
    named.num_classes = r.config.num_classes, named.in_channels = r.config.in_channels;
    try {
      const NetworkPlan candidate = family_plan(a.family, named, a.paths);
      if (candidate.blocks.size() != plan.blocks.size() || candidate.parameters() != params) continue;
      if (checkpoint_differences(file, plan_shapes(candidate)).empty()) {
        r.architecture = a.name;
        break;
      }
    } catch (const ConfigError&) {
    }
  }
}

/// SK-ShuffleNetV2 (torchvision's names: conv1.0, stage{2..}.{u}.branch1/branch2.*, conv5.0, fc) from
/// its names and shapes; strides 2 per stage unless the metadata says otherwise.
inline InferredNetwork infer_shufflenet(const ShapeMap& file, const std::string& source,
                                        const std::map<std::string, std::string>& metadata) {
  InferredNetwork r;
  r.family = "sk_shufflenetv2";
  SKNetConfig& c = r.config;
  c = architecture("sk_shufflenetv2").config;
  c.attention.reset();
  const auto& stem = shape_at(file, "conv1.0.weight", 4, source);
  c.stem_width = stem[0], c.in_channels = stem[1];
  c.layers.clear(), c.planes.clear();
  for (Index s = 2; has(file, "stage" + std::to_string(s) + ".0.branch2.0.weight"); ++s) {
    Index n = 0;
    while (has(file, "stage" + std::to_string(s) + "." + std::to_string(n) + ".branch2.0.weight")) ++n;
    c.layers.push_back(n);
    c.planes.push_back(2 * shape_at(file, "stage" + std::to_string(s) + ".0.branch2.5.weight", 4, source)[0]);
  }
  c.strides.assign(c.layers.size(), 2);
  if (const auto strides = metadata_strides(metadata, c.layers.size(), source)) c.strides = *strides;
  const std::string sk = "stage2.0.branch2.3.paths.";
  Index m = 0;
  while (has(file, sk + std::to_string(m) + ".conv.weight")) ++m;
  if (m == 0) fail<FormatError>(source, "stage2.0.branch2.3", "an SK convolution (paths.*)", "missing");
  r.paths = c.paths = m;
  if (shape_at(file, sk + "0.conv.weight", 4, source)[2] != 3) c.branch_kernel = BranchKernel::full;
  c.head_width = has(file, "conv5.0.weight") ? shape_at(file, "conv5.0.weight", 4, source)[0] : 0;
  c.num_classes = shape_at(file, "fc.weight", 2, source)[0];
  std::vector<Index> d;
  for (std::size_t s = 0; s < c.layers.size(); ++s)
    for (Index u = 0; u < c.layers[s]; ++u)
      d.push_back(shape_at(file, "stage" + std::to_string(s + 2) + "." + std::to_string(u) + ".branch2.3.attn.fc_reduce.weight",
                           4, source)[0]);
  infer_attention_rule(r, d);
  finish_inference(r, file, source);
  return r;
}

}  // namespace detail

/// Infers the network of a checkpoint from its names and shapes (see the file comment for what is
/// taken by convention; `metadata` may give the stage strides as "strides": "1,2,2,1", whether SK
/// paths split their input as "split_input": "0" or "1" and the SK path dilations as
/// "path_dilations": "1,3"). Throws
/// FormatError naming `source` when the keys fit no family, with the differences to the closest plan
/// when a family was recognised but the file does not fit it.
inline InferredNetwork infer_network(const ShapeMap& file, const std::string& source,
                                     const std::map<std::string, std::string>& metadata = {}) {
  using detail::has;
  using detail::shape_at;
  if (has(file, "stage2.0.branch2.0.weight")) return detail::infer_shufflenet(file, source, metadata);
  InferredNetwork r;
  SKNetConfig& c = r.config;
  c.attention.reset();
  // Stem.
  if (!has(file, "conv1.0.weight") && !has(file, "conv1.weight")) {
    std::string keys;
    std::size_t shown = 0;
    for (auto it = file.begin(); it != file.end() && shown < 3; ++it, ++shown) keys += (shown ? ", " : "") + it->first;
    if (file.size() > 3) keys += ", ...";
    throw FormatError(source + ": not a checkpoint of a network sknet knows (" + architecture_names() +
                      ", or their families): no stem 'conv1.weight' or 'conv1.0.weight' (keys: " +
                      (keys.empty() ? std::string("none") : keys) + ")");
  }
  if (has(file, "conv1.0.weight")) {
    const auto& w = shape_at(file, "conv1.0.weight", 4, source);
    c.stem = Stem::deep, c.stem_width = w[0], c.in_channels = w[1];
  } else {
    const auto& w = shape_at(file, "conv1.weight", 4, source);
    c.stem = w[2] == 7 ? Stem::imagenet : Stem::small;
    c.stem_width = w[0], c.in_channels = w[1];
  }
  // Depths: layer{s}.{u}.* for s = 1, 2, ...
  std::map<Index, Index> units;
  for (const auto& entry : file) {
    const std::string u = detail::unit_of(entry.first);
    if (u.empty()) continue;
    const auto dot = u.find('.');
    try {
      const Index s = std::stoll(u.substr(5, dot - 5)), i = std::stoll(u.substr(dot + 1));
      units[s] = std::max(units[s], i + 1);
    } catch (const std::exception&) {
      detail::fail<FormatError>(source, "unit name", "layer<stage>.<unit>", "'" + u + "'");
    }
  }
  if (units.empty() || units.begin()->first != 1 || units.rbegin()->first != Index(units.size()))
    detail::fail<FormatError>(source, "stages", "layer1 .. layerN (a ResNet-layout network)",
                              units.empty() ? std::string("none") : "layer" + std::to_string(units.begin()->first) + " .. layer" +
                                                                         std::to_string(units.rbegin()->first));
  c.layers.clear(), c.planes.clear(), c.strides.clear();
  for (const auto& [s, n] : units) c.layers.push_back(n), c.strides.push_back(s == 1 ? 1 : 2);
  if (const auto strides = detail::metadata_strides(metadata, c.layers.size(), source)) c.strides = *strides;
  // Block kind and family from the first unit.
  const std::string u0 = "layer1.0.";
  const bool sk_basic = has(file, u0 + "conv1.paths.0.conv.weight");
  const bool sk_bottleneck = has(file, u0 + "conv2.paths.0.conv.weight");
  const bool grouped = has(file, u0 + "conv2.weight") && has(file, u0 + "bn2.weight");
  if (!sk_basic && !sk_bottleneck && !grouped)
    detail::fail<FormatError>(source, "first unit (layer1.0)",
                              "an SK bottleneck (conv2.paths.*), an SK basic block (conv1.paths.*) or a grouped "
                              "bottleneck (conv2, bn2)",
                              "none of these");
  c.block = sk_basic ? BlockKind::basic : BlockKind::bottleneck;
  c.avg_down = false;
  for (std::size_t s = 0; s < c.layers.size(); ++s) {
    const std::string p = "layer" + std::to_string(s + 1) + ".0.";
    if (has(file, p + "downsample.2.weight") && has(file, p + "downsample.1.weight") &&
        file.at(p + "downsample.1.weight").size() == 4)
      c.avg_down = true;
  }
  const std::string sk_at = sk_basic ? "conv1" : "conv2";
  for (std::size_t s = 0; s < c.layers.size(); ++s) {
    const std::string p = "layer" + std::to_string(s + 1) + ".0.";
    if (c.block == BlockKind::basic) {
      c.planes.push_back(shape_at(file, p + "conv2.conv.weight", 4, source)[0]);
    } else {
      const std::string conv3 = grouped ? p + "conv3.weight" : p + "conv3.conv.weight";
      c.planes.push_back(shape_at(file, conv3, 4, source)[0] / 4);
    }
  }
  // Groups, base width, M, split input.
  const Index planes0 = c.planes[0];
  if (grouped) {
    const auto& w2 = shape_at(file, u0 + "conv2.weight", 4, source);
    const Index width = w2[0];
    c.groups = w2[1] > 0 && width % w2[1] == 0 ? width / w2[1] : 1;
    c.base_width = width * 64 / (planes0 * c.groups);
    r.family = has(file, u0 + "se.fc1.weight") ? "seresnext" : "resnext";
  } else {
    Index m = 0;
    while (has(file, u0 + sk_at + ".paths." + std::to_string(m) + ".conv.weight")) ++m;
    r.paths = c.paths = m;
    const auto& w = shape_at(file, u0 + sk_at + ".paths.0.conv.weight", 4, source);
    const Index width = w[0];
    const Index sk_in = c.block == BlockKind::basic ? c.stem_channels() : shape_at(file, u0 + "conv1.conv.weight", 4, source)[0];
    c.split_input = w[1] * m == sk_in;  // by convention; the metadata settles a G = M file
    if (const auto it = metadata.find("split_input"); it != metadata.end()) {
      if (it->second != "0" && it->second != "1")
        detail::fail<FormatError>(source, "metadata 'split_input'", "0 or 1", "'" + it->second + "'");
      c.split_input = it->second == "1";
    }
    const Index path_in = c.split_input ? sk_in / m : sk_in;
    // Each path's kernel size and groups from its weight [C, path_in / G_m, k_m, k_m].
    std::vector<Index> kernels, groups;
    for (Index i = 0; i < m; ++i) {
      const auto& wi = shape_at(file, u0 + sk_at + ".paths." + std::to_string(i) + ".conv.weight", 4, source);
      kernels.push_back(wi[2]);
      groups.push_back(wi[1] > 0 && path_in % wi[1] == 0 ? path_in / wi[1] : 1);
    }
    c.groups = groups[0];
    c.base_width = c.block == BlockKind::basic ? 64 : width * 64 / (planes0 * c.groups);
    bool all_3x3 = true, all_full = true;
    for (Index i = 0; i < m; ++i) {
      all_3x3 = all_3x3 && kernels[std::size_t(i)] == 3;
      all_full = all_full && kernels[std::size_t(i)] == 2 * i + 3;
      if (groups[std::size_t(i)] != c.groups) c.path_groups = groups;
    }
    if (!all_3x3 && all_full) c.branch_kernel = BranchKernel::full;
    if (!all_3x3 && !all_full) c.path_kernels = kernels;
    c.path_dilations = detail::metadata_ints(metadata, "path_dilations", source).value_or(std::vector<Index>{});
    detail::require<FormatError>(c.path_dilations.empty() || Index(c.path_dilations.size()) == m, source,
                                 "metadata 'path_dilations' (one per SK path)", m, c.path_dilations.size());
    if (!has(file, u0 + sk_at + ".attn.fc_reduce.weight")) c.aggregation = Aggregation::sum;
    r.family = c.split_input || c.block == BlockKind::basic ? "skresnet" : "sknet";
  }
  const auto& fc = shape_at(file, "fc.weight", 2, source);
  c.num_classes = fc[0];
  // Attention widths of every SK unit: a rule when one explains them all, else the list.
  if (r.paths > 0 && c.aggregation == Aggregation::attention) {
    std::vector<Index> d;
    for (std::size_t s = 0; s < c.layers.size(); ++s)
      for (Index u = 0; u < c.layers[s]; ++u)
        d.push_back(shape_at(file, "layer" + std::to_string(s + 1) + "." + std::to_string(u) + "." + sk_at +
                                       ".attn.fc_reduce.weight",
                                   4, source)[0]);
    detail::infer_attention_rule(r, d);
  }
  if (r.family == "seresnext") {  // timm's rule, or the same form with another ratio or divisor
    std::vector<Index> widths;
    for (std::size_t s = 0; s < c.layers.size(); ++s)
      for (Index u = 0; u < c.layers[s]; ++u)
        widths.push_back(shape_at(file, "layer" + std::to_string(s + 1) + "." + std::to_string(u) + ".se.fc1.weight", 4, source)[0]);
    const auto fits = [&](const AttentionWidth& rule) {
      std::vector<Index> got;
      for (std::size_t s = 0; s < c.layers.size(); ++s) got.insert(got.end(), std::size_t(c.layers[s]), rule.of(c.stage_channels(s)));
      return got == widths;
    };
    const auto find_rule = [&]() -> AttentionWidth {
      if (fits(se_rule())) return se_rule();
      for (Index den : {16, 8, 4, 2})
        for (Index k : {8, 16, 4, 2, 1}) {
          AttentionWidth rule = AttentionWidth::divisible(1, den, k);
          rule.round_limit_tenths = 0;
          if (fits(rule)) return rule;
        }
      return se_rule();  // no rule fits: the differences below name the widths
    };
    c.se = find_rule();
  }
  detail::finish_inference(r, file, source);
  return r;
}

/// The classes of a checkpoint: the rows of its 2-D 'fc.weight'; FormatError naming `path` otherwise.
inline Index checkpoint_classes(const ShapeMap& file, const std::string& path) {
  const auto fc = file.find("fc.weight");
  if (fc == file.end() || fc->second.size() != 2 || fc->second[0] < 1)
    throw FormatError(path + ": expected a 2-D 'fc.weight' [classes, features] in the checkpoint");
  return fc->second[0];
}

/// Throws CheckpointMismatch unless the checkpoint's names and shapes `file` fit `plan`, the network
/// asked for as `wanted` (e.g. "--arch sknet50"): one difference per line, grouped by unit, then what
/// the file holds (inferred, strides from `metadata`) and the --arch that fits, if one does.
inline void require_checkpoint_fits(const ShapeMap& file, const NetworkPlan& plan, const std::string& path,
                                    const std::string& wanted, const std::map<std::string, std::string>& metadata = {}) {
  const std::vector<std::string> differences = checkpoint_differences(file, plan_shapes(plan));
  if (differences.empty()) return;
  std::string message = path + ": does not fit " + wanted + ":";
  for (const auto& line : differences) message += "\n  " + line;
  try {
    const InferredNetwork inferred = infer_network(file, path, metadata);
    message += "\nthe file holds " + inferred.description() +
               (inferred.architecture.empty() ? "; run it without --arch" : "; use --arch " + inferred.architecture);
  } catch (const FormatError&) {
    message += "\nthe file fits no network family sknet knows";
  }
  throw CheckpointMismatch(message);
}

inline std::string InferredNetwork::description() const {
  const auto list = [](const std::vector<Index>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s;
  };
  std::string s = (architecture.empty() ? std::string("a custom ") + family : architecture) + " (family " + family + ": ";
  s += std::string(config.block == BlockKind::basic     ? "basic blocks "
                   : config.block == BlockKind::shuffle ? "shuffle units "
                                                        : "bottlenecks ") +
       list(config.layers);
  s += ", planes " + list(config.planes);
  s += ", stem " + std::string(config.stem == Stem::deep         ? "deep"
                               : config.stem == Stem::small      ? "small"
                               : config.stem == Stem::shufflenet ? "3x3"
                                                                 : "7x7");
  if (config.head_width > 0) s += ", conv5 " + std::to_string(config.head_width);
  if (config.avg_down) s += ", avg-pool shortcuts";
  s += config.block == BlockKind::shuffle ? ", depthwise SK (G = C)" : ", G " + std::to_string(config.groups);
  if (paths > 0) {
    s += ", M " + std::to_string(paths) + (config.split_input ? ", split input" : "");
    const NetworkPlan p = plan();
    const SKConvOptions& sk = p.blocks.front().sk;
    if (!sk.default_paths(paths)) {
      std::vector<Index> k, d, g;
      for (Index m = 0; m < paths; ++m) k.push_back(sk.kernel_of(m)), d.push_back(sk.dilation_of(m)), g.push_back(sk.groups_of(m));
      s += ", path kernels " + list(k) + " dilations " + list(d) + " groups " + list(g);
      if (config.path_dilations.empty()) s += " (dilations by convention)";
    }
    if (config.aggregation == Aggregation::sum)
      s += ", sum aggregation (no attention)";
    else
      s += ", d " + (config.attention ? config.attention->to_string() : "per unit " + list(config.attention_widths));
  }
  if (config.se) s += ", SE " + config.se->to_string();
  s += ", " + std::to_string(config.num_classes) + " classes)";
  return s;
}

}  // namespace sknet
