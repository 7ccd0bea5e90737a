// sknet: the blocks of SK-ShuffleNetV2 as reference modules: ShuffleUnit (torchvision's
// InvertedResidual of ShuffleNetV2 with its branch2 depthwise 3x3 replaced by a depthwise SK
// convolution) and PointwiseBlock (conv5: 1x1 conv + BN + ReLU). Parameter names follow torchvision's
// shufflenet_v2_x1_0, relative to the block: branch1.0 (depthwise conv), branch1.1 (BN), branch1.2
// (1x1), branch1.3 (BN); branch2.0 (1x1), branch2.1 (BN), branch2.3 (the SK convolution:
// paths.{m}.conv/bn, attn.fc_reduce/bn/fc_select), branch2.5 (1x1), branch2.6 (BN); conv5's 0 and 1.
#pragma once

#include <optional>
#include <string>

#include "sknet/models/network_plan.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/sk/sk_conv.hpp"

namespace sknet {

namespace detail {
/// Channels [c0, c0 + count) of an NHWC tensor, as a new tensor.
template <class Scalar>
Tensor4<Scalar> channel_slice(const ConstTensorMap4<Scalar>& x, Index c0, Index count) {
  Tensor4<Scalar> out(x.dimension(0), x.dimension(1), x.dimension(2), count);
  const Index pixels = x.dimension(0) * x.dimension(1) * x.dimension(2), c = x.dimension(3);
  for (Index p = 0; p < pixels; ++p)
    for (Index k = 0; k < count; ++k) out.data()[p * count + k] = x.data()[p * c + c0 + k];
  return out;
}
}  // namespace detail

/// y = shuffle([x1 | branch2(x2)]) (stride 1, x = [x1 | x2]) or shuffle([branch1(x) | branch2(x)])
/// (stride 2); see BlockPlan for the branches and the shuffle. The attention is branch2's SK
/// convolution's.
template <class Scalar, int M>
class ShuffleUnit : public Module {
 public:
  explicit ShuffleUnit(const BlockPlan& b)
      : Module("ShuffleUnit"),
        plan_(checked(b)),
        first_(b.branch2_first(), true, b.name, "branch2.0", "branch2.1"),
        sk_(b.sk, detail::join_name(b.name, "branch2.3")),
        last_(b.branch2_last(), true, b.name, "branch2.5", "branch2.6") {
    set_name(b.name);
    if (b.has_branch1()) {
      depthwise_.emplace(b.branch1_depthwise(), false, b.name, "branch1.0", "branch1.1");
      pointwise_.emplace(b.branch1_pointwise(), true, b.name, "branch1.2", "branch1.3");
    }
  }

  const BlockPlan& plan() const { return plan_; }
  const std::optional<ConvBnAct<Scalar>>& branch1_depthwise() const { return depthwise_; }
  const std::optional<ConvBnAct<Scalar>>& branch1_pointwise() const { return pointwise_; }
  const ConvBnAct<Scalar>& branch2_first() const { return first_; }
  const SKConv<Scalar, M>& branch2_sk() const { return sk_; }
  const ConvBnAct<Scalar>& branch2_last() const { return last_; }

  /// requires: input NHWC [N, H, W, in]. const and re-entrant.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    detail::require<ShapeError>(input.dimension(3) == plan_.in, label(),
                                "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) + ")",
                                plan_.in, input.dimension(3));
    const Index width = plan_.width;
    Tensor4<Scalar> left;
    Tensor4<Scalar> right;
    if (depthwise_) {
      left = pointwise_->forward(depthwise_->forward(input));
      right = last_.forward(sk_.forward(view(first_.forward(input)), attention));
    } else {
      left = detail::channel_slice(input, 0, width);
      const Tensor4<Scalar> x2 = detail::channel_slice(input, width, plan_.in - width);
      right = last_.forward(sk_.forward(view(first_.forward(view(x2))), attention));
    }
    // The channel shuffle with 2 groups: left channel k -> 2k, right channel k -> 2k + 1.
    Tensor4<Scalar> y(right.dimension(0), right.dimension(1), right.dimension(2), 2 * width);
    const Index pixels = right.dimension(0) * right.dimension(1) * right.dimension(2);
    for (Index p = 0; p < pixels; ++p)
      for (Index k = 0; k < width; ++k) {
        y.data()[(p * width + k) * 2] = left.data()[p * width + k];
        y.data()[(p * width + k) * 2 + 1] = right.data()[p * width + k];
      }
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    if (depthwise_) {
      depthwise_->visit_parameters(prefix, visit);
      pointwise_->visit_parameters(prefix, visit);
    }
    first_.visit_parameters(prefix, visit);
    sk_.visit_parameters(detail::join_name(prefix, "branch2.3"), visit);
    last_.visit_parameters(prefix, visit);
  }

 private:
  static const BlockPlan& checked(const BlockPlan& b) {
    detail::require<ConfigError>(b.kind == BlockKind::shuffle, b.name, "block kind", "shuffle", "another");
    detail::require<ConfigError>(b.paths == M, b.name, "SK paths (M of the walker)", M, b.paths);
    detail::require<ConfigError>(b.out == 2 * b.width && (b.has_branch1() || b.in == b.out), b.name,
                                 "channels (out = 2 * width; in = out without branch1)",
                                 std::to_string(2 * b.width), std::to_string(b.in) + " -> " + std::to_string(b.out));
    return b;
  }
  BlockPlan plan_;
  std::optional<ConvBnAct<Scalar>> depthwise_, pointwise_;
  ConvBnAct<Scalar> first_;
  SKConv<Scalar, M> sk_;
  ConvBnAct<Scalar> last_;
};

/// One 1x1 conv + BN + ReLU as a block (ShuffleNetV2's conv5: names 0 and 1 under the block's name).
template <class Scalar>
class PointwiseBlock : public Module {
 public:
  explicit PointwiseBlock(const BlockPlan& b) : Module("PointwiseBlock"), conv_(b.pointwise(), true, b.name, "0", "1") {
    set_name(b.name);
  }
  const ConvBnAct<Scalar>& conv() const { return conv_; }

  /// requires: input NHWC [N, H, W, in]. (`attention` is left empty.)
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    attention = Tensor3<Scalar>();
    return conv_.forward(input);
  }
  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv_.visit_parameters(prefix, visit);
  }

 private:
  ConvBnAct<Scalar> conv_;
};

}  // namespace sknet
