// sknet prepared engine: one 3x3 convolution (padding 1, any stride and groups, Cin -> Cout) with BN
// folded in, on the SK branch kernel with a single path: ResNeXt's grouped middle, and the second
// 3x3 of a basic block with its shortcut and ReLU in the epilogue. Built with Precision::bf16 it runs
// the bf16 SK branch kernel (kernels/sk_branches_bf16.hpp) where that supports the groups (float or bf16
// input, residual and output; bf16 products, float sums), built with Precision::int8 the int8 one
// (kernels/sk_branches_int8.hpp: the input, a ReLU's output, quantized at its calibrated maximum, or
// u8 codes; float residual and output), the float kernel elsewhere.
#pragma once

#include <array>
#include <numeric>
#include <type_traits>
#include <vector>

#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/sk_branches_bf16.hpp"
#include "sknet/kernels/sk_branches_int8.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/runtime/thread_pool.hpp"

namespace sknet {

class PreparedConv3x3 {
 public:
  using dim_t = kernels::dim_t;
  PreparedConv3x3() = default;
  /// Folds and packs `conv` (3x3, padding 1, no dilation, square stride); ConfigError otherwise. int8
  /// quantizes the input (non-negative: a ReLU's output) over [0, int8_input_max].
  PreparedConv3x3(const ConvBnAct<float>& conv, kernels::Isa isa, kernels::Precision precision = kernels::Precision::f32,
                  float int8_input_max = 0.0f)
      : isa_(isa) {
    const auto& o = conv.conv().options();
    detail::require<ConfigError>(o.kernel_size() == std::array<Index, 2>{3, 3} && o.padding() == std::array<Index, 2>{1, 1} &&
                                     o.dilation() == std::array<Index, 2>{1, 1} && o.stride()[0] == o.stride()[1],
                                 "prepare", "3x3 convolution " + conv.label(), "square 3x3, padding 1, no dilation",
                                 "another shape");
    cin_ = o.in_channels(), cout_ = o.out_channels(), groups_ = o.groups(), stride_ = o.stride()[0];
    relu_ = conv.relu();
    std::vector<float> w, b;
    fold_conv_bn(conv.conv(), conv.bn(), w, b);
    const float* wp = w.data();
    const float* bp = b.data();
    const kernels::SKBranchGeometry g = geometry(1, 1, 1);
    if (precision == kernels::Precision::int8 && kernels::sk_branches_int8_unsupported(g).empty())
      weights_int8_ = kernels::PackedBranchWeightsInt8(
          g, &wp, &bp, kernels::U8Quantization::for_range(0.0f, int8_input_max).scale, isa);
    else if (precision == kernels::Precision::bf16 && kernels::sk_branches_bf16_unsupported(g).empty())
      weights_bf16_ = kernels::PackedBranchWeightsBf16(g, &wp, &bp, isa);
    else
      weights_ = kernels::PackedBranchWeights(g, &wp, &bp, isa);
  }

  dim_t in_channels() const { return cin_; }
  kernels::Isa isa() const { return isa_; }
  /// bf16 when it runs the bf16 kernel (and then also reads bf16 inputs), int8 when it runs the int8
  /// kernel, else f32.
  kernels::Precision precision() const {
    if (!weights_int8_.empty()) return kernels::Precision::int8;
    return weights_bf16_.empty() ? kernels::Precision::f32 : kernels::Precision::bf16;
  }
  dim_t out_channels() const { return cout_; }
  /// int8: the step of the input codes (zero point 0); 1 otherwise.
  float int8_input_scale() const { return weights_int8_.empty() ? 1.0f : weights_int8_.input_scale(); }
  dim_t stride() const { return stride_; }
  bool relu() const { return relu_; }
  /// Whether run() may be given x as its dst (no residual, float input) with `threads` threads: the float
  /// kernel where kernels::sk_branches_may_run_in_place (stride 1, as many input as output channels,
  /// groups of a width that divides 8 or is a multiple of 16) and at least one whole step of groups per
  /// thread (run() then splits the channels at group boundaries).
  bool runs_in_place(int threads) const {
    return precision() == kernels::Precision::f32 && kernels::sk_branches_may_run_in_place(geometry(1, 1, 1)) &&
           cout_ / in_place_step() >= threads;
  }
  dim_t out_extent(dim_t in) const { return (in - 1) / stride_ + 1; }

  /// dst [n, oh, ow, cout] = act(conv(x) + bias + residual) with x [n, h, w, cin]; act is the layer's
  /// ReLU, or ReLU when `force_relu` (a basic block's ReLU after its shortcut). residual: dst's layout
  /// or null (may be dst itself). channel_sums [n][cout] (zeroed by the caller, as the kernel's) += the
  /// sums of the outputs, or null.
  /// Output channels are split over the pool. dst may be x itself where runs_in_place(pool.size()).
  /// When precision() is bf16, x and the residual may hold
  /// bf16 values (Src, Res = kernels::bf16_t; a bf16 residual may be dst itself with bf16_out) and, with
  /// bf16_out, dst receives bf16 values. In int8 x may hold u8 codes at int8_input_scale()
  /// (Src = kernels::u8_t), and a NaN or infinite float input has no code and reads as 0 (callers mark
  /// what it feeds).
  template <class Src, class Res = float>
  void run(ThreadPool& pool, dim_t n, dim_t h, dim_t w, const Src* x, float* dst, const Res* residual = nullptr,
           bool force_relu = false, float* channel_sums = nullptr, bool bf16_out = false) const {
    constexpr bool kBf16Input = std::is_same_v<Src, kernels::bf16_t>, kCodes = std::is_same_v<Src, kernels::u8_t>;
    constexpr bool kBf16Residual = std::is_same_v<Res, kernels::bf16_t>;
    if ((kBf16Input || kBf16Residual || bf16_out) && weights_bf16_.empty())
      detail::fail<ConfigError>("PreparedConv3x3", "input, residual and output precision", "f32 (a float convolution)",
                                "bf16");
    if (kCodes && weights_int8_.empty())
      detail::fail<ConfigError>("PreparedConv3x3", "input precision", "f32 (a float convolution)", "u8 codes");
    const kernels::SKBranchGeometry g = geometry(n, h, w);
    kernels::SKBranchEpilogue ep;
    ep.relu = relu_ || force_relu;
    ep.residual = reinterpret_cast<const float*>(residual);
    ep.bf16_residual = kBf16Residual;
    ep.bf16_out = bf16_out;
    float* const out[1] = {dst};
    const int threads = pool.size();
    const bool in_place = static_cast<const void*>(x) == static_cast<const void*>(dst);
    const dim_t step = in_place ? in_place_step() : kernels::kSKBranchChannelStep;
    pool.run([&](int t) {
      const auto r = split_range(cout_, threads, t, step);
      if (r.first >= r.second) return;
      if (!weights_int8_.empty()) {
        if constexpr (!kBf16Input && !kBf16Residual)
          kernels::sk_branches_conv3x3_int8(g, x, weights_int8_, out, channel_sums, r.first, r.second, 0, g.oh(), ep);
      } else if (!weights_bf16_.empty()) {
        if constexpr (!kCodes)
          kernels::sk_branches_conv3x3_bf16(g, x, weights_bf16_, out, channel_sums, r.first, r.second, 0, g.oh(), ep);
      } else if constexpr (!kBf16Input && !kBf16Residual && !kCodes)
        kernels::sk_branches_conv3x3(g, x, weights_, out, channel_sums, r.first, r.second, 0, g.oh(), ep);
    });
  }

 private:
  /// In place, each thread's channels start on a group boundary and on a kernel channel step.
  dim_t in_place_step() const { return std::lcm(kernels::kSKBranchChannelStep, cout_ / groups_); }
  kernels::SKBranchGeometry geometry(dim_t n, dim_t h, dim_t w) const {
    kernels::SKBranchGeometry g;
    g.n = n, g.h = h, g.w = w, g.c = cout_, g.groups = groups_, g.paths = 1, g.stride = stride_, g.pad = 0;
    g.cin = cin_;
    return g;
  }
  dim_t cin_ = 0, cout_ = 0, groups_ = 1, stride_ = 1;
  bool relu_ = true;
  kernels::Isa isa_ = kernels::Isa::portable;
  kernels::PackedBranchWeights weights_;
  kernels::PackedBranchWeightsBf16 weights_bf16_;  // instead of weights_ in bf16
  kernels::PackedBranchWeightsInt8 weights_int8_;  // instead of weights_ in int8
};

}  // namespace sknet
