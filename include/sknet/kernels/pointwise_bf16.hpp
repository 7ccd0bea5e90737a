// sknet kernels: the 1x1 convolution (pointwise GEMM) in bfloat16 over NHWC activations.
//
//   dst[p, co] = epilogue( sum_ci src[p, ci] * weight[co, ci] )     src, weight: bf16; sums: float32
//
// The bf16 counterpart of kernels/pointwise.hpp: activations are bf16 rows (`src_stride` elements
// apart), weights are packed once by PackedPointwiseBf16Weights into [ceil(Cout/16)][ceil(Cin/2)][16][2]
// bf16: per 16-column block, per pair of input channels, the 16 columns' two weights side by side, which
// is the operand layout of vdpbf16ps (one 32-bit lane = one pair). A step of the reduction broadcasts one
// pair of a row's activations (32 bits) and does one pair-dot per weight vector, so every instruction
// does twice the multiply-adds of a float32 FMA. An odd last channel is read alone (its partner is zero),
// never past the row.
// Accumulation is in float32; the epilogue (+ bias, + residual (bf16), ReLU, channel sums of the float
// outputs) runs on the float accumulators, which are then rounded to bf16 (nearest even; NaN stays NaN),
// or stored as float when `float_dst` is set. There are no k-blocks: the whole reduction runs in
// registers (a bf16 panel of 2048 x 64 is 256 KB, inside L2), so nothing is rounded twice.
//
// Kernels (listed in kernels/kernel_list.hpp, chosen at run time):
//   avx512_bf16  vdpbf16ps (AVX512_BF16), 6 pixels x 64 channels main tile;
//   avx512       the same tiles with each pair widened to float32 and two FMAs (CPUs without AVX512_BF16);
//   portable     scalar C++, the same order of operations.
// All three add a pair as vdpbf16ps defines it (odd element first, then even; each product is exact in
// float32), so on values without denormals they give the same bits.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "sknet/kernels/bf16.hpp"
#include "sknet/kernels/aligned.hpp"
#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// What happens to each output after the reduction, in this order: + bias[co], + residual[p, co],
/// ReLU, channel_sums[co] += output (float, before rounding); then it is stored: rounded to bf16 into
/// dst, or as float into float_dst when that is set (same row stride).
struct PointwiseBf16Epilogue {
  const float* bias = nullptr;       ///< [cout] or null
  const bf16_t* residual = nullptr;  ///< [pixels x cout], row stride residual_stride, or null (may be dst)
  dim_t residual_stride = 0;
  bool relu = false;
  float* channel_sums = nullptr;  ///< [cout] or null, zeroed by the caller (threads splitting pixels: one each)
  float* float_dst = nullptr;     ///< when set: the outputs as float here instead of bf16 in dst
};

namespace detail {

/// Columns per packed bf16 block (every ISA): one 512-bit vector of pairs.
inline constexpr dim_t kBf16Block = 16;

/// Pairs of input channels (the last one may hold a single channel).
inline constexpr dim_t bf16_pairs(dim_t cin) { return (cin + 1) / 2; }
inline constexpr dim_t pointwise_bf16_packed_size(dim_t cout, dim_t cin) {
  return (cout + kBf16Block - 1) / kBf16Block * bf16_pairs(cin) * kBf16Block * 2;
}

/// Packs float [cout][cin] (PyTorch order) into [ceil(cout/16)][ceil(cin/2)][16][2] bf16, zero-padded.
inline void pack_pointwise_bf16(const float* weight, dim_t cout, dim_t cin, bf16_t* packed) {
  const dim_t blocks = (cout + kBf16Block - 1) / kBf16Block, pairs = bf16_pairs(cin);
  for (dim_t b = 0; b < blocks; ++b)
    for (dim_t kp = 0; kp < pairs; ++kp)
      for (dim_t j = 0; j < kBf16Block; ++j)
        for (dim_t e = 0; e < 2; ++e) {
          const dim_t co = b * kBf16Block + j, ci = 2 * kp + e;
          packed[((b * pairs + kp) * kBf16Block + j) * 2 + e] =
              co < cout && ci < cin ? to_bf16(weight[co * cin + ci]) : bf16_t(0);
        }
}

/// Everything one register tile needs; built by pointwise_bf16_blocked, read by a tile kernel.
struct PointwiseBf16Tile {
  dim_t pairs = 0;             ///< full pairs of input channels
  bool odd = false;            ///< one more input channel after them (its partner is zero)
  const bf16_t* src = nullptr; ///< row 0 of the tile, channel 0
  dim_t src_stride = 0;
  const bf16_t* wei = nullptr; ///< block 0 of the tile: pair k of block v at wei + v * wei_stride + 32 * k
  dim_t wei_stride = 0;
  bf16_t* dst = nullptr;       ///< row 0, column 0 (unless float_dst)
  float* float_dst = nullptr;  ///< row 0, column 0, or null
  dim_t dst_stride = 0;
  dim_t cols = 0;              ///< valid columns (the last vector may be partial)
  const float* bias = nullptr;
  const bf16_t* residual = nullptr;
  dim_t residual_stride = 0;
  bool relu = false;
  float* channel_sums = nullptr;
};
using PointwiseBf16TileFn = void (*)(const PointwiseBf16Tile&);

/// Rows per tile for a tile of nv vectors (index nv; 0 unused) and the pixel block.
struct PointwiseBf16Blocking {
  int mr[5];
  dim_t mb_max;
};

/// The driver every bf16 kernel shares. Loop order: pixel block -> column tile (64 columns) -> row tile,
/// so a column panel of weights is reused by every row tile of the pixel block.
template <class TileSelector>
inline void pointwise_bf16_blocked(const PointwiseGeometry& g, const bf16_t* src, const bf16_t* packed,
                                   const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin, dim_t pixel_end,
                                   dim_t cout_begin, dim_t cout_end, const PointwiseBf16Blocking& blk,
                                   TileSelector tile) {
  assert(0 <= pixel_begin && pixel_begin <= pixel_end && pixel_end <= g.pixels);
  assert(0 <= cout_begin && cout_begin <= cout_end && cout_end <= g.cout);
  if (pixel_begin == pixel_end || cout_begin == cout_end) return;  // an empty share of a split
  assert(g.cin >= 1 && g.src_stride >= g.cin && g.dst_stride >= g.cout);
  assert(cout_begin % kBf16Block == 0 && (cout_end % kBf16Block == 0 || cout_end == g.cout));
  PointwiseBf16Tile t;
  t.pairs = g.cin / 2;
  t.odd = g.cin % 2 != 0;
  t.src_stride = g.src_stride;
  t.wei_stride = bf16_pairs(g.cin) * kBf16Block * 2;
  t.dst_stride = g.dst_stride;
  t.residual_stride = ep.residual_stride;
  t.relu = ep.relu;
  for_each_pointwise_tile(pixel_begin, pixel_end, cout_begin, cout_end, blk.mr, blk.mb_max,
                          [&](dim_t r0, int mr, dim_t c0, dim_t cols, int nv) {
                            t.cols = cols;
                            t.wei = packed + (c0 / kBf16Block) * t.wei_stride;
                            t.bias = ep.bias ? ep.bias + c0 : nullptr;
                            t.channel_sums = ep.channel_sums ? ep.channel_sums + c0 : nullptr;
                            t.src = src + r0 * g.src_stride;
                            t.dst = ep.float_dst ? nullptr : dst + r0 * g.dst_stride + c0;
                            t.float_dst = ep.float_dst ? ep.float_dst + r0 * g.dst_stride + c0 : nullptr;
                            t.residual = ep.residual ? ep.residual + r0 * ep.residual_stride + c0 : nullptr;
                            tile(mr, nv)(t);
                          });
}

}  // namespace detail

/// The kernel signature every bf16 pointwise kernel shares (see pointwise_conv_bf16).
using PointwiseBf16KernelFn = void (*)(const PointwiseGeometry& g, const bf16_t* src, const bf16_t* packed,
                                       const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin,
                                       dim_t pixel_end, dim_t cout_begin, dim_t cout_end);

inline namespace SKNET_KERNEL_ABI {
/// The bf16 pointwise kernel for weights packed for `isa`: vdpbf16ps when isa is avx512 and the CPU has
/// AVX512_BF16, else the ISA's widening kernel (portable below avx512).
SKNET_KERNEL_ENTRY PointwiseBf16KernelFn pointwise_bf16_kernel(Isa isa) noexcept;
/// The name of that kernel ("pointwise_bf16__avx512_bf16", ...), for `sknet info` and benchmarks.
SKNET_KERNEL_ENTRY const char* pointwise_bf16_kernel_name(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// 1x1 convolution weights rounded to bf16 and packed once ([ceil(cout/16)][ceil(cin/2)][16][2],
/// zero-padded, 64-byte aligned). The layout is the same for every ISA; `isa` picks the kernel.
class PackedPointwiseBf16Weights {
 public:
  PackedPointwiseBf16Weights() = default;
  /// weight: float [cout][cin] (PyTorch [cout, cin, 1, 1], BN already folded), rounded to nearest even.
  /// Throws KernelError unless cout >= 1, cin >= 1 and the CPU runs `isa`.
  PackedPointwiseBf16Weights(const float* weight, dim_t cout, dim_t cin, Isa isa) : cout_(cout), cin_(cin), isa_(isa) {
    if (cout < 1 || cin < 1)
      sknet::detail::fail<KernelError>("PackedPointwiseBf16Weights", "cout and cin", ">= 1",
                                       std::to_string(cout) + " and " + std::to_string(cin));
    if (!cpu_supports(isa))
      sknet::detail::fail<KernelError>("PackedPointwiseBf16Weights", "instruction set",
                                       std::string("at most ") + isa_name(cpu_isa()) + " on this CPU", isa_name(isa));
    data_ = allocate_aligned<bf16_t>(std::size_t(size()));
    detail::pack_pointwise_bf16(weight, cout, cin, data_.get());
  }

  dim_t cout() const noexcept { return cout_; }
  dim_t cin() const noexcept { return cin_; }
  Isa isa() const noexcept { return isa_; }
  Precision precision() const noexcept { return Precision::bf16; }
  PackedLayout layout() const noexcept { return {isa_, Precision::bf16, detail::kBf16Block, 2}; }
  /// bf16 values in data(), padding included.
  dim_t size() const noexcept { return detail::pointwise_bf16_packed_size(cout_, cin_); }
  bool empty() const noexcept { return !data_; }
  const bf16_t* data() const noexcept { return data_.get(); }

 private:
  dim_t cout_ = 0, cin_ = 0;
  Isa isa_ = Isa::portable;
  AlignedArray<bf16_t> data_;
};

/// Output pixels [pixel_begin, pixel_end) and channels [cout_begin, cout_end) of the bf16 1x1
/// convolution (see the top of this file). Requires w.cout() == g.cout, w.cin() == g.cin; cout_begin a
/// multiple of 16, cout_end a multiple of 16 or g.cout; dst (or float_dst) overlaps neither src nor the
/// residual (except residual == dst with the same stride). Disjoint ranges may run concurrently.
inline void pointwise_conv_bf16(const PointwiseGeometry& g, const bf16_t* src, const PackedPointwiseBf16Weights& w,
                                const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin, dim_t pixel_end,
                                dim_t cout_begin, dim_t cout_end) {
  assert(w.cout() == g.cout && w.cin() == g.cin);
  pointwise_bf16_kernel(w.isa())(g, src, w.data(), ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

/// The whole output.
inline void pointwise_conv_bf16(const PointwiseGeometry& g, const bf16_t* src, const PackedPointwiseBf16Weights& w,
                                const PointwiseBf16Epilogue& ep, bf16_t* dst) {
  pointwise_conv_bf16(g, src, w, ep, dst, 0, g.pixels, 0, g.cout);
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
