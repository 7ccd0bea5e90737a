// sknet: Linear, a fully connected layer on [N, in] rows.
#pragma once

#include <string>

#include "sknet/kernels/reference/linear.hpp"
#include "sknet/module.hpp"
#include "sknet/parameters.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// Options of Linear: in/out features, bias on by default (PyTorch).
class LinearOptions {
 public:
  LinearOptions(Index in_features, Index out_features) : in_(in_features), out_(out_features) {}
  LinearOptions& bias(bool on) { bias_ = on; return *this; }
  Index in_features() const { return in_; }
  Index out_features() const { return out_; }
  bool bias() const { return bias_; }
  void validate(const std::string& layer) const {
    detail::require<ConfigError>(in_ >= 1, layer, "in_features", ">= 1", in_);
    detail::require<ConfigError>(out_ >= 1, layer, "out_features", ">= 1", out_);
  }

 private:
  Index in_, out_;
  bool bias_ = true;
};

/// y = x W^T + b. Parameters: "weight" [out, in] and, with bias, "bias" [out]; zero-initialised.
template <class Scalar>
class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options, std::string name = "") : Module("Linear"), options_(options) {
    set_name(std::move(name));
    options_.validate(label());
    weight_ = Tensor2<Scalar>(options_.out_features(), options_.in_features());
    weight_.setZero();
    if (options_.bias()) {
      bias_ = Tensor1<Scalar>(options_.out_features());
      bias_.setZero();
    }
  }

  const LinearOptions& options() const { return options_; }
  Tensor2<Scalar>& weight() { return weight_; }
  Tensor1<Scalar>& bias() { return bias_; }
  const Tensor2<Scalar>& weight() const { return weight_; }
  const Tensor1<Scalar>& bias() const { return bias_; }

  /// requires: input [N, in_features], N >= 1. ensures: returns [N, out_features].
  Tensor2<Scalar> forward(const ConstTensorMap<Scalar, 2>& input) const {
    Tensor2<Scalar> output(input.dimension(0), options_.out_features());
    forward(input, TensorMap<Scalar, 2>(output.data(), output.dimensions()));
    return output;
  }
  Tensor2<Scalar> forward(const Tensor2<Scalar>& input) const { return forward(view(input)); }

  void forward(const ConstTensorMap<Scalar, 2>& input, TensorMap<Scalar, 2> output) const {
    using detail::require;
    require<ShapeError>(input.dimension(0) >= 1, label(), "batch size of input " + shape_string(input.dimensions()),
                        ">= 1", input.dimension(0));
    require<ShapeError>(input.dimension(1) == options_.in_features(), label(),
                        "in_features (last dimension of input " + shape_string(input.dimensions()) + ")",
                        options_.in_features(), input.dimension(1));
    const std::array<Index, 2> expected{input.dimension(0), options_.out_features()};
    require<ShapeError>(output.dimensions() == expected, label(), "output dimensions", shape_string(expected),
                        shape_string(output.dimensions()));
    kernels::reference::linear<Scalar>(input.dimension(0), options_.in_features(), options_.out_features(),
                                       input.data(), weight_.data(), options_.bias() ? bias_.data() : nullptr,
                                       output.data());
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    visit(detail::parameter_ref(detail::join_name(prefix, "weight"), weight_));
    if (options_.bias()) visit(detail::parameter_ref(detail::join_name(prefix, "bias"), bias_));
  }

 private:
  LinearOptions options_;
  Tensor2<Scalar> weight_;
  Tensor1<Scalar> bias_;
};

}  // namespace sknet
