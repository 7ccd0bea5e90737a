// sknet: Fuse, the global descriptor of an SK convolution, z = ReLU(BN(W_reduce * GAP(sum_m U_m))).
#pragma once

#include <array>
#include <string>

#include "sknet/ops/activation.hpp"
#include "sknet/ops/batch_norm.hpp"
#include "sknet/ops/conv2d.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/sk/options.hpp"

namespace sknet {

/// U = sum_m U_m; s = mean of U over H, W ([N, C]); z = ReLU(BN(fc_reduce s)) ([N, d]).
/// fc_reduce is a bias-free 1x1 convolution C -> d, as in timm, so the parameter names are
/// "attn.fc_reduce.weight" [d, C, 1, 1] and "attn.bn.{weight,bias,running_mean,running_var}" [d].
template <class Scalar, int M>
class Fuse : public Module {
 public:
  using Branches = std::array<Tensor4<Scalar>, M>;

  explicit Fuse(const SKConvOptions& options, const std::string& name = "")
      : Module("Fuse"),
        channels_(options.out_channels()),
        fc_reduce_(Conv2dOptions(options.out_channels(), options.attention_width(), 1).bias(false),
                   detail::join_name(name, "fc_reduce")),
        bn_(BatchNorm2dOptions(options.attention_width()), detail::join_name(name, "bn")) {
    set_name(name);
  }

  Conv2d<Scalar>& fc_reduce() { return fc_reduce_; }
  const Conv2d<Scalar>& fc_reduce() const { return fc_reduce_; }
  BatchNorm2d<Scalar>& bn() { return bn_; }
  const BatchNorm2d<Scalar>& bn() const { return bn_; }
  Index attention_width() const { return fc_reduce_.options().out_channels(); }

  /// requires: M branches of equal NHWC dimensions [N, H, W, C]. ensures: returns z [N, d].
  Tensor2<Scalar> forward(const Branches& branches) const {
    check_branches(branches);
    Tensor4<Scalar> sum = branches[0];
    for (int m = 1; m < M; ++m) sum += branches[m];
    const Tensor2<Scalar> s = global_avg_pool(sum);
    const Index n = s.dimension(0);
    const Tensor4<Scalar> z4 = fc_reduce_.forward(ConstTensorMap4<Scalar>(s.data(), n, 1, 1, channels_));
    Tensor2<Scalar> z(n, attention_width());
    TensorMap<Scalar, 2> zmap(z.data(), z.dimensions());
    bn_.template forward<2>(ConstTensorMap<Scalar, 2>(z4.data(), n, attention_width()), zmap);
    relu_(zmap);
    return z;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    fc_reduce_.visit_parameters(detail::join_name(prefix, "fc_reduce"), visit);
    bn_.visit_parameters(detail::join_name(prefix, "bn"), visit);
  }

 private:
  void check_branches(const Branches& branches) const {
    const auto& d0 = branches[0].dimensions();
    detail::require<ShapeError>(d0[3] == channels_, label(), "channels of branch 0 " + shape_string(d0), channels_,
                                d0[3]);
    for (int m = 1; m < M; ++m)
      detail::require<ShapeError>(branches[m].dimensions() == d0, label(),
                                  "dimensions of branch " + std::to_string(m), shape_string(d0),
                                  shape_string(branches[m].dimensions()));
  }

  Index channels_;
  Conv2d<Scalar> fc_reduce_;
  BatchNorm2d<Scalar> bn_;
};

}  // namespace sknet
