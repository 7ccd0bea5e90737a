// sknet kernels: the Split step of an SK convolution (kernels/grouped_conv.hpp) in int8: u8 inputs, s8
// weights, exact int32 sums, float outputs U_m.
//
//   U_m[n, oy, ox, co] = act( sum_{ky,kx,j} q(X[...in_m + g(co)*gwi + j]) * Q_m[co, j, ky, kx] * scale_m[co]
//                             + bias_m[co] + residual[n, oy, ox, co] )
//   channel_sums[n, co] += sum_{oy,ox} sum_m U_m[n, oy, ox, co]
//
// The input is the output of a ReLU (an SK unit's conv1), so it is quantized per tensor with zero
// point 0: q(x) = clamp(round(x / s_in), 0, 255) (ties to even; NaN and negative values -> 0; see
// kernels/int8.hpp: quantize_u8 with zero point 0 gives the same codes), which keeps the zero border
// exact and needs no zero-point compensation. The weights (BN folded in float32) are quantized per
// branch and output channel, symmetric: Q = round(W / s_w) in [-127, 127], s_w = max |W| / 127;
// scale_m[co] = s_in * s_w. Each output's sum is exact in int32 (at most 7 x 7 x 1024 products of
// at most 255 x 127), then converted to float and scaled with one fused multiply-add.
//
// The same geometry (SKBranchGeometry), epilogue (SKBranchEpilogue: residual, ReLU, channel sums of
// the float outputs; no bf16 outputs) and driver (kernels/sk_branches_body.inc) as the float and bf16
// kernels; a 32-bit lane holds a quad of 4 consecutive input channels (the input is quantized as its
// rows are copied into the driver's ring), and one step is one quad dot product per weight vector
// (vpdpbusd: 4 multiply-adds per lane, 4x a float FMA). How a step forms its input vector:
//   gwi == gwo in {4, 8}     cross:     the block's own 16 channels (4 quads, 16 bytes) permuted across
//                                       lanes (vpermd), lane l reading quad j of its group, gw / 4 steps;
//   otherwise (16, 32, gwi != gwo, dense)
//                            broadcast: one quad of the input span the block's groups read, to every
//                                       lane, span / 4 steps; blocks sharing a span (gw 32) run
//                                       2-block tiles.
// Input channels per group must be a multiple of 4 (a quad never straddles two groups): other widths
// are refused with a KernelError (sk_branches_int8_unsupported says why; callers keep the float kernel).
//
// Kernels (listed in kernels/kernel_list.hpp, chosen at run time like the int8 pointwise kernels):
//   avx512_vnni  vpdpbusd, 14-pixel tiles (2 rows x 7 on 7-wide maps, 2 blocks x 7 for gw 32),
//                specialised for 3x3 kernels with stride 1, 2 and dilation 1, 2;
//   avx512       each quad dot as two exact 16-bit multiply-add pairs (CPUs without AVX512_VNNI);
//   portable     16-lane struct vectors.
// The sums are exact and the epilogue is the same fused multiply-add, so the three give the same bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/int8.hpp"

namespace sknet {
namespace kernels {

/// Output channels per block of the int8 SK branch kernels (every ISA: one packed layout).
inline constexpr dim_t kSKBranchInt8Lanes = 16;

/// Why the int8 SK branch kernels cannot run geometry g (an empty string when they can).
inline std::string sk_branches_int8_unsupported(const SKBranchGeometry& g) {
  if (g.in_group_width() % 4 != 0)
    return "input channels per group must be a multiple of 4 (a 32-bit lane holds a quad of one group's channels), "
           "not " +
           std::to_string(g.in_group_width());
  return {};
}

namespace detail {
/// The kind of an int8 tile for input and output group widths gwi (a multiple of 4), gwo.
inline SKKind sk_kind_int8(dim_t gwi, dim_t gwo) {
  if (gwi == gwo && gwo < kSKBranchInt8Lanes && kSKBranchInt8Lanes % gwo == 0) return SKKind::kCross;
  return SKKind::kBroadcast;
}
}  // namespace detail

/// The input of an int8 SK branch kernel, NHWC as SKBranchGeometry lays it out: float rows (quantized as
/// the kernel copies them) or u8 rows holding the codes already (at the packed weights' input scale,
/// zero point 0: e.g. an int8 conv1's output; the same results as float rows that quantize to them).
struct SKBranchInt8Source {
  const float* f32 = nullptr;
  const u8_t* u8 = nullptr;
  SKBranchInt8Source(const float* rows) : f32(rows) {}  // NOLINT: implicit on purpose
  SKBranchInt8Source(const u8_t* rows) : u8(rows) {}    // NOLINT
};

class PackedBranchWeightsInt8;
/// The kernel signature every int8 SK branch kernel shares (see sk_branches_conv3x3_int8).
using SKBranchInt8KernelFn = void (*)(const SKBranchGeometry& g, SKBranchInt8Source src, const PackedBranchWeightsInt8& w,
                                      float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                      dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue);

inline namespace SKNET_KERNEL_ABI {
/// The int8 SK branch kernel for weights packed for `isa`: vpdpbusd when isa is avx512 and the CPU has
/// AVX512_VNNI, else the avx512 kernel with 16-bit multiply-adds, else the portable one.
SKNET_KERNEL_ENTRY SKBranchInt8KernelFn sk_branches_int8_kernel(Isa isa) noexcept;
/// The name of that kernel, for `sknet info` and the benchmarks.
SKNET_KERNEL_ENTRY const char* sk_branches_int8_kernel_name(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// The branch weights of one SK Split step quantized to s8 per branch and output channel (symmetric),
/// quad-interleaved, with float biases and the dequantizing scales (input scale x weight scale), packed
/// once (detail::SKBranchPacking with 16 lanes and a quad of s8 per word: the weights of input channels
/// 4i .. 4i + 3 of the block's step, lowest byte first); the layout is the same for every ISA and `isa`
/// picks the kernel. Spans, steps and lane tables count quads of input channels.
class PackedBranchWeightsInt8 : public detail::SKBranchPacking {
 public:
  PackedBranchWeightsInt8() = default;
  /// weights[m]: float [c, path_in_channels / groups, k_m, k_m] of branch m (BN folded), bias[m]: [c];
  /// inputs quantized at `input_scale` (> 0, finite) with zero point 0. Throws KernelError for an
  /// invalid or unsupported geometry (sk_branches_int8_unsupported), a bad scale or an ISA this CPU lacks.
  PackedBranchWeightsInt8(const SKBranchGeometry& g, const float* const* weights, const float* const* bias,
                          float input_scale, Isa isa) {
    validate(g);
    if (const std::string why = sk_branches_int8_unsupported(g); !why.empty())
      throw KernelError("PackedBranchWeightsInt8: " + why);
    if (!(input_scale > 0.0f) || !std::isfinite(input_scale))
      throw KernelError("PackedBranchWeightsInt8: input scale must be positive and finite, not " +
                        std::to_string(input_scale));
    require_kernels(isa, Precision::int8, "PackedBranchWeightsInt8");
    const dim_t c = g.c, per_channel = g.in_group_width();
    std::vector<std::vector<float>> codes(std::size_t(g.paths));  // Q_m as floats, for the packing
    std::vector<const float*> code_ptr;
    std::vector<float> weight_scale(std::size_t(g.paths * c));
    for (dim_t m = 0; m < g.paths; ++m) {
      const dim_t taps = g.path_kernel(m) * g.path_kernel(m), n = per_channel * taps;
      std::vector<float>& q = codes[std::size_t(m)];
      q.resize(std::size_t(c * n));
      for (dim_t co = 0; co < c; ++co) {
        const float* w = weights[m] + co * n;
        float amax = 0.0f;
        bool finite = true;
        for (dim_t i = 0; i < n; ++i) finite &= std::isfinite(w[i]), amax = std::max(amax, std::fabs(w[i]));
        if (!finite)
          throw KernelError("PackedBranchWeightsInt8: branch " + std::to_string(m) + " channel " + std::to_string(co) +
                            " has a non-finite weight");
        const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
        weight_scale[std::size_t(m * c + co)] = s;
        for (dim_t i = 0; i < n; ++i) q[std::size_t(co * n + i)] = float(quantize_round(w[i] / s, -127, 127));
      }
      code_ptr.push_back(q.data());
    }
    pack(g, code_ptr.data(), bias, isa, kSKBranchInt8Lanes, 4,
         detail::sk_kind_int8(g.in_group_width(), g.group_width()), [](const float* v) {
           std::uint32_t word = 0;
           for (int e = 0; e < 4; ++e) word |= std::uint32_t(std::uint8_t(std::int8_t(v[e]))) << (8 * e);
           return word;
         });
    input_scale_ = input_scale;
    const dim_t stride = blocks() * kSKBranchInt8Lanes;
    scales_ = allocate_aligned<float>(std::size_t(g.paths * stride));
    std::fill(scales_.get(), scales_.get() + g.paths * stride, 0.0f);
    for (dim_t m = 0; m < g.paths; ++m)
      for (dim_t co = 0; co < c; ++co) scales_[std::size_t(m * stride + co)] = input_scale * weight_scale[std::size_t(m * c + co)];
  }
  PackedBranchWeightsInt8(const PackedBranchWeightsInt8& o) : detail::SKBranchPacking(o) { copy_scales(o); }
  PackedBranchWeightsInt8& operator=(const PackedBranchWeightsInt8& o) {
    if (this != &o) {
      detail::SKBranchPacking::operator=(o);
      copy_scales(o);
    }
    return *this;
  }
  PackedBranchWeightsInt8(PackedBranchWeightsInt8&&) noexcept = default;
  PackedBranchWeightsInt8& operator=(PackedBranchWeightsInt8&&) noexcept = default;

  Precision precision() const noexcept { return Precision::int8; }
  PackedLayout layout() const noexcept { return {isa(), Precision::int8, kSKBranchInt8Lanes, 4}; }
  /// The input's quantization step (zero point 0) and its inverse, which the kernels multiply by.
  float input_scale() const noexcept { return input_scale_; }
  float input_inv_scale() const noexcept { return 1.0f / input_scale_; }
  /// Block b, branch m: the 16 dequantizing scales (input scale x weight scale; 0 past the channels).
  const float* scale(dim_t b, dim_t m) const {
    return scales_.get() + (m * blocks() + b) * kSKBranchInt8Lanes;
  }

 private:
  void copy_scales(const PackedBranchWeightsInt8& o) {
    input_scale_ = o.input_scale_;
    scales_.reset();
    if (o.scales_) {
      const std::size_t n = std::size_t(paths() * blocks() * kSKBranchInt8Lanes);
      scales_ = allocate_aligned<float>(n);
      std::memcpy(scales_.get(), o.scales_.get(), sizeof(float) * n);
    }
  }
  float input_scale_ = 1.0f;
  AlignedArray<float> scales_;
};

/// Output rows [oy_begin, oy_end) and channels [c_begin, c_end) of every branch, in int8 arithmetic
/// (see the top of this file), with the kernel sk_branches_int8_kernel(w.isa()). The same contract as
/// sk_branches_conv3x3 (src: float rows, quantized as they are read, or u8 code rows; dense or
/// zero-bordered; dst[m], channel_sums: float). A NaN input has no code (it reads as 0): callers that must propagate NaN check
/// their input (the int8 engine marks the channel sums of such an image NaN, which makes its attention
/// and everything after it NaN).
inline void sk_branches_conv3x3_int8(const SKBranchGeometry& g, SKBranchInt8Source src, const PackedBranchWeightsInt8& w,
                                     float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                     dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue = {}) {
  sk_branches_int8_kernel(w.isa())(g, src, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
}
/// Everything.
inline void sk_branches_conv3x3_int8(const SKBranchGeometry& g, SKBranchInt8Source src, const PackedBranchWeightsInt8& w,
                                     float* const* dst, float* channel_sums) {
  sk_branches_conv3x3_int8(g, src, w, dst, channel_sums, 0, g.c, 0, g.oh());
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
