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

/// Options of an SK convolution. Defaults are the paper's SK[2, 32, 16] with L = 32, stride 1,
/// dilated branches. Example: SKConvOptions(128, 128).groups(32).reduction(16).min_width(32).
class SKConvOptions {
 public:
  SKConvOptions(Index in_channels, Index out_channels) : in_(in_channels), out_(out_channels) {}
  /// Square SK convolution: in_channels == out_channels == channels.
  explicit SKConvOptions(Index channels) : SKConvOptions(channels, channels) {}

  /// M, the number of paths; 0 (the default) means "the SKConv template argument".
  SKConvOptions& paths(Index m) { paths_ = m; return *this; }
  /// G, the groups of every branch convolution (G = C gives depthwise branches).
  SKConvOptions& groups(Index g) { groups_ = g; return *this; }
  /// r, the reduction ratio of the attention: d = max(C / r, L).
  SKConvOptions& reduction(Index r) { reduction_ = r; return *this; }
  /// L, the minimum attention width.
  SKConvOptions& min_width(Index l) { min_width_ = l; return *this; }
  SKConvOptions& stride(Index s) { stride_ = s; return *this; }
  SKConvOptions& branch_kernel(BranchKernel k) { branch_kernel_ = k; return *this; }

  Index in_channels() const { return in_; }
  Index out_channels() const { return out_; }
  Index paths() const { return paths_; }
  Index groups() const { return groups_; }
  Index reduction() const { return reduction_; }
  Index min_width() const { return min_width_; }
  Index stride() const { return stride_; }
  BranchKernel branch_kernel() const { return branch_kernel_; }

  /// d = max(C / r, L) with C = out_channels (integer division, as in the paper).
  Index attention_width() const { return std::max(out_ / reduction_, min_width_); }

  /// The convolution of branch `m` (0-based): no bias, G groups, the SK stride.
  Conv2dOptions branch_conv(Index m) const {
    const Index reach = m + 1;
    const bool dilated = branch_kernel_ == BranchKernel::dilated;
    return Conv2dOptions(in_, out_, dilated ? 3 : 2 * reach + 1)
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
    require<ConfigError>(reduction_ >= 1, layer, "reduction r", ">= 1", reduction_);
    require<ConfigError>(min_width_ >= 1, layer, "min_width L", ">= 1", min_width_);
    require<ConfigError>(stride_ >= 1, layer, "stride", ">= 1", stride_);
    branch_conv(0).validate(layer);
  }

 private:
  Index in_, out_;
  Index paths_ = 0, groups_ = 32, reduction_ = 16, min_width_ = 32, stride_ = 1;
  BranchKernel branch_kernel_ = BranchKernel::dilated;
};

inline std::ostream& operator<<(std::ostream& os, const SKConvOptions& o) {
  os << "SKConv(" << o.in_channels() << ", " << o.out_channels() << ", G=" << o.groups() << ", r=" << o.reduction()
     << ", L=" << o.min_width() << ", d=" << o.attention_width();
  if (o.paths() != 0) os << ", M=" << o.paths();
  if (o.stride() != 1) os << ", stride=" << o.stride();
  if (o.branch_kernel() == BranchKernel::full) os << ", full kernels";
  return os << ')';
}

}  // namespace sknet
