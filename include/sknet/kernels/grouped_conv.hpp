// sknet kernels: the Split step of an SK convolution for float, all M branches in one call.
//
//   U_m[n, oy, ox, co] = ReLU( bias_m[co] + sum_{ky,kx,j} X[n, oy*s + (ky-1)*m, ox*s + (kx-1)*m, g(co)*gw + j]
//                                                        * W_m[co, j, ky, kx] ),      m = 1..M
//   channel_sums[n, co] += sum_{oy,ox} sum_m U_m[n, oy, ox, co]
//
// Branch m is a grouped 3x3 convolution with dilation m and padding m (G groups of gw = C/G channels,
// Cin = Cout = C, stride s); every branch has the same output size. X is NHWC, either dense
// (pad = 0) or already zero-padded by pad >= M on each side; the kernels read it only through the
// compact row copies below, which carry the zero border, so no tile checks bounds. The channel sums
// feed the global average pool of the Fuse step without re-reading U.
//
// Algorithm (all ISAs): channel-vectorised direct convolution. A vector holds one block of L output
// channels (L = 16 for avx512, 8 otherwise); a register tile is T output pixels of one row (or of two
// rows, for narrow maps) x one block x one branch, T = 14 on avx512. The reduction runs over the
// kernel rows x `steps` input vectors per tap; inside a kernel row each input pixel is loaded (and
// shuffled) once and feeds every tap (kx, and the other tile row) that reads it, so stride and dilation
// are compile-time parameters (s in {1, 2}, m in {1, 2, 3}; other values use a generic tap-by-tap
// tile). How one input vector is formed depends on the group width gw (SKKind):
//   gw == 1                      vertical:  the block's own L input channels (depthwise), 1 step;
//   gw in {2, 4}                 in-lane:   the block's channels permuted within 128-bit lanes, gw steps;
//   gw < L, L % gw == 0 (gw = 8) cross:     the block's channels permuted across lanes, gw steps;
//   otherwise (gw = 16, 32, 3..) broadcast: one input channel per step to every lane, over the span of
//                                input channels the block's groups read (exactly gw when gw % L == 0).
// The channel layout stays the caller's natural NHWC order: the permutations live in the packed
// weights and a small per-step lane table. Weights are packed once per block as
// [branch][ky][step][kx][L] (zero where a lane has no such input), so one step loads 3 weight vectors.
// The input rows in use are copied, for a group of blocks at a time, into a small ring of compact rows
// ([chunk of L channels][pixel][L]): pixels are then L floats apart (no L1 set conflicts at C*4-byte
// strides, constant offsets in the unrolled tiles, zero-padded partial blocks) and each pixel's
// channels are read contiguously. Loop order: image -> block group (its weights and ring within about
// half of L2) -> pair of output rows -> block -> tile -> branch.
//
// Every ISA instantiates the shared tile kernel and driver (kernels/sk_branches_body.inc) with its own
// vector vocabulary in its own namespace (kernels/<isa>/grouped_conv.hpp); the ISA is chosen at run time
// (dispatch.hpp): PackedBranchWeights records the ISA it was packed for and sk_branches_conv3x3 runs
// that ISA's kernel.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// One SK Split step: M = `paths` branches of grouped 3x3 convolutions over the same input.
/// h, w are the unpadded input size; the input buffer is [n, h + 2*pad, w + 2*pad, c] with a zero
/// border of pad >= paths, or the dense input [n, h, w, c] with pad = 0. Requires c % groups == 0 and
/// stride >= 1.
struct SKBranchGeometry {
  dim_t n = 1, h = 0, w = 0, c = 0, groups = 1, paths = 2, stride = 1, pad = 2;
  dim_t oh() const { return (h - 1) / stride + 1; }
  dim_t ow() const { return (w - 1) / stride + 1; }
  dim_t padded_h() const { return h + 2 * pad; }
  dim_t padded_w() const { return w + 2 * pad; }
  dim_t group_width() const { return c / groups; }
  /// Multiply-adds of all branches.
  double macs() const { return double(paths) * double(n * oh() * ow()) * double(c) * double(group_width()) * 9.0; }
  double flops() const { return 2.0 * macs(); }
};

/// Channel ranges passed to sk_branches_conv3x3 start at multiples of this (and end at one, or at c).
inline constexpr dim_t kSKBranchChannelStep = 16;

/// Branches one kernel call computes at most.
inline constexpr dim_t kSKMaxPaths = 8;

/// Throws KernelError unless g is a valid geometry.
inline void validate(const SKBranchGeometry& g) {
  const auto fail = [](const char* what) { throw KernelError(std::string("SKBranchGeometry: ") + what); };
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1) fail("n, h, w and c must be >= 1");
  if (g.groups < 1 || g.c % g.groups != 0) fail("groups must divide c");
  if (g.paths < 1 || g.paths > kSKMaxPaths) fail("paths must be in 1..8");
  if (g.stride < 1) fail("stride must be >= 1");
  if (g.pad != 0 && g.pad < g.paths) fail("pad must be 0 (dense input) or >= paths (the largest dilation)");
}

namespace detail {

/// How a tile kernel forms the input vector of one reduction step (see the file comment).
enum class SKKind : int { kVertical = 0, kInLane = 1, kCross = 2, kBroadcast = 3 };

inline SKKind sk_kind(dim_t gw, dim_t lanes) {
  if (gw == 1) return SKKind::kVertical;
  if (gw < lanes && lanes % gw == 0) return gw <= 4 ? SKKind::kInLane : SKKind::kCross;
  return SKKind::kBroadcast;
}
/// Everything one register tile needs; built by sk_branches_run, read by an ISA tile kernel.
/// The input comes from a scratch copy of the input channels of a group of blocks, laid out per padded
/// input row as [chunk of L channels][pixel][L] (zero-padded past the last channel), so pixels are L
/// floats apart and a block's own L channels are one chunk.
struct SKTile {
  const float* const* rows = nullptr;  ///< rows[dy] (dy may be negative): the block's first chunk in the
                                       ///< scratch row of frame row oy*s + M + dy (oy: the
                                       ///< tile's first output row)
  dim_t col = 0;                 ///< frame column of the tile's first output pixel (ox0*s + M)
  dim_t chunk_stride = 0;        ///< floats between the channel chunks of a scratch row
  dim_t k0 = 0;                  ///< broadcast: the span's first channel, relative to the first chunk
  const float* wei = nullptr;    ///< this block and branch: [3 ky][steps][3 kx][L]
  const float* bias = nullptr;   ///< [L], zero-padded
  const std::int32_t* ctrl = nullptr;  ///< in-lane / cross: [steps][L] source lane of each lane
  dim_t steps = 0;               ///< reduction steps per tap
  dim_t dilation = 1, stride = 1;  ///< read by the generic tile only (the others have them built in)
  float* dst = nullptr;          ///< U_m at (n, oy, ox0, c0)
  dim_t dst_pix = 0, dst_row = 0;  ///< floats between output pixels (c) and rows (ow * c)
  float* sums = nullptr;         ///< channel_sums at (n, c0), or null
  int lanes = 0;                 ///< valid channels of the block, 1..L
};
using SKTileFn = void (*)(const SKTile&);

/// A list of tile widths (descending).
template <int... T>
struct SKWidths {};

/// The tile kernels one call uses: 2-row widths w2 (may be none), 1-row widths w1 (ending in 1),
/// and the kernel per (branch, width): fn2[m * n2 + i], fn1[m * n1 + i].
struct SKTilePlan {
  int w2[8] = {}, n2 = 0, w1[8] = {}, n1 = 0;
  SKTileFn fn2[8 * kSKMaxPaths] = {}, fn1[8 * kSKMaxPaths] = {};
};

}  // namespace detail

/// Vector lanes (channels per block) of `isa`'s SK branch kernels: 16 for avx512, 8 otherwise.
inline constexpr dim_t sk_branch_lanes(Isa isa) noexcept { return isa == Isa::avx512 ? 16 : 8; }

class PackedBranchWeights;
/// The kernel signature every ISA's SK branch kernels share (see sk_branches_conv3x3).
using SKBranchKernelFn = void (*)(const SKBranchGeometry& g, const float* src, const PackedBranchWeights& w,
                                  float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                  dim_t oy_begin, dim_t oy_end);

/// The Select step over a run of rows of one image: v[r][c] = sum_m a[m * c_count + c] * u[m][r * c_count + c]
/// for r in [0, rows), c in [0, c_count); u[m] points at the run's first row of branch m, a at the
/// image's attention [paths][c_count]. Rows are c_count floats apart in u and v.
using SKSelectKernelFn = void (*)(kernels::dim_t rows, kernels::dim_t c_count, kernels::dim_t paths, const float* a,
                                  const float* const* u, float* v);

inline namespace SKNET_KERNEL_ABI {
/// The SK branch kernel of `isa`. Requires cpu_supports(isa).
SKNET_KERNEL_ENTRY SKBranchKernelFn sk_branches_kernel(Isa isa) noexcept;
/// The Select kernel of `isa`. Requires cpu_supports(isa).
SKNET_KERNEL_ENTRY SKSelectKernelFn sk_select_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// The branch weights and biases of one SK Split step, packed once for one ISA's kernels (lanes: 16
/// for avx512, 8 otherwise) in 64-byte aligned memory; immutable once built. Per block of L output
/// channels and branch m: [3 ky][steps][3 kx][L] with steps = gw for gw < L dividing L (1 for depthwise)
/// and otherwise the width of the input-channel span the block reads; then biases [M][blocks * L].
class PackedBranchWeights {
 public:
  PackedBranchWeights() = default;
  /// weights[m]: PyTorch [c, c/groups, 3, 3] of branch m (dilation m + 1); bias[m]: [c] (BN folded in);
  /// packed for `isa` (default: active_isa()). Throws KernelError for an invalid geometry or an ISA
  /// this CPU lacks.
  PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights, const float* const* bias)
      : PackedBranchWeights(g, weights, bias, active_isa()) {}
  PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa);
  PackedBranchWeights(const PackedBranchWeights& o) { *this = o; }
  PackedBranchWeights& operator=(const PackedBranchWeights& o) {
    if (this == &o) return *this;
    isa_ = o.isa_, c_ = o.c_, groups_ = o.groups_, paths_ = o.paths_, lanes_ = o.lanes_, blocks_ = o.blocks_, kind_ = o.kind_;
    size_ = o.size_, bias_offset_ = o.bias_offset_;
    offset_ = o.offset_, steps_ = o.steps_, k0_ = o.k0_, ctrl_ = o.ctrl_;
    data_.reset();
    if (o.data_) {
      allocate(size_);
      std::memcpy(data_.get(), o.data_.get(), sizeof(float) * std::size_t(size_));
    }
    return *this;
  }
  PackedBranchWeights(PackedBranchWeights&&) noexcept = default;
  PackedBranchWeights& operator=(PackedBranchWeights&&) noexcept = default;

  bool empty() const noexcept { return !data_; }
  dim_t channels() const noexcept { return c_; }
  dim_t groups() const noexcept { return groups_; }
  dim_t paths() const noexcept { return paths_; }
  dim_t lanes() const noexcept { return lanes_; }
  /// The ISA whose kernels this layout is for.
  Isa isa() const noexcept { return isa_; }
  Precision precision() const noexcept { return Precision::f32; }
  PackedLayout layout() const noexcept { return {isa_, precision(), lanes_, reduction_group(precision())}; }
  dim_t blocks() const noexcept { return blocks_; }
  detail::SKKind kind() const noexcept { return kind_; }
  /// Floats of packed weights and biases.
  dim_t size() const noexcept { return size_; }
  /// Block b, branch m (0-based): [3][steps(b)][3][lanes()].
  const float* weights(dim_t b, dim_t m) const { return data_.get() + offset_[std::size_t(b)] + m * 9 * steps(b) * lanes_; }
  const float* bias(dim_t b, dim_t m) const { return data_.get() + bias_offset_ + (m * blocks_ + b) * lanes_; }
  dim_t steps(dim_t b) const { return steps_[std::size_t(b)]; }
  /// Broadcast kind: first input channel read by block b, relative to its first output channel.
  dim_t span_begin(dim_t b) const { return k0_[std::size_t(b)]; }
  /// In-lane / cross kinds: [steps][lanes] source lane (within the block) of each lane per step.
  const std::int32_t* lane_table() const { return ctrl_.empty() ? nullptr : ctrl_.data(); }

 private:
  struct AlignedDelete {
    void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
  };
  void allocate(dim_t n) {
    data_.reset(static_cast<float*>(::operator new[](sizeof(float) * std::size_t(std::max<dim_t>(n, 1)),
                                                     std::align_val_t(64))));
  }
  Isa isa_ = Isa::portable;
  dim_t c_ = 0, groups_ = 0, paths_ = 0, lanes_ = 0, blocks_ = 0, size_ = 0, bias_offset_ = 0;
  detail::SKKind kind_ = detail::SKKind::kBroadcast;
  std::vector<dim_t> offset_, steps_, k0_;
  std::vector<std::int32_t> ctrl_;
  std::unique_ptr<float[], AlignedDelete> data_;
};

// Each ISA: kSKBranchLanes and
//   sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end)
// taking a PackedBranchWeights with lanes() == kSKBranchLanes. Defined in kernels/<isa>/grouped_conv.hpp.

inline PackedBranchWeights::PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights,
                                                const float* const* bias, Isa isa) {
  validate(g);
  require_kernels(isa, Precision::f32, "PackedBranchWeights");
  const dim_t lanes = sk_branch_lanes(isa);
  isa_ = isa;
  const dim_t C = g.c, gw = g.group_width(), M = g.paths, L = lanes;
  c_ = C, groups_ = g.groups, paths_ = M, lanes_ = L;
  blocks_ = (C + L - 1) / L;
  kind_ = detail::sk_kind(gw, L);
  const bool permuted = kind_ == detail::SKKind::kInLane || kind_ == detail::SKKind::kCross;
  if (permuted) {  // step j: lane l reads input j of its own group
    ctrl_.resize(std::size_t(gw * L));
    for (dim_t j = 0; j < gw; ++j)
      for (dim_t l = 0; l < L; ++l) ctrl_[std::size_t(j * L + l)] = std::int32_t(l / gw * gw + j);
  }
  offset_.resize(std::size_t(blocks_));
  steps_.resize(std::size_t(blocks_));
  k0_.resize(std::size_t(blocks_));
  dim_t total = 0;
  for (dim_t b = 0; b < blocks_; ++b) {
    const dim_t c0 = b * L, last = std::min(c0 + L, C) - 1;
    dim_t steps = 1, k0 = 0;
    if (permuted) {
      steps = gw;
    } else if (kind_ == detail::SKKind::kBroadcast) {
      k0 = c0 / gw * gw - c0;
      steps = last / gw * gw + gw - (c0 + k0);
    }
    offset_[std::size_t(b)] = total;
    steps_[std::size_t(b)] = steps;
    k0_[std::size_t(b)] = k0;
    total += M * 9 * steps * L;
  }
  bias_offset_ = total;
  size_ = total + M * blocks_ * L;
  allocate(size_);
  float* p = data_.get();
  std::fill(p, p + size_, 0.0f);
  for (dim_t b = 0; b < blocks_; ++b) {
    const dim_t c0 = b * L, steps = steps_[std::size_t(b)];
    for (dim_t m = 0; m < M; ++m) {
      float* dst = p + offset_[std::size_t(b)] + m * 9 * steps * L;
      for (dim_t ky = 0; ky < 3; ++ky)
        for (dim_t j = 0; j < steps; ++j)
          for (dim_t kx = 0; kx < 3; ++kx)
            for (dim_t l = 0; l < L; ++l) {
              const dim_t oc = c0 + l;
              dim_t ic;  // the input channel lane l reads at step j
              switch (kind_) {
                case detail::SKKind::kVertical: ic = oc; break;
                case detail::SKKind::kBroadcast: ic = c0 + k0_[std::size_t(b)] + j; break;
                default: ic = c0 + ctrl_[std::size_t(j * L + l)]; break;
              }
              if (oc >= C) continue;
              const dim_t icg = ic - oc / gw * gw;  // index within oc's group
              if (ic >= C || icg < 0 || icg >= gw) continue;
              dst[((ky * steps + j) * 3 + kx) * L + l] = weights[m][((oc * gw + icg) * 3 + ky) * 3 + kx];
            }
      for (dim_t l = 0; l < L && c0 + l < C; ++l) p[bias_offset_ + (m * blocks_ + b) * L + l] = bias[m][c0 + l];
    }
  }
}

/// Computes output rows [oy_begin, oy_end) and channels [c_begin, c_end) of every image for all
/// branches with the kernel of the ISA `w` was packed for: dst[m] (m = 0..M-1, dilation m+1) is
/// U_{m+1} as [n, oh, ow, c]; channel_sums ([n, c] or null) += the sum over the computed pixels of
/// sum_m U_m (the caller zeroes it).
/// Requires: w packed from g; src_padded [n, h+2*pad, w+2*pad, c] with a zero border (or, with pad = 0,
/// the dense input [n, h, w, c]); c_begin a multiple of kSKBranchChannelStep (16); c_end one too, or c;
/// dst overlaps nothing else. Threads may run disjoint channel ranges concurrently and share
/// channel_sums; threads splitting rows need their own channel_sums. Every output is computed in the
/// same order whatever the ranges. ReLU propagates NaN (as PyTorch's does). After the first call with
/// a geometry on a thread, later calls allocate nothing.
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end) {
  sk_branches_kernel(w.isa())(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end);
}
/// All rows of channels [c_begin, c_end).
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end) {
  sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, c_begin, c_end, 0, g.oh());
}
/// Everything.
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums) {
  sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, 0, g.c, 0, g.oh());
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
