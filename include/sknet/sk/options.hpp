// sknet: SKConvOptions, the paper's SK[M, G, r] and L plus stride, the per-path kernels, dilations and
// groups of its ablations, and how the paths are aggregated.
#pragma once

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "sknet/ops/conv2d.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// How branch m (m = 1..M in the paper, index m-1 here) sees its neighbourhood, when the per-path
/// kernel sizes are not given one by one (SKConvOptions::path_kernels).
enum class BranchKernel {
  dilated,  ///< a 3x3 kernel with dilation m and padding m (the paper's and timm's default)
  full,     ///< a true (2m+1)x(2m+1) kernel with padding m (the paper's ablation)
};

/// How the paths' outputs U_m become V.
enum class Aggregation {
  attention,  ///< V = sum_m a_m U_m with the SK attention a (Fuse + Select; the default)
  sum,        ///< V = sum_m U_m, no attention parameters (the paper's "w/o SK attention" ablation)
};

/// How an SK convolution's attention width d follows from its channels C (the rule differs between
/// the paper, timm and the official release, so it is part of the spec):
///   paper      d = max(C / r, L) (integer division): the paper's SK[M, G, r] with L, and timm's
///              skresnext50_32x4d (its make_divisible(C/16, 32) equals max(C/16, 32) for every C that is a
///              multiple of 32, which every width of those networks is);
///   divisible  d = timm's make_divisible(C * num / den, divisor): round to the nearest multiple of
///              divisor (halves up), at least divisor, plus one divisor when that falls below 0.9 x the
///              exact value (timm's skresnet18/34: 1/8, 16; skresnet50: 1/16, 8);
///   fixed      d given (e.g. read from a checkpoint: the official SKNet-101 sets d per stage).
struct AttentionWidth {
  enum class Rule { paper, divisible, fixed };
  Rule rule = Rule::paper;
  Index reduction = 16, min_width = 32;  ///< paper: r and L
  Index num = 1, den = 16, divisor = 8;  ///< divisible: the ratio num/den and the divisor
  Index round_limit_tenths = 9;          ///< divisible: bump by one divisor below this x 0.1 x the value
  Index width = 0;                       ///< fixed: d

  static AttentionWidth paper(Index r, Index l) {
    AttentionWidth a;
    a.reduction = r, a.min_width = l;
    return a;
  }
  static AttentionWidth divisible(Index num, Index den, Index divisor) {
    AttentionWidth a;
    a.rule = Rule::divisible, a.num = num, a.den = den, a.divisor = divisor;
    return a;
  }
  static AttentionWidth fixed(Index d) {
    AttentionWidth a;
    a.rule = Rule::fixed, a.width = d;
    return a;
  }

  /// d for C channels (assumes a validated rule).
  Index of(Index channels) const {
    switch (rule) {
      case Rule::paper: return std::max(channels / reduction, min_width);
      case Rule::fixed: return width;
      case Rule::divisible: {
        // make_divisible(v, divisor) with v = C * num / den, in exact integer arithmetic:
        // int(v + divisor / 2) // divisor * divisor, raised to divisor, + divisor when below 0.9 v.
        const Index twice = 2 * channels * num + divisor * den;  // 2 den (v + divisor / 2)
        Index d = std::max(divisor, (twice / (2 * den)) / divisor * divisor);
        if (10 * d * den < round_limit_tenths * channels * num) d += divisor;
        return d;
      }
    }
    return 0;
  }

  /// Throws ConfigError naming `layer` unless the rule's numbers are usable.
  void validate(const std::string& layer) const {
    using detail::require;
    switch (rule) {
      case Rule::paper:
        require<ConfigError>(reduction >= 1, layer, "reduction r", ">= 1", reduction);
        require<ConfigError>(min_width >= 1, layer, "min_width L", ">= 1", min_width);
        break;
      case Rule::divisible:
        require<ConfigError>(num >= 1 && den >= 1, layer, "attention ratio num/den", ">= 1 each",
                             std::to_string(num) + "/" + std::to_string(den));
        require<ConfigError>(divisor >= 1, layer, "attention divisor", ">= 1", divisor);
        require<ConfigError>(num <= (Index(1) << 20) && den <= (Index(1) << 20) && divisor <= (Index(1) << 20), layer,
                             "attention ratio and divisor", "<= 2^20", std::max({num, den, divisor}));
        break;
      case Rule::fixed: require<ConfigError>(width >= 1, layer, "attention width d", ">= 1", width); break;
    }
  }

  friend bool operator==(const AttentionWidth& a, const AttentionWidth& b) {
    if (a.rule != b.rule) return false;
    switch (a.rule) {
      case Rule::paper: return a.reduction == b.reduction && a.min_width == b.min_width;
      case Rule::divisible:
        return a.num * b.den == b.num * a.den && a.divisor == b.divisor && a.round_limit_tenths == b.round_limit_tenths;
      case Rule::fixed: return a.width == b.width;
    }
    return false;
  }
  friend bool operator!=(const AttentionWidth& a, const AttentionWidth& b) { return !(a == b); }

  std::string to_string() const {
    switch (rule) {
      case Rule::paper: return "max(C/" + std::to_string(reduction) + ", " + std::to_string(min_width) + ")";
      case Rule::divisible:
        return "make_divisible(C*" + std::to_string(num) + "/" + std::to_string(den) + ", " + std::to_string(divisor) + ")";
      case Rule::fixed: return std::to_string(width);
    }
    return "";
  }
};

/// Options of an SK convolution. Defaults are the paper's SK[2, 32, 16] with L = 32, stride 1,
/// dilated branches, every path reading every input channel, attention. Example:
/// SKConvOptions(128, 128).groups(32).reduction(16).min_width(32).
/// With split_input (timm's skresnet families) path m reads only input channels
/// [m * Cin / M, (m + 1) * Cin / M), so its convolution is Cin / M -> Cout.
///
/// Path m (0-based) is a k_m x k_m convolution with dilation D_m, padding D_m (k_m - 1) / 2 (so every
/// path keeps the output size) and G_m groups:
///   k_m = path_kernels()[m] when given, else 3 (dilated) or 2m + 3 (full);
///   D_m = path_dilations()[m] when given, else m + 1 for a 3x3 path and 1 for a larger kernel (the
///         paper's and timm's convention: a dilated 3x3 stands in for the (2m+3)x(2m+3) kernel);
///   G_m = path_groups()[m] when given, else groups().
/// The paper's ablations (section 4): path_kernels({3, 3}).path_dilations({1, 2}) is the default,
/// path_kernels({3, 5}) a true 5x5 second path, path_groups({32, 64}) a second path with twice the
/// groups, path_kernels({3, 5, 7}) M = 3 with true kernels, aggregation(Aggregation::sum) no attention.
class SKConvOptions {
 public:
  SKConvOptions(Index in_channels, Index out_channels) : in_(in_channels), out_(out_channels) {}
  /// Square SK convolution: in_channels == out_channels == channels.
  explicit SKConvOptions(Index channels) : SKConvOptions(channels, channels) {}

  /// M, the number of paths; 0 (the default) means "the SKConv template argument".
  SKConvOptions& paths(Index m) { paths_ = m; return *this; }
  /// G, the groups of every branch convolution without its own (G = C gives depthwise branches).
  SKConvOptions& groups(Index g) { groups_ = g; return *this; }
  /// r, the reduction ratio of the attention: d = max(C / r, L) (selects the paper's rule).
  SKConvOptions& reduction(Index r) {
    attention_.rule = AttentionWidth::Rule::paper, attention_.reduction = r;
    return *this;
  }
  /// L, the minimum attention width (selects the paper's rule).
  SKConvOptions& min_width(Index l) {
    attention_.rule = AttentionWidth::Rule::paper, attention_.min_width = l;
    return *this;
  }
  /// The attention-width rule (see AttentionWidth).
  SKConvOptions& attention(const AttentionWidth& a) { attention_ = a; return *this; }
  /// Whether path m reads only its M-th of the input channels (timm's split_input).
  SKConvOptions& split_input(bool s) { split_input_ = s; return *this; }
  SKConvOptions& stride(Index s) { stride_ = s; return *this; }
  SKConvOptions& branch_kernel(BranchKernel k) { branch_kernel_ = k; return *this; }
  /// Kernel size of each path (odd, one per path; empty: from branch_kernel()).
  SKConvOptions& path_kernels(std::vector<Index> k) { path_kernels_ = std::move(k); return *this; }
  /// Dilation of each path (one per path; empty: the convention in the class comment).
  SKConvOptions& path_dilations(std::vector<Index> d) { path_dilations_ = std::move(d); return *this; }
  /// Groups of each path (one per path; empty: groups() for every path).
  SKConvOptions& path_groups(std::vector<Index> g) { path_groups_ = std::move(g); return *this; }
  SKConvOptions& aggregation(Aggregation a) { aggregation_ = a; return *this; }

  Index in_channels() const { return in_; }
  Index out_channels() const { return out_; }
  Index paths() const { return paths_; }
  Index groups() const { return groups_; }
  Index reduction() const { return attention_.reduction; }
  Index min_width() const { return attention_.min_width; }
  const AttentionWidth& attention() const { return attention_; }
  bool split_input() const { return split_input_; }
  Index stride() const { return stride_; }
  BranchKernel branch_kernel() const { return branch_kernel_; }
  const std::vector<Index>& path_kernels() const { return path_kernels_; }
  const std::vector<Index>& path_dilations() const { return path_dilations_; }
  const std::vector<Index>& path_groups() const { return path_groups_; }
  Aggregation aggregation() const { return aggregation_; }
  /// Whether V is the attention-weighted sum (Fuse and Select with their parameters).
  bool has_attention() const { return aggregation_ == Aggregation::attention; }

  /// k_m, D_m and G_m of path `m` (0-based; see the class comment).
  Index kernel_of(Index m) const {
    if (!path_kernels_.empty()) return at(path_kernels_, m);
    return branch_kernel_ == BranchKernel::full ? 2 * m + 3 : 3;
  }
  Index dilation_of(Index m) const {
    if (!path_dilations_.empty()) return at(path_dilations_, m);
    return kernel_of(m) == 3 ? m + 1 : 1;
  }
  Index groups_of(Index m) const { return path_groups_.empty() ? groups_ : at(path_groups_, m); }
  /// How far path m reaches from the centre: its padding D_m (k_m - 1) / 2.
  Index reach_of(Index m) const { return dilation_of(m) * (kernel_of(m) - 1) / 2; }
  /// Whether every path of `m_paths` is the default: 3x3, dilation m + 1, groups() (the layout the
  /// checkpoints of timm and the paper's SKNets have).
  bool default_paths(Index m_paths) const {
    for (Index m = 0; m < m_paths; ++m)
      if (kernel_of(m) != 3 || dilation_of(m) != m + 1 || groups_of(m) != groups_) return false;
    return true;
  }

  /// d of the attention rule for C = out_channels (the paper's max(C / r, L) by default).
  Index attention_width() const { return attention_.of(out_); }

  /// Input channels of each path's convolution: Cin, or Cin / M with split_input (M = `m_paths`).
  Index path_in_channels(Index m_paths) const { return split_input_ && m_paths > 0 ? in_ / m_paths : in_; }

  /// The convolution of branch `m` (0-based) of `m_paths`: no bias, G_m groups, k_m x k_m with dilation
  /// D_m and padding D_m (k_m - 1) / 2, the SK stride.
  Conv2dOptions branch_conv(Index m, Index m_paths) const {
    return Conv2dOptions(path_in_channels(m_paths), out_, kernel_of(m))
        .stride(stride_)
        .padding(reach_of(m))
        .dilation(dilation_of(m))
        .groups(groups_of(m))
        .bias(false);
  }

  /// Throws ConfigError naming `layer` unless valid for an SK convolution with `m_paths` paths.
  void validate(const std::string& layer, Index m_paths) const {
    using detail::require;
    require<ConfigError>(paths_ == 0 || paths_ == m_paths, layer, "paths (M, fixed by the template argument)",
                         m_paths, paths_);
    attention_.validate(layer);
    require<ConfigError>(stride_ >= 1, layer, "stride", ">= 1", stride_);
    if (split_input_)
      require<ConfigError>(in_ % m_paths == 0, layer, "input channels (split over the M paths: a multiple of M)",
                           "a multiple of " + std::to_string(m_paths), in_);
    const auto one_per_path = [&](const std::vector<Index>& list, const char* what) {
      require<ConfigError>(list.empty() || Index(list.size()) == m_paths, layer,
                           std::string(what) + " (one per path, M = " + std::to_string(m_paths) + ")", m_paths,
                           list.size());
    };
    one_per_path(path_kernels_, "path kernel sizes");
    one_per_path(path_dilations_, "path dilations");
    one_per_path(path_groups_, "path groups");
    for (Index m = 0; m < m_paths; ++m) {
      const std::string path = "path " + std::to_string(m);
      const Index k = kernel_of(m), d = dilation_of(m), g = groups_of(m);
      require<ConfigError>(k >= 1 && k % 2 == 1 && k <= 31, layer,
                           path + " kernel size (odd, so that padding D(k-1)/2 keeps the output size)",
                           "an odd number in 1..31", k);
      require<ConfigError>(d >= 1 && d <= 64, layer, path + " dilation", "1..64", d);
      require<ConfigError>(g >= 1, layer, path + " groups", ">= 1", g);
      branch_conv(m, m_paths).validate(layer + " " + path);
    }
  }

 private:
  static Index at(const std::vector<Index>& list, Index m) {
    return m >= 0 && m < Index(list.size()) ? list[std::size_t(m)] : 0;  // 0: refused by validate()
  }

  Index in_, out_;
  Index paths_ = 0, groups_ = 32, stride_ = 1;
  AttentionWidth attention_;
  bool split_input_ = false;
  BranchKernel branch_kernel_ = BranchKernel::dilated;
  std::vector<Index> path_kernels_, path_dilations_, path_groups_;
  Aggregation aggregation_ = Aggregation::attention;
};

inline std::ostream& operator<<(std::ostream& os, const SKConvOptions& o) {
  os << "SKConv(" << o.in_channels() << ", " << o.out_channels() << ", G=" << o.groups();
  if (o.attention().rule == AttentionWidth::Rule::paper) os << ", r=" << o.reduction() << ", L=" << o.min_width();
  else os << ", d rule " << o.attention().to_string();
  os << ", d=" << o.attention_width();
  if (o.split_input()) os << ", split input";
  if (o.paths() != 0) os << ", M=" << o.paths();
  if (o.stride() != 1) os << ", stride=" << o.stride();
  if (o.branch_kernel() == BranchKernel::full) os << ", full kernels";
  const auto list = [&](const char* what, const std::vector<Index>& v) {
    if (v.empty()) return;
    os << ", " << what << "=";
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  };
  list("kernels", o.path_kernels());
  list("dilations", o.path_dilations());
  list("path groups", o.path_groups());
  if (!o.has_attention()) os << ", sum (no attention)";
  return os << ')';
}

}  // namespace sknet
