// sknet prepared engine: a 1x1 convolution (or any GEMM against packed weights) ready to run: packed
// weights, bias (BN folded in), and how it splits over a thread pool.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sknet/kernels/pointwise.hpp"
#include "sknet/kernels/pointwise_bf16.hpp"
#include "sknet/kernels/pointwise_int8.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

/// Whether a [pixels x cout] GEMM splits over `threads` by rows (many rows) or else by output channels.
inline bool split_gemm_by_pixels(kernels::dim_t pixels, kernels::dim_t cout, int threads) {
  return pixels >= 96 * threads || cout < 32 * threads;
}

/// Runs a [pixels x cout] GEMM over the pool: fn(thread, p0, p1, c0, c1) for each thread's share, rows
/// when there are many, else output channels (multiples of 16). Empty shares are skipped.
template <class Fn>
void split_gemm(ThreadPool& pool, kernels::dim_t pixels, kernels::dim_t cout, Fn&& fn) {
  const int threads = pool.size();
  const bool by_pixels = split_gemm_by_pixels(pixels, cout, threads);
  pool.run([&](int t) {
    if (by_pixels) {
      const auto r = split_range(pixels, threads, t);
      if (r.first < r.second) fn(t, r.first, r.second, kernels::dim_t(0), cout);
    } else {
      const auto r = split_range(cout, threads, t, 16);
      if (r.first < r.second) fn(t, kernels::dim_t(0), pixels, r.first, r.second);
    }
  });
}

/// What a prepared 1x1 convolution needs of its arithmetic: the packed weights, the activation type,
/// the epilogue and the kernel call. Float32 and bf16 (weights folded with BN in float32, then rounded
/// to bf16 and packed for vdpbf16ps; bf16 activations in, bf16 or float out).
struct PointwiseF32 {
  using Weights = kernels::PackedPointwiseWeights;
  using Act = float;
  using Epilogue = kernels::PointwiseEpilogue;
  static void conv(const kernels::PointwiseGeometry& g, const Act* src, const Weights& w, const Epilogue& ep, Act* dst,
                   kernels::dim_t p0, kernels::dim_t p1, kernels::dim_t c0, kernels::dim_t c1) {
    kernels::pointwise_conv(g, src, w, ep, dst, p0, p1, c0, c1);
  }
};
struct PointwiseBf16 {
  using Weights = kernels::PackedPointwiseBf16Weights;
  using Act = kernels::bf16_t;
  using Epilogue = kernels::PointwiseBf16Epilogue;
  static void conv(const kernels::PointwiseGeometry& g, const Act* src, const Weights& w, const Epilogue& ep, Act* dst,
                   kernels::dim_t p0, kernels::dim_t p1, kernels::dim_t c0, kernels::dim_t c1) {
    kernels::pointwise_conv_bf16(g, src, w, ep, dst, p0, p1, c0, c1);
  }
};

/// A 1x1 convolution in the arithmetic `P` (PointwiseF32 or PointwiseBf16): packed weights, the bias
/// (BN folded in, float32), and how it splits over a thread pool.
template <class P>
class BasicPreparedPointwise {
 public:
  using dim_t = kernels::dim_t;
  using Act = typename P::Act;
  BasicPreparedPointwise() = default;
  /// weight [cout][cin] and bias [cout] (already folded), packed for `isa`.
  BasicPreparedPointwise(const float* weight, const float* bias, dim_t cout, dim_t cin, kernels::Isa isa)
      : weights_(weight, cout, cin, isa), bias_(bias, bias + cout) {}
  /// A 1x1 conv + BN (stride is the caller's business: it gathers the strided rows).
  static BasicPreparedPointwise from(const ConvBnAct<float>& layer, kernels::Isa isa) {
    std::vector<float> w, b;
    fold_conv_bn(layer.conv(), layer.bn(), w, b);
    const auto& o = layer.conv().options();
    return BasicPreparedPointwise(w.data(), b.data(), o.out_channels(), o.in_channels(), isa);
  }

  dim_t cin() const { return weights_.cin(); }
  dim_t cout() const { return weights_.cout(); }
  const typename P::Weights& weights() const { return weights_; }
  const float* bias() const { return bias_.data(); }

  /// Whether `pixels` rows split over `threads` by rows (many rows) or else by output channels.
  bool split_by_pixels(dim_t pixels, int threads) const { return split_gemm_by_pixels(pixels, cout(), threads); }

  /// dst[pixels x cout] = epilogue(src[pixels x cin] * W^T + bias) over the pool (rows when there
  /// are many, else output channels). `ep.bias` is set here; when ep.channel_sums is set,
  /// per_thread_sums [threads][cout] receives each thread's sums (the caller adds them up).
  /// src_stride: elements between src's rows (0: cin; more when src is a slice of wider rows).
  void run(ThreadPool& pool, dim_t pixels, const Act* src, typename P::Epilogue ep, Act* dst,
           float* per_thread_sums = nullptr, dim_t src_stride = 0) const {
    const kernels::PointwiseGeometry g{pixels, cin(), cout(), src_stride > 0 ? src_stride : cin(), cout()};
    ep.bias = bias_.data();
    split_gemm(pool, pixels, g.cout, [&](int t, dim_t p0, dim_t p1, dim_t c0, dim_t c1) {
      typename P::Epilogue mine = ep;
      if (ep.channel_sums) mine.channel_sums = per_thread_sums + std::size_t(t) * std::size_t(g.cout);
      P::conv(g, src, weights_, mine, dst, p0, p1, c0, c1);
    });
  }

 private:
  typename P::Weights weights_;
  std::vector<float> bias_;
};

using PreparedPointwise = BasicPreparedPointwise<PointwiseF32>;
using PreparedPointwiseBf16 = BasicPreparedPointwise<PointwiseBf16>;

/// The int8 form of a 1x1 convolution on float activations: weights folded with BN in float32, then
/// quantized per output channel (symmetric s8, PackedPointwiseInt8Weights); the input is quantized per
/// tensor to u8 codes (U8Quantization of its calibrated range) just before the GEMM; exact int32 sums and
/// a float epilogue (the scales, the bias with the zero-point compensation, + float residual, ReLU,
/// channel sums); float outputs. An input row holding a NaN or an infinity (no code holds it) gives a
/// row of NaN outputs (and NaN channel sums), as NaN in gives NaN out.
class PreparedPointwiseInt8 {
 public:
  using dim_t = kernels::dim_t;
  /// What run() does after the GEMM: + float residual [pixels x cout] (row stride residual_stride,
  /// may be dst), ReLU, channel sums (per thread into run()'s per_thread_sums).
  struct Epilogue {
    const float* residual = nullptr;
    dim_t residual_stride = 0;
    bool relu = false;
    bool channel_sums = false;
  };

  PreparedPointwiseInt8() = default;
  /// weight [cout][cin] and bias [cout] (already folded), for inputs in [input_lo, input_hi].
  PreparedPointwiseInt8(const float* weight, const float* bias, dim_t cout, dim_t cin, kernels::Isa isa,
                        float input_lo, float input_hi)
      : weights_(weight, cout, cin, isa), input_(kernels::U8Quantization::for_range(input_lo, input_hi)),
        scale_(std::size_t(cout)), bias_(std::size_t(cout)) {
    for (dim_t co = 0; co < cout; ++co) {
      const float s = input_.scale * weights_.weight_scales()[std::size_t(co)];
      scale_[std::size_t(co)] = s;
      bias_[std::size_t(co)] = bias[co] - float(input_.zero_point) * s * float(weights_.weight_sums()[std::size_t(co)]);
    }
  }
  static PreparedPointwiseInt8 from(const ConvBnAct<float>& layer, kernels::Isa isa, float input_lo, float input_hi) {
    std::vector<float> w, b;
    fold_conv_bn(layer.conv(), layer.bn(), w, b);
    const auto& o = layer.conv().options();
    return PreparedPointwiseInt8(w.data(), b.data(), o.out_channels(), o.in_channels(), isa, input_lo, input_hi);
  }

  dim_t cin() const { return weights_.cin(); }
  dim_t cout() const { return weights_.cout(); }
  const kernels::PackedPointwiseInt8Weights& weights() const { return weights_; }
  const kernels::U8Quantization& input_quantization() const { return input_; }
  /// The epilogue's bias: the folded bias minus the zero-point compensation.
  const float* bias() const { return bias_.data(); }
  /// Bytes of scratch run() needs for `pixels` rows: their codes and a flag per row.
  std::size_t scratch_bytes(dim_t pixels) const { return std::size_t(pixels) * std::size_t(cin() + 1); }

  /// Whether any of rows [p0, p1) of the last run() over `pixels` rows with this scratch held a NaN or
  /// an infinity (and so gave NaN outputs).
  bool any_row_flagged(const kernels::u8_t* scratch, dim_t pixels, dim_t p0, dim_t p1) const {
    const kernels::u8_t* bad = scratch + std::size_t(pixels) * std::size_t(cin());
    return std::any_of(bad + p0, bad + p1, [](kernels::u8_t b) { return b != 0; });
  }

  /// dst[pixels x cout] = epilogue(quantized src[pixels x cin] * W^T + bias) over the pool: the rows are
  /// quantized into `scratch` (scratch_bytes(pixels)) by rows, then the GEMM splits as
  /// PreparedPointwise::run. src_stride: floats between src's rows (0: cin). With ep.channel_sums,
  /// per_thread_sums [threads][cout] receives each thread's sums (zeroed here).
  void run(ThreadPool& pool, dim_t pixels, const float* src, const Epilogue& ep, float* dst, kernels::u8_t* scratch,
           float* per_thread_sums = nullptr, dim_t src_stride = 0) const {
    run_to(pool, pixels, src, ep, Output{dst}, scratch, per_thread_sums, src_stride);
  }
  /// run() writing u8 codes of the outputs at out_scale, zero point 0 (outputs a ReLU made
  /// non-negative; what the next int8 layer reads): no channel sums, and a row whose input held a NaN
  /// or an infinity gets codes of finite values, so callers check any_row_flagged() and mark what it
  /// feeds.
  void run_codes(ThreadPool& pool, dim_t pixels, const float* src, const Epilogue& ep, kernels::u8_t* dst, float out_scale,
                 kernels::u8_t* scratch) const {
    Output out;
    out.codes = dst, out.inv_scale = 1.0f / out_scale;
    Epilogue e = ep;
    e.channel_sums = false;
    run_to(pool, pixels, src, e, out, scratch, nullptr, 0);
  }

  /// The same on one thread for `rows` rows and output channels [c0, c1) (c0 a multiple of 16, c1 one
  /// or cout): ep.residual and dst point at the first row; with ep.channel_sums, `sums` [cout] (not
  /// zeroed) receives the sums. scratch: scratch_bytes(rows).
  void run_rows(dim_t rows, const float* src, dim_t src_stride, const Epilogue& ep, float* dst, dim_t c0, dim_t c1,
                kernels::u8_t* scratch, float* sums = nullptr) const {
    kernels::u8_t* codes = scratch;
    kernels::u8_t* bad = scratch + std::size_t(rows) * std::size_t(cin());
    quantize_rows(src, rows, src_stride > 0 ? src_stride : cin(), codes, bad);
    gemm(codes, bad, rows, ep, Output{dst}, 0, rows, c0, c1, ep.channel_sums ? sums : nullptr);
  }

 private:
  /// Where the GEMM's outputs go: floats, or u8 codes at 1 / inv_scale (zero point 0).
  struct Output {
    float* floats = nullptr;
    kernels::u8_t* codes = nullptr;
    float inv_scale = 1.0f;
  };
  void run_to(ThreadPool& pool, dim_t pixels, const float* src, const Epilogue& ep, const Output& out,
              kernels::u8_t* scratch, float* per_thread_sums, dim_t src_stride) const {
    const dim_t cin = this->cin(), cout = this->cout(), stride = src_stride > 0 ? src_stride : cin;
    const int threads = pool.size();
    kernels::u8_t* codes = scratch;
    kernels::u8_t* bad = scratch + std::size_t(pixels) * std::size_t(cin);
    pool.run([&](int t) {
      const auto rows = split_range(pixels, threads, t);
      quantize_rows(src + rows.first * stride, rows.second - rows.first, stride, codes + rows.first * cin,
                    bad + rows.first);
    });
    if (ep.channel_sums) std::fill_n(per_thread_sums, std::size_t(threads) * std::size_t(cout), 0.0f);
    split_gemm(pool, pixels, cout, [&](int t, dim_t p0, dim_t p1, dim_t c0, dim_t c1) {
      float* sums = ep.channel_sums ? per_thread_sums + std::size_t(t) * std::size_t(cout) : nullptr;
      gemm(codes, bad, pixels, ep, out, p0, p1, c0, c1, sums);
    });
  }
  /// rows rows of src as codes [rows][cin]; bad[r] = 1 where row r holds a NaN or an infinity.
  void quantize_rows(const float* src, dim_t rows, dim_t stride, kernels::u8_t* codes, kernels::u8_t* bad) const {
    const kernels::U8QuantizeFn quantize = kernels::u8_quantize_kernel(weights_.isa());
    const float inv = 1.0f / input_.scale;
    for (dim_t r = 0; r < rows; ++r)
      bad[r] = quantize(src + r * stride, codes + r * cin(), cin(), inv, input_.zero_point) ? 0 : 1;
  }
  /// The GEMM of rows [p0, p1) x channels [c0, c1) of `pixels` coded rows, then NaN rows (float outputs).
  void gemm(const kernels::u8_t* codes, const kernels::u8_t* bad, dim_t pixels, const Epilogue& ep, const Output& out,
            dim_t p0, dim_t p1, dim_t c0, dim_t c1, float* sums) const {
    const dim_t cout = this->cout();
    const kernels::PointwiseGeometry g{pixels, cin(), cout, cin(), cout};
    kernels::PointwiseInt8Epilogue k;
    k.scale = scale_.data();
    k.bias = bias_.data();
    k.float_residual = ep.residual;
    k.residual_stride = ep.residual_stride;
    k.relu = ep.relu;
    k.channel_sums = sums;
    k.float_dst = out.floats;
    k.out_inv_scale = out.inv_scale;
    kernels::pointwise_conv_int8(g, codes, weights_, k, out.codes, p0, p1, c0, c1);
    float* dst = out.floats;
    if (!dst) return;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (dim_t p = p0; p < p1; ++p)
      if (bad[p]) {
        std::fill(dst + p * cout + c0, dst + p * cout + c1, nan);
        if (sums) std::fill(sums + c0, sums + c1, nan);
      }
  }

  kernels::PackedPointwiseInt8Weights weights_;
  kernels::U8Quantization input_;
  std::vector<float> scale_, bias_;  ///< the epilogue's: input scale x weight scale; bias - compensation
};

}  // namespace sknet
