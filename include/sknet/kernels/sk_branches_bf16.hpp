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

/// The branch weights (rounded to bf16, pair-interleaved) and float biases of one SK Split step, packed
/// once; the layout is the same for every ISA and `isa` picks the kernel. Per block b of 16 output
/// channels and branch m: [k_m ky][steps(b)][k_m kx][16] 32-bit lanes, each the bf16 weights of input
/// channels 2i (low half) and 2i + 1 (high half) of the block's step, zero where the lane's group has no
/// such input. Spans, steps and lane tables count pairs of input channels. Immutable once built.
class PackedBranchWeightsBf16 {
 public:
  PackedBranchWeightsBf16() = default;
  /// weights[m]: float [c, path_in_channels / groups, k_m, k_m] of branch m (BN folded), bias[m]: [c].
  /// Throws KernelError for an invalid or unsupported geometry (sk_branches_bf16_unsupported) or an ISA
  /// this CPU lacks.
  PackedBranchWeightsBf16(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa);
  PackedBranchWeightsBf16(const PackedBranchWeightsBf16& o) { *this = o; }
  PackedBranchWeightsBf16& operator=(const PackedBranchWeightsBf16& o) {
    if (this == &o) return *this;
    shape_ = o.shape_, offset_ = o.offset_, steps_ = o.steps_, span_begin_ = o.span_begin_, ctrl_ = o.ctrl_;
    kernel_ = o.kernel_, taps_before_ = o.taps_before_;
    data_.reset();
    if (o.data_) {
      data_ = allocate_aligned<float>(std::size_t(shape_.size));
      std::memcpy(data_.get(), o.data_.get(), sizeof(float) * std::size_t(shape_.size));
    }
    return *this;
  }
  PackedBranchWeightsBf16(PackedBranchWeightsBf16&&) noexcept = default;
  PackedBranchWeightsBf16& operator=(PackedBranchWeightsBf16&&) noexcept = default;

  bool empty() const noexcept { return !data_; }
  dim_t channels() const noexcept { return shape_.c; }
  dim_t in_channels() const noexcept { return shape_.cin; }
  bool split_input() const noexcept { return shape_.split; }
  dim_t groups() const noexcept { return shape_.groups; }
  dim_t paths() const noexcept { return shape_.paths; }
  dim_t lanes() const noexcept { return kSKBranchBf16Lanes; }
  Isa isa() const noexcept { return shape_.isa; }
  Precision precision() const noexcept { return Precision::bf16; }
  PackedLayout layout() const noexcept { return {shape_.isa, Precision::bf16, kSKBranchBf16Lanes, 2}; }
  dim_t blocks() const noexcept { return shape_.blocks; }
  detail::SKKind kind() const noexcept { return shape_.kind; }
  /// 32-bit words of packed weights and biases.
  dim_t size() const noexcept { return shape_.size; }
  dim_t kernel(dim_t m) const { return kernel_[std::size_t(m)]; }
  /// Block b, branch m: [kernel(m)][steps(b)][kernel(m)][16] pairs (read as 32-bit words; typed float
  /// for the shared driver, which only moves them).
  const float* weights(dim_t b, dim_t m) const {
    return data_.get() + offset_[std::size_t(b)] + taps_before_[std::size_t(m)] * steps(b) * kSKBranchBf16Lanes;
  }
  const float* bias(dim_t b, dim_t m) const {
    return data_.get() + shape_.bias_offset + (m * shape_.blocks + b) * kSKBranchBf16Lanes;
  }
  /// Pairs per tap of block b.
  dim_t steps(dim_t b) const { return steps_[std::size_t(b)]; }
  /// The input pairs block b reads, [span_begin(b), span_end(b)), counted within a branch's input.
  dim_t span_begin(dim_t b) const { return span_begin_[std::size_t(b)]; }
  dim_t span_end(dim_t b) const {
    return shape_.kind == detail::SKKind::kBroadcast ? span_begin(b) + steps(b)
                                                     : std::min(span_begin(b) + kSKBranchBf16Lanes / 2, shape_.c / 2);
  }
  /// Consecutive blocks that read the same span (gwo a multiple of 16 with the broadcast kind); else 1.
  dim_t blocks_per_span() const noexcept {
    const dim_t gwo = shape_.c / std::max<dim_t>(shape_.groups, 1);
    return shape_.kind == detail::SKKind::kBroadcast ? std::max<dim_t>(1, gwo / kSKBranchBf16Lanes) : 1;
  }
  /// The cross kind: [steps][16] pair (of the block's 8) each lane reads per step.
  const std::int32_t* lane_table() const { return ctrl_.empty() ? nullptr : ctrl_.data(); }

 private:
  struct Shape {
    Isa isa = Isa::portable;
    dim_t c = 0, cin = 0, groups = 0, paths = 0, blocks = 0, size = 0, bias_offset = 0;
    bool split = false;
    detail::SKKind kind = detail::SKKind::kBroadcast;
  } shape_;
  std::vector<dim_t> offset_, steps_, span_begin_;
  std::vector<std::int32_t> ctrl_;
  std::array<dim_t, kSKMaxPaths> kernel_{}, taps_before_{};
  AlignedArray<float> data_;
};

inline PackedBranchWeightsBf16::PackedBranchWeightsBf16(const SKBranchGeometry& g, const float* const* weights,
                                                        const float* const* bias, Isa isa) {
  validate(g);
  if (const std::string why = sk_branches_bf16_unsupported(g); !why.empty())
    throw KernelError("PackedBranchWeightsBf16: " + why);
  if (!cpu_supports(isa))
    sknet::detail::fail<KernelError>("PackedBranchWeightsBf16", "instruction set",
                                     std::string("at most ") + isa_name(cpu_isa()) + " on this CPU", isa_name(isa));
  constexpr dim_t L = kSKBranchBf16Lanes;
  const dim_t C = g.c, gwo = g.group_width(), gwi = g.in_group_width(), cin = g.path_in_channels(), M = g.paths;
  Shape& sh = shape_;
  sh.isa = isa, sh.c = C, sh.cin = g.in_channels(), sh.split = g.split_input;
  sh.groups = g.groups, sh.paths = M;
  sh.blocks = (C + L - 1) / L;
  sh.kind = detail::sk_kind_bf16(gwi, gwo);
  const bool cross = sh.kind == detail::SKKind::kCross;
  for (dim_t m = 0, before = 0; m < M; ++m) {
    kernel_[std::size_t(m)] = g.path_kernel(m);
    taps_before_[std::size_t(m)] = before;
    before += g.path_kernel(m) * g.path_kernel(m);
  }
  if (cross) {  // step j: lane l reads pair j of its own group (of the block's 8 pairs)
    ctrl_.resize(std::size_t(gwo / 2 * L));
    for (dim_t j = 0; j < gwo / 2; ++j)
      for (dim_t l = 0; l < L; ++l) ctrl_[std::size_t(j * L + l)] = std::int32_t(l / gwo * (gwo / 2) + j);
  }
  offset_.resize(std::size_t(sh.blocks));
  steps_.resize(std::size_t(sh.blocks));
  span_begin_.resize(std::size_t(sh.blocks));
  const dim_t taps = g.taps();
  dim_t total = 0;
  for (dim_t b = 0; b < sh.blocks; ++b) {
    const dim_t c0 = b * L, last = std::min(c0 + L, C) - 1;
    dim_t steps = gwo / 2, begin = c0 / 2;
    if (!cross) {  // the inputs of groups c0 / gwo .. last / gwo, in pairs (gwi is even)
      begin = c0 / gwo * gwi / 2;
      steps = (last / gwo + 1) * gwi / 2 - begin;
    }
    offset_[std::size_t(b)] = total;
    steps_[std::size_t(b)] = steps;
    span_begin_[std::size_t(b)] = begin;
    total += taps * steps * L;
  }
  sh.bias_offset = total;
  sh.size = total + M * sh.blocks * L;
  data_ = allocate_aligned<float>(std::size_t(sh.size));
  float* p = data_.get();
  std::fill(p, p + sh.size, 0.0f);
  for (dim_t b = 0; b < sh.blocks; ++b) {
    const dim_t c0 = b * L, steps = steps_[std::size_t(b)];
    for (dim_t m = 0; m < M; ++m) {
      const dim_t k = kernel_[std::size_t(m)];
      float* dst = p + offset_[std::size_t(b)] + taps_before_[std::size_t(m)] * steps * L;
      for (dim_t ky = 0; ky < k; ++ky)
        for (dim_t j = 0; j < steps; ++j)
          for (dim_t kx = 0; kx < k; ++kx)
            for (dim_t l = 0; l < L && c0 + l < C; ++l) {
              const dim_t oc = c0 + l;
              std::uint32_t pair = 0;
              for (dim_t e = 0; e < 2; ++e) {
                // the input channel (of the branch's input) half e of lane l reads at step j
                const dim_t ic = cross ? c0 + 2 * ctrl_[std::size_t(j * L + l)] + e : 2 * (span_begin_[std::size_t(b)] + j) + e;
                const dim_t icg = ic - oc / gwo * gwi;  // index within oc's group
                if (ic >= cin || icg < 0 || icg >= gwi) continue;
                pair |= std::uint32_t(to_bf16(weights[m][((oc * gwi + icg) * k + ky) * k + kx])) << (16 * e);
              }
              std::memcpy(dst + ((ky * steps + j) * k + kx) * L + l, &pair, sizeof pair);
            }
      for (dim_t l = 0; l < L && c0 + l < C; ++l) p[sh.bias_offset + (m * sh.blocks + b) * L + l] = bias[m][c0 + l];
    }
  }
}

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
