// sknet prepared engine: a dense k x k convolution (groups 1, any stride, padding and dilation, BN
// folded in) as im2col + the pointwise GEMM kernel: output pixels are taken a chunk of rows at a
// time (about kChunkPixels, so a packed weight panel is reused by many rows), their patches
// [pixel][ky][kx][ic] are gathered into a per-thread buffer, and one GEMM against the weights packed
// as [cout][ky][kx][ic] writes them with the epilogue (bias, residual, ReLU, channel sums).
// The input may be a channel slice [c_offset, c_offset + cin) of a wider NHWC tensor (a split-input
// SK path). The stem's convolutions and the basic block's second 3x3 run on it.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "sknet/ops/conv_bn.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

/// The im2col patch of output row oy of image img: patch[ox][ky][kx][ic] for ox in [0, ow), zero
/// outside the input. x: NHWC [.., ih, iw, c_total], read at channels [c_offset, c_offset + cin).
inline void im2col_row(const float* x, kernels::dim_t img, kernels::dim_t oy, kernels::dim_t ih, kernels::dim_t iw,
                       kernels::dim_t c_total, kernels::dim_t c_offset, kernels::dim_t cin, kernels::dim_t k,
                       kernels::dim_t stride, kernels::dim_t pad, kernels::dim_t dilation, kernels::dim_t ow,
                       float* patch) {
  using dim_t = kernels::dim_t;
  const dim_t kc = k * cin, taps = k * kc;
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

class PreparedIm2colConv {
 public:
  using dim_t = kernels::dim_t;
  /// Output pixels per GEMM call (rows of the patch buffer), about.
  static constexpr dim_t kChunkPixels = 224;

  PreparedIm2colConv() = default;
  /// Folds `bn` into `conv` (square kernel, stride, padding and dilation; groups 1) and packs it.
  PreparedIm2colConv(const Conv2d<float>& conv, const BatchNorm2d<float>& bn, kernels::Isa isa) {
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
    gemm_ = PreparedPointwise(reordered.data(), bias.data(), cout, taps, isa);
  }
  static PreparedIm2colConv from(const ConvBnAct<float>& layer, kernels::Isa isa) {
    return PreparedIm2colConv(layer.conv(), layer.bn(), isa);
  }

  dim_t cin() const { return cin_; }
  dim_t cout() const { return gemm_.cout(); }
  /// The packed weights [cout][ky][kx][ic] and bias.
  const PreparedPointwise& gemm() const { return gemm_; }
  dim_t taps() const { return gemm_.cin(); }
  dim_t out_extent(dim_t in) const { return kernels::dim_t(sknet::out_extent(in, k_, stride_, pad_, dilation_)); }
  /// Output rows per chunk for an output width ow.
  static dim_t chunk_rows(dim_t ow, dim_t oh) { return std::clamp<dim_t>(kChunkPixels / std::max<dim_t>(ow, 1), 1, oh); }

  /// The per-thread patch buffer (Slot::im2col) for input `in`.
  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const {
    const dim_t oh = out_extent(in.h), ow = out_extent(in.w);
    needs.need(Slot::im2col, std::size_t(threads) * std::size_t(chunk_rows(ow, oh) * ow * taps()));
  }

  /// dst NHWC [n, oh, ow, cout] = epilogue(conv(x) + bias). x: NHWC [n, h, w, c_total] read at channels
  /// [c_offset, c_offset + cin()). ep.residual (if set) is [n, oh, ow, cout] (stride cout);
  /// ep.channel_sums (if set) is per_thread_sums [threads][n][cout], zeroed here, each thread's sums of
  /// each image. Threads take chunks of rows; with fewer chunks than threads they split the channels.
  void run(ThreadPool& pool, const Workspace& ws, const float* x, const FeatureShape& in, dim_t c_total, dim_t c_offset,
           kernels::PointwiseEpilogue ep, float* dst, float* per_thread_sums = nullptr) const {
    const dim_t n = in.n, h = in.h, w = in.w, oh = out_extent(h), ow = out_extent(w), cout = gemm_.cout();
    const dim_t rows = chunk_rows(ow, oh), chunks_per_image = (oh + rows - 1) / rows, chunks = n * chunks_per_image;
    const int threads = pool.size();
    const bool by_chunks = chunks >= threads;
    const bool sums = ep.channel_sums != nullptr;
    if (sums) std::fill_n(per_thread_sums, std::size_t(threads) * std::size_t(n * cout), 0.0f);
    ep.bias = gemm_.bias();
    const std::size_t patch_floats = std::size_t(rows * ow * taps());
    pool.run([&](int t) {
      float* patch = ws.get(Slot::im2col) + std::size_t(t) * patch_floats;
      const auto mine = by_chunks ? split_range(chunks, threads, t) : std::pair<long, long>{0, chunks};
      const auto cols = by_chunks ? std::pair<long, long>{0, cout} : split_range(cout, threads, t, 16);
      if (cols.first >= cols.second) return;
      for (dim_t chunk = mine.first; chunk < mine.second; ++chunk) {
        const dim_t img = chunk / chunks_per_image, y0 = chunk % chunks_per_image * rows, y1 = std::min(oh, y0 + rows);
        for (dim_t y = y0; y < y1; ++y)
          im2col_row(x, img, y, h, w, c_total, c_offset, cin_, k_, stride_, pad_, dilation_, ow, patch + (y - y0) * ow * taps());
        const dim_t p0 = (img * oh + y0) * ow, count = (y1 - y0) * ow;
        kernels::PointwiseEpilogue e = ep;
        if (ep.residual) e.residual = ep.residual + p0 * cout, e.residual_stride = cout;
        if (sums) e.channel_sums = per_thread_sums + (std::size_t(t) * std::size_t(n) + std::size_t(img)) * std::size_t(cout);
        const kernels::PointwiseGeometry g{count, taps(), cout, taps(), cout};
        kernels::pointwise_conv(g, patch, gemm_.weights(), e, dst + p0 * cout, 0, count, cols.first, cols.second);
      }
    });
  }

 private:
  PreparedPointwise gemm_;  // [cout][k * k * cin]
  dim_t k_ = 1, stride_ = 1, pad_ = 0, dilation_ = 1, cin_ = 0;
};

}  // namespace sknet
