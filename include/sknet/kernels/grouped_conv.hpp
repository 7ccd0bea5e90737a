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
// The instruction set is chosen at compile time from the including translation unit's flags:
// __AVX512F__ -> avx512, __AVX2__ && __FMA__ -> avx2, else portable C++. Every ISA namespace compiled
// in stays callable directly with a PackedBranchWeights packed for its lane count.
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

/// Throws std::invalid_argument unless g is a valid geometry.
inline void validate(const SKBranchGeometry& g) {
  const auto fail = [](const char* what) { throw std::invalid_argument(std::string("SKBranchGeometry: ") + what); };
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.c < 1) fail("n, h, w and c must be >= 1");
  if (g.groups < 1 || g.c % g.groups != 0) fail("groups must divide c");
  if (g.paths < 1) fail("paths must be >= 1");
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

/// Calls f(std::integral_constant<int, B>) ... f(std::integral_constant<int, B+N-1>), fully unrolled.
template <int B, class F, int... I>
inline __attribute__((always_inline)) void sk_static_for(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, B + I>{}), ...);
}
template <int N, int B = 0, class F>
inline __attribute__((always_inline)) void sk_static_for(F&& f) {
  sk_static_for<B>(f, std::make_integer_sequence<int, N>{});
}

/// Hides p's value from the optimiser, so that loads through it are not hoisted out of a loop
/// (g++ would otherwise keep every input pixel of a tile row live across the steps and spill).
inline __attribute__((always_inline)) void sk_opaque(const float*& p) {
#if defined(__GNUC__)
  __asm__("" : "+r"(p));
#else
  (void)p;
#endif
}

/// One tile of R output rows x T pixels x L channels of one branch. `Ops` is the ISA's vector
/// vocabulary (vec, mask_t, ctrl_t, lanes, zero, load, loadu, store, load_masked, store_masked,
/// broadcast, load_ctrl, permute_inlane, permute_cross, fma, add, relu, make_mask). S, D = stride and
/// dilation; S == 0 selects the generic tap-by-tap loop with runtime stride and dilation.
template <class Ops, SKKind Kind, int T, int R, int S, int D>
struct SKTileKernel {
  using V = typename Ops::vec;
  static constexpr int L = Ops::lanes;
  static constexpr bool kPermuted = Kind == SKKind::kInLane || Kind == SKKind::kCross;

  /// The input vector of step j at pixel p (from step_base(row, j)).
  static inline __attribute__((always_inline)) V input(const float* p, typename Ops::ctrl_t ctrl) {
    if constexpr (Kind == SKKind::kVertical) {
      (void)ctrl;
      return Ops::load(p);
    } else if constexpr (Kind == SKKind::kInLane) {
      return Ops::permute_inlane(Ops::load(p), ctrl);
    } else if constexpr (Kind == SKKind::kCross) {
      return Ops::permute_cross(Ops::load(p), ctrl);
    } else {
      (void)ctrl;
      return Ops::broadcast(p);
    }
  }
  /// Where step j reads pixel 0 of a scratch row (the broadcast kind: its channel in its chunk).
  static inline __attribute__((always_inline)) const float* step_base(const float* row, dim_t j, dim_t cs,
                                                                      dim_t k0) {
    if constexpr (Kind == SKKind::kBroadcast) return row + (k0 + j) / L * cs + (k0 + j) % L;
    (void)j, (void)cs, (void)k0;
    return row;
  }
  static inline __attribute__((always_inline)) typename Ops::ctrl_t ctrl_at(const SKTile& t, dim_t j) {
    if constexpr (kPermuted) return Ops::load_ctrl(t.ctrl + j * L);
    (void)t, (void)j;
    return typename Ops::ctrl_t{};
  }
  /// Kernel row of output row r that reads input row dy, or -1.
  static constexpr int ky_of(int r, int dy) {
    const int q = dy - r * S;
    return q % D == 0 && q / D >= -1 && q / D <= 1 ? q / D + 1 : -1;
  }
  /// Whether input pixel ix (column col - D + ix) feeds output pixel (ix - kx*D) / S for tap kx.
  static constexpr int t_of(int ix, int kx) {
    const int ts = ix - kx * D;
    return ts >= 0 && ts % S == 0 && ts / S < T ? ts / S : -1;
  }

  static constexpr bool reads_row(int dy) {
    for (int r = 0; r < R; ++r)
      if (ky_of(r, dy) >= 0) return true;
    return false;
  }
  static constexpr bool reads_pixel(int dy, int ix) {
    for (int r = 0; r < R; ++r)
      for (int kx = 0; kx < 3; ++kx)
        if (ky_of(r, dy) >= 0 && t_of(ix, kx) >= 0) return true;
    return false;
  }

  __attribute__((flatten)) static void run(const SKTile& t) {
    const dim_t steps = t.steps, cs = t.chunk_stride;
    V acc[R][T];
    {
      const V b = Ops::load(t.bias);
      sk_static_for<R>([&](auto r) { sk_static_for<T>([&](auto i) { acc[r][i] = b; }); });
    }
    if constexpr (S > 0) {
      // Every input row dy the tile reads, once: for each step, each input pixel is formed once and
      // feeds every (output row, kernel row, kx) that reads it.
      constexpr int NIX = (T - 1) * S + 2 * D + 1;
      sk_static_for<(R - 1) * S + 2 * D + 1, -D>([&](auto dyc) {
        constexpr int dy = decltype(dyc)::value;
        if constexpr (reads_row(dy)) {
          const float* row0 = t.rows[dy] + (t.col - D) * L;
          for (dim_t j = 0; j < steps; ++j) {
            const float* row = step_base(row0, j, cs, t.k0);
            sk_opaque(row);
            V w[R][3];
            sk_static_for<R>([&](auto r) {
              constexpr int ky = ky_of(decltype(r)::value, dy);
              if constexpr (ky >= 0) {
                const float* wp = t.wei + (ky * steps + j) * 3 * L;
                sk_static_for<3>([&](auto kx) { w[r][kx] = Ops::load(wp + kx * L); });
              }
            });
            const auto ctrl = ctrl_at(t, j);
            sk_static_for<NIX>([&](auto ixc) {
              constexpr int ix = decltype(ixc)::value;
              if constexpr (reads_pixel(dy, ix)) {
                const V in = input(row + ix * L, ctrl);
                sk_static_for<R>([&](auto r) {
                  if constexpr (ky_of(decltype(r)::value, dy) >= 0) {
                    sk_static_for<3>([&](auto kx) {
                      constexpr int i = t_of(ix, decltype(kx)::value);
                      if constexpr (i >= 0) acc[r][i] = Ops::fma(in, w[r][kx], acc[r][i]);
                    });
                  }
                });
              }
            });
          }
        }
      });
    } else {
      const dim_t d = t.dilation, s = t.stride;
      for (int r = 0; r < R; ++r)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const float* base = t.rows[r * s + (ky - 1) * d] + (t.col + (kx - 1) * d) * L;
            const float* wp = t.wei + (ky * steps * 3 + kx) * L;
            for (dim_t j = 0; j < steps; ++j, wp += 3 * L) {
              const V wk = Ops::load(wp);
              const auto ctrl = ctrl_at(t, j);
              const float* bj = step_base(base, j, cs, t.k0);
              sk_static_for<T>([&](auto i) { acc[r][i] = Ops::fma(input(bj + i * s * L, ctrl), wk, acc[r][i]); });
            }
          }
    }
    const auto mask = Ops::make_mask(t.lanes);
    V sum = Ops::zero();
    sk_static_for<R>([&](auto r) {
      sk_static_for<T>([&](auto i) {
        const V u = Ops::relu(acc[r][i]);
        Ops::store_masked(t.dst + r * t.dst_row + i * t.dst_pix, mask, u);
        sum = Ops::add(sum, u);
      });
    });
    if (t.sums) Ops::store_masked(t.sums, mask, Ops::add(Ops::load_masked(t.sums, mask), sum));
  }
};

/// The tile kernel for (kind, stride, dilation): specialised for s in {1, 2} and d in {1, 2, 3},
/// generic otherwise.
template <class Ops, SKKind Kind, int T, int R>
SKTileFn sk_tile_for(dim_t s, dim_t d) {
  if (s == 1 && d == 1) return &SKTileKernel<Ops, Kind, T, R, 1, 1>::run;
  if (s == 1 && d == 2) return &SKTileKernel<Ops, Kind, T, R, 1, 2>::run;
  if (s == 1 && d == 3) return &SKTileKernel<Ops, Kind, T, R, 1, 3>::run;
  if (s == 2 && d == 1) return &SKTileKernel<Ops, Kind, T, R, 2, 1>::run;
  if (s == 2 && d == 2) return &SKTileKernel<Ops, Kind, T, R, 2, 2>::run;
  if (s == 2 && d == 3) return &SKTileKernel<Ops, Kind, T, R, 2, 3>::run;
  return &SKTileKernel<Ops, Kind, T, R, 0, 0>::run;
}
template <class Ops, int T, int R>
SKTileFn sk_tile_for(SKKind kind, dim_t s, dim_t d) {
  switch (kind) {
    case SKKind::kVertical: return sk_tile_for<Ops, SKKind::kVertical, T, R>(s, d);
    case SKKind::kInLane: return sk_tile_for<Ops, SKKind::kInLane, T, R>(s, d);
    case SKKind::kCross: return sk_tile_for<Ops, SKKind::kCross, T, R>(s, d);
    default: return sk_tile_for<Ops, SKKind::kBroadcast, T, R>(s, d);
  }
}

/// A list of tile widths (descending).
template <int... T>
struct SKWidths {};

/// The tile kernels one call uses: 2-row widths w2 (may be none), 1-row widths w1 (ending in 1),
/// and the kernel per (branch, width): fn2[m * n2 + i], fn1[m * n1 + i].
struct SKTilePlan {
  int w2[8] = {}, n2 = 0, w1[8] = {}, n1 = 0;
  std::vector<SKTileFn> fn2, fn1;
};

/// Kernel pickers: Pick::get<T, R>(s, d).
template <class Ops, SKKind Kind>
struct SKPickDirect {
  template <int T, int R>
  static SKTileFn get(dim_t s, dim_t d) { return sk_tile_for<Ops, Kind, T, R>(s, d); }
};
template <class Pick, int... W2, int... W1>
SKTilePlan sk_make_plan(SKWidths<W2...>, SKWidths<W1...>, dim_t s, dim_t paths) {
  SKTilePlan p;
  const int w2[] = {W2..., 0}, w1[] = {W1...};
  p.n2 = int(sizeof...(W2)), p.n1 = int(sizeof...(W1));
  static_assert(sizeof...(W2) <= 8 && sizeof...(W1) <= 8, "at most 8 widths");
  for (int i = 0; i < p.n2; ++i) p.w2[i] = w2[i];
  for (int i = 0; i < p.n1; ++i) p.w1[i] = w1[i];
  for (dim_t m = 0; m < paths; ++m) {
    const SKTileFn two[] = {Pick::template get<W2, 2>(s, m + 1)..., nullptr};
    const SKTileFn one[] = {Pick::template get<W1, 1>(s, m + 1)...};
    p.fn2.insert(p.fn2.end(), two, two + p.n2);
    p.fn1.insert(p.fn1.end(), one, one + p.n1);
  }
  return p;
}

/// The plan of an ISA's direct kernels for a kind: 2-row widths W2 (may be none), 1-row widths W1.
template <class Ops, int... W2, int... W1>
SKTilePlan sk_plan(SKWidths<W2...> w2, SKWidths<W1...> w1, SKKind kind, dim_t s, dim_t paths) {
  switch (kind) {
    case SKKind::kVertical: return sk_make_plan<SKPickDirect<Ops, SKKind::kVertical>>(w2, w1, s, paths);
    case SKKind::kInLane: return sk_make_plan<SKPickDirect<Ops, SKKind::kInLane>>(w2, w1, s, paths);
    case SKKind::kCross: return sk_make_plan<SKPickDirect<Ops, SKKind::kCross>>(w2, w1, s, paths);
    default: return sk_make_plan<SKPickDirect<Ops, SKKind::kBroadcast>>(w2, w1, s, paths);
  }
}

}  // namespace detail

/// The branch weights and biases of one SK Split step, packed once for one lane count (by default
/// the compiled ISA's: 16 for avx512, 8 otherwise) in 64-byte aligned memory. Per block of L output
/// channels and branch m: [3 ky][steps][3 kx][L] with steps = gw for gw < L dividing L (1 for depthwise)
/// and otherwise the width of the input-channel span the block reads; then biases [M][blocks * L].
class PackedBranchWeights {
 public:
  PackedBranchWeights() = default;
  /// weights[m]: PyTorch [c, c/groups, 3, 3] of branch m (dilation m + 1); bias[m]: [c] (BN folded in).
  /// lanes: 0 for the compiled ISA, else the ISA namespace's kSKBranchLanes (tests, benchmarks).
  PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights, const float* const* bias,
                      dim_t lanes = 0);
  PackedBranchWeights(const PackedBranchWeights& o) { *this = o; }
  PackedBranchWeights& operator=(const PackedBranchWeights& o) {
    if (this == &o) return *this;
    c_ = o.c_, groups_ = o.groups_, paths_ = o.paths_, lanes_ = o.lanes_, blocks_ = o.blocks_, kind_ = o.kind_;
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
  dim_t c_ = 0, groups_ = 0, paths_ = 0, lanes_ = 0, blocks_ = 0, size_ = 0, bias_offset_ = 0;
  detail::SKKind kind_ = detail::SKKind::kBroadcast;
  std::vector<dim_t> offset_, steps_, k0_;
  std::vector<std::int32_t> ctrl_;
  std::unique_ptr<float[], AlignedDelete> data_;
};

// Each ISA: kSKBranchLanes and
//   sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end)
// taking a PackedBranchWeights with lanes() == kSKBranchLanes. Defined in kernels/<isa>/grouped_conv.hpp.
#if defined(__AVX512F__)
namespace avx512 {
inline constexpr dim_t kSKBranchLanes = 16;
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end);
}  // namespace avx512
#endif
#if defined(__AVX2__) && defined(__FMA__)
namespace avx2 {
inline constexpr dim_t kSKBranchLanes = 8;
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end);
}  // namespace avx2
#endif
namespace portable {
inline constexpr dim_t kSKBranchLanes = 8;
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end);
}  // namespace portable

namespace detail {
#if defined(__AVX512F__)
namespace grouped_native = ::sknet::kernels::avx512;
#elif defined(__AVX2__) && defined(__FMA__)
namespace grouped_native = ::sknet::kernels::avx2;
#else
namespace grouped_native = ::sknet::kernels::portable;
#endif
}  // namespace detail

inline PackedBranchWeights::PackedBranchWeights(const SKBranchGeometry& g, const float* const* weights,
                                                const float* const* bias, dim_t lanes) {
  validate(g);
  if (lanes == 0) lanes = detail::grouped_native::kSKBranchLanes;
  if (lanes < 4 || lanes % 4 != 0) throw std::invalid_argument("PackedBranchWeights: lanes must be a multiple of 4");
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

namespace detail {

/// 64-byte aligned float scratch.
struct SKScratch {
  struct Delete {
    void operator()(float* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<float[], Delete> p;
  explicit SKScratch(dim_t n)
      : p(static_cast<float*>(::operator new[](sizeof(float) * std::size_t(n), std::align_val_t(64)))) {}
};

/// The driver shared by every ISA: image -> group of channel blocks -> group of output rows ->
/// block -> tile -> branch. A block group is sized so that its packed weights and its input ring
/// stay in L2. The input rows a row group needs are copied once for the whole block group into a ring
/// of compact rows ([chunk][pixel][L], see SKTile): each pixel's channels are read contiguously, tiles
/// read L1/L2-friendly unit-stride pixels at constant offsets, and partial blocks read zero-padded
/// vectors. Rows are split into tiles of the plan's w1 widths; in a pair of rows, tiles of a w2 width
/// cover both rows at once.
template <class Ops>
inline void sk_branches_run(const SKTilePlan& plan, const SKBranchGeometry& g, const float* src,
                            const PackedBranchWeights& w, float* const* dst, float* channel_sums, dim_t c_begin,
                            dim_t c_end, dim_t oy_begin, dim_t oy_end) {
  constexpr dim_t L = Ops::lanes;
  assert(plan.n1 > 0 && plan.w1[plan.n1 - 1] == 1);
  assert(w.lanes() == L && w.channels() == g.c && w.groups() == g.groups && w.paths() == g.paths);
  assert(0 <= c_begin && c_begin <= c_end && c_end <= g.c && c_begin % kSKBranchChannelStep == 0);
  assert(c_end % kSKBranchChannelStep == 0 || c_end == g.c);
  assert(0 <= oy_begin && oy_begin <= oy_end && oy_end <= g.oh());
  if (c_begin >= c_end || oy_begin >= oy_end) return;
  const dim_t C = g.c, M = g.paths, s = g.stride, OW = g.ow(), OH = g.oh();
  // The source buffer [n, Hs, Ws, C] has a zero border of B (0: dense); the ring rows are in the frame
  // of the input padded by P = M on each side (frame row y = input row y - P), with the border
  // written as zeros by the copy.
  const dim_t Ws = g.padded_w(), Hs = g.padded_h(), B = g.pad, P = M, Wr = g.w + 2 * P;
  const bool bcast = w.kind() == SKKind::kBroadcast;

  // Tiles of a row pair and of a single row.
  struct TileRef {
    dim_t ox;
    int width;  // index into w2 (rows == 2) or w1
    int row;    // 1-row tiles: output row within the group (0 or 1); -1: a 2-row tile
  };
  std::vector<TileRef> pair_tiles, single_tiles;
  {
    // A row: the fewest tiles of the widest width, as even as the widths allow (14 -> 7 + 7 when
    // the widths are 8, 7, ...). In a row pair, a tile whose width is a 2-row width covers both rows.
    dim_t ox = 0;
    while (ox < OW) {
      const dim_t rem = OW - ox, n = (rem + plan.w1[0] - 1) / plan.w1[0], target = (rem + n - 1) / n;
      int i = 0;
      while (i + 1 < plan.n1 && plan.w1[i + 1] >= target) ++i;  // the narrowest width >= target
      while (plan.w1[i] > rem) ++i;                              // ... that fits
      single_tiles.push_back({ox, i, 0});
      int i2 = 0;
      while (i2 < plan.n2 && plan.w2[i2] != plan.w1[i]) ++i2;
      if (i2 < plan.n2) {
        pair_tiles.push_back({ox, i2, -1});
      } else {
        pair_tiles.push_back({ox, i, 0});
        pair_tiles.push_back({ox, i, 1});
      }
      ox += plan.w1[i];
    }
  }

  // Block groups: packed weights + input ring of a group within about half of L2.
  const dim_t b_begin = c_begin / L, b_end = (c_end + L - 1) / L, nblocks = b_end - b_begin;
  const dim_t ring = s + 2 * M + 1, chunk = Wr * L;
  const auto first_channel = [&](dim_t b) { return bcast ? b * L + w.span_begin(b) : b * L; };
  const auto end_channel = [&](dim_t b) { return bcast ? first_channel(b) + w.steps(b) : std::min(b * L + L, C); };
  dim_t per_group = nblocks;
  {
    const dim_t block_bytes = 4 * (M * 9 * w.steps(b_begin) * L + ring * chunk * ((w.steps(b_begin) + L - 1) / L));
    const dim_t budget = 512 * 1024;
    const dim_t groups = std::max<dim_t>(1, (nblocks * block_bytes + budget - 1) / budget);
    per_group = (nblocks + groups - 1) / groups;
    const dim_t span_blocks = bcast ? std::max<dim_t>(1, g.group_width() / L) : 1;  // keep a group's blocks together
    per_group = (per_group + span_blocks - 1) / span_blocks * span_blocks;
  }
  dim_t max_chunks = 1;
  for (dim_t gb = b_begin; gb < b_end; gb += per_group) {
    const dim_t ge = std::min(gb + per_group, b_end);
    max_chunks = std::max(max_chunks, (end_channel(ge - 1) - first_channel(gb) + L - 1) / L);
  }
  const dim_t ring_row = max_chunks * chunk;
  SKScratch scratch(ring * ring_row);
  std::vector<const float*> row_ptr(std::size_t(s + 2 * M + 1));
  const float* const* rows_origin = row_ptr.data() + M;  // rows_origin[dy], dy in [-M, s + M]

  SKTile t;
  t.chunk_stride = chunk;
  t.ctrl = w.lane_table();
  t.stride = s;
  t.dst_pix = C;
  t.dst_row = OW * C;
  for (dim_t n = 0; n < g.n; ++n) {
    const float* image = src + n * Hs * Ws * C;
    for (dim_t gb = b_begin; gb < b_end; gb += per_group) {
      const dim_t ge = std::min(gb + per_group, b_end);
      const dim_t ch_lo = first_channel(gb), ch_hi = end_channel(ge - 1);
      const dim_t nfull = (ch_hi - ch_lo) / L, tail = (ch_hi - ch_lo) % L;
      // Copies frame row y, channels [ch_lo, ch_hi), into its ring slot (zeros outside the input).
      const dim_t chunks = nfull + (tail ? 1 : 0);
      const auto zero_pixel = [&](float* d, dim_t x) {
        for (dim_t q = 0; q < chunks; ++q) Ops::store(d + q * chunk + x * L, Ops::zero());
      };
      const auto copy_row = [&](dim_t y) {
        float* d = scratch.p.get() + (y % ring) * ring_row;
        const dim_t iy = y - P;
        if (iy < 0 || iy >= g.h) {
          for (dim_t x = 0; x < Wr; ++x) zero_pixel(d, x);
          return;
        }
        for (dim_t x = 0; x < P; ++x) zero_pixel(d, x);
        for (dim_t x = P + g.w; x < Wr; ++x) zero_pixel(d, x);
        const float* sp = image + ((iy + B) * Ws + B) * C + ch_lo;
        for (dim_t x = P; x < P + g.w; ++x, sp += C) {
          for (dim_t q = 0; q < nfull; ++q) Ops::store(d + q * chunk + x * L, Ops::loadu(sp + q * L));
          if (tail) {
            float* dt = d + nfull * chunk + x * L;
            for (dim_t k = 0; k < L; ++k) dt[k] = k < tail ? sp[nfull * L + k] : 0.0f;
          }
        }
      };
      dim_t next_row = 0;  // first frame row not yet in the ring
      for (dim_t oy = oy_begin; oy < oy_end;) {
        const bool pair = oy + 1 < oy_end;
        const dim_t lo = oy * s + P - M, hi = (oy + (pair ? 1 : 0)) * s + P + M;
        for (dim_t y = std::max(lo, next_row); y <= hi; ++y) copy_row(y);
        next_row = hi + 1;
        const dim_t dst_row = ((n * OH + oy) * OW) * C;
        for (dim_t b = gb; b < ge; ++b) {
          const dim_t c0 = b * L, rel = first_channel(b) - ch_lo;
          for (dim_t dy = -M; dy <= (pair ? s : 0) + M; ++dy)
            row_ptr[std::size_t(dy + M)] =
                scratch.p.get() + ((oy * s + P + dy) % ring) * ring_row + rel / L * chunk;
          t.k0 = rel % L;
          t.lanes = int(std::min(L, C - c0));
          t.steps = w.steps(b);
          t.sums = channel_sums ? channel_sums + n * C + c0 : nullptr;
          for (const TileRef& tile : pair ? pair_tiles : single_tiles) {
            const dim_t r = tile.row < 0 ? 0 : tile.row;
            t.rows = rows_origin + r * s;
            t.col = tile.ox * s + P;
            for (dim_t m = 0; m < M; ++m) {
              t.wei = w.weights(b, m);
              t.bias = w.bias(b, m);
              t.dilation = m + 1;
              t.dst = dst[m] + dst_row + r * OW * C + tile.ox * C + c0;
              (tile.row < 0 ? plan.fn2[std::size_t(m * plan.n2 + tile.width)]
                            : plan.fn1[std::size_t(m * plan.n1 + tile.width)])(t);
            }
          }
        }
        oy += pair ? 2 : 1;
      }
    }
  }
}

}  // namespace detail

/// "avx512", "avx2" or "portable": the kernel sk_branches_conv3x3 runs in this translation unit.
inline constexpr const char* grouped_conv_isa() noexcept {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2";
#else
  return "portable";
#endif
}

/// Computes output rows [oy_begin, oy_end) and channels [c_begin, c_end) of every image for all
/// branches: dst[m] (m = 0..M-1, dilation m+1) is U_{m+1} as [n, oh, ow, c]; channel_sums ([n, c] or
/// null) += the sum over the computed pixels of sum_m U_m (the caller zeroes it).
/// Requires: w packed from g for the compiled ISA (default lanes); src_padded [n, h+2*pad, w+2*pad, c]
/// with a zero border (or, with pad = 0, the dense input [n, h, w, c]); c_begin a multiple of kSKBranchChannelStep (16); c_end one too, or c; dst
/// overlaps nothing else. Threads may run disjoint channel ranges concurrently and share channel_sums;
/// threads splitting rows need their own channel_sums. Every output is computed in the same order
/// whatever the ranges.
inline void sk_branches_conv3x3(const SKBranchGeometry& g, const float* src_padded, const PackedBranchWeights& w,
                                float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                dim_t oy_begin, dim_t oy_end) {
  detail::grouped_native::sk_branches_conv3x3(g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin,
                                              oy_end);
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

#include "sknet/kernels/avx2/grouped_conv.hpp"
#include "sknet/kernels/avx512/grouped_conv.hpp"
#include "sknet/kernels/portable/grouped_conv.hpp"
