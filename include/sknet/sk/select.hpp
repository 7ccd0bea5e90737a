// sknet: Select, the soft attention across the branches of an SK convolution.
#pragma once

#include <array>
#include <string>

#include "sknet/kernels/reference/elementwise.hpp"
#include "sknet/ops/conv2d.hpp"
#include "sknet/sk/options.hpp"

namespace sknet {

/// logits = fc_select z, laid out [N, M, C] (logit channel m*C + c); a = softmax over m per
/// channel; V = sum_m a_m * U_m. fc_select is a bias-free 1x1 convolution d -> M*C, as in timm:
/// parameter "attn.fc_select.weight" [M*C, d, 1, 1].
template <class Scalar, int M>
class Select : public Module {
 public:
  using Branches = std::array<Tensor4<Scalar>, M>;

  explicit Select(const SKConvOptions& options, const std::string& name = "")
      : Module("Select"),
        channels_(options.out_channels()),
        fc_select_(Conv2dOptions(options.attention_width(), M * options.out_channels(), 1).bias(false),
                   detail::join_name(name, "fc_select")) {
    set_name(name);
  }

  Conv2d<Scalar>& fc_select() { return fc_select_; }
  const Conv2d<Scalar>& fc_select() const { return fc_select_; }

  /// The attention a [N, M, C] for the descriptor z [N, d].
  Tensor3<Scalar> attention(const Tensor2<Scalar>& z) const {
    const Index n = z.dimension(0), d = fc_select_.options().in_channels();
    detail::require<ShapeError>(z.dimension(1) == d, label(), "width of z " + shape_string(z.dimensions()), d,
                                z.dimension(1));
    const Tensor4<Scalar> logits = fc_select_.forward(ConstTensorMap4<Scalar>(z.data(), n, 1, 1, d));
    Tensor3<Scalar> a(n, M, channels_);
    kernels::reference::softmax_middle_axis<Scalar>(n, M, channels_, logits.data(), a.data());
    return a;
  }

  /// requires: z [N, d]; M branches NHWC [N, H, W, C]. ensures: V NHWC [N, H, W, C], a [N, M, C].
  Tensor4<Scalar> forward(const Tensor2<Scalar>& z, const Branches& branches, Tensor3<Scalar>& a) const {
    a = attention(z);
    const auto& dims = branches[0].dimensions();
    detail::require<ShapeError>(dims[0] == z.dimension(0), label(), "batch of the branches", z.dimension(0),
                                dims[0]);
    std::array<const Scalar*, M> src;
    for (int m = 0; m < M; ++m) {
      detail::require<ShapeError>(branches[m].dimensions() == dims, label(), "dimensions of branch " + std::to_string(m),
                                  shape_string(dims), shape_string(branches[m].dimensions()));
      src[m] = branches[m].data();
    }
    detail::require<ShapeError>(dims[3] == channels_, label(), "channels of the branches", channels_, dims[3]);
    Tensor4<Scalar> v(dims);
    kernels::reference::weighted_sum_channels<Scalar>(dims[0], dims[1] * dims[2], channels_, M, src.data(), a.data(),
                                                      v.data());
    return v;
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    fc_select_.visit_parameters(detail::join_name(prefix, "fc_select"), visit);
  }

 private:
  Index channels_;
  Conv2d<Scalar> fc_select_;
};

}  // namespace sknet
