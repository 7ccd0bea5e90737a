// sknet prepared engine: a dense k x k convolution (groups 1, any stride, padding and dilation, BN
// folded in) packed for im2col + the pointwise GEMM kernel: the weights as [cout][ky][kx][ic] (the
// order of an NHWC patch) and im2col_row, which gathers the patches of one output row. The stem's
// convolutions (the 7x7, the deep stem's 3x3s) run on it (prepared/stem.hpp). Given the calibrated
// range of its input it is packed for the int8 GEMM instead (PreparedPointwiseInt8: per-channel s8
// weights, the patch quantized per tensor with a zero point).
#pragma once

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/prepared/activation_ranges.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

namespace detail {
/// im2col_row's body; KC > 0 is k * cin known at compile time (then every kernel row of an interior
/// pixel is one fixed-size copy, a few vector moves instead of a call).
template <kernels::dim_t KC>
inline void im2col_row_impl(const float* x, kernels::dim_t img, kernels::dim_t oy, kernels::dim_t ih,
                            kernels::dim_t iw, kernels::dim_t c_total, kernels::dim_t c_offset, kernels::dim_t cin,
                            kernels::dim_t k, kernels::dim_t stride, kernels::dim_t pad, kernels::dim_t dilation,
                            kernels::dim_t ow, float* patch) {
  using dim_t = kernels::dim_t;
  const dim_t kc = KC > 0 ? KC : k * cin, taps = k * kc;
  const bool dense = c_total == cin && dilation == 1;  // the k taps of a kernel row are k adjacent pixels
  for (dim_t ky = 0; ky < k; ++ky) {
    const dim_t iy = oy * stride - pad + ky * dilation;
    if (iy < 0 || iy >= ih) {
      for (dim_t ox = 0; ox < ow; ++ox) std::fill_n(patch + ox * taps + ky * kc, kc, 0.0f);
      continue;
    }
    const float* src_row = x + (img * ih + iy) * iw * c_total + c_offset;
    for (dim_t ox = 0; ox < ow; ++ox) {
      float* dst = patch + ox * taps + ky * kc;
      const dim_t ix0 = ox * stride - pad;
      if (dense && ix0 >= 0 && ix0 + k <= iw) {
        if constexpr (KC > 0)
          std::memcpy(dst, src_row + ix0 * cin, std::size_t(KC) * sizeof(float));
        else
          std::copy_n(src_row + ix0 * cin, kc, dst);
        continue;
      }
      for (dim_t kx = 0; kx < k; ++kx) {
        const dim_t ix = ix0 + kx * dilation;
        if (ix < 0 || ix >= iw)
          std::fill_n(dst + kx * cin, cin, 0.0f);
        else
          std::copy_n(src_row + ix * c_total, cin, dst + kx * cin);
      }
    }
  }
}
}  // namespace detail

/// The im2col patch of output row oy of image img: patch[ox][ky][kx][ic] for ox in [0, ow), zero
/// outside the input. x: NHWC [.., ih, iw, c_total], read at channels [c_offset, c_offset + cin).
/// The stems' kernel rows (7 x 3 and 3 x 3 floats over RGB, 3 x 32 in the deep stem) are copied with
/// their size built in: with a copy call per kernel row the 7x7 stem's im2col of a 224x224 image took
/// 0.25-0.30 ms alone, 0.16 ms so (skresnet18's stem phase: 1.61 -> 1.57 ms; bench/RESULTS.md).
inline void im2col_row(const float* x, kernels::dim_t img, kernels::dim_t oy, kernels::dim_t ih, kernels::dim_t iw,
                       kernels::dim_t c_total, kernels::dim_t c_offset, kernels::dim_t cin, kernels::dim_t k,
                       kernels::dim_t stride, kernels::dim_t pad, kernels::dim_t dilation, kernels::dim_t ow,
                       float* patch) {
  const auto run = [&](auto impl) { impl(x, img, oy, ih, iw, c_total, c_offset, cin, k, stride, pad, dilation, ow, patch); };
  switch (k * cin) {
    case 21: return run(detail::im2col_row_impl<21>);
    case 9: return run(detail::im2col_row_impl<9>);
    case 96: return run(detail::im2col_row_impl<96>);
    default: return run(detail::im2col_row_impl<0>);
  }
}

class PreparedIm2colConv {
 public:
  using dim_t = kernels::dim_t;
  PreparedIm2colConv() = default;
  /// Folds `bn` into `conv` (square kernel, stride, padding and dilation; groups 1) and packs it; for the
  /// int8 GEMM when `int8_input` (the calibrated range of the input) is given.
  PreparedIm2colConv(const Conv2d<float>& conv, const BatchNorm2d<float>& bn, kernels::Isa isa,
                     const ActivationRanges::Range* int8_input = nullptr) {
    const auto& o = conv.options();
    detail::require<ConfigError>(o.kernel_size()[0] == o.kernel_size()[1] && o.stride()[0] == o.stride()[1] &&
                                     o.padding()[0] == o.padding()[1] && o.dilation()[0] == o.dilation()[1] &&
                                     o.groups() == 1,
                                 "prepare", "convolution " + conv.label(),
                                 "square kernel, stride, padding and dilation, no groups", "another shape");
    k_ = o.kernel_size()[0], stride_ = o.stride()[0], pad_ = o.padding()[0], dilation_ = o.dilation()[0];
    cin_ = o.in_channels();
    std::vector<float> w, bias;
    fold_conv_bn(conv, bn, w, bias);
    // PyTorch [oc][ic][ky][kx] -> [oc][ky][kx][ic], the order of an NHWC patch.
    const dim_t cout = o.out_channels(), taps = k_ * k_ * cin_;
    std::vector<float> reordered(std::size_t(cout * taps));
    for (dim_t oc = 0; oc < cout; ++oc)
      for (dim_t ic = 0; ic < cin_; ++ic)
        for (dim_t t = 0; t < k_ * k_; ++t)
          reordered[std::size_t(oc * taps + t * cin_ + ic)] = w[std::size_t((oc * cin_ + ic) * k_ * k_ + t)];
    if (int8_input)
      gemm_int8_.emplace(reordered.data(), bias.data(), cout, taps, isa, int8_input->lo, int8_input->hi);
    else
      gemm_ = PreparedPointwise(reordered.data(), bias.data(), cout, taps, isa);
  }
  static PreparedIm2colConv from(const ConvBnAct<float>& layer, kernels::Isa isa,
                                 const ActivationRanges::Range* int8_input = nullptr) {
    return PreparedIm2colConv(layer.conv(), layer.bn(), isa, int8_input);
  }

  dim_t cin() const { return cin_; }
  dim_t cout() const { return gemm_int8_ ? gemm_int8_->cout() : gemm_.cout(); }
  /// The packed weights [cout][ky][kx][ic] and bias (float), or null.
  const PreparedPointwise* gemm() const { return gemm_int8_ ? nullptr : &gemm_; }
  /// The same for the int8 GEMM, or null.
  const PreparedPointwiseInt8* gemm_int8() const { return gemm_int8_ ? &*gemm_int8_ : nullptr; }
  dim_t taps() const { return k_ * k_ * cin_; }
  dim_t out_extent(dim_t in) const { return kernels::dim_t(sknet::out_extent(in, k_, stride_, pad_, dilation_)); }
 private:
  PreparedPointwise gemm_;  // [cout][k * k * cin]
  std::optional<PreparedPointwiseInt8> gemm_int8_;  // instead, in int8
  dim_t k_ = 1, stride_ = 1, pad_ = 0, dilation_ = 1, cin_ = 0;
};

}  // namespace sknet
