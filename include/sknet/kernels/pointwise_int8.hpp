// sknet kernels: the 1x1 convolution (pointwise GEMM) in 8-bit integers over NHWC activations.
//
//   acc[p, co] = sum_ci src[p, ci] * q[co, ci]            src: u8, q: s8, acc: exact int32
//   dst[p, co] = epilogue( acc[p, co] * scale[co] + bias[co] )
//
// The int8 counterpart of kernels/pointwise.hpp. Weights are quantized per output channel by
// PackedPointwiseInt8Weights (symmetric, q = round(w / s_w[co]) with s_w[co] = max_ci |w[co, ci]| / 127)
// and packed once into [ceil(Cout/16)][ceil(Cin/4)][16][4] s8: per 16-column block, per quad of input
// channels, the 16 columns' four weights side by side, the operand layout of vpdpbusd (one 32-bit lane
// = one quad). A step of the reduction broadcasts one quad of a row's activations (32 bits) and does
// one quad-dot per weight vector: four times the multiply-adds of a float32 FMA per instruction. A last
// partial quad is read byte by byte (its missing channels are zero), never past the row.
// The int32 sums are exact (|acc| <= 255 * 127 * Cin < 2^31 for Cin < 66,000), so every kernel gives the
// same acc; the epilogue runs in float: acc * scale[co] + bias[co] as one fused multiply-add, +
// residual * residual_scale, ReLU, channel sums, then the value is stored as float (float_dst) or
// quantized to u8 (round to nearest even at out_inv_scale, + out_zero_point, saturated).
// The caller folds the activation's scale and zero point into scale and bias: with x = s_x (q_x - z_x),
// scale[co] = s_x * s_w[co] and bias[co] = b[co] - z_x * s_x * s_w[co] * wsum[co]
// (PackedPointwiseInt8Weights::weight_sums), the compensation that lets unsigned codes stand for a
// signed tensor.
//
// Kernels (listed in kernels/kernel_list.hpp, chosen at run time):
//   avx512_vnni  vpdpbusd (AVX512_VNNI), 6 pixels x 64 channels main tile;
//   avx512       the same tiles with each quad widened to 16-bit pairs and two vpmaddwd (no VNNI);
//   portable     scalar C++.
// All three compute the same int32 sums and the same float epilogue, so they give the same bits.
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sknet/kernels/aligned.hpp"
#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/int8.hpp"

namespace sknet {
namespace kernels {

/// What happens to each output after the reduction, in this order: v = fma(acc, scale[co], bias[co]),
/// + residual[p, co] * residual_scale, + float_residual[p, co], ReLU, channel_sums[co] += v; then v is stored as float into
/// float_dst when that is set, else as u8 into dst (clamp(round(v * out_inv_scale) + out_zero_point,
/// 0, 255)). Strides of dst and float_dst are the geometry's dst_stride.
struct PointwiseInt8Epilogue {
  const float* scale = nullptr;  ///< [cout], required: the product of the activation's and the weights' scales
  const float* bias = nullptr;   ///< [cout] or null
  const u8_t* residual = nullptr;  ///< [pixels x cout] u8 codes (zero point 0), row stride residual_stride, or null
  dim_t residual_stride = 0;
  float residual_scale = 1.0f;
  const float* float_residual = nullptr;  ///< [pixels x cout] float, row stride residual_stride, or null
                                          ///< (may be float_dst)
  bool relu = false;
  float* channel_sums = nullptr;  ///< [cout] or null, zeroed by the caller (threads splitting pixels: one each)
  float* float_dst = nullptr;     ///< when set: the outputs as float here instead of u8 in dst
  float out_inv_scale = 1.0f;     ///< u8 outputs: 1 / their scale
  int out_zero_point = 0;
};

namespace detail {

/// Columns per packed int8 block (every ISA): one 512-bit vector of quads.
inline constexpr dim_t kInt8Block = 16;

/// Quads of input channels (the last one may be partial).
inline constexpr dim_t int8_quads(dim_t cin) { return (cin + 3) / 4; }
inline constexpr dim_t pointwise_int8_packed_size(dim_t cout, dim_t cin) {
  return (cout + kInt8Block - 1) / kInt8Block * int8_quads(cin) * kInt8Block * 4;
}

/// Everything one register tile needs; built by pointwise_int8_blocked, read by a tile kernel.
struct PointwiseInt8Tile {
  dim_t quads = 0;            ///< full quads of input channels
  int rest = 0;               ///< input channels after them (0..3; the others of that quad are zero)
  const u8_t* src = nullptr;  ///< row 0 of the tile, channel 0
  dim_t src_stride = 0;
  const s8_t* wei = nullptr;  ///< block 0 of the tile: quad k of block v at wei + v * wei_stride + 64 * k
  dim_t wei_stride = 0;
  u8_t* dst = nullptr;        ///< row 0, column 0 (unless float_dst)
  float* float_dst = nullptr; ///< row 0, column 0, or null
  dim_t dst_stride = 0;
  dim_t cols = 0;             ///< valid columns (the last vector may be partial)
  const float* scale = nullptr;
  const float* bias = nullptr;
  const u8_t* residual = nullptr;
  dim_t residual_stride = 0;
  float residual_scale = 1.0f;
  const float* float_residual = nullptr;
  bool relu = false;
  float* channel_sums = nullptr;
  float out_inv_scale = 1.0f;
  int out_zero_point = 0;
};
using PointwiseInt8TileFn = void (*)(const PointwiseInt8Tile&);

/// Rows per tile for a tile of nv vectors (index nv; 0 unused) and the pixel block.
struct PointwiseInt8Blocking {
  int mr[5];
  dim_t mb_max;
};

/// The partial last quad of a row (channels 4 * quads ..), zero-extended: 32 bits.
inline std::int32_t int8_rest_quad(const u8_t* row, dim_t quads, int rest) noexcept {
  std::uint32_t q = 0;
  for (int i = 0; i < rest; ++i) q |= std::uint32_t(row[4 * quads + i]) << (8 * i);
  return std::int32_t(q);
}

/// The driver every int8 kernel shares. Loop order: pixel block -> column tile (64 columns) -> row tile,
/// so a column panel of weights is reused by every row tile of the pixel block.
template <class TileSelector>
inline void pointwise_int8_blocked(const PointwiseGeometry& g, const u8_t* src, const s8_t* packed,
                                   const PointwiseInt8Epilogue& ep, u8_t* dst, dim_t pixel_begin, dim_t pixel_end,
                                   dim_t cout_begin, dim_t cout_end, const PointwiseInt8Blocking& blk,
                                   TileSelector tile) {
  assert(0 <= pixel_begin && pixel_begin <= pixel_end && pixel_end <= g.pixels);
  assert(0 <= cout_begin && cout_begin <= cout_end && cout_end <= g.cout);
  if (pixel_begin == pixel_end || cout_begin == cout_end) return;  // an empty share of a split
  assert(g.cin >= 1 && g.src_stride >= g.cin && g.dst_stride >= g.cout && ep.scale);
  assert(cout_begin % kInt8Block == 0 && (cout_end % kInt8Block == 0 || cout_end == g.cout));
  PointwiseInt8Tile t;
  t.quads = g.cin / 4;
  t.rest = int(g.cin % 4);
  t.src_stride = g.src_stride;
  t.wei_stride = int8_quads(g.cin) * kInt8Block * 4;
  t.dst_stride = g.dst_stride;
  t.residual_stride = ep.residual_stride;
  t.residual_scale = ep.residual_scale;
  t.relu = ep.relu;
  t.out_inv_scale = ep.out_inv_scale;
  t.out_zero_point = ep.out_zero_point;
  for_each_pointwise_tile(pixel_begin, pixel_end, cout_begin, cout_end, blk.mr, blk.mb_max,
                          [&](dim_t r0, int mr, dim_t c0, dim_t cols, int nv) {
                            t.cols = cols;
                            t.wei = packed + (c0 / kInt8Block) * t.wei_stride;
                            t.scale = ep.scale + c0;
                            t.bias = ep.bias ? ep.bias + c0 : nullptr;
                            t.channel_sums = ep.channel_sums ? ep.channel_sums + c0 : nullptr;
                            t.src = src + r0 * g.src_stride;
                            t.dst = ep.float_dst ? nullptr : dst + r0 * g.dst_stride + c0;
                            t.float_dst = ep.float_dst ? ep.float_dst + r0 * g.dst_stride + c0 : nullptr;
                            t.residual = ep.residual ? ep.residual + r0 * ep.residual_stride + c0 : nullptr;
                            t.float_residual =
                                ep.float_residual ? ep.float_residual + r0 * ep.residual_stride + c0 : nullptr;
                            tile(mr, nv)(t);
                          });
}

}  // namespace detail

/// The kernel signature every int8 pointwise kernel shares (see pointwise_conv_int8).
using PointwiseInt8KernelFn = void (*)(const PointwiseGeometry& g, const u8_t* src, const s8_t* packed,
                                       const PointwiseInt8Epilogue& ep, u8_t* dst, dim_t pixel_begin,
                                       dim_t pixel_end, dim_t cout_begin, dim_t cout_end);

inline namespace SKNET_KERNEL_ABI {
/// The int8 pointwise kernel for weights packed for `isa`: vpdpbusd when isa is avx512 and the CPU has
/// AVX512_VNNI, else the ISA's widening kernel (portable below avx512).
SKNET_KERNEL_ENTRY PointwiseInt8KernelFn pointwise_int8_kernel(Isa isa) noexcept;
/// The name of that kernel ("pointwise_int8__avx512_vnni", ...), for `sknet info` and benchmarks.
SKNET_KERNEL_ENTRY const char* pointwise_int8_kernel_name(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// 1x1 convolution weights quantized per output channel (symmetric int8) and packed once
/// ([ceil(cout/16)][ceil(cin/4)][16][4], zero-padded, 64-byte aligned), with each channel's scale and
/// the sum of its codes. The layout is the same for every ISA; `isa` picks the kernel.
class PackedPointwiseInt8Weights {
 public:
  PackedPointwiseInt8Weights() = default;
  /// weight: float [cout][cin] (PyTorch [cout, cin, 1, 1], BN already folded). A channel of zeros gets
  /// scale 1 (all codes 0). Throws KernelError unless cout >= 1, cin >= 1, every weight is finite and
  /// the CPU runs `isa`.
  PackedPointwiseInt8Weights(const float* weight, dim_t cout, dim_t cin, Isa isa) : cout_(cout), cin_(cin), isa_(isa) {
    if (cout < 1 || cin < 1)
      sknet::detail::fail<KernelError>("PackedPointwiseInt8Weights", "cout and cin", ">= 1",
                                       std::to_string(cout) + " and " + std::to_string(cin));
    if (cin > (dim_t(1) << 16))  // keeps |acc| <= 255 * 127 * cin below 2^31
      sknet::detail::fail<KernelError>("PackedPointwiseInt8Weights", "cin", "<= 65536", std::to_string(cin));
    if (!cpu_supports(isa))
      sknet::detail::fail<KernelError>("PackedPointwiseInt8Weights", "instruction set",
                                       std::string("at most ") + isa_name(cpu_isa()) + " on this CPU", isa_name(isa));
    scales_.resize(std::size_t(cout));
    sums_.resize(std::size_t(cout));
    std::vector<s8_t> codes(std::size_t(cout * cin));
    for (dim_t co = 0; co < cout; ++co) {
      float peak = 0.0f;
      for (dim_t ci = 0; ci < cin; ++ci) {
        const float w = weight[co * cin + ci];
        if (!std::isfinite(w))
          sknet::detail::fail<KernelError>("PackedPointwiseInt8Weights",
                                           "weight [" + std::to_string(co) + ", " + std::to_string(ci) + "]", "finite",
                                           std::to_string(w));
        peak = std::max(peak, std::fabs(w));
      }
      const float scale = peak > 0.0f ? peak / 127.0f : 1.0f;
      scales_[std::size_t(co)] = scale;
      std::int32_t sum = 0;
      for (dim_t ci = 0; ci < cin; ++ci) {
        const s8_t q = s8_t(quantize_round(weight[co * cin + ci] / scale, -127, 127));
        codes[std::size_t(co * cin + ci)] = q;
        sum += q;
      }
      sums_[std::size_t(co)] = sum;
    }
    data_ = allocate_aligned<s8_t>(std::size_t(size()));
    const dim_t blocks = (cout + detail::kInt8Block - 1) / detail::kInt8Block, quads = detail::int8_quads(cin);
    for (dim_t b = 0; b < blocks; ++b)
      for (dim_t k = 0; k < quads; ++k)
        for (dim_t j = 0; j < detail::kInt8Block; ++j)
          for (dim_t e = 0; e < 4; ++e) {
            const dim_t co = b * detail::kInt8Block + j, ci = 4 * k + e;
            data_[std::size_t(((b * quads + k) * detail::kInt8Block + j) * 4 + e)] =
                co < cout && ci < cin ? codes[std::size_t(co * cin + ci)] : s8_t(0);
          }
  }

  dim_t cout() const noexcept { return cout_; }
  dim_t cin() const noexcept { return cin_; }
  Isa isa() const noexcept { return isa_; }
  /// s_w[co]: weight[co, ci] ~ s_w[co] * code.
  const std::vector<float>& weight_scales() const noexcept { return scales_; }
  /// sum over ci of the codes of channel co (for the zero-point compensation).
  const std::vector<std::int32_t>& weight_sums() const noexcept { return sums_; }
  /// The code of weight [co, ci] (tests and tools).
  s8_t code(dim_t co, dim_t ci) const noexcept {
    const dim_t quads = detail::int8_quads(cin_);
    return data_[std::size_t(((co / detail::kInt8Block * quads + ci / 4) * detail::kInt8Block + co % detail::kInt8Block) * 4 +
                             ci % 4)];
  }
  /// s8 values in data(), padding included.
  dim_t size() const noexcept { return detail::pointwise_int8_packed_size(cout_, cin_); }
  bool empty() const noexcept { return !data_; }
  const s8_t* data() const noexcept { return data_.get(); }

 private:
  dim_t cout_ = 0, cin_ = 0;
  Isa isa_ = Isa::portable;
  std::vector<float> scales_;
  std::vector<std::int32_t> sums_;
  AlignedArray<s8_t> data_;
};

/// Output pixels [pixel_begin, pixel_end) and channels [cout_begin, cout_end) of the int8 1x1
/// convolution (see the top of this file). Requires w.cout() == g.cout, w.cin() == g.cin, ep.scale;
/// cout_begin a multiple of 16, cout_end a multiple of 16 or g.cout; dst (or float_dst) overlaps
/// neither src nor the residual (except residual == dst with the same stride). Disjoint ranges may run
/// concurrently.
inline void pointwise_conv_int8(const PointwiseGeometry& g, const u8_t* src, const PackedPointwiseInt8Weights& w,
                                const PointwiseInt8Epilogue& ep, u8_t* dst, dim_t pixel_begin, dim_t pixel_end,
                                dim_t cout_begin, dim_t cout_end) {
  assert(w.cout() == g.cout && w.cin() == g.cin);
  pointwise_int8_kernel(w.isa())(g, src, w.data(), ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

/// The whole output.
inline void pointwise_conv_int8(const PointwiseGeometry& g, const u8_t* src, const PackedPointwiseInt8Weights& w,
                                const PointwiseInt8Epilogue& ep, u8_t* dst) {
  pointwise_conv_int8(g, src, w, ep, dst, 0, g.pixels, 0, g.cout);
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
