// sknet kernels: the Split step of an SK convolution (kernels/grouped_conv.hpp) with bf16 weights and
// bf16 inputs, float32 accumulation and float outputs U_m.
//
//   U_m[n, oy, ox, co] = act( bias_m[co] + residual[n, oy, ox, co]
//                             + sum_{ky,kx,j} bf16(X[...in_m + g(co)*gwi + j]) * bf16(W_m[co, j, ky, kx]) )
//   channel_sums[n, co] += sum_{oy,ox} sum_m U_m[n, oy, ox, co]
//
// The same geometry (SKBranchGeometry: M branches of any odd kernel size and dilation, stride, groups,
// split_input, dense or padded float input), epilogue (SKBranchEpilogue: bias, residual, ReLU, then the
// channel sums of the float outputs) and driver (kernels/sk_branches_body.inc) as the float kernels;
// what changes is the vocabulary of one reduction step. The input's float channels are rounded to bf16
// (nearest even) as its rows are copied into the driver's ring of compact rows, where a 32-bit lane
// holds a pair of consecutive channels; the weights (BN folded in float32, then rounded to nearest even)
// are packed per block of 16 output channels as [branch][ky][step][kx][16 lanes] pairs, and one step
// is one pair-dot per weight vector (vdpbf16ps: acc + odd product + even product, each product exact in
// float32), twice the multiply-adds of a float FMA. How a step forms its input vector:
//   gwi == gwo in {2, 4, 8}   cross:     the block's own 16 channels (8 pairs, 32 bytes) permuted across
//                                        lanes (vpermd) so that lane l reads pair j of its group, gw / 2
//                                        steps (all lanes useful, as the float kernel's in-lane / cross);
//   otherwise (16, 32, gwi != gwo, dense)
//                             broadcast: one pair of the input span the block's groups read, to every
//                                        lane (vpbroadcastd), span / 2 steps; blocks sharing a span (gw
//                                        32) run 2-block tiles.
// Input channels per group must be even (a pair never straddles two groups): depthwise and odd group
// widths are refused with a KernelError (sk_branches_bf16_unsupported says why; callers keep the float
// kernel for them).
//
// Kernels (listed in kernels/kernel_list.hpp, chosen at run time like the bf16 pointwise kernels):
//   avx512_bf16  vdpbf16ps, 14-pixel tiles (2 rows x 7 on 7-wide maps, 2 blocks x 7 for gw 32),
//                specialised for 3x3 kernels with stride 1, 2 and dilation 1, 2;
//   avx512       each pair widened to two float vectors and two FMAs (CPUs without AVX512_BF16);
//   portable     16-float struct vectors, the same order of operations.
// Every tile adds an output's products in the same order (kernel row, step, kernel column; within a
// pair the odd product first), so the three give the same bits on values without denormals
// (vdpbf16ps and vcvtneps2bf16 treat denormals as zero).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "sknet/kernels/bf16.hpp"
#include "sknet/kernels/grouped_conv.hpp"

namespace sknet {
namespace kernels {

/// Output channels per block of the bf16 SK branch kernels (every ISA: one packed layout).
inline constexpr dim_t kSKBranchBf16Lanes = 16;

/// Why the bf16 SK branch kernels cannot run geometry g (an empty string when they can).
inline std::string sk_branches_bf16_unsupported(const SKBranchGeometry& g) {
  if (g.in_group_width() % 2 != 0)
    return "input channels per group must be even (a 32-bit lane holds a pair of one group's channels), not " +
           std::to_string(g.in_group_width());
  return {};
}

namespace detail {
/// The kind of a bf16 tile for input and output group widths gwi (even), gwo.
inline SKKind sk_kind_bf16(dim_t gwi, dim_t gwo) {
  if (gwi == gwo && gwo < kSKBranchBf16Lanes && kSKBranchBf16Lanes % gwo == 0) return SKKind::kCross;
  return SKKind::kBroadcast;
}
}  // namespace detail

/// The input of a bf16 SK branch kernel, NHWC as SKBranchGeometry lays it out: float rows (rounded to
/// bf16, nearest even, as the kernel copies them) or bf16 rows (copied as they are: e.g. a bf16 conv1's
/// output; the same results as float rows holding those values).
struct SKBranchBf16Source {
  const float* f32 = nullptr;
  const bf16_t* bf16 = nullptr;
  SKBranchBf16Source(const float* rows) : f32(rows) {}   // NOLINT: implicit on purpose
  SKBranchBf16Source(const bf16_t* rows) : bf16(rows) {}  // NOLINT
};

class PackedBranchWeightsBf16;
/// The kernel signature every bf16 SK branch kernel shares (see sk_branches_conv3x3_bf16).
using SKBranchBf16KernelFn = void (*)(const SKBranchGeometry& g, SKBranchBf16Source src, const PackedBranchWeightsBf16& w,
                                      float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                      dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue);

/// The Select step on bf16 branch outputs (SKBranchEpilogue::bf16_out) for a run of rows of one image:
/// v[r][c] = bf16(sum_m a[m * c_count + c] * u[m][r * c_count + c]) (float multiply-adds in path
/// order, rounded once to nearest even), the bf16 V that a bf16 conv3 reads; otherwise as
/// SKSelectKernelFn.
using SKSelectBf16KernelFn = void (*)(dim_t rows, dim_t c_count, dim_t paths, const float* a, const bf16_t* const* u,
                                      bf16_t* v);

inline namespace SKNET_KERNEL_ABI {
/// The bf16 Select kernel for `isa` (vcvtneps2bf16 where the CPU has AVX512_BF16; the same bits otherwise).
SKNET_KERNEL_ENTRY SKSelectBf16KernelFn sk_select_bf16_kernel(Isa isa) noexcept;
/// The bf16 SK branch kernel for weights packed for `isa`: vdpbf16ps when isa is avx512 and the CPU has
/// AVX512_BF16, else the widening avx512 kernel, else the portable one.
SKNET_KERNEL_ENTRY SKBranchBf16KernelFn sk_branches_bf16_kernel(Isa isa) noexcept;
/// The name of that kernel, for `sknet info` and the benchmarks.
SKNET_KERNEL_ENTRY const char* sk_branches_bf16_kernel_name(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// The branch weights (rounded to bf16, nearest even, pair-interleaved) and float biases of one SK Split
/// step, packed once (detail::SKBranchPacking with 16 lanes and a pair of bf16 per word: the weights of
/// input channels 2i (low half) and 2i + 1 (high half) of the block's step); the layout is the same for
/// every ISA and `isa` picks the kernel. Spans, steps and lane tables count pairs of input channels.
class PackedBranchWeightsBf16 : public detail::SKBranchPacking {
 public:
  PackedBranchWeightsBf16() = default;
  /// weights[m]: float [c, path_in_channels / groups, k_m, k_m] of branch m (BN folded), bias[m]: [c].
  /// Throws KernelError for an invalid or unsupported geometry (sk_branches_bf16_unsupported) or an ISA
  /// this CPU lacks.
  PackedBranchWeightsBf16(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa) {
    validate(g);
    if (const std::string why = sk_branches_bf16_unsupported(g); !why.empty())
      throw KernelError("PackedBranchWeightsBf16: " + why);
    require_kernels(isa, Precision::bf16, "PackedBranchWeightsBf16");
    pack(g, weights, bias, isa, kSKBranchBf16Lanes, 2, detail::sk_kind_bf16(g.in_group_width(), g.group_width()),
         [](const float* v) { return std::uint32_t(to_bf16(v[0])) | std::uint32_t(to_bf16(v[1])) << 16; });
  }
  Precision precision() const noexcept { return Precision::bf16; }
  PackedLayout layout() const noexcept { return {isa(), Precision::bf16, kSKBranchBf16Lanes, 2}; }
};

/// Output rows [oy_begin, oy_end) and channels [c_begin, c_end) of every branch, in bf16 arithmetic
/// (see the top of this file), with the kernel sk_branches_bf16_kernel(w.isa()). The same contract as
/// sk_branches_conv3x3 (src: float or bf16 rows, dense or zero-bordered; dst[m], channel_sums: float).
inline void sk_branches_conv3x3_bf16(const SKBranchGeometry& g, SKBranchBf16Source src, const PackedBranchWeightsBf16& w,
                                     float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                     dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue = {}) {
  sk_branches_bf16_kernel(w.isa())(g, src, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
}
/// Everything.
inline void sk_branches_conv3x3_bf16(const SKBranchGeometry& g, SKBranchBf16Source src, const PackedBranchWeightsBf16& w,
                                     float* const* dst, float* channel_sums) {
  sk_branches_conv3x3_bf16(g, src, w, dst, channel_sums, 0, g.c, 0, g.oh());
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
