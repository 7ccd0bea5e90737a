// sknet: SKConv, the selective kernel convolution = Split -> Fuse -> Select.
#pragma once

#include <string>

#include "sknet/sk/fuse.hpp"
#include "sknet/sk/options.hpp"
#include "sknet/sk/select.hpp"
#include "sknet/sk/split.hpp"

namespace sknet {

/// Learnable values of an SK convolution with `options` and `paths` paths, from the options
/// alone: per path a conv weight and a BN (weight, bias), and with attention fc_reduce [d, C] and its
/// BN, fc_select [M * C, d]. Checked: ConfigError naming `layer` on overflow.
inline Index sk_conv_parameters(const SKConvOptions& options, Index paths, const std::string& layer) {
  using detail::checked_add;
  using detail::checked_mul;
  const Index c = options.out_channels(), d = options.attention_width();
  Index total = 0;
  for (Index m = 0; m < paths; ++m) {
    total = checked_add(total, conv_parameters(options.branch_conv(m, paths), layer), layer, "parameters");
    total = checked_add(total, checked_mul(Index(2), c, layer, "parameters"), layer, "parameters");
  }
  if (!options.has_attention()) return total;
  const Index fc_reduce =
      checked_add(checked_mul(d, c, layer, "parameters"), checked_mul(Index(2), d, layer, "parameters"), layer,
                  "parameters");
  const Index fc_select = checked_mul(checked_mul(paths, c, layer, "parameters"), d, layer, "parameters");
  return checked_add(checked_add(total, fc_reduce, layer, "parameters"), fc_select, layer, "parameters");
}

/// Multiply-adds of an SK convolution on an NHWC input of `input_dims`: the `paths` branch
/// convolutions, and with attention fc_reduce and fc_select. Throws ShapeError as the branch convolutions would
/// (naming `layer`.paths.m.conv), ConfigError naming `layer` when a count overflows.
inline Index sk_conv_macs(const SKConvOptions& options, Index paths, const std::array<Index, 4>& input_dims,
                          const std::string& layer, const std::string& name = "") {
  using detail::checked_add;
  using detail::checked_mul;
  Index total = 0;
  std::array<Index, 4> path_dims = input_dims;  // each path's input (a channel slice with split_input)
  if (options.split_input() && input_dims[3] == options.in_channels()) path_dims[3] = options.path_in_channels(paths);
  for (Index m = 0; m < paths; ++m) {
    const std::string branch =
        detail::layer_label("Conv2d", detail::join_name(name, "paths." + std::to_string(m) + ".conv"));
    total = checked_add(total, conv_macs(conv_geometry(options.branch_conv(m, paths), path_dims, branch), branch), layer,
                        "multiply-adds");
  }
  if (!options.has_attention()) return total;
  const Index n = input_dims[0], c = options.out_channels(), d = options.attention_width();
  const Index fc = checked_mul(checked_mul(checked_mul(n, c, layer, "multiply-adds"), d, layer, "multiply-adds"),
                               checked_add(Index(1), paths, layer, "multiply-adds"), layer, "multiply-adds");
  return checked_add(total, fc, layer, "multiply-adds");
}

/// A selective kernel convolution with M (compile-time) paths on NHWC tensors.
///
/// Parameter names follow timm's SelectiveKernel, relative to the layer's prefix:
///   paths.{m}.conv.weight [C, Cin/G_m, k_m, k_m], paths.{m}.bn.*, attn.fc_reduce.weight [d, C, 1, 1],
///   attn.bn.* [d], attn.fc_select.weight [M*C, d, 1, 1] (no attn.* with Aggregation::sum).
/// Weights start at zero and BN at identity; load or set them before use.
template <class Scalar, int M = 2>
class SKConv : public Module {
 public:
  static constexpr int paths = M;
  using Branches = std::array<Tensor4<Scalar>, M>;

  explicit SKConv(const SKConvOptions& options, const std::string& name = "")
      : Module("SKConv"),
        options_(validated(options, name)),
        split_(options, name),
        fuse_(options, detail::join_name(name, "attn")),
        select_(options, detail::join_name(name, "attn")) {
    set_name(name);
  }

  const SKConvOptions& options() const { return options_; }
  Split<Scalar, M>& split() { return split_; }
  const Split<Scalar, M>& split() const { return split_; }
  Fuse<Scalar, M>& fuse() { return fuse_; }
  const Fuse<Scalar, M>& fuse() const { return fuse_; }
  Select<Scalar, M>& select() { return select_; }
  const Select<Scalar, M>& select() const { return select_; }

  /// NHWC output dimensions for an NHWC input (all branches agree: padding m keeps them equal).
  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    std::array<Index, 4> path_dims = input_dims;
    if (options_.split_input()) path_dims[3] = input_dims[3] / M;
    return split_.conv(0).output_dims(path_dims);
  }

  /// Multiply-adds of one forward: the M branch convolutions, fc_reduce and fc_select
  /// (checked: ConfigError on overflow).
  Index macs(const std::array<Index, 4>& input_dims) const {
    return sk_conv_macs(options_, M, input_dims, label(), name());
  }

  /// requires: input NHWC [N, H, W, in_channels].
  /// ensures: returns V NHWC [N, OH, OW, out_channels]; `attention` holds a [N, M, out_channels]
  /// (with Aggregation::sum all ones: V = sum_m 1 * U_m).
  /// const and re-entrant: safe to call from several threads at once.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    const Branches branches = split_.forward(input);
    if (!options_.has_attention()) {
      attention.resize(branches[0].dimension(0), M, options_.out_channels());
      attention.setConstant(Scalar(1));
      Tensor4<Scalar> v = branches[0];
      for (int m = 1; m < M; ++m) v += branches[m];
      return v;
    }
    const Tensor2<Scalar> z = fuse_.forward(branches);
    return select_.forward(z, branches, attention);
  }

  /// As above, keeping the attention of this call for last_attention().
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input) { return forward(input, attention_); }
  Tensor4<Scalar> forward(const Tensor4<Scalar>& input) { return forward(view(input), attention_); }

  /// The attention weights a [N, M, C] of the last forward() that kept them (empty before).
  const Tensor3<Scalar>& last_attention() const { return attention_; }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    split_.visit_parameters(prefix, visit);
    if (!options_.has_attention()) return;
    fuse_.visit_parameters(detail::join_name(prefix, "attn"), visit);
    select_.visit_parameters(detail::join_name(prefix, "attn"), visit);
  }

 private:
  static const SKConvOptions& validated(const SKConvOptions& options, const std::string& name) {
    options.validate(detail::layer_label("SKConv", name), M);
    return options;
  }

  SKConvOptions options_;
  Split<Scalar, M> split_;
  Fuse<Scalar, M> fuse_;
  Select<Scalar, M> select_;
  Tensor3<Scalar> attention_;
};

}  // namespace sknet
