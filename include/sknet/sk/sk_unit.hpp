// sknet: SKUnit, the SKNet bottleneck: 1x1 conv -> SK conv -> 1x1 conv, plus the shortcut.
#pragma once

#include <optional>
#include <string>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/sk/sk_conv.hpp"

namespace sknet {

/// Options of an SK unit: input and output channels and the SK convolution in the middle (its
/// in/out channels are the unit's width; its stride is the unit's stride).
class SKUnitOptions {
 public:
  SKUnitOptions(Index in_channels, Index out_channels, const SKConvOptions& sk)
      : in_(in_channels), out_(out_channels), sk_(sk) {}
  Index in_channels() const { return in_; }
  Index out_channels() const { return out_; }
  Index width() const { return sk_.in_channels(); }
  Index stride() const { return sk_.stride(); }
  const SKConvOptions& sk() const { return sk_; }
  /// A projection shortcut (1x1 conv with stride + BN) is used when the shape changes.
  bool has_downsample() const { return stride() != 1 || in_ != out_; }

 private:
  Index in_, out_;
  SKConvOptions sk_;
};

/// y = ReLU(BN(conv3(SK(ReLU(BN(conv1(x)))))) + shortcut(x)), all NHWC.
/// Parameter names (timm, relative to the unit, e.g. "layer2.0"): conv1.conv.weight, conv1.bn.*,
/// conv2.<SKConv names>, conv3.conv.weight, conv3.bn.*, downsample.0.weight, downsample.1.*.
template <class Scalar, int M = 2>
class SKUnit : public Module {
 public:
  explicit SKUnit(const SKUnitOptions& options, const std::string& name = "")
      : Module("SKUnit"),
        options_(options),
        conv1_(Conv2dOptions(options.in_channels(), options.width(), 1).bias(false), true,
               detail::join_name(name, "conv1"), "conv", "bn"),
        conv2_(options.sk(), detail::join_name(name, "conv2")),
        conv3_(Conv2dOptions(options.width(), options.out_channels(), 1).bias(false), false,
               detail::join_name(name, "conv3"), "conv", "bn") {
    set_name(name);
    detail::require<ConfigError>(options.sk().out_channels() == options.width(), label(),
                                 "SK conv out_channels (the unit's width)", options.width(),
                                 options.sk().out_channels());
    if (options.has_downsample())
      downsample_.emplace(
          Conv2dOptions(options.in_channels(), options.out_channels(), 1).stride(options.stride()).bias(false), false,
          detail::join_name(name, "downsample"), "0", "1");
  }

  const SKUnitOptions& options() const { return options_; }
  ConvBnAct<Scalar>& conv1() { return conv1_; }
  const ConvBnAct<Scalar>& conv1() const { return conv1_; }
  SKConv<Scalar, M>& conv2() { return conv2_; }
  const SKConv<Scalar, M>& conv2() const { return conv2_; }
  ConvBnAct<Scalar>& conv3() { return conv3_; }
  const ConvBnAct<Scalar>& conv3() const { return conv3_; }
  const std::optional<ConvBnAct<Scalar>>& downsample() const { return downsample_; }

  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    return conv3_.output_dims(conv2_.output_dims(conv1_.output_dims(input_dims)));
  }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: returns NHWC [N, H/s, W/s, out_channels]
  /// and the SK attention [N, M, width] in `attention`. const and re-entrant.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    const Tensor4<Scalar> t = conv1_.forward(input);
    const Tensor4<Scalar> v = conv2_.forward(view(t), attention);
    Tensor4<Scalar> y = conv3_.forward(v);
    detail::add_shortcut_relu(y, input, downsample_, label());
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv1_.visit_parameters(detail::join_name(prefix, "conv1"), visit);
    conv2_.visit_parameters(detail::join_name(prefix, "conv2"), visit);
    conv3_.visit_parameters(detail::join_name(prefix, "conv3"), visit);
    if (downsample_) downsample_->visit_parameters(detail::join_name(prefix, "downsample"), visit);
  }

 private:
  SKUnitOptions options_;
  ConvBnAct<Scalar> conv1_;
  SKConv<Scalar, M> conv2_;
  ConvBnAct<Scalar> conv3_;
  std::optional<ConvBnAct<Scalar>> downsample_;
};

}  // namespace sknet
