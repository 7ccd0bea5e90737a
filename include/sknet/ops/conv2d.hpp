// sknet: Conv2d, a grouped, strided, dilated 2-D convolution on NHWC activations.
#pragma once

#include <array>
#include <ostream>
#include <string>

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/conv2d.hpp"
#include "sknet/module.hpp"
#include "sknet/parameters.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// Options of Conv2d, with PyTorch's meaning and defaults (stride 1, padding 0, dilation 1,
/// groups 1, bias on). Example: Conv2dOptions(64, 64, 3).padding(2).dilation(2).groups(32).
class Conv2dOptions {
 public:
  Conv2dOptions(Index in_channels, Index out_channels, Index kernel_size)
      : in_(in_channels), out_(out_channels), kernel_{kernel_size, kernel_size} {}
  Conv2dOptions(Index in_channels, Index out_channels, std::array<Index, 2> kernel_hw)
      : in_(in_channels), out_(out_channels), kernel_(kernel_hw) {}

  Conv2dOptions& stride(Index s) { return stride(s, s); }
  Conv2dOptions& stride(Index sh, Index sw) { stride_ = {sh, sw}; return *this; }
  Conv2dOptions& padding(Index p) { return padding(p, p); }
  Conv2dOptions& padding(Index ph, Index pw) { padding_ = {ph, pw}; return *this; }
  Conv2dOptions& dilation(Index d) { return dilation(d, d); }
  Conv2dOptions& dilation(Index dh, Index dw) { dilation_ = {dh, dw}; return *this; }
  Conv2dOptions& groups(Index g) { groups_ = g; return *this; }
  Conv2dOptions& bias(bool on) { bias_ = on; return *this; }

  Index in_channels() const { return in_; }
  Index out_channels() const { return out_; }
  std::array<Index, 2> kernel_size() const { return kernel_; }
  std::array<Index, 2> stride() const { return stride_; }
  std::array<Index, 2> padding() const { return padding_; }
  std::array<Index, 2> dilation() const { return dilation_; }
  Index groups() const { return groups_; }
  bool bias() const { return bias_; }

  /// Throws ConfigError naming `layer` unless the options describe a valid convolution.
  void validate(const std::string& layer) const {
    using detail::require;
    require<ConfigError>(in_ >= 1, layer, "in_channels", ">= 1", in_);
    require<ConfigError>(out_ >= 1, layer, "out_channels", ">= 1", out_);
    require<ConfigError>(groups_ >= 1, layer, "groups", ">= 1", groups_);
    for (int i = 0; i < 2; ++i) {
      require<ConfigError>(kernel_[i] >= 1, layer, "kernel_size", ">= 1", kernel_[i]);
      require<ConfigError>(stride_[i] >= 1, layer, "stride", ">= 1", stride_[i]);
      require<ConfigError>(dilation_[i] >= 1, layer, "dilation", ">= 1", dilation_[i]);
      require<ConfigError>(padding_[i] >= 0, layer, "padding", ">= 0", padding_[i]);
    }
    require<ConfigError>(in_ % groups_ == 0, layer, "in_channels % groups",
                         "0 (in_channels " + std::to_string(in_) + ", groups " + std::to_string(groups_) + ")",
                         in_ % groups_);
    require<ConfigError>(out_ % groups_ == 0, layer, "out_channels % groups",
                         "0 (out_channels " + std::to_string(out_) + ", groups " + std::to_string(groups_) + ")",
                         out_ % groups_);
  }

 private:
  Index in_, out_;
  std::array<Index, 2> kernel_;
  std::array<Index, 2> stride_{1, 1}, padding_{0, 0}, dilation_{1, 1};
  Index groups_ = 1;
  bool bias_ = true;
};

/// Prints the options that differ from the defaults, PyTorch style.
inline std::ostream& operator<<(std::ostream& os, const Conv2dOptions& o) {
  os << "Conv2d(" << o.in_channels() << ", " << o.out_channels() << ", kernel_size=" << o.kernel_size()[0] << 'x'
     << o.kernel_size()[1];
  if (o.stride() != std::array<Index, 2>{1, 1}) os << ", stride=" << o.stride()[0] << 'x' << o.stride()[1];
  if (o.padding() != std::array<Index, 2>{0, 0}) os << ", padding=" << o.padding()[0] << 'x' << o.padding()[1];
  if (o.dilation() != std::array<Index, 2>{1, 1}) os << ", dilation=" << o.dilation()[0] << 'x' << o.dilation()[1];
  if (o.groups() != 1) os << ", groups=" << o.groups();
  if (!o.bias()) os << ", bias=false";
  return os << ')';
}

/// The geometry of a convolution with `options` on an NHWC input of the given dimensions,
/// computed from the shapes alone. Throws ShapeError naming `layer` on a channel mismatch, an
/// empty input or an empty output, ConfigError when an extent overflows.
inline kernels::ConvGeometry conv_geometry(const Conv2dOptions& options, const std::array<Index, 4>& input_dims,
                                           const std::string& layer) {
  using detail::require;
  require<ShapeError>(input_dims[0] >= 1, layer, "batch size of input " + shape_string(input_dims), ">= 1",
                      input_dims[0]);
  require<ShapeError>(input_dims[1] >= 1 && input_dims[2] >= 1, layer,
                      "spatial size of NHWC input " + shape_string(input_dims), ">= 1x1",
                      std::to_string(input_dims[1]) + "x" + std::to_string(input_dims[2]));
  require<ShapeError>(input_dims[3] == options.in_channels(), layer,
                      "input channels (last dimension of NHWC input " + shape_string(input_dims) + ")",
                      options.in_channels(), input_dims[3]);
  kernels::ConvGeometry g;
  g.n = input_dims[0];
  g.groups = options.groups();
  g.ic = options.in_channels();
  g.ih = input_dims[1];
  g.iw = input_dims[2];
  g.oc = options.out_channels();
  g.kh = options.kernel_size()[0];
  g.kw = options.kernel_size()[1];
  g.sh = options.stride()[0];
  g.sw = options.stride()[1];
  g.dh = options.dilation()[0];
  g.dw = options.dilation()[1];
  g.ph = options.padding()[0];
  g.pw = options.padding()[1];
  // out_extent's arithmetic, checked: in + 2 * padding - dilation * (kernel - 1) - 1.
  const auto extent = [&](Index in, Index kernel, Index stride, Index padding, Index dilation, const char* axis) {
    const std::string what = std::string("output ") + axis + " for input " + shape_string(input_dims);
    const Index padded = detail::checked_add(in, detail::checked_mul(Index(2), padding, layer, what), layer, what);
    const Index span = padded - detail::checked_mul(dilation, kernel - 1, layer, what) - 1;
    return span < 0 ? Index(0) : span / stride + 1;
  };
  g.oh = extent(g.ih, g.kh, g.sh, g.ph, g.dh, "height");
  g.ow = extent(g.iw, g.kw, g.sw, g.pw, g.dw, "width");
  require<ShapeError>(g.oh >= 1 && g.ow >= 1, layer,
                      "output size for input " + shape_string(input_dims) + " (the dilated kernel is larger "
                      "than the padded input)", ">= 1x1",
                      std::to_string(g.oh) + "x" + std::to_string(g.ow));
  return g;
}

/// Multiply-adds of a convolution of geometry `g` (as ConvGeometry::macs()), checked:
/// ConfigError naming `layer` when the count exceeds the 64-bit range.
inline Index conv_macs(const kernels::ConvGeometry& g, const std::string& layer) {
  Index total = g.n;
  for (Index factor : {Index(g.oh), Index(g.ow), Index(g.oc), Index(g.ic_per_group()), Index(g.kh), Index(g.kw)})
    total = detail::checked_mul(total, factor, layer, "multiply-adds");
  return total;
}

/// Learnable values of a convolution with `options` (weight [out, in / groups, kh, kw] and the
/// optional bias), checked: ConfigError naming `layer` on overflow.
inline Index conv_parameters(const Conv2dOptions& options, const std::string& layer) {
  Index total = options.out_channels();
  for (Index factor : {options.in_channels() / options.groups(), options.kernel_size()[0], options.kernel_size()[1]})
    total = detail::checked_mul(total, factor, layer, "parameters");
  return options.bias() ? detail::checked_add(total, options.out_channels(), layer, "parameters") : total;
}

/// y = conv(x, weight) + bias on NHWC tensors [N, H, W, C].
/// Parameters: "weight" [out, in/groups, kh, kw] and, when bias is on, "bias" [out].
/// Weights start at zero; load them (load_state_dict) or set them through visit_parameters.
template <class Scalar>
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options, std::string name = "")
      : Module("Conv2d"), options_(options) {
    set_name(std::move(name));
    options_.validate(label());
    const auto k = options_.kernel_size();
    weight_ = Tensor4<Scalar>(options_.out_channels(), options_.in_channels() / options_.groups(), k[0], k[1]);
    weight_.setZero();
    if (options_.bias()) {
      bias_ = Tensor1<Scalar>(options_.out_channels());
      bias_.setZero();
    }
  }

  const Conv2dOptions& options() const { return options_; }
  Tensor4<Scalar>& weight() { return weight_; }
  const Tensor4<Scalar>& weight() const { return weight_; }
  /// Empty (size 0) when the convolution has no bias.
  Tensor1<Scalar>& bias() { return bias_; }
  const Tensor1<Scalar>& bias() const { return bias_; }

  /// The geometry of this convolution on an NHWC input of the given dimensions.
  /// Throws ShapeError on a channel mismatch, an empty input or an empty output.
  kernels::ConvGeometry geometry(const std::array<Index, 4>& input_dims) const {
    return conv_geometry(options_, input_dims, label());
  }

  /// NHWC output dimensions for an NHWC input; throws ShapeError as geometry() does.
  std::array<Index, 4> output_dims(const std::array<Index, 4>& input_dims) const {
    const auto g = geometry(input_dims);
    return {g.n, g.oh, g.ow, g.oc};
  }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: returns NHWC [N, OH, OW, out_channels].
  Tensor4<Scalar> forward(const ConstTensorMap4<Scalar>& input) const {
    Tensor4<Scalar> output(output_dims(input.dimensions()));
    forward(input, TensorMap4<Scalar>(output.data(), output.dimensions()));
    return output;
  }
  Tensor4<Scalar> forward(const Tensor4<Scalar>& input) const { return forward(view(input)); }

  /// Writes into caller-owned memory; throws ShapeError unless output has output_dims(input).
  void forward(const ConstTensorMap4<Scalar>& input, TensorMap4<Scalar> output) const {
    const auto g = geometry(input.dimensions());
    const std::array<Index, 4> expected{g.n, g.oh, g.ow, g.oc};
    detail::require<ShapeError>(output.dimensions() == expected, label(), "output dimensions",
                                shape_string(expected), shape_string(output.dimensions()));
    kernels::reference::conv2d_nhwc(g, input.data(), weight_.data(), options_.bias() ? bias_.data() : nullptr,
                                    output.data());
  }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    visit(detail::parameter_ref(detail::join_name(prefix, "weight"), weight_));
    if (options_.bias()) visit(detail::parameter_ref(detail::join_name(prefix, "bias"), bias_));
  }

 private:
  Conv2dOptions options_;
  Tensor4<Scalar> weight_;
  Tensor1<Scalar> bias_;
};

}  // namespace sknet
