// sknet: SqueezeExcite, the SE gate of SENet (Hu et al.) as timm's SEModule: y = x * sigmoid(fc2(ReLU(fc1(mean_hw(x))))).
#pragma once

#include <cmath>
#include <string>

#include "sknet/ops/activation.hpp"
#include "sknet/ops/conv2d.hpp"
#include "sknet/ops/pooling.hpp"

namespace sknet {

/// The squeeze-and-excitation gate over C channels with a hidden width d. Parameter names (timm):
/// fc1.weight [d, C, 1, 1], fc1.bias [d], fc2.weight [C, d, 1, 1], fc2.bias [C].
template <class Scalar>
class SqueezeExcite : public Module {
 public:
  SqueezeExcite(Index channels, Index width, const std::string& name = "")
      : Module("SqueezeExcite"),
        fc1_(Conv2dOptions(channels, width, 1), detail::join_name(name, "fc1")),
        fc2_(Conv2dOptions(width, channels, 1), detail::join_name(name, "fc2")) {
    set_name(name);
  }

  Index channels() const { return fc2_.options().out_channels(); }
  Index width() const { return fc1_.options().out_channels(); }
  Conv2d<Scalar>& fc1() { return fc1_; }
  const Conv2d<Scalar>& fc1() const { return fc1_; }
  Conv2d<Scalar>& fc2() { return fc2_; }
  const Conv2d<Scalar>& fc2() const { return fc2_; }

  /// The gate sigmoid(fc2(ReLU(fc1(s)))) [N, C] of the channel means s [N, C].
  Tensor2<Scalar> gate(const Tensor2<Scalar>& means) const {
    const Index n = means.dimension(0), c = channels();
    detail::require<ShapeError>(means.dimension(1) == c, label(), "channels", c, means.dimension(1));
    Tensor4<Scalar> hidden = fc1_.forward(ConstTensorMap4<Scalar>(means.data(), n, 1, 1, c));
    relu_(hidden);
    const Tensor4<Scalar> logits = fc2_.forward(view(hidden));
    Tensor2<Scalar> g(n, c);
    for (Index i = 0; i < n * c; ++i) g.data()[i] = Scalar(1) / (Scalar(1) + std::exp(-logits.data()[i]));
    return g;
  }

  /// requires: x NHWC [N, H, W, C]. ensures: x scaled per image and channel by the gate.
  void forward_(Tensor4<Scalar>& x) const {
    const Tensor2<Scalar> g = gate(global_avg_pool(x));
    const Index n = x.dimension(0), pixels = x.dimension(1) * x.dimension(2), c = x.dimension(3);
    for (Index i = 0; i < n; ++i)
      for (Index p = 0; p < pixels; ++p)
        for (Index ch = 0; ch < c; ++ch) x.data()[(i * pixels + p) * c + ch] *= g(i, ch);
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    fc1_.visit_parameters(detail::join_name(prefix, "fc1"), visit);
    fc2_.visit_parameters(detail::join_name(prefix, "fc2"), visit);
  }

 private:
  Conv2d<Scalar> fc1_, fc2_;
};

}  // namespace sknet
