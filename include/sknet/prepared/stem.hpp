// sknet prepared engine: the stem, one or more k x k convs (BN, ReLU) each as an im2col GEMM row by
// row (the ImageNet stem's 7x7, or the deep stem's three 3x3), with the 3x3 stride-2 max pool
// (padding 1) fused into the last conv through a ring of its last rows, so the full-resolution stem
// output never leaves the cache. A deep stem's first two convs write whole maps (Slot::mid, then
// Slot::branches, free before the first block runs). In an int8 network each conv runs the int8 GEMM
// on its patches, quantized per tensor at the calibrated range of its input ("stem.<i>.input", which a
// float stem records when calibrating); a patch row holding a NaN or an infinity gives NaN outputs.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "sknet/kernels/max_pool.hpp"
#include "sknet/models/resnet_stem.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/pooling.hpp"
#include "sknet/prepared/activation_ranges.hpp"
#include "sknet/prepared/im2col_conv.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"

namespace sknet {

/// One k x k convolution (+ folded BN, ReLU) of a stem as an im2col GEMM, row by row.
class StemConvolution {
 public:
  using dim_t = kernels::dim_t;
  StemConvolution() = default;
  /// `stem` (conv + BN + ReLU) followed by `pool` when given (only the 3x3 stride-2 padding-1 max
  /// pool is fused; anything else throws ConfigError); `name` names its input's range ("stem.<i>.input");
  /// with int8_input (the calibrated range of that input) the conv runs in int8.
  StemConvolution(const ConvBnAct<float>& stem, const std::optional<MaxPool2dOptions>& pool, kernels::Isa isa,
                  std::string name, const ActivationRanges::Range* int8_input = nullptr)
      : name_(std::move(name)) {
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
    max_pool_row_ = kernels::max_pool_row_kernel(isa);
    conv_ = PreparedIm2colConv::from(stem, isa, int8_input);  // packed [cout][ky][kx][ic]
  }
  /// The name of its input's calibrated range.
  const std::string& range_name() const { return name_; }

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
    needs.need(Slot::im2col, std::size_t(threads) * std::size_t(rows_per_call() * ow * conv_.taps()));
    if (const PreparedPointwiseInt8* q = conv_.gemm_int8())
      needs.need(Slot::quantized, std::size_t(threads) * scratch_floats(*q, rows_per_call() * ow));
    if (max_pool_) needs.need(Slot::stem_ring, std::size_t(threads) * std::size_t(kRingRows * ow * cout_));
    const FeatureShape out = out_shape(in);
    needs.need(Slot::activation_a, std::size_t(out.n * out.h * out.w * out.c));
  }

  /// input NHWC [n, ih, iw, cin] -> dst [n, oh, ow, cout] (pooled when the conv has the max pool);
  /// with a recorder, records the input's finite range (calibration).
  FeatureShape run(ThreadPool& pool, const Workspace& ws, const float* input, const FeatureShape& in, float* dst,
                   RangeRecorder* recorder = nullptr) const {
    const dim_t n = in.n, ih = in.h, iw = in.w, c = cout_;
    const std::pair<dim_t, dim_t> extent = conv_extent(ih, iw);  // no structured binding: lambdas capture these
    const dim_t oh = extent.first, ow = extent.second;            // (clang rejects captured bindings in C++17)
    const std::size_t row_floats = std::size_t(ow * c);
    const std::size_t patch_floats = std::size_t(rows_per_call() * ow * conv_.taps());
    const int threads = pool.size();
    detail::record_finite_range(recorder, name_, pool, input, std::size_t(n * ih * iw * cin_));
    const PreparedPointwiseInt8* q = conv_.gemm_int8();
    const auto codes_of = [&](int t) {
      return q ? reinterpret_cast<kernels::u8_t*>(ws.get(Slot::quantized) +
                                                  std::size_t(t) * scratch_floats(*q, rows_per_call() * ow))
               : nullptr;
    };
    if (!max_pool_) {
      pool.run([&](int t) {
        float* patch = ws.get(Slot::im2col) + std::size_t(t) * patch_floats;
        const auto rows = split_range(n * oh, threads, t);
        for (dim_t r = rows.first; r < rows.second; ++r)
          conv_rows(input, r / oh, r % oh, 1, ih, iw, ow, patch, codes_of(t), dst + r * ow * c);
      });
      return {n, oh, ow, c};
    }
    // Pool row py reads stem rows 2py-1..2py+1: the rows it shares with the pool row before stay where
    // they were computed, the new ones (two, or three at a thread's first row) come from one GEMM call
    // into the other half of the ring (a call of 112 rows ran 10% slower than one of 224). The pool
    // kernel of the ISA (vectorised; NaN propagates) keeps their column maxima in the last ring row.
    const dim_t ph = out_extent(oh, 3, 2, 1, 1), pw = out_extent(ow, 3, 2, 1, 1);
    pool.run([&](int t) {
      float* patch = ws.get(Slot::im2col) + std::size_t(t) * patch_floats;
      kernels::u8_t* codes = codes_of(t);
      float* ring = ws.get(Slot::stem_ring) + std::size_t(t) * std::size_t(kRingRows) * row_floats;
      float* vmax = ring + 2 * kHalfRows * row_floats;
      const auto rows = split_range(n * ph, threads, t);
      dim_t have_img = -1, have_row = -1;  // the last stem row computed, at `last`
      const float* last = nullptr;
      int half = 0;  // the half of the ring the next rows go to
      for (dim_t r = rows.first; r < rows.second; ++r) {
        const dim_t img = r / ph, py = r % ph;
        const dim_t y0 = std::max<dim_t>(0, 2 * py - 1), y1 = std::min<dim_t>(oh - 1, 2 * py + 1);
        const bool carried = img == have_img && have_row == y0;  // the previous pool row's last stem row
        const dim_t first_new = carried ? have_row + 1 : y0;
        float* fresh = ring + std::size_t(kHalfRows * half) * row_floats;
        const bool any_new = first_new <= y1;
        if (any_new)
          conv_rows(input, img, first_new, y1 - first_new + 1, ih, iw, ow, patch, codes, fresh);
        const auto row_of = [&](dim_t y) -> const float* {
          return y < first_new ? last : fresh + std::size_t(y - first_new) * row_floats;
        };
        const float* window[3];
        int count = 0;
        for (dim_t y = y0; y <= y1; ++y) window[count++] = row_of(y);
        max_pool_row_(window, count, ow, c, vmax, dst + r * pw * c);
        last = row_of(y1);
        have_img = img, have_row = y1;
        if (any_new) half ^= 1;
      }
    });
    return {n, ph, pw, c};
  }

 private:
  /// Rows of the ring per thread: two halves of the most stem rows one call computes (three: a
  /// thread's first pool row), then their maximum.
  static constexpr dim_t kHalfRows = 3, kRingRows = 2 * kHalfRows + 1;
  /// Stem rows one conv_rows() call computes at most (its patch and int8 scratch are sized for them).
  dim_t rows_per_call() const { return max_pool_ ? kHalfRows : 1; }

  /// Floats of Slot::quantized one thread's int8 GEMM of `ow` patch rows needs.
  static std::size_t scratch_floats(const PreparedPointwiseInt8& q, dim_t ow) {
    return detail::floats_for_bytes(q.scratch_bytes(ow));
  }
  /// Stem output rows [oy, oy + count) of image img (conv + folded BN + ReLU) into out[count * ow][cout]
  /// in one GEMM call; patch: count * ow patch rows; codes: the int8 GEMM's scratch (int8 only).
  void conv_rows(const float* input, dim_t img, dim_t oy, dim_t count, dim_t ih, dim_t iw, dim_t ow, float* patch,
                 kernels::u8_t* codes, float* out) const {
    for (dim_t i = 0; i < count; ++i)
      im2col_row(input, img, oy + i, ih, iw, cin_, 0, cin_, kernel_, stride_, pad_, 1, ow, patch + i * ow * conv_.taps());
    const dim_t pixels = count * ow;
    if (const PreparedPointwiseInt8* q = conv_.gemm_int8()) {
      PreparedPointwiseInt8::Epilogue ep;
      ep.relu = true;
      q->run_rows(pixels, patch, 0, ep, out, 0, cout_, codes);
      return;
    }
    const PreparedPointwise& gemm = *conv_.gemm();
    const kernels::PointwiseGeometry g{pixels, gemm.cin(), cout_, gemm.cin(), cout_};
    kernels::PointwiseEpilogue ep;
    ep.bias = gemm.bias();
    ep.relu = true;
    kernels::pointwise_conv(g, patch, gemm.weights(), ep, out, 0, pixels, 0, cout_);
  }

  std::string name_;
  PreparedIm2colConv conv_;  // [cout][k * k * cin], float or int8
  dim_t kernel_ = 0, stride_ = 1, pad_ = 0, cin_ = 0, cout_ = 0;
  bool max_pool_ = false;
  kernels::MaxPoolRowFn max_pool_row_ = nullptr;
};

/// The prepared stem of a network: its convolutions in order, the max pool fused into the last.
class PreparedStem {
 public:
  using dim_t = kernels::dim_t;
  PreparedStem() = default;
  /// int8_ranges: the calibrated ranges of an int8 network ("stem.<i>.input" for conv i), or null (float).
  PreparedStem(const ResNetStem<float>& stem, kernels::Isa isa, const ActivationRanges* int8_ranges = nullptr) {
    const std::optional<MaxPool2dOptions> pool =
        stem.pool() ? std::optional<MaxPool2dOptions>(stem.pool()->options()) : std::nullopt;
    for (std::size_t i = 0; i < stem.num_convs(); ++i) {
      const std::string name = "stem." + std::to_string(i) + ".input";
      convs_.emplace_back(stem.conv(i), i + 1 == stem.num_convs() ? pool : std::nullopt, isa, name,
                          int8_ranges ? &int8_ranges->at(name, "prepare") : nullptr);
    }
  }

  dim_t in_channels() const { return convs_.front().in_channels(); }
  FeatureShape out_shape(FeatureShape s) const {
    for (const auto& c : convs_) s = c.out_shape(s);
    return s;
  }
  void add_needs(FeatureShape in, int threads, WorkspaceNeeds& needs) const {
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      convs_[i].add_needs(in, threads, needs);
      in = convs_[i].out_shape(in);
      if (i + 1 < convs_.size()) needs.need(intermediate(i), std::size_t(in.n * in.h * in.w * in.c));
    }
  }
  /// input NHWC [n, ih, iw, cin] -> dst, the stem's output; with a recorder, records each conv's input
  /// range (calibration).
  FeatureShape run(ThreadPool& pool, const Workspace& ws, const float* input, FeatureShape in, float* dst,
                   RangeRecorder* recorder = nullptr) const {
    for (std::size_t i = 0; i < convs_.size(); ++i) {
      float* out = i + 1 < convs_.size() ? ws.get(intermediate(i)) : dst;
      in = convs_[i].run(pool, ws, input, in, out, recorder);
      input = out;
    }
    return in;
  }

 private:
  static Slot intermediate(std::size_t i) { return i % 2 == 0 ? Slot::mid : Slot::branches; }
  std::vector<StemConvolution> convs_;
};

}  // namespace sknet
