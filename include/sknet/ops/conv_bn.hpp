// sknet: ConvBnAct, a convolution followed by inference BatchNorm and an optional ReLU.
#pragma once

#include <optional>

#include <string>
#include <vector>

#include "sknet/ops/activation.hpp"
#include "sknet/ops/batch_norm.hpp"
#include "sknet/ops/conv2d.hpp"

namespace sknet {

/// Folds inference BN into the preceding convolution, computed in double:
/// weight' = weight * scale[oc] (PyTorch order [oc, ic/g, kh, kw]), bias' = conv bias * scale + shift.
/// Throws ValueError (from the BN) on a non-positive running_var + eps.
template <class Scalar, class Out>
void fold_conv_bn(const Conv2d<Scalar>& conv, const BatchNorm2d<Scalar>& bn, std::vector<Out>& weight,
                  std::vector<Out>& bias) {
  const Index oc = conv.options().out_channels();
  detail::require<ShapeError>(bn.options().num_features() == oc, bn.label(), "channels of the BN after " + conv.label(),
                              oc, bn.options().num_features());
  std::vector<double> scale, shift;
  bn.scale_shift(scale, shift);
  const Index per_oc = conv.weight().size() / oc;
  weight.resize(static_cast<std::size_t>(conv.weight().size()));
  bias.resize(static_cast<std::size_t>(oc));
  for (Index o = 0; o < oc; ++o) {
    for (Index i = 0; i < per_oc; ++i)
      weight[std::size_t(o * per_oc + i)] = static_cast<Out>(double(conv.weight().data()[o * per_oc + i]) * scale[o]);
    const double b = conv.options().bias() ? double(conv.bias()(o)) : 0.0;
    bias[std::size_t(o)] = static_cast<Out>(b * scale[o] + shift[o]);
  }
}

/// conv -> BN -> (ReLU). The two parts keep their own state_dict names, given relative to the
/// owner's prefix, because PyTorch models spell them differently: "conv"/"bn" (timm's
/// ConvNormAct), "0"/"1" (a downsample Sequential), "conv1"/"bn1" (the ResNet stem).
template <class Scalar>
class ConvBnAct : public Module {
 public:
  ConvBnAct(const Conv2dOptions& conv, bool relu, const std::string& prefix, const std::string& conv_name,
            const std::string& bn_name)
      : Module("ConvBnAct"),
        conv_(conv, detail::join_name(prefix, conv_name)),
        bn_(BatchNorm2dOptions(conv.out_channels()), detail::join_name(prefix, bn_name)),
        apply_relu_(relu),
        conv_name_(conv_name),
        bn_name_(bn_name) {
    set_name(prefix);
  }

  Conv2d<Scalar>& conv() { return conv_; }
  const Conv2d<Scalar>& conv() const { return conv_; }
  BatchNorm2d<Scalar>& bn() { return bn_; }
  const BatchNorm2d<Scalar>& bn() const { return bn_; }
  bool relu() const { return apply_relu_; }

  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    return conv_.output_dims(input_dims);
  }
  /// Multiply-adds of the convolution (checked: ConfigError on overflow).
  Index macs(const std::array<Index, 4>& input_dims) const { return conv_macs(conv_.geometry(input_dims), label()); }

  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input) const {
    Tensor4<Scalar> y = conv_.forward(input);
    TensorMap4<Scalar> out(y.data(), y.dimensions());
    bn_.template forward<4>(view(y), out);
    if (apply_relu_) relu_(out);
    return y;
  }
  Tensor4<Scalar> forward(const Tensor4<Scalar>& input) const { return forward(view(input)); }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv_.visit_parameters(detail::join_name(prefix, conv_name_), visit);
    bn_.visit_parameters(detail::join_name(prefix, bn_name_), visit);
  }

 private:
  Conv2d<Scalar> conv_;
  BatchNorm2d<Scalar> bn_;
  bool apply_relu_;
  std::string conv_name_, bn_name_;
};

namespace detail {

/// The end of a residual block: y = ReLU(y + shortcut(input)), the shortcut being `downsample` (a
/// projection) when given, else the identity (ShapeError naming `layer` when the shapes differ).
template <class Scalar>
void add_shortcut_relu(Tensor4<Scalar>& y, const ConstTensorMap4<Scalar>& input,
                       const std::optional<ConvBnAct<Scalar>>& downsample, const std::string& layer) {
  if (downsample) {
    y += downsample->forward(input);
  } else {
    require<ShapeError>(input.dimensions() == y.dimensions(), layer, "identity shortcut dimensions",
                        shape_string(y.dimensions()), shape_string(input.dimensions()));
    y += input;
  }
  relu_(y);
}

}  // namespace detail

}  // namespace sknet
