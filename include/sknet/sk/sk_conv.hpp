// sknet: SKConv, the selective kernel convolution = Split -> Fuse -> Select.
#pragma once

#include <string>

#include "sknet/sk/fuse.hpp"
#include "sknet/sk/options.hpp"
#include "sknet/sk/select.hpp"
#include "sknet/sk/split.hpp"

namespace sknet {

/// A selective kernel convolution with M (compile-time) paths on NHWC tensors.
///
/// Parameter names follow timm's SelectiveKernel, relative to the layer's prefix:
///   paths.{m}.conv.weight [C, Cin/G, k, k], paths.{m}.bn.*, attn.fc_reduce.weight [d, C, 1, 1],
///   attn.bn.* [d], attn.fc_select.weight [M*C, d, 1, 1].
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
    return split_.conv(0).output_dims(input_dims);
  }

  /// Multiply-adds of one forward: the M branch convolutions, fc_reduce and fc_select.
  Index macs(const std::array<Index, 4>& input_dims) const {
    Index total = 0;
    for (int m = 0; m < M; ++m) total += split_.conv(m).geometry(input_dims).macs();
    const Index n = input_dims[0], c = options_.out_channels(), d = options_.attention_width();
    return total + n * c * d + n * d * M * c;
  }

  /// requires: input NHWC [N, H, W, in_channels].
  /// ensures: returns V NHWC [N, OH, OW, out_channels]; `attention` holds a [N, M, out_channels].
  /// const and re-entrant: safe to call from several threads at once.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    const Branches branches = split_.forward(input);
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
