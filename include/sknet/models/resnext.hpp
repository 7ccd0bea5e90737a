// sknet: ResNeXt, the paper's baseline: SKNet with each SK convolution replaced by one grouped 3x3
// convolution + BN + ReLU (resnext_plan), as reference modules. Parameter names follow timm's
// resnext50_32x4d: conv1.weight, bn1.*, layer{s}.{u}.conv1.weight, bn1, conv2, bn2, conv3, bn3,
// downsample.0/1, fc.weight, fc.bias.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/linear.hpp"
#include "sknet/ops/pooling.hpp"

namespace sknet {

/// y = ReLU(BN(conv3(ReLU(BN(grouped conv2(ReLU(BN(conv1(x))))))) + shortcut(x)), all NHWC.
template <class Scalar>
class ResNeXtUnit : public Module {
 public:
  explicit ResNeXtUnit(const BlockPlan& b)
      : Module("ResNeXtUnit"),
        conv1_(b.conv1(), true, b.name, "conv1", "bn1"),
        conv2_(b.grouped_conv(), true, b.name, "conv2", "bn2"),
        conv3_(b.conv3(), false, b.name, "conv3", "bn3") {
    set_name(b.name);
    if (b.has_downsample()) downsample_.emplace(b.downsample(), false, detail::join_name(b.name, "downsample"), "0", "1");
  }

  const ConvBnAct<Scalar>& conv1() const { return conv1_; }
  const ConvBnAct<Scalar>& conv2() const { return conv2_; }
  const ConvBnAct<Scalar>& conv3() const { return conv3_; }
  const std::optional<ConvBnAct<Scalar>>& downsample() const { return downsample_; }

  /// requires: input NHWC [N, H, W, in]. const and re-entrant. (`attention` is left empty: no SK.)
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input, Tensor3<Scalar>& attention) const {
    attention = Tensor3<Scalar>();
    Tensor4<Scalar> y = conv3_.forward(conv2_.forward(conv1_.forward(input)));
    detail::add_shortcut_relu(y, input, downsample_, label());
    return y;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    conv1_.visit_parameters(prefix, visit);
    conv2_.visit_parameters(prefix, visit);
    conv3_.visit_parameters(prefix, visit);
    if (downsample_) downsample_->visit_parameters(detail::join_name(prefix, "downsample"), visit);
  }

 private:
  ConvBnAct<Scalar> conv1_, conv2_, conv3_;
  std::optional<ConvBnAct<Scalar>> downsample_;
};

/// ResNeXt of a config (resnext_plan): input NHWC [N, H, W, in_channels], logits [N, num_classes].
template <class Scalar>
class ResNeXt : public Module {
 public:
  explicit ResNeXt(const SKNetConfig& config)
      : Module("ResNeXt"),
        plan_(buildable(resnext_plan(config))),
        stem_(plan_.stem, true, "", "conv1", "bn1"),
        fc_(plan_.head, "fc") {
    if (plan_.pool) pool_.emplace(*plan_.pool, "maxpool");
    for (const BlockPlan& b : plan_.blocks) units_.emplace_back(b);
  }

  const NetworkPlan& plan() const { return plan_; }
  const SKNetConfig& config() const { return plan_.config; }
  const ConvBnAct<Scalar>& stem() const { return stem_; }
  const Linear<Scalar>& fc() const { return fc_; }
  std::size_t num_units() const { return units_.size(); }
  const ResNeXtUnit<Scalar>& unit(std::size_t i) const { return units_[i]; }

  /// const and re-entrant.
  Tensor2<Scalar> forward(const ConstTensorMap4<Scalar>& input) const {
    detail::require<ShapeError>(input.dimension(3) == plan_.config.in_channels, label(),
                                "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) + ")",
                                plan_.config.in_channels, input.dimension(3));
    Tensor4<Scalar> x = stem_.forward(input);
    if (pool_) x = pool_->forward(x);
    Tensor3<Scalar> unused;
    for (const auto& unit : units_) x = unit.forward(view(x), unused);
    return fc_.forward(global_avg_pool(x));
  }
  Tensor2<Scalar> forward(const Tensor4<Scalar>& input) const { return forward(view(input)); }

  NetworkSummary summary(Index height, Index width, Index batch = 1) const { return plan_.summary(height, width, batch); }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    stem_.visit_parameters(prefix, visit);
    for (auto& unit : units_) unit.visit_parameters(detail::join_name(prefix, unit.name()), visit);
    fc_.visit_parameters(detail::join_name(prefix, "fc"), visit);
  }

 private:
  static NetworkPlan buildable(NetworkPlan p) {
    p.check_buildable();
    return p;
  }
  NetworkPlan plan_;
  ConvBnAct<Scalar> stem_;
  std::optional<MaxPool2d<Scalar>> pool_;
  std::vector<ResNeXtUnit<Scalar>> units_;
  Linear<Scalar> fc_;
};

}  // namespace sknet
