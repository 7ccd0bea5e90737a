// sknet: Shortcut, the residual branch of a ResNet-layout block: identity, a projection (1x1 conv with
// stride + BN), or ResNet-D's average-pool projection (2x2 average pool with the stride, ceil mode,
// padding not counted, then a stride-1 1x1 conv + BN).
#pragma once

#include <optional>
#include <string>

#include "sknet/ops/conv_bn.hpp"

namespace sknet {

/// Output extent of a pool with `kernel`, `stride`, no padding and ceil_mode (PyTorch: a last window
/// that would start past the input is dropped).
inline Index ceil_pool_extent(Index in, Index kernel, Index stride) {
  Index out = (in - kernel + stride - 1) / stride + 1;
  if (in - kernel < 0) out = 1;  // PyTorch: ceil of a negative fraction (kernel > in, one partial window)
  if ((out - 1) * stride >= in) --out;
  return out;
}

/// The 2x2 (`kernel`) average pool with stride, ceil mode and count_include_pad = False of an NHWC
/// tensor: each output averages the window's pixels that lie inside the input.
template <class Scalar>
Tensor4<Scalar> avg_pool_ceil(const ConstTensorMap4<Scalar>& x, Index kernel, Index stride) {
  const Index n = x.dimension(0), h = x.dimension(1), w = x.dimension(2), c = x.dimension(3);
  const Index oh = ceil_pool_extent(h, kernel, stride), ow = ceil_pool_extent(w, kernel, stride);
  Tensor4<Scalar> y(n, oh, ow, c);
  y.setZero();
  for (Index i = 0; i < n; ++i)
    for (Index oy = 0; oy < oh; ++oy)
      for (Index ox = 0; ox < ow; ++ox) {
        Scalar* out = y.data() + ((i * oh + oy) * ow + ox) * c;
        Index count = 0;
        for (Index iy = oy * stride; iy < std::min(h, oy * stride + kernel); ++iy)
          for (Index ix = ox * stride; ix < std::min(w, ox * stride + kernel); ++ix, ++count) {
            const Scalar* in = x.data() + ((i * h + iy) * w + ix) * c;
            for (Index ch = 0; ch < c; ++ch) out[ch] += in[ch];
          }
        for (Index ch = 0; ch < c; ++ch) out[ch] /= Scalar(count);
      }
  return y;
}

/// The shortcut of a block with input `in` and output `out` channels and `stride`: identity when the
/// shape is kept, otherwise a projection; with avg_down a 2x2 average pool (the stride) first.
/// Parameter names (timm, relative to the block): downsample.0/1 (conv, BN), or downsample.1/2 with
/// avg_down (downsample.0 is the pool, without parameters).
template <class Scalar>
class Shortcut : public Module {
 public:
  Shortcut(Index in, Index out, Index stride, bool avg_down, const std::string& block_name)
      : Module("Shortcut"), stride_(stride), avg_down_(avg_down) {
    set_name(detail::join_name(block_name, "downsample"));
    if (stride != 1 || in != out)
      projection_.emplace(Conv2dOptions(in, out, 1).stride(avg_down ? 1 : stride).bias(false), false, name(),
                          avg_down ? "1" : "0", avg_down ? "2" : "1");
  }

  bool identity() const { return !projection_; }
  /// Whether the projection pools first (avg_down with a stride).
  bool pools() const { return projection_ && avg_down_ && stride_ != 1; }
  Index stride() const { return stride_; }
  const std::optional<ConvBnAct<Scalar>>& projection() const { return projection_; }

  /// y = ReLU(y + shortcut(input)).
  void add_relu(Tensor4<Scalar>& y, const ConstTensorMap4<Scalar>& input, const std::string& block) const {
    if (pools()) {
      const Tensor4<Scalar> pooled = avg_pool_ceil(input, 2, stride_);
      detail::add_shortcut_relu(y, view(pooled), projection_, block);
    } else {
      detail::add_shortcut_relu(y, input, projection_, block);
    }
  }

  template <class Visitor>
  void visit_parameters(const std::string& block_prefix, Visitor&& visit) {
    if (projection_) projection_->visit_parameters(detail::join_name(block_prefix, "downsample"), visit);
  }

 private:
  Index stride_;
  bool avg_down_;
  std::optional<ConvBnAct<Scalar>> projection_;
};

}  // namespace sknet
