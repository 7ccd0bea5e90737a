// sknet: ResNeXt, the paper's baseline: SKNet with each SK convolution replaced by one grouped 3x3
// convolution + BN + ReLU (resnext_plan), and with config.se its SENet baseline (SE-ResNeXt), as
// reference modules. Parameter names follow timm's resnext50_32x4d / seresnext50_32x4d: conv1.weight,
// bn1.*, layer{s}.{u}.<ResNeXtUnit names>, fc.weight, fc.bias.
#pragma once

#include "sknet/models/network.hpp"

namespace sknet {

/// ResNeXt (or SE-ResNeXt) of a config: input NHWC [N, H, W, in_channels], logits [N, num_classes].
template <class Scalar>
class ResNeXt : public Network<Scalar, 1> {
 public:
  explicit ResNeXt(const SKNetConfig& config) : Network<Scalar, 1>(resnext_plan(config)) {}
  std::size_t num_units() const { return this->num_blocks(); }
  const ResNeXtUnit<Scalar>& unit(std::size_t i) const { return std::get<2>(this->block(i)); }
};

}  // namespace sknet
