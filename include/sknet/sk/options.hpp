// sknet: SKConvOptions, the paper's SK[M, G, r] and L plus stride and the branch kernels.
#pragma once

#include <algorithm>
#include <ostream>
#include <string>

#include "sknet/ops/conv2d.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// How branch m (m = 1..M in the paper, index m-1 here) sees its neighbourhood.
enum class BranchKernel {
  dilated,  ///< a 3x3 kernel with dilation m and padding m (the paper's and timm's default)
  full,     ///< a true (2m+1)x(2m+1) kernel with padding m (the paper's ablation)
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
/// dilated branches, every path reading every input channel. Example:
/// SKConvOptions(128, 128).groups(32).reduction(16).min_width(32).
/// With split_input (timm's skresnet families) path m reads only input channels
/// [m * Cin / M, (m + 1) * Cin / M), so its convolution is Cin / M -> Cout.
class SKConvOptions {
 public:
  SKConvOptions(Index in_channels, Index out_channels) : in_(in_channels), out_(out_channels) {}
  /// Square SK convolution: in_channels == out_channels == channels.
  explicit SKConvOptions(Index channels) : SKConvOptions(channels, channels) {}

  /// M, the number of paths; 0 (the default) means "the SKConv template argument".
  SKConvOptions& paths(Index m) { paths_ = m; return *this; }
  /// G, the groups of every branch convolution (G = C gives depthwise branches).
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

  /// d of the attention rule for C = out_channels (the paper's max(C / r, L) by default).
  Index attention_width() const { return attention_.of(out_); }

  /// Input channels of each path's convolution: Cin, or Cin / M with split_input (M = `m_paths`).
  Index path_in_channels(Index m_paths) const { return split_input_ && m_paths > 0 ? in_ / m_paths : in_; }

  /// The convolution of branch `m` (0-based) of `m_paths`: no bias, G groups, the SK stride.
  Conv2dOptions branch_conv(Index m, Index m_paths) const {
    const Index reach = m + 1;
    const bool dilated = branch_kernel_ == BranchKernel::dilated;
    return Conv2dOptions(path_in_channels(m_paths), out_, dilated ? 3 : 2 * reach + 1)
        .stride(stride_)
        .padding(reach)
        .dilation(dilated ? reach : 1)
        .groups(groups_)
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
    branch_conv(0, m_paths).validate(layer);
  }

 private:
  Index in_, out_;
  Index paths_ = 0, groups_ = 32, stride_ = 1;
  AttentionWidth attention_;
  bool split_input_ = false;
  BranchKernel branch_kernel_ = BranchKernel::dilated;
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
  return os << ')';
}

}  // namespace sknet
