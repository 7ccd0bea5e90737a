// sknet: BatchNorm2d in inference form, y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "sknet/kernels/reference/elementwise.hpp"
#include "sknet/module.hpp"
#include "sknet/parameters.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// Options of BatchNorm2d: the channel count and eps (PyTorch's default 1e-5).
class BatchNorm2dOptions {
 public:
  explicit BatchNorm2dOptions(Index num_features) : features_(num_features) {}
  BatchNorm2dOptions& eps(double e) { eps_ = e; return *this; }
  Index num_features() const { return features_; }
  double eps() const { return eps_; }
  void validate(const std::string& layer) const {
    detail::require<ConfigError>(features_ >= 1, layer, "num_features", ">= 1", features_);
    detail::require<ConfigError>(eps_ >= 0 && std::isfinite(eps_), layer, "eps", "finite and >= 0", eps_);
  }

 private:
  Index features_;
  double eps_ = 1e-5;
};

/// Inference batch normalisation over the channel (last) dimension of channel-innermost data.
/// Parameters: "weight", "bias", "running_mean", "running_var", each [num_features]; they start
/// as the identity transform (1, 0, 0, 1).
template <class Scalar>
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options, std::string name = "")
      : Module("BatchNorm2d"), options_(options) {
    set_name(std::move(name));
    options_.validate(label());
    const Index c = options_.num_features();
    weight_ = Tensor1<Scalar>(c);
    bias_ = Tensor1<Scalar>(c);
    mean_ = Tensor1<Scalar>(c);
    var_ = Tensor1<Scalar>(c);
    weight_.setConstant(Scalar(1));
    bias_.setZero();
    mean_.setZero();
    var_.setConstant(Scalar(1));
  }

  const BatchNorm2dOptions& options() const { return options_; }
  Tensor1<Scalar>& weight() { return weight_; }
  Tensor1<Scalar>& bias() { return bias_; }
  Tensor1<Scalar>& running_mean() { return mean_; }
  Tensor1<Scalar>& running_var() { return var_; }
  const Tensor1<Scalar>& weight() const { return weight_; }
  const Tensor1<Scalar>& bias() const { return bias_; }
  const Tensor1<Scalar>& running_mean() const { return mean_; }
  const Tensor1<Scalar>& running_var() const { return var_; }

  /// The transform as y = x * scale + shift per channel (computed in double, then rounded to T).
  /// Throws ValueError if running_var + eps is not a positive finite number for some channel.
  template <class T>
  void scale_shift(std::vector<T>& scale, std::vector<T>& shift) const {
    const Index c = options_.num_features();
    scale.resize(static_cast<std::size_t>(c));
    shift.resize(static_cast<std::size_t>(c));
    for (Index i = 0; i < c; ++i) {
      const double denom = double(var_(i)) + options_.eps();
      if (!(denom > 0) || !std::isfinite(denom))
        detail::fail<ValueError>(label(), "running_var[" + std::to_string(i) + "] + eps", "> 0 and finite",
                                 denom);
      const double s = double(weight_(i)) / std::sqrt(denom);
      scale[static_cast<std::size_t>(i)] = static_cast<T>(s);
      shift[static_cast<std::size_t>(i)] = static_cast<T>(double(bias_(i)) - double(mean_(i)) * s);
    }
  }

  /// requires: input of any rank >= 1 with the channel count innermost (NHWC [N, H, W, C] or [N, C]).
  template <int Rank>
  Tensor<Scalar, Rank> forward(const ConstTensorMap<Scalar, Rank>& input) const {
    Tensor<Scalar, Rank> output(input.dimensions());
    forward(input, TensorMap<Scalar, Rank>(output.data(), output.dimensions()));
    return output;
  }
  template <int Rank>
  Tensor<Scalar, Rank> forward(const Tensor<Scalar, Rank>& input) const {
    return forward<Rank>(view(input));
  }

  /// Non-allocating form; input and output may be the same memory.
  template <int Rank>
  void forward(const ConstTensorMap<Scalar, Rank>& input, TensorMap<Scalar, Rank> output) const {
    const Index c = options_.num_features();
    detail::require<ShapeError>(input.dimension(Rank - 1) == c, label(),
                                "channels (last dimension of input " + shape_string(input.dimensions()) + ")", c,
                                input.dimension(Rank - 1));
    detail::require<ShapeError>(output.dimensions() == input.dimensions(), label(), "output dimensions",
                                shape_string(input.dimensions()), shape_string(output.dimensions()));
    std::vector<Scalar> scale, shift;
    scale_shift(scale, shift);
    kernels::reference::scale_shift_channels<Scalar>(input.size() / c, c, input.data(), scale.data(), shift.data(),
                                                     output.data());
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    visit(detail::parameter_ref(detail::join_name(prefix, "weight"), weight_));
    visit(detail::parameter_ref(detail::join_name(prefix, "bias"), bias_));
    visit(detail::parameter_ref(detail::join_name(prefix, "running_mean"), mean_, true));
    visit(detail::parameter_ref(detail::join_name(prefix, "running_var"), var_, true));
  }

 private:
  BatchNorm2dOptions options_;
  Tensor1<Scalar> weight_, bias_, mean_, var_;
};

}  // namespace sknet
