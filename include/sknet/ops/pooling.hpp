// sknet: MaxPool2d and global average pooling on NHWC activations.
#pragma once

#include <array>
#include <string>

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/pooling.hpp"
#include "sknet/module.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// Options of MaxPool2d (PyTorch semantics, floor mode): stride defaults to the kernel size,
/// padding to 0 and must not exceed half the kernel.
class MaxPool2dOptions {
 public:
  explicit MaxPool2dOptions(Index kernel_size) : kernel_(kernel_size), stride_(kernel_size) {}
  MaxPool2dOptions& stride(Index s) { stride_ = s; return *this; }
  MaxPool2dOptions& padding(Index p) { padding_ = p; return *this; }
  Index kernel_size() const { return kernel_; }
  Index stride() const { return stride_; }
  Index padding() const { return padding_; }
  void validate(const std::string& layer) const {
    detail::require<ConfigError>(kernel_ >= 1, layer, "kernel_size", ">= 1", kernel_);
    detail::require<ConfigError>(stride_ >= 1, layer, "stride", ">= 1", stride_);
    detail::require<ConfigError>(padding_ >= 0 && padding_ <= kernel_ / 2, layer, "padding",
                                 "between 0 and kernel_size / 2 = " + std::to_string(kernel_ / 2), padding_);
  }

 private:
  Index kernel_, stride_, padding_ = 0;
};

/// Max pooling over each kH x kW window of an NHWC tensor; padded positions never win.
template <class Scalar>
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options, std::string name = "") : Module("MaxPool2d"), options_(options) {
    set_name(std::move(name));
    options_.validate(label());
  }
  const MaxPool2dOptions& options() const { return options_; }

  kernels::PoolGeometry geometry(const std::array<Index, 4>& input_dims) const {
    using detail::require;
    require<ShapeError>(input_dims[0] >= 1 && input_dims[3] >= 1, label(),
                        "batch and channels of NHWC input " + shape_string(input_dims), ">= 1",
                        std::to_string(input_dims[0]) + " and " + std::to_string(input_dims[3]));
    kernels::PoolGeometry g;
    g.n = input_dims[0];
    g.ih = input_dims[1];
    g.iw = input_dims[2];
    g.c = input_dims[3];
    g.kh = g.kw = options_.kernel_size();
    g.sh = g.sw = options_.stride();
    g.ph = g.pw = options_.padding();
    g.oh = out_extent(g.ih, g.kh, g.sh, g.ph, 1);
    g.ow = out_extent(g.iw, g.kw, g.sw, g.pw, 1);
    require<ShapeError>(g.ih >= 1 && g.iw >= 1 && g.oh >= 1 && g.ow >= 1, label(),
                        "output size for NHWC input " + shape_string(input_dims), ">= 1x1",
                        std::to_string(g.oh) + "x" + std::to_string(g.ow));
    return g;
  }

  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    const auto g = geometry(input_dims);
    return {g.n, g.oh, g.ow, g.c};
  }

  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input) const {
    Tensor4<Scalar> output(output_dims(input.dimensions()));
    forward(input, TensorMap4<Scalar>(output.data(), output.dimensions()));
    return output;
  }
  Tensor4<Scalar> forward(const Tensor4<Scalar>& input) const { return forward(view(input)); }

  void forward(const ConstTensorMap4<Scalar>& input, TensorMap4<Scalar> output) const {
    const auto g = geometry(input.dimensions());
    const std::array<Index, 4> expected{g.n, g.oh, g.ow, g.c};
    detail::require<ShapeError>(output.dimensions() == expected, label(), "output dimensions", shape_string(expected),
                                shape_string(output.dimensions()));
    kernels::reference::max_pool2d_nhwc(g, input.data(), output.data());
  }

 private:
  MaxPool2dOptions options_;
};

/// The mean over H and W of an NHWC tensor: [N, H, W, C] -> [N, C].
template <class Scalar>
Tensor2<Scalar> global_avg_pool(const ConstTensorMap4<Scalar>& input) {
  const auto& d = input.dimensions();
  detail::require<ShapeError>(d[0] >= 1 && d[1] >= 1 && d[2] >= 1 && d[3] >= 1, "global_avg_pool",
                              "every dimension of NHWC input", ">= 1", shape_string(d));
  Tensor2<Scalar> output(d[0], d[3]);
  kernels::reference::global_avg_pool<Scalar>(d[0], d[1] * d[2], d[3], input.data(), output.data());
  return output;
}
template <class Scalar>
Tensor2<Scalar> global_avg_pool(const Tensor4<Scalar>& input) {
  return global_avg_pool<Scalar>(view(input));
}

}  // namespace sknet
