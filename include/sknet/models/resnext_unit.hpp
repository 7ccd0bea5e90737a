// sknet: ResNeXtUnit, the grouped bottleneck of ResNeXt (the paper's baseline) and, with an SE gate,
// of SE-ResNeXt (its SENet baseline), as a reference module. Parameter names follow timm's
// resnext50_32x4d / seresnext50_32x4d: conv1.weight, bn1.*, conv2, bn2, conv3, bn3, se.fc1/fc2,
// downsample.0/1 (relative to the unit).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/linear.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/ops/shortcut.hpp"
#include "sknet/ops/squeeze_excite.hpp"

namespace sknet {

/// y = ReLU(SE(BN(conv3(ReLU(BN(grouped conv2(ReLU(BN(conv1(x)))))))) + shortcut(x)), all NHWC; the SE
/// gate (SE-ResNeXt) only when the plan has one.
template <class Scalar>
class ResNeXtUnit : public Module {
 public:
  explicit ResNeXtUnit(const BlockPlan& b)
      : Module("ResNeXtUnit"),
        conv1_(b.conv1(), true, b.name, "conv1", "bn1"),
        conv2_(b.grouped_conv(), true, b.name, "conv2", "bn2"),
        conv3_(b.conv3(), false, b.name, "conv3", "bn3"),
        shortcut_(b.in, b.out, b.stride, b.avg_down, b.name) {
    set_name(b.name);
    detail::require<ConfigError>(b.kind == BlockKind::bottleneck, b.name, "block kind of a grouped middle", "bottleneck", "basic");
    if (b.se_width > 0) se_.emplace(b.out, b.se_width, detail::join_name(b.name, "se"));
  }

  const ConvBnAct<Scalar>& conv1() const { return conv1_; }
  const ConvBnAct<Scalar>& conv2() const { return conv2_; }
  const ConvBnAct<Scalar>& conv3() const { return conv3_; }
  const std::optional<ConvBnAct<Scalar>>& downsample() const { return shortcut_.projection(); }
  const Shortcut<Scalar>& shortcut() const { return shortcut_; }
  const std::optional<SqueezeExcite<Scalar>>& se() const { return se_; }

  /// requires: input NHWC [N, H, W, in]. const and re-entrant. (`attention` is left empty: no SK.)
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    attention = Tensor3<Scalar>();
    Tensor4<Scalar> y = conv3_.forward(conv2_.forward(conv1_.forward(input)));
    if (se_) se_->forward_(y);
    shortcut_.add_relu(y, input, label());
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv1_.visit_parameters(prefix, visit);
    conv2_.visit_parameters(prefix, visit);
    conv3_.visit_parameters(prefix, visit);
    if (se_) se_->visit_parameters(detail::join_name(prefix, "se"), visit);
    shortcut_.visit_parameters(prefix, visit);
  }

 private:
  ConvBnAct<Scalar> conv1_, conv2_, conv3_;
  Shortcut<Scalar> shortcut_;
  std::optional<SqueezeExcite<Scalar>> se_;
};

}  // namespace sknet
