// sknet prepared engine: a 1x1 convolution (or any GEMM against packed weights) ready to run: packed
// weights, bias (BN folded in), and how it splits over a thread pool.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sknet/kernels/pointwise.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

class PreparedPointwise {
 public:
  using dim_t = kernels::dim_t;
  PreparedPointwise() = default;
  /// weight [cout][cin] and bias [cout] (already folded), packed for `isa`.
  PreparedPointwise(const float* weight, const float* bias, dim_t cout, dim_t cin, kernels::Isa isa)
      : weights_(weight, cout, cin, isa), bias_(bias, bias + cout) {}
  /// A 1x1 conv + BN (stride is the caller's business: it gathers the strided rows).
  static PreparedPointwise from(const ConvBnAct<float>& layer, kernels::Isa isa) {
    std::vector<float> w, b;
    fold_conv_bn(layer.conv(), layer.bn(), w, b);
    const auto& o = layer.conv().options();
    return PreparedPointwise(w.data(), b.data(), o.out_channels(), o.in_channels(), isa);
  }

  dim_t cin() const { return weights_.cin(); }
  dim_t cout() const { return weights_.cout(); }
  const kernels::PackedPointwiseWeights& weights() const { return weights_; }
  const float* bias() const { return bias_.data(); }

  /// Whether `pixels` rows split over `threads` by rows (many rows) or else by output channels.
  bool split_by_pixels(dim_t pixels, int threads) const { return pixels >= 96 * threads || cout() < 32 * threads; }

  /// dst[pixels x cout] = epilogue(src[pixels x cin] * W^T + bias) over the pool (rows when there
  /// are many, else output channels). `ep.bias` is set here; when ep.channel_sums is set,
  /// per_thread_sums [threads][cout] receives each thread's sums (the caller adds them up).
  /// src_stride: floats between src's rows (0: cin; more when src is a slice of wider rows).
  void run(ThreadPool& pool, dim_t pixels, const float* src, kernels::PointwiseEpilogue ep, float* dst,
           float* per_thread_sums = nullptr, dim_t src_stride = 0) const {
    const int threads = pool.size();
    const kernels::PointwiseGeometry g{pixels, cin(), cout(), src_stride > 0 ? src_stride : cin(), cout()};
    ep.bias = bias_.data();
    const bool by_pixels = split_by_pixels(pixels, threads);
    pool.run([&](int t) {
      kernels::PointwiseEpilogue mine = ep;
      if (ep.channel_sums) mine.channel_sums = per_thread_sums + std::size_t(t) * std::size_t(g.cout);
      if (by_pixels) {
        const auto r = split_range(g.pixels, threads, t);
        if (r.first < r.second) kernels::pointwise_conv(g, src, weights_, mine, dst, r.first, r.second, 0, g.cout);
      } else {
        const auto r = split_range(g.cout, threads, t, 16);
        if (r.first < r.second) kernels::pointwise_conv(g, src, weights_, mine, dst, 0, g.pixels, r.first, r.second);
      }
    });
  }

 private:
  kernels::PackedPointwiseWeights weights_;
  std::vector<float> bias_;
};

}  // namespace sknet
