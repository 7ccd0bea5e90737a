// sknet kernels: the Split step of an SK convolution for float, all M branches in one call.
//
//   U_m[n, oy, ox, co] = act( bias_m[co] + residual[n, oy, ox, co]
//                             + sum_{ky,kx,j} X[n, oy*s + ky*D_m - r_m, ox*s + kx*D_m - r_m, in_m + g(co)*gwi + j]
//                                             * W_m[co, j, ky, kx] ),                    m = 1..M
//   channel_sums[n, co] += sum_{oy,ox} sum_m U_m[n, oy, ox, co]
//
// Branch m is a grouped k_m x k_m convolution with dilation D_m and padding r_m = D_m (k_m - 1) / 2
// (default 3x3 with D_m = m, the paper's dilated paths; true 5x5 and 7x7 kernels for its ablations;
// stride s; every branch has the same output size) from its input channels to C outputs: G groups, each from gwi = Cin_m / G input
// channels to gwo = C / G outputs (g(co) = co / gwo). Every branch reads the same Cin_m = Cin input
// channels (in_m = 0), or, with split_input, branch m reads its own slice of Cin_m = Cin / M channels
// (in_m = (m-1) * Cin / M, timm's SelectiveKernel split_input). M = 1 is a plain 3x3 convolution
// (ResNeXt's grouped middle, a ResNet basic block's convs, a deep stem's convs). act is ReLU or the
// identity and the residual is optional (SKBranchEpilogue). X is NHWC, either dense (pad = 0) or
// already zero-padded by pad >= max_m r_m on each side; the kernels read it only through the compact row
// copies below, which carry the zero border, so no tile checks bounds. The channel sums feed the
// global average pool of the Fuse step without re-reading U.
//
// Algorithm (all ISAs): channel-vectorised direct convolution. A vector holds one block of L output
// channels (L = 16 for avx512, 8 otherwise); a register tile is T output pixels of one row (or of two
// rows, for narrow maps) x NB blocks x one branch, T = 14 on avx512. The reduction runs over the
// kernel rows x `steps` input vectors per tap; inside a kernel row each input pixel is loaded (and
// shuffled) once and feeds every tap (kx, and the other tile row) that reads it, so stride, dilation
// and kernel size are compile-time parameters (s in {1, 2} with 3x3 kernels of dilation 1, 2, 3 and
// dense 5x5 and 7x7 kernels; other values use a generic tap-by-tap tile). How one input vector is formed depends on the group widths (SKKind):
//   gwi == gwo == 1                 vertical:  the block's own L input channels (depthwise), 1 step;
//   gwi == gwo in {2, 4}            in-lane:   the block's channels permuted within 128-bit lanes, gw steps;
//   gwi == gwo < L, L % gw == 0     cross:     the block's channels permuted across lanes, gw steps;
//   otherwise (gw = 16, 32, 3.., and every gwi != gwo, dense convolutions included)
//                                   broadcast: one input channel per step to every lane, over the span
//                                   of input channels the block's groups read (gwi when gwo % L == 0).
// When consecutive blocks read the same span (dense and wide-group convolutions: gwo >= 2L) a
// broadcast tile may cover NB of them, so each broadcast input feeds NB x 3 FMAs instead of 3 (the
// multi-block tile of the ISA's plan; NB x k_m for a k_m x k_m branch). Every tile accumulates an output in the same order (kernel row,
// step, kernel column), so the choice of tile never changes a result.
// The channel layout stays the caller's natural NHWC order: the permutations live in the packed
// weights and a small per-step lane table. Weights are packed once per block as
// [branch][ky][step][kx][L] (zero where a lane has no such input), so one step loads k_m weight vectors.
// The input rows in use are copied, for a group of blocks at a time, into a small ring of compact rows
// ([section][chunk of L channels][pixel][L]; one section, or one per branch with split_input): pixels
// are then L floats apart (no L1 set conflicts at Cin*4-byte strides, constant offsets in the unrolled
// tiles, zero-padded partial blocks) and each pixel's channels are read contiguously. Loop order:
// image -> block group (its weights and ring within about half of L2; depthwise over 4 blocks: of
// L1) -> pair of output rows -> block -> tile -> branch.
//
// Every ISA instantiates the shared tile kernel and driver (kernels/sk_branches_body.inc) with its own
// vector vocabulary in its own namespace (kernels/<isa>/grouped_conv.hpp); the ISA is chosen at run time
// (dispatch.hpp): PackedBranchWeights records the ISA it was packed for and sk_branches_conv3x3 runs
// that ISA's kernel.
#pragma once

#include <algorithm>
#include <array>
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

#include "sknet/kernels/aligned.hpp"
#include "sknet/kernels/bf16.hpp"

// SKNET_GENERIC_TILES=1 compiles every SK branch tile in its generic form (run-time stride, dilation
// and kernel size) instead of the forms specialised for them: the same results (every tile adds in the
// same order), several times less code. The sanitizer builds use it (clang's ASan took over 20 minutes
// on the specialised tiles); the release build and its tests run the specialised ones.
#ifndef SKNET_GENERIC_TILES
#define SKNET_GENERIC_TILES 0
#endif
#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// Branches one kernel call computes at most.
inline constexpr dim_t kSKMaxPaths = 8;

/// Largest kernel size of a branch (odd, 1..kSKMaxKernel).
inline constexpr dim_t kSKMaxKernel = 15;

/// One SK Split step: M = `paths` branches of grouped k_m x k_m convolutions with dilation D_m and
/// padding r_m = D_m (k_m - 1) / 2 (default: 3x3 with dilation m + 1 for branch m, the paper's
/// dilated paths; every branch has the same output size).
/// h, w are the unpadded input size; the input buffer is [n, h + 2*pad, w + 2*pad, in_channels()] with
/// a zero border of pad >= max_reach(), or the dense input [n, h, w, in_channels()] with pad = 0; every
/// output is [n, oh(), ow(), c]. Branch m reads input channels [path_in_begin(m), + path_in_channels())
/// in `groups` groups of in_group_width() channels, each feeding group_width() outputs.
/// Requires c % groups == 0, path_in_channels() % groups == 0 (with split_input, in_channels() % paths
/// == 0 first) and stride >= 1.
struct SKBranchGeometry {
  dim_t n = 1, h = 0, w = 0, c = 0, groups = 1, paths = 2, stride = 1, pad = 2;
  dim_t cin = 0;             ///< channels of the input buffer; 0 means c (the square SK convolution)
  bool split_input = false;  ///< branch m reads only channels [m * cin / paths, (m + 1) * cin / paths)
  /// Per branch: kernel size k_m (odd) and dilation D_m; 0 means the default, 3 and m + 1.
  std::array<dim_t, kSKMaxPaths> kernel{}, dilation{};
  /// Channels one branch reads from the start of each input pixel; 0 means the default (cin, or
  /// cin / paths with split_input). Lets one branch of a wider input run on its own (the caller
  /// offsets the input pointer to the branch's first channel).
  dim_t path_cin = 0;

  dim_t oh() const { return (h - 1) / stride + 1; }
  dim_t ow() const { return (w - 1) / stride + 1; }
  dim_t padded_h() const { return h + 2 * pad; }
  dim_t padded_w() const { return w + 2 * pad; }
  /// Output channels per group.
  dim_t group_width() const { return c / groups; }
  /// Channels of the input buffer (floats between its pixels).
  dim_t in_channels() const { return cin > 0 ? cin : c; }
  /// Input channels one branch reads.
  dim_t path_in_channels() const {
    return path_cin > 0 ? path_cin : split_input ? in_channels() / paths : in_channels();
  }
  /// The first input channel branch m (0-based) reads.
  dim_t path_in_begin(dim_t m) const { return split_input ? m * path_in_channels() : 0; }
  /// Input channels per group of one branch.
  dim_t in_group_width() const { return path_in_channels() / groups; }
  /// k_m, D_m and the reach (padding) D_m (k_m - 1) / 2 of branch m (0-based).
  dim_t path_kernel(dim_t m) const { return kernel[std::size_t(m)] > 0 ? kernel[std::size_t(m)] : 3; }
  dim_t path_dilation(dim_t m) const { return dilation[std::size_t(m)] > 0 ? dilation[std::size_t(m)] : m + 1; }
  dim_t path_reach(dim_t m) const { return path_dilation(m) * (path_kernel(m) - 1) / 2; }
  /// The largest reach of the branches (the zero border the kernels need around the input).
  dim_t max_reach() const {
    dim_t r = 0;
    for (dim_t m = 0; m < paths && m < kSKMaxPaths; ++m) r = std::max(r, path_reach(m));
    return r;
  }
  /// Kernel taps of all branches, sum_m k_m^2.
  dim_t taps() const {
    dim_t t = 0;
    for (dim_t m = 0; m < paths && m < kSKMaxPaths; ++m) t += path_kernel(m) * path_kernel(m);
    return t;
  }
  /// Multiply-adds of all branches.
  double macs() const { return double(n * oh() * ow()) * double(c) * double(in_group_width()) * double(taps()); }
  double flops() const { return 2.0 * macs(); }
};

/// What sk_branches_conv3x3 does to each output after the convolution, in this order: + bias (packed
/// with the weights), + residual, ReLU; then the channel sums (an argument of their own) add it up.
/// (bias + residual is the accumulators' starting value, as in the pointwise kernels.)
struct SKBranchEpilogue {
  bool relu = true;                 ///< false: no activation (e.g. a ResNet basic block's conv2)
  const float* residual = nullptr;  ///< [n, oh, ow, c] (dst's layout) added to every branch, or null;
                                    ///< may be dst[0] itself when paths == 1 (in-place add)
  /// The bf16 kernels only (kernels/sk_branches_bf16.hpp; the float kernels throw KernelError): dst[m]
  /// holds bf16 values, each output rounded to nearest even after it is added to the channel sums.
  bool bf16_out = false;
  /// The bf16 kernels only (the float kernels throw KernelError): `residual` holds bf16 values (its
  /// offsets count bf16 values), widened exactly as they are added; may be dst[0] with bf16_out.
  bool bf16_residual = false;
};

/// Channel ranges passed to sk_branches_conv3x3 start at multiples of this (and end at one, or at c).
inline constexpr dim_t kSKBranchChannelStep = 16;

/// Throws KernelError unless g is a valid geometry.
inline void validate(const SKBranchGeometry& g) {
  const auto fail = [](const char* what) { throw KernelError(std::string("SKBranchGeometry: ") + what); };
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1) fail("n, h, w and c must be >= 1");
  if (g.cin < 0) fail("cin must be >= 0 (0: the same as c)");
  if (g.groups < 1 || g.c % g.groups != 0) fail("groups must divide c");
  if (g.paths < 1 || g.paths > kSKMaxPaths) fail("paths must be in 1..8");
  if (g.split_input && g.in_channels() % g.paths != 0) fail("with split_input, paths must divide cin");
  if (g.path_cin < 0 || g.path_cin > g.in_channels()) fail("path_cin must be in 0..cin");
  if (g.path_cin > 0 && g.split_input) fail("path_cin and split_input exclude each other");
  if (g.path_in_channels() < 1 || g.path_in_channels() % g.groups != 0)
    fail("groups must divide the input channels of a path");
  if (g.stride < 1) fail("stride must be >= 1");
  for (dim_t m = 0; m < g.paths; ++m) {
    const dim_t k = g.path_kernel(m), d = g.path_dilation(m);
    if (k < 1 || k > kSKMaxKernel || k % 2 == 0) fail("branch kernel sizes must be odd, 1..15");
    if (d < 1 || d > 64) fail("branch dilations must be in 1..64");
  }
  if (g.pad != 0 && g.pad < g.max_reach())
    fail("pad must be 0 (dense input) or >= the largest reach D (k - 1) / 2 of the branches");
}

/// Whether sk_branches_conv3x3 may write its output over its input (dst[0] == src_padded) for geometry
/// g: one path over a dense input (pad 0) of as many channels as it outputs (no split or partial input),
/// stride 1, and a group width that divides 8 or is a multiple of 16, so that the input channels every
/// block of outputs reads are its own or stay with it in a block group (for 8- and 16-lane vectors).
/// The driver copies every input row it reads into its ring of rows before any output row is written
/// over it and never reads a source row twice, so each output lands on input the call no longer
/// needs. (ResNeXt's grouped 3x3s of stride 1 run so: one activation buffer less per block, and the
/// stores find their lines in cache.)
inline bool sk_branches_may_run_in_place(const SKBranchGeometry& g) {
  const dim_t gw = g.group_width();
  return g.paths == 1 && g.pad == 0 && g.stride == 1 && !g.split_input && g.in_channels() == g.c &&
         g.path_in_channels() == g.c && (8 % gw == 0 || gw % 16 == 0);
}

/// The same for a call on channels [c_begin, c_end) and output rows [oy_begin, oy_end) with epilogue
/// e: all rows, the channel range's ends on group boundaries (so it reads only its own input channels),
/// no residual and float outputs.
inline bool sk_branches_in_place_ok(const SKBranchGeometry& g, dim_t c_begin, dim_t c_end, dim_t oy_begin,
                                    dim_t oy_end, const SKBranchEpilogue& e) {
  const dim_t gw = g.group_width();
  return sk_branches_may_run_in_place(g) && oy_begin == 0 && oy_end == g.oh() && c_begin % gw == 0 &&
         c_end % gw == 0 && e.residual == nullptr && !e.bf16_out;
}

namespace detail {

/// Throws KernelError when an output of sk_branches_conv3x3 (float) overlaps its input, unless the call
/// may run in place (sk_branches_in_place_ok, dst[0] == src exactly).
inline void require_sk_no_overlap(const SKBranchGeometry& g, const float* src, const float* const* dst, dim_t c_begin,
                                  dim_t c_end, dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& e) {
  // The input read: every pixel's cin floats, but only the first path_cin of the last (a path of a
  // wider input starts at its offset into the pixel).
  const dim_t src_pixels = g.n * g.padded_h() * g.padded_w();
  const dim_t src_floats = (src_pixels - 1) * g.in_channels() + (g.path_cin > 0 ? g.path_cin : g.in_channels());
  const std::size_t dst_bytes = sizeof(float) * std::size_t(g.n * g.oh() * g.ow() * g.c);
  const auto s0 = reinterpret_cast<std::uintptr_t>(src), s1 = s0 + sizeof(float) * std::size_t(src_floats);
  for (dim_t m = 0; m < g.paths; ++m) {
    const auto d0 = reinterpret_cast<std::uintptr_t>(dst[m]), d1 = d0 + dst_bytes;
    if (d0 >= s1 || s0 >= d1) continue;
    if (m == 0 && d0 == s0 && sk_branches_in_place_ok(g, c_begin, c_end, oy_begin, oy_end, e)) continue;
    throw KernelError("sk_branches_conv3x3: output " + std::to_string(m) +
                      " overlaps the input; only one path of stride 1 over a dense input of as many channels, "
                      "all rows, channel ranges on group boundaries and no residual may write over its input "
                      "exactly (sk_branches_in_place_ok)");
  }
}

/// How a tile kernel forms the input vector of one reduction step (see the file comment).
enum class SKKind : int { kVertical = 0, kInLane = 1, kCross = 2, kBroadcast = 3 };

/// The kind for input and output group widths gwi, gwo and `lanes`-wide vectors.
inline SKKind sk_kind(dim_t gwi, dim_t gwo, dim_t lanes) {
  if (gwi != gwo) return SKKind::kBroadcast;
  if (gwo == 1) return SKKind::kVertical;
  if (gwo < lanes && lanes % gwo == 0) return gwo <= 4 ? SKKind::kInLane : SKKind::kCross;
  return SKKind::kBroadcast;
}

/// Everything one register tile needs; built by sk_branches_run, read by an ISA tile kernel.
/// The input comes from a scratch copy of the input channels of a group of blocks, laid out per padded
/// input row as [chunk of L channels][pixel][L] (zero-padded past the last channel), so pixels are L
/// floats apart and a block's own L channels are one chunk. A tile of NB blocks covers consecutive
/// blocks that read the same input span: block k's weights are at wei + k * wei_block, its bias, output,
/// residual and sums L floats after block k - 1's.
struct SKTile {
  const float* const* rows = nullptr;  ///< rows[dy] (dy may be negative): the block's first chunk in the
                                       ///< scratch row of frame row oy*s + M + dy (oy: the
                                       ///< tile's first output row)
  dim_t col = 0;                 ///< frame column of the tile's first output pixel (ox0*s + M)
  dim_t chunk_stride = 0;        ///< floats between the channel chunks of a scratch row
  dim_t k0 = 0;                  ///< broadcast: the span's first channel, relative to the first chunk
  const float* wei = nullptr;    ///< this block and branch: [k ky][steps][k kx][L]
  dim_t wei_block = 0;           ///< multi-block tiles: floats between consecutive blocks' weights
  const float* bias = nullptr;   ///< [L], zero-padded
  const float* scale = nullptr;  ///< quantized vocabularies: [L] dequantizing scales (input x weight)
  const std::int32_t* ctrl = nullptr;  ///< in-lane / cross: [steps][L] source lane of each lane
  dim_t steps = 0;               ///< reduction steps per tap
  dim_t dilation = 1, stride = 1, kernel = 3;  ///< read by the generic tile only (the others have them
                                               ///< built in)
  float* dst = nullptr;          ///< U_m at (n, oy, ox0, c0)
  const float* res = nullptr;    ///< the residual at (n, oy, ox0, c0), or null
  dim_t dst_pix = 0, dst_row = 0;  ///< floats between output pixels (c) and rows (ow * c), also of res
  float* sums = nullptr;         ///< the block's running channel sums (whole aligned vectors of L floats
                                 ///< per block, added to channel_sums by the driver), or null
  bool relu = true;              ///< ReLU after bias + residual + convolution
  bool bf16_out = false;         ///< pair vocabularies: dst is bf16 (offsets count bf16 values)
  bool bf16_res = false;         ///< pair vocabularies: res is bf16 (offsets count bf16 values)
  int lanes = 0;                 ///< valid channels of the (last) block, 1..L
  dim_t span = 1;                ///< tiles the call runs side by side, T pixels apart (dst, res and col
                                 ///< above are the first's)
  dim_t span_rows = 1;           ///< 1-row tiles: consecutive output rows the call runs them on (rows,
                                 ///< dst and res above are the first row's)
};
using SKTileFn = void (*)(const SKTile&);

/// A list of tile widths (descending).
template <int... T>
struct SKWidths {};

/// A multi-block tile: NB blocks x T pixels of one row (NB = 1: none).
template <int NB = 1, int T = 0>
struct SKBlocks {};

/// The tile kernels one call uses: 2-row widths w2 (may be none), 1-row widths w1 (ending in 1),
/// and the kernel per (branch, width): fn2[m * n2 + i], fn1[m * n1 + i]; with nb > 1, also the
/// 1-row tile of nb blocks x wnb pixels per branch, fnb[m], for blocks that share their input span,
/// and the 1-row tile of one block x wnb pixels, fnb1[m], which covers the same pixels of the other
/// blocks (so that every block's channel sums add the same pieces of rows in the same order).
struct SKTilePlan {
  int w2[8] = {}, n2 = 0, w1[8] = {}, n1 = 0, nb = 1, wnb = 0;
  SKTileFn fn2[8 * kSKMaxPaths] = {}, fn1[8 * kSKMaxPaths] = {}, fnb[kSKMaxPaths] = {}, fnb1[kSKMaxPaths] = {};
};

}  // namespace detail

/// Vector lanes (channels per block) of `isa`'s SK branch kernels: 16 for avx512, 8 otherwise.
inline constexpr dim_t sk_branch_lanes(Isa isa) noexcept { return isa == Isa::avx512 ? 16 : 8; }

class PackedBranchWeights;
/// The kernel signature every ISA's SK branch kernels share (see sk_branches_conv3x3).
using SKBranchKernelFn = void (*)(const SKBranchGeometry& g, const float* src, const PackedBranchWeights& w,
                                  float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                  dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue);

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

namespace detail {

/// What the packed branch weights of one SK Split step hold, float (PackedBranchWeights), bf16
/// (PackedBranchWeightsBf16) or int8 (PackedBranchWeightsInt8): 64-byte aligned 32-bit words, per block
/// of L output channels and branch m [k_m ky][steps][k_m kx][L] (a word is a weight, or the bf16 pair
/// or s8 quad of weights of `group` = 2 or 4 consecutive input channels, zero where the lane's group
/// has no such input), then float biases
/// [M][blocks * L]. Steps, spans and lane tables count words (the kernel's reduction elements).
/// Immutable once built.
class SKBranchPacking {
 public:
  bool empty() const noexcept { return !data_; }
  dim_t channels() const noexcept { return shape_.c; }
  /// Channels of the input buffer and whether each branch reads its own slice (SKBranchGeometry).
  dim_t in_channels() const noexcept { return shape_.cin; }
  bool split_input() const noexcept { return shape_.split; }
  dim_t groups() const noexcept { return shape_.groups; }
  dim_t paths() const noexcept { return shape_.paths; }
  dim_t lanes() const noexcept { return shape_.lanes; }
  /// The ISA whose kernels this layout is for.
  Isa isa() const noexcept { return shape_.isa; }
  dim_t blocks() const noexcept { return shape_.blocks; }
  SKKind kind() const noexcept { return shape_.kind; }
  /// Words of packed weights and biases.
  dim_t size() const noexcept { return shape_.size; }
  /// Kernel size of branch m.
  dim_t kernel(dim_t m) const { return kernel_[std::size_t(m)]; }
  /// Block b, branch m (0-based): [kernel(m)][steps(b)][kernel(m)][lanes()] words (typed float: the
  /// shared driver only moves them).
  const float* weights(dim_t b, dim_t m) const {
    return data_.get() + offset_[std::size_t(b)] + taps_before_[std::size_t(m)] * steps(b) * shape_.lanes;
  }
  const float* bias(dim_t b, dim_t m) const {
    return data_.get() + shape_.bias_offset + (m * shape_.blocks + b) * shape_.lanes;
  }
  /// Reduction words per tap of block b.
  dim_t steps(dim_t b) const { return steps_[std::size_t(b)]; }
  /// The input words block b reads, [span_begin(b), span_end(b)), counted within a branch's input
  /// (the broadcast kind: its groups' inputs; the others: the block's own channels).
  dim_t span_begin(dim_t b) const { return span_begin_[std::size_t(b)]; }
  dim_t span_end(dim_t b) const {
    return shape_.kind == SKKind::kBroadcast ? span_begin(b) + steps(b)
                                             : std::min(span_begin(b) + shape_.lanes / shape_.group, shape_.c / shape_.group);
  }
  /// Consecutive blocks that read the same span (the broadcast kind with gwo a multiple of lanes()),
  /// which a multi-block tile may cover together; 1 otherwise.
  dim_t blocks_per_span() const noexcept {
    const dim_t gwo = shape_.c / std::max<dim_t>(shape_.groups, 1);
    return shape_.kind == SKKind::kBroadcast ? std::max<dim_t>(1, gwo / std::max<dim_t>(shape_.lanes, 1)) : 1;
  }
  /// In-lane / cross kinds: [steps][lanes] source word (within the block's) of each lane per step.
  const std::int32_t* lane_table() const { return ctrl_.empty() ? nullptr : ctrl_.data(); }

 protected:
  SKBranchPacking() = default;
  SKBranchPacking(const SKBranchPacking& o) { *this = o; }
  SKBranchPacking& operator=(const SKBranchPacking& o) {
    if (this == &o) return *this;
    shape_ = o.shape_;
    offset_ = o.offset_, steps_ = o.steps_, span_begin_ = o.span_begin_, ctrl_ = o.ctrl_;
    kernel_ = o.kernel_, taps_before_ = o.taps_before_;
    data_.reset();
    if (o.data_) {
      data_ = allocate_aligned<float>(std::size_t(shape_.size));
      std::memcpy(data_.get(), o.data_.get(), sizeof(float) * std::size_t(shape_.size));
    }
    return *this;
  }
  SKBranchPacking(SKBranchPacking&&) noexcept = default;
  SKBranchPacking& operator=(SKBranchPacking&&) noexcept = default;

  /// Lays out and fills the packing of g's branches (weights[m]: PyTorch [c, path_in_channels / groups,
  /// k_m, k_m]; bias[m]: [c]) for `lanes`-wide blocks of `group` input channels per word and tile kind
  /// `kind`; word(v) makes the bits of the word of the `group` weights v (0 where a lane's group has no
  /// such input).
  template <class Word>
  void pack(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa, dim_t lanes,
            dim_t group, SKKind kind, Word word);

 private:
  struct Shape {
    Isa isa = Isa::portable;
    dim_t c = 0, cin = 0, groups = 0, paths = 0, lanes = 0, group = 1, blocks = 0, size = 0, bias_offset = 0;
    bool split = false;
    SKKind kind = SKKind::kBroadcast;
  } shape_;
  std::vector<dim_t> offset_, steps_, span_begin_;
  std::vector<std::int32_t> ctrl_;
  std::array<dim_t, kSKMaxPaths> kernel_{}, taps_before_{};  // k_m; sum of k^2 over the branches before m
  AlignedArray<float> data_;
};

template <class Word>
void SKBranchPacking::pack(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa,
                           dim_t lanes, dim_t group, SKKind kind, Word word) {
  const dim_t L = lanes, G = group;
  const dim_t C = g.c, gwo = g.group_width(), gwi = g.in_group_width(), cin = g.path_in_channels(), M = g.paths;
  Shape& sh = shape_;
  sh.isa = isa, sh.c = C, sh.cin = g.in_channels(), sh.split = g.split_input;
  sh.groups = g.groups, sh.paths = M, sh.lanes = L, sh.group = G;
  sh.blocks = (C + L - 1) / L;
  sh.kind = kind;
  const dim_t taps = g.taps();
  for (dim_t m = 0, before = 0; m < M; ++m) {
    kernel_[std::size_t(m)] = g.path_kernel(m);
    taps_before_[std::size_t(m)] = before;
    before += g.path_kernel(m) * g.path_kernel(m);
  }
  const bool permuted = kind == SKKind::kInLane || kind == SKKind::kCross;
  if (permuted) {  // step j: lane l reads word j of its own group
    ctrl_.resize(std::size_t(gwo / G * L));
    for (dim_t j = 0; j < gwo / G; ++j)
      for (dim_t l = 0; l < L; ++l) ctrl_[std::size_t(j * L + l)] = std::int32_t(l / gwo * (gwo / G) + j);
  }
  offset_.resize(std::size_t(sh.blocks));
  steps_.resize(std::size_t(sh.blocks));
  span_begin_.resize(std::size_t(sh.blocks));
  dim_t total = 0;
  for (dim_t b = 0; b < sh.blocks; ++b) {
    const dim_t c0 = b * L, last = std::min(c0 + L, C) - 1;
    dim_t steps = permuted ? gwo / G : 1, begin = c0 / G;
    if (kind == SKKind::kBroadcast) {  // the inputs of groups c0 / gwo .. last / gwo
      begin = c0 / gwo * gwi / G;
      steps = (last / gwo + 1) * gwi / G - begin;
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
  float v[4];
  assert(G <= 4);
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
              for (dim_t e = 0; e < G; ++e) {
                dim_t ic;  // the input channel (of the branch's input) element e of lane l reads at step j
                switch (kind) {
                  case SKKind::kVertical: ic = oc; break;
                  case SKKind::kBroadcast: ic = G * (span_begin_[std::size_t(b)] + j) + e; break;
                  default: ic = G * (c0 / G + ctrl_[std::size_t(j * L + l)]) + e; break;
                }
                const dim_t icg = ic - oc / gwo * gwi;  // index within oc's group
                v[e] = ic < cin && icg >= 0 && icg < gwi ? weights[m][((oc * gwi + icg) * k + ky) * k + kx] : 0.0f;
              }
              const std::uint32_t bits = word(v);
              std::memcpy(dst + ((ky * steps + j) * k + kx) * L + l, &bits, sizeof bits);
            }
      for (dim_t l = 0; l < L && c0 + l < C; ++l) p[sh.bias_offset + (m * sh.blocks + b) * L + l] = bias[m][c0 + l];
    }
  }
}

}  // namespace detail

/// The branch weights and biases of one SK Split step, packed once for one ISA's float kernels (lanes:
/// 16 for avx512, 8 otherwise; detail::SKBranchPacking with a float per word): steps = gw for gw < L
/// dividing L (1 for depthwise) and otherwise the width of the input-channel span the block reads.
class PackedBranchWeights : public detail::SKBranchPacking {
 public:
  PackedBranchWeights() = default;
  /// weights[m]: PyTorch [c, path_in_channels / groups, k_m, k_m] of branch m (g.path_kernel(m)); bias[m]:
  /// [c] (BN folded in); packed for `isa` (default: active_isa()). Throws KernelError for an invalid
  /// geometry or an ISA this CPU lacks.
  PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights, const float* const* bias)
      : PackedBranchWeights(g, weights, bias, active_isa()) {}
  PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights, const float* const* bias, Isa isa) {
    validate(g);
    require_kernels(isa, Precision::f32, "PackedBranchWeights");
    const dim_t L = sk_branch_lanes(isa);
    pack(g, weights, bias, isa, L, 1, detail::sk_kind(g.in_group_width(), g.group_width(), L),
         [](const float* v) {
           std::uint32_t bits;
           std::memcpy(&bits, v, sizeof bits);
           return bits;
         });
  }
  Precision precision() const noexcept { return Precision::f32; }
  PackedLayout layout() const noexcept { return {isa(), precision(), lanes(), reduction_group(precision())}; }
};

// Each ISA: kSKBranchLanes and
//   sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue)
// taking a PackedBranchWeights with lanes() == kSKBranchLanes. Defined in kernels/<isa>/grouped_conv.hpp.

/// Computes output rows [oy_begin, oy_end) and channels [c_begin, c_end) of every image for all
/// branches with the kernel of the ISA `w` was packed for: dst[m] (m = 0..M-1, dilation m+1) is
/// U_{m+1} as [n, oh, ow, c] after the epilogue (default: ReLU, no residual); channel_sums ([n, c] or
/// null) += the sum over the computed pixels of sum_m U_m (the caller zeroes it).
/// Requires: w packed from g (the same c, cin, split_input, groups, paths); src_padded
/// [n, h+2*pad, w+2*pad, in_channels] with a zero border (or, with pad = 0, the dense input
/// [n, h, w, in_channels]); c_begin a multiple of kSKBranchChannelStep (16); c_end one too, or c;
/// dst overlaps nothing else (but see SKBranchEpilogue::residual), except that dst[0] may be src_padded
/// itself where sk_branches_in_place_ok holds (each thread then runs whole groups; an output that
/// overlaps the input otherwise: KernelError). Threads may run disjoint channel
/// ranges concurrently and share channel_sums; threads splitting rows need their own channel_sums.
/// Every output is computed in the same order whatever the ranges. ReLU propagates NaN (as PyTorch's
/// does). After the first call with a geometry on a thread, later calls allocate nothing.
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue = {}) {
  detail::require_sk_no_overlap(g, src_padded, dst, c_begin, c_end, oy_begin, oy_end, epilogue);
  sk_branches_kernel(w.isa())(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
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
