// sknet prepared engine: the stem, a k x k conv (BN, ReLU) as an im2col GEMM row by row, with the
// ImageNet stem's 3x3 stride-2 max pool (padding 1) fused through a ring of the last stem rows, so
// the full-resolution stem output never leaves the cache.
#pragma once

#include <algorithm>
#include <optional>
#include <vector>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"

namespace sknet {

class PreparedStem {
 public:
  using dim_t = kernels::dim_t;
  PreparedStem() = default;
  /// `stem` (conv + BN + ReLU, no conv bias needed) followed by `pool` when given (only the 3x3
  /// stride-2 padding-1 max pool is fused; anything else throws ConfigError).
  PreparedStem(const ConvBnAct<float>& stem, const std::optional<MaxPool2dOptions>& pool, kernels::Isa isa) {
    const auto& o = stem.conv().options();
    detail::require<ConfigError>(o.kernel_size()[0] == o.kernel_size()[1] && o.stride()[0] == o.stride()[1] &&
                                     o.padding()[0] == o.padding()[1] && o.groups() == 1 && o.dilation()[0] == 1 &&
                                     o.dilation()[1] == 1,
                                 "prepare", "stem convolution (square kernel, stride and padding, no groups or dilation)",
                                 "a plain k x k convolution", stem.label());
    if (pool)
      detail::require<ConfigError>(pool->kernel_size() == 3 && pool->stride() == 2 && pool->padding() == 1, "prepare",
                                   "max pool after the stem", "3x3, stride 2, padding 1",
                                   std::to_string(pool->kernel_size()) + "/" + std::to_string(pool->stride()) + "/" +
                                       std::to_string(pool->padding()));
    kernel_ = o.kernel_size()[0], stride_ = o.stride()[0], pad_ = o.padding()[0];
    cin_ = o.in_channels(), cout_ = o.out_channels();
    max_pool_ = pool.has_value();
    std::vector<float> w, bias;
    fold_conv_bn(stem.conv(), stem.bn(), w, bias);
    // PyTorch [oc][ic][ky][kx] -> im2col order [oc][ky][kx][ic], the order of an NHWC patch.
    const dim_t k = kernel_, taps = k * k * cin_;
    std::vector<float> reordered(std::size_t(cout_ * taps));
    for (dim_t oc = 0; oc < cout_; ++oc)
      for (dim_t ic = 0; ic < cin_; ++ic)
        for (dim_t t = 0; t < k * k; ++t)
          reordered[std::size_t(oc * taps + t * cin_ + ic)] = w[std::size_t((oc * cin_ + ic) * k * k + t)];
    gemm_ = PreparedPointwise(reordered.data(), bias.data(), cout_, taps, isa);
  }

  dim_t in_channels() const { return cin_; }
  /// The conv's output size (before the pool); ShapeError when the input is too small.
  std::pair<dim_t, dim_t> conv_extent(dim_t ih, dim_t iw) const {
    const dim_t oh = out_extent(ih, kernel_, stride_, pad_, 1), ow = out_extent(iw, kernel_, stride_, pad_, 1);
    if (oh < 1 || ow < 1)  // the message is built only on failure: run() calls this on every forward
      detail::fail<ShapeError>("PreparedNetwork", "input size " + std::to_string(ih) + "x" + std::to_string(iw),
                               "large enough for the stem", "too small");
    return {oh, ow};
  }
  FeatureShape out_shape(const FeatureShape& in) const {
    auto [h, w] = conv_extent(in.h, in.w);
    if (max_pool_) h = out_extent(h, 3, 2, 1, 1), w = out_extent(w, 3, 2, 1, 1);
    return {in.n, h, w, cout_};
  }
  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const {
    const dim_t ow = conv_extent(in.h, in.w).second;
    needs.need(Slot::im2col, std::size_t(threads) * std::size_t(ow * gemm_.cin()));
    if (max_pool_) needs.need(Slot::stem_ring, std::size_t(threads) * std::size_t(4 * ow * cout_));
    const FeatureShape out = out_shape(in);
    needs.need(Slot::activation_a, std::size_t(out.n * out.h * out.w * out.c));
  }

  /// input NHWC [n, ih, iw, cin] -> dst [n, oh, ow, cout] (pooled when the stem has its max pool).
  FeatureShape run(ThreadPool& pool, const Workspace& ws, const float* input, const FeatureShape& in, float* dst) const {
    const dim_t n = in.n, ih = in.h, iw = in.w, c = cout_;
    const std::pair<dim_t, dim_t> extent = conv_extent(ih, iw);  // no structured binding: lambdas capture these
    const dim_t oh = extent.first, ow = extent.second;            // (clang rejects captured bindings in C++17)
    const std::size_t patch_floats = std::size_t(ow * gemm_.cin()), ring_floats = std::size_t(4 * ow * c);
    const int threads = pool.size();
    if (!max_pool_) {
      pool.run([&](int t) {
        float* patch = ws.get(Slot::im2col) + std::size_t(t) * patch_floats;
        const auto rows = split_range(n * oh, threads, t);
        for (dim_t r = rows.first; r < rows.second; ++r) row(input, r / oh, r % oh, ih, iw, ow, patch, dst + r * ow * c);
      });
      return {n, oh, ow, c};
    }
    // Pool row py reads stem rows 2py-1..2py+1, kept in ring slots y % 3; slot 3 holds their maximum.
    // (std::max(a, b) returns a when b is NaN: NaN is compared first so that it propagates.)
    const dim_t ph = out_extent(oh, 3, 2, 1, 1), pw = out_extent(ow, 3, 2, 1, 1);
    pool.run([&](int t) {
      float* patch = ws.get(Slot::im2col) + std::size_t(t) * patch_floats;
      float* ring = ws.get(Slot::stem_ring) + std::size_t(t) * ring_floats;
      float* vmax = ring + 3 * ow * c;
      const auto rows = split_range(n * ph, threads, t);
      dim_t have_img = -1, have_row = -1;  // the last stem row in the ring
      for (dim_t r = rows.first; r < rows.second; ++r) {
        const dim_t img = r / ph, py = r % ph;
        const dim_t y0 = std::max<dim_t>(0, 2 * py - 1), y1 = std::min<dim_t>(oh - 1, 2 * py + 1);
        for (dim_t y = img == have_img ? std::max(y0, have_row + 1) : y0; y <= y1; ++y)
          row(input, img, y, ih, iw, ow, patch, ring + (y % 3) * ow * c);
        have_img = img, have_row = y1;
        std::copy_n(ring + (y0 % 3) * ow * c, ow * c, vmax);
        for (dim_t y = y0 + 1; y <= y1; ++y) {
          const float* src = ring + (y % 3) * ow * c;
          for (dim_t i = 0; i < ow * c; ++i) vmax[i] = nan_max(vmax[i], src[i]);
        }
        float* o = dst + r * pw * c;
        for (dim_t px = 0; px < pw; ++px, o += c) {
          const dim_t x0 = std::max<dim_t>(0, 2 * px - 1), x1 = std::min<dim_t>(ow - 1, 2 * px + 1);
          std::copy_n(vmax + x0 * c, c, o);
          for (dim_t x = x0 + 1; x <= x1; ++x) {
            const float* src = vmax + x * c;
            for (dim_t ch = 0; ch < c; ++ch) o[ch] = nan_max(o[ch], src[ch]);
          }
        }
      }
    });
    return {n, ph, pw, c};
  }

 private:
  /// max that returns NaN when either side is NaN (as PyTorch's max pool).
  static float nan_max(float a, float b) { return a < b || b != b ? b : a; }

  /// im2col of stem output row oy of image img: patch[ox][ky][kx][ic] (zero outside the input).
  void patch_row(const float* input, dim_t img, dim_t oy, dim_t ih, dim_t iw, dim_t ow, float* patch) const {
    const dim_t k = kernel_, s = stride_, p = pad_, cin = cin_, kc = k * cin, taps = k * kc;
    for (dim_t ky = 0; ky < k; ++ky) {
      const dim_t iy = oy * s - p + ky;
      if (iy < 0 || iy >= ih) {
        for (dim_t ox = 0; ox < ow; ++ox) std::fill_n(patch + ox * taps + ky * kc, kc, 0.0f);
        continue;
      }
      const float* src_row = input + (img * ih + iy) * iw * cin;
      for (dim_t ox = 0; ox < ow; ++ox) {
        float* dst = patch + ox * taps + ky * kc;
        const dim_t ix0 = ox * s - p;
        if (ix0 >= 0 && ix0 + k <= iw) {  // the k taps of a kernel row are k adjacent NHWC pixels
          const float* src = src_row + ix0 * cin;
          for (dim_t j = 0; j < kc; ++j) dst[j] = src[j];
          continue;
        }
        for (dim_t kx = 0; kx < k; ++kx) {
          const dim_t ix = ix0 + kx;
          if (ix < 0 || ix >= iw) {
            std::fill_n(dst + kx * cin, cin, 0.0f);
          } else {
            for (dim_t ic = 0; ic < cin; ++ic) dst[kx * cin + ic] = src_row[ix * cin + ic];
          }
        }
      }
    }
  }

  /// Stem output row oy of image img (conv + folded BN + ReLU) into out[ow][cout].
  void row(const float* input, dim_t img, dim_t oy, dim_t ih, dim_t iw, dim_t ow, float* patch, float* out) const {
    patch_row(input, img, oy, ih, iw, ow, patch);
    const kernels::PointwiseGeometry g{ow, gemm_.cin(), cout_, gemm_.cin(), cout_};
    kernels::PointwiseEpilogue ep;
    ep.bias = gemm_.bias();
    ep.relu = true;
    kernels::pointwise_conv(g, patch, gemm_.weights(), ep, out, 0, ow, 0, cout_);
  }

  PreparedPointwise gemm_;  // [cout][k * k * cin]
  dim_t kernel_ = 0, stride_ = 1, pad_ = 0, cin_ = 0, cout_ = 0;
  bool max_pool_ = false;
};

}  // namespace sknet
