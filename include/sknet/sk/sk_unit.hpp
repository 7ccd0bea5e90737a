// sknet: SKUnit, the SKNet bottleneck: 1x1 conv -> SK conv -> 1x1 conv, plus the shortcut.
#pragma once

#include <optional>
#include <string>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/shortcut.hpp"
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
  Index width() const { return sk_.out_channels(); }
  Index stride() const { return sk_.stride(); }
  const SKConvOptions& sk() const { return sk_; }
  /// A projection shortcut (1x1 conv with stride + BN) is used when the shape changes.
  bool has_downsample() const { return stride() != 1 || in_ != out_; }
  /// ResNet-D's shortcut: a 2x2 average pool with the stride before a stride-1 projection.
  SKUnitOptions& avg_down(bool on) { avg_down_ = on; return *this; }
  bool avg_down() const { return avg_down_; }

 private:
  Index in_, out_;
  SKConvOptions sk_;
  bool avg_down_ = false;
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
               detail::join_name(name, "conv3"), "conv", "bn"),
        shortcut_(options.in_channels(), options.out_channels(), options.stride(), options.avg_down(), name) {
    set_name(name);
    detail::require<ConfigError>(options.sk().out_channels() == options.width(), label(),
                                 "SK conv out_channels (the unit's width)", options.width(),
                                 options.sk().out_channels());
  }

  const SKUnitOptions& options() const { return options_; }
  ConvBnAct<Scalar>& conv1() { return conv1_; }
  const ConvBnAct<Scalar>& conv1() const { return conv1_; }
  SKConv<Scalar, M>& conv2() { return conv2_; }
  const SKConv<Scalar, M>& conv2() const { return conv2_; }
  ConvBnAct<Scalar>& conv3() { return conv3_; }
  const ConvBnAct<Scalar>& conv3() const { return conv3_; }
  /// The projection of the shortcut, if any.
  const std::optional<ConvBnAct<Scalar>>& downsample() const { return shortcut_.projection(); }
  const Shortcut<Scalar>& shortcut() const { return shortcut_; }

  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    return conv3_.output_dims(conv2_.output_dims(conv1_.output_dims(input_dims)));
  }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: returns NHWC [N, H/s, W/s, out_channels]
  /// and the SK attention [N, M, width] in `attention`. const and re-entrant.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    const Tensor4<Scalar> t = conv1_.forward(input);
    const Tensor4<Scalar> v = conv2_.forward(view(t), attention);
    Tensor4<Scalar> y = conv3_.forward(v);
    shortcut_.add_relu(y, input, label());
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv1_.visit_parameters(detail::join_name(prefix, "conv1"), visit);
    conv2_.visit_parameters(detail::join_name(prefix, "conv2"), visit);
    conv3_.visit_parameters(detail::join_name(prefix, "conv3"), visit);
    shortcut_.visit_parameters(prefix, visit);
  }

 private:
  SKUnitOptions options_;
  ConvBnAct<Scalar> conv1_;
  SKConv<Scalar, M> conv2_;
  ConvBnAct<Scalar> conv3_;
  Shortcut<Scalar> shortcut_;
};

/// timm's SelectiveKernelBasic: y = ReLU(BN(conv2(SK(x))) + shortcut(x)), all NHWC: the SK convolution
/// (in -> width, the unit's stride) is the first layer, then a 3x3 conv width -> out + BN.
/// Parameter names (timm, relative to the unit): conv1.<SKConv names>, conv2.conv.weight, conv2.bn.*,
/// downsample.0/1 (or .1/.2 with avg_down).
template <class Scalar, int M = 2>
class SKBasicUnit : public Module {
 public:
  explicit SKBasicUnit(const SKUnitOptions& options, const std::string& name = "")
      : Module("SKBasicUnit"),
        options_(options),
        conv1_(options.sk(), detail::join_name(name, "conv1")),
        conv2_(Conv2dOptions(options.width(), options.out_channels(), 3).padding(1).bias(false), false,
               detail::join_name(name, "conv2"), "conv", "bn"),
        shortcut_(options.in_channels(), options.out_channels(), options.stride(), options.avg_down(), name) {
    set_name(name);
    detail::require<ConfigError>(options.sk().in_channels() == options.in_channels(), label(),
                                 "SK conv in_channels (the unit's input channels)", options.in_channels(),
                                 options.sk().in_channels());
  }

  const SKUnitOptions& options() const { return options_; }
  SKConv<Scalar, M>& conv1() { return conv1_; }
  const SKConv<Scalar, M>& conv1() const { return conv1_; }
  ConvBnAct<Scalar>& conv2() { return conv2_; }
  const ConvBnAct<Scalar>& conv2() const { return conv2_; }
  const std::optional<ConvBnAct<Scalar>>& downsample() const { return shortcut_.projection(); }
  const Shortcut<Scalar>& shortcut() const { return shortcut_; }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: returns NHWC [N, H/s, W/s, out_channels]
  /// and the SK attention [N, M, width] in `attention`. const and re-entrant.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    const Tensor4<Scalar> v = conv1_.forward(input, attention);
    Tensor4<Scalar> y = conv2_.forward(v);
    shortcut_.add_relu(y, input, label());
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv1_.visit_parameters(detail::join_name(prefix, "conv1"), visit);
    conv2_.visit_parameters(detail::join_name(prefix, "conv2"), visit);
    shortcut_.visit_parameters(prefix, visit);
  }

 private:
  SKUnitOptions options_;
  SKConv<Scalar, M> conv1_;
  ConvBnAct<Scalar> conv2_;
  Shortcut<Scalar> shortcut_;
};

}  // namespace sknet
