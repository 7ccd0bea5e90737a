// sknet: ResNetStem, the first layers of a ResNet-layout network as a reference module: one or three
// convolutions (each + BN + ReLU) and the max pool (models/network_plan.hpp: Stem, stem_convs).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/pooling.hpp"

namespace sknet {

/// The stem of a plan: conv1 + bn1 (ImageNet 7x7 or small 3x3), or the deep stem conv1.0/1.1,
/// conv1.3/1.4, conv1.6/bn1 (timm's names); then the max pool unless the stem is small.
template <class Scalar>
class ResNetStem : public Module {
 public:
  explicit ResNetStem(const NetworkPlan& plan) : Module("ResNetStem") {
    for (const StemConv& c : plan.stem) convs_.emplace_back(c.conv, true, "", c.conv_name, c.bn_name);
    if (plan.pool) pool_.emplace(*plan.pool, "maxpool");
  }

  std::size_t num_convs() const { return convs_.size(); }
  ConvBnAct<Scalar>& conv(std::size_t i) { return convs_[i]; }
  const ConvBnAct<Scalar>& conv(std::size_t i) const { return convs_[i]; }
  const std::optional<MaxPool2d<Scalar>>& pool() const { return pool_; }

  /// requires: input NHWC [N, H, W, in_channels]. const and re-entrant.
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input) const {
    Tensor4<Scalar> x = convs_[0].forward(input);
    for (std::size_t i = 1; i < convs_.size(); ++i) x = convs_[i].forward(view(x));
    if (pool_) x = pool_->forward(x);
    return x;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    for (auto& c : convs_) c.visit_parameters(prefix, visit);
  }

 private:
  std::vector<ConvBnAct<Scalar>> convs_;
  std::optional<MaxPool2d<Scalar>> pool_;
};

}  // namespace sknet
