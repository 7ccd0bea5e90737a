// sknet: Split, the M branches of an SK convolution (grouped conv -> BN -> ReLU each).
#pragma once

#include <array>
#include <string>

#include "sknet/ops/activation.hpp"
#include "sknet/ops/batch_norm.hpp"
#include "sknet/ops/conv2d.hpp"
#include "sknet/sk/options.hpp"

namespace sknet {

/// U_m = ReLU(BN_m(conv_m(X))) for m = 1..M over the same NHWC input X (with split_input, conv_m
/// reads only the m-th M-th of X's channels).
/// Parameter names (timm): "paths.{m}.conv.weight", "paths.{m}.bn.{weight,bias,running_mean,running_var}".
template <class Scalar, int M>
class Split : public Module {
  static_assert(M >= 1, "an SK convolution needs at least one path");

 public:
  using Branches = std::array<Tensor4<Scalar>, M>;

  explicit Split(const SKConvOptions& options, const std::string& name = "")
      : Split(options, name, std::make_integer_sequence<int, M>{}) {}

  Conv2d<Scalar>& conv(int m) { return convs_[m]; }
  const Conv2d<Scalar>& conv(int m) const { return convs_[m]; }
  BatchNorm2d<Scalar>& bn(int m) { return bns_[m]; }
  const BatchNorm2d<Scalar>& bn(int m) const { return bns_[m]; }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: M tensors NHWC [N, OH, OW, out_channels].
  Branches forward(const ConstTensorMap4<Scalar>& input) const {
    Branches branches;
    const Index cin = input.dimension(3), part = split_input_ ? cin / M : cin;
    if (split_input_)
      detail::require<ShapeError>(cin == part * M, label(),
                                  "input channels (split over the M paths) of NHWC input " + shape_string(input.dimensions()),
                                  part * M, cin);
    for (int m = 0; m < M; ++m) {
      if (split_input_) {
        const Eigen::array<Index, 4> offsets{0, 0, 0, m * part};
        const Eigen::array<Index, 4> extents{input.dimension(0), input.dimension(1), input.dimension(2), part};
        const Tensor4<Scalar> slice = input.slice(offsets, extents);
        branches[m] = convs_[m].forward(view(slice));
      } else {
        branches[m] = convs_[m].forward(input);
      }
      TensorMap4<Scalar> u(branches[m].data(), branches[m].dimensions());
      bns_[m].template forward<4>(view(branches[m]), u);
      relu_(u);
    }
    return branches;
  }
  Branches forward(const Tensor4<Scalar>& input) const { return forward(view(input)); }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    for (int m = 0; m < M; ++m) {
      convs_[m].visit_parameters(detail::join_name(prefix, branch_name(m) + ".conv"), visit);
      bns_[m].visit_parameters(detail::join_name(prefix, branch_name(m) + ".bn"), visit);
    }
  }

 private:
  template <int... I>
  Split(const SKConvOptions& options, const std::string& name, std::integer_sequence<int, I...>)
      : Module("Split"),
        split_input_(options.split_input()),
        convs_{Conv2d<Scalar>(options.branch_conv(I, M), detail::join_name(name, branch_name(I) + ".conv"))...},
        bns_{BatchNorm2d<Scalar>(BatchNorm2dOptions(options.out_channels()),
                                 detail::join_name(name, branch_name(I) + ".bn"))...} {
    set_name(name);
  }
  static std::string branch_name(int m) { return "paths." + std::to_string(m); }

  bool split_input_;
  std::array<Conv2d<Scalar>, M> convs_;
  std::array<BatchNorm2d<Scalar>, M> bns_;
};

}  // namespace sknet
