// sknet kernels: the Split step of an SK convolution for float, all M branches in one call.
//
//   U_m[n, oy, ox, co] = ReLU( bias_m[co] + sum_{ky,kx,j} X[n, oy*s + (ky-1)*m, ox*s + (kx-1)*m, g(co)*gw + j]
//                                                        * W_m[co, j, ky, kx] ),      m = 1..M
//   channel_sums[n, co] += sum_{oy,ox} sum_m U_m[n, oy, ox, co]
//
// Branch m is a grouped 3x3 convolution with dilation m and padding m (G groups of gw = C/G channels,
// Cin = Cout = C, stride s); every branch has the same output size. X is NHWC and arrives already
// zero-padded by pad >= M on each side, so no kernel checks bounds. The channel sums feed the global
// average pool of the Fuse step without re-reading U.
//
// Algorithm (all ISAs): channel-vectorised direct convolution. A vector holds one block of L output
// channels (L = 16 for avx512, 8 otherwise); a register tile is T output pixels of one row x one block
// x one branch. The reduction runs over 3 kernel rows x `steps` input vectors; inside a kernel row each
// input pixel is loaded (and shuffled) once and feeds the up to 3 taps (kx) that read it, so the
// dilation and stride are compile-time parameters (s in {1, 2}, m in {1, 2, 3}; other values use a
// generic tap-by-tap tile). How one input vector is formed depends on the group width gw (SKKind):
//   gw == 1                     vertical:  the block's own 16 input channels (depthwise), 1 step;
//   gw in {2, 4}                in-lane:   the block's channels permuted within 128-bit lanes, gw steps;
//   gw < L, L % gw == 0 (gw=8)  cross:     the block's channels permuted across lanes, gw steps;
//   otherwise (gw = 16, 32, 3..) broadcast: one input channel per step to every lane, over the span of
//                               input channels the block's groups read (exactly gw when gw % L == 0).
// The channel layout stays the caller's natural NHWC order: the permutations live in the packed
// weights and a small per-step lane table. Weights are packed once per block as
// [branch][ky][step][kx][L] (zero where a lane has no such input), so one step loads 3 weight vectors.
// Loop order: image -> channel block -> output row -> tile -> branch, so a block's packed weights stay
// in L1 and every input cache line is read from memory once per block.
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
/// h, w are the unpadded input size; the input buffer is [n, h + 2*pad, w + 2*pad, c] with pad >= paths
/// (the border zero). Requires c % groups == 0 and stride >= 1.
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
  if (g.pad < g.paths) fail("pad must be >= paths (the largest dilation)");
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
struct SKTile {
  const float* src = nullptr;    ///< padded input at (row oy*s + pad, column ox0*s + pad), channel c0
  dim_t row_stride = 0;          ///< floats between padded input rows ((w + 2*pad) * c)
  dim_t pix_stride = 0;          ///< floats between pixels (c)
  const float* wei = nullptr;    ///< this block and branch: [3 ky][steps][3 kx][L]
  const float* bias = nullptr;   ///< [L], zero-padded
  const std::int32_t* ctrl = nullptr;  ///< in-lane / cross: [steps][L] source lane of each lane
  dim_t k0 = 0;                  ///< broadcast: first input channel of the span, relative to c0
  dim_t steps = 0;               ///< reduction steps per tap
  dim_t dilation = 1, stride = 1;  ///< read by the generic tile only (the others have them built in)
  float* dst = nullptr;          ///< U_m at (n, oy, ox0, c0), pixels pix_stride apart
  float* sums = nullptr;         ///< channel_sums at (n, c0), or null
  int lanes = 0;                 ///< valid channels of the block, 1..L
};
using SKTileFn = void (*)(const SKTile&);

/// Calls f(std::integral_constant<int, 0>) ... f(std::integral_constant<int, N-1>), fully unrolled.
template <class F, int... I>
inline __attribute__((always_inline)) void sk_static_for(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
inline __attribute__((always_inline)) void sk_static_for(F&& f) {
  sk_static_for(f, std::make_integer_sequence<int, N>{});
}

/// One T-pixel x L-channel tile of one branch. `Ops` is the ISA's vector vocabulary (vec, mask_t,
/// lanes, zero, load, load_masked, broadcast, ctrl_t, load_ctrl, permute_inlane, permute_cross,
/// fma, add, relu, store_masked, make_mask). S, D = stride and dilation; S == 0 selects the generic
/// tap-by-tap loop with runtime stride and dilation.
template <class Ops, SKKind Kind, int T, int S, int D>
struct SKTileKernel {
  using V = typename Ops::vec;
  static constexpr int L = Ops::lanes;

  static inline __attribute__((always_inline)) V input(const float* p, dim_t j, const SKTile& t,
                                                       typename Ops::mask_t mask, typename Ops::ctrl_t ctrl) {
    if constexpr (Kind == SKKind::kVertical) {
      (void)j, (void)t, (void)ctrl;
      return Ops::load_masked(p, mask);
    } else if constexpr (Kind == SKKind::kInLane) {
      (void)j, (void)t;
      return Ops::permute_inlane(Ops::load_masked(p, mask), ctrl);
    } else if constexpr (Kind == SKKind::kCross) {
      (void)j, (void)t;
      return Ops::permute_cross(Ops::load_masked(p, mask), ctrl);
    } else {
      (void)mask, (void)ctrl;
      return Ops::broadcast(p + t.k0 + j);
    }
  }

  static inline __attribute__((always_inline)) typename Ops::ctrl_t ctrl_at(const SKTile& t, dim_t j) {
    if constexpr (Kind == SKKind::kInLane || Kind == SKKind::kCross) return Ops::load_ctrl(t.ctrl + j * L);
    (void)t, (void)j;
    return typename Ops::ctrl_t{};
  }

  static void run(const SKTile& t) {
    const auto mask = Ops::make_mask(t.lanes);
    const dim_t C = t.pix_stride, rs = t.row_stride, steps = t.steps;
    V acc[T];
    {
      const V b = Ops::load(t.bias);
      sk_static_for<T>([&](auto i) { acc[i] = b; });
    }
    if constexpr (S > 0) {
      // Kernel row ky reads input row (ky-1)*D; within it, input pixel ix (column ix - D relative to
      // the tile's first centre) feeds acc[(ix - kx*D) / S] for every kx where that is a valid pixel.
      constexpr int NIX = (T - 1) * S + 2 * D + 1;
      for (int ky = 0; ky < 3; ++ky) {
        const float* row = t.src + (ky - 1) * D * rs - D * C;
        const float* w = t.wei + ky * steps * 3 * L;
        for (dim_t j = 0; j < steps; ++j, w += 3 * L) {
          const V w0 = Ops::load(w), w1 = Ops::load(w + L), w2 = Ops::load(w + 2 * L);
          const auto ctrl = ctrl_at(t, j);
          sk_static_for<NIX>([&](auto ixc) {
            constexpr int ix = decltype(ixc)::value;
            constexpr bool used = [] {
              for (int kx = 0; kx < 3; ++kx) {
                const int ts = ix - kx * D;
                if (ts >= 0 && ts % S == 0 && ts / S < T) return true;
              }
              return false;
            }();
            if constexpr (used) {
              const V in = input(row + ix * C, j, t, mask, ctrl);
              sk_static_for<3>([&](auto kxc) {
                constexpr int kx = decltype(kxc)::value;
                constexpr int ts = ix - kx * D;
                if constexpr (ts >= 0 && ts % S == 0 && ts / S < T) {
                  const V& wk = kx == 0 ? w0 : kx == 1 ? w1 : w2;
                  acc[ts / S] = Ops::fma(in, wk, acc[ts / S]);
                }
              });
            }
          });
        }
      }
    } else {
      const dim_t d = t.dilation, s = t.stride;
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx) {
          const float* base = t.src + (ky - 1) * d * rs + (kx - 1) * d * C;
          const float* w = t.wei + (ky * steps * 3 + kx) * L;
          for (dim_t j = 0; j < steps; ++j, w += 3 * L) {
            const V wk = Ops::load(w);
            const auto ctrl = ctrl_at(t, j);
            sk_static_for<T>([&](auto i) { acc[i] = Ops::fma(input(base + i * s * C, j, t, mask, ctrl), wk, acc[i]); });
          }
        }
    }
    V sum = Ops::zero();
    sk_static_for<T>([&](auto i) {
      const V u = Ops::relu(acc[i]);
      Ops::store_masked(t.dst + i * C, mask, u);
      sum = Ops::add(sum, u);
    });
    if (t.sums) Ops::store_masked(t.sums, mask, Ops::add(Ops::load_masked(t.sums, mask), sum));
  }
};

/// The tile kernel for (kind, stride, dilation): specialised for s in {1, 2} and d in {1, 2, 3},
/// generic otherwise.
template <class Ops, SKKind Kind, int T>
SKTileFn sk_tile_for(dim_t s, dim_t d) {
  if (s == 1 && d == 1) return &SKTileKernel<Ops, Kind, T, 1, 1>::run;
  if (s == 1 && d == 2) return &SKTileKernel<Ops, Kind, T, 1, 2>::run;
  if (s == 1 && d == 3) return &SKTileKernel<Ops, Kind, T, 1, 3>::run;
  if (s == 2 && d == 1) return &SKTileKernel<Ops, Kind, T, 2, 1>::run;
  if (s == 2 && d == 2) return &SKTileKernel<Ops, Kind, T, 2, 2>::run;
  if (s == 2 && d == 3) return &SKTileKernel<Ops, Kind, T, 2, 3>::run;
  return &SKTileKernel<Ops, Kind, T, 0, 0>::run;
}
template <class Ops, int T>
SKTileFn sk_tile_for(SKKind kind, dim_t s, dim_t d) {
  switch (kind) {
    case SKKind::kVertical: return sk_tile_for<Ops, SKKind::kVertical, T>(s, d);
    case SKKind::kInLane: return sk_tile_for<Ops, SKKind::kInLane, T>(s, d);
    case SKKind::kCross: return sk_tile_for<Ops, SKKind::kCross, T>(s, d);
    default: return sk_tile_for<Ops, SKKind::kBroadcast, T>(s, d);
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
              if (oc >= C) continue;
              dim_t ic;  // absolute input channel lane l reads at step j
              switch (kind_) {
                case detail::SKKind::kVertical: ic = oc; break;
                case detail::SKKind::kBroadcast: ic = c0 + k0_[std::size_t(b)] + j; break;
                default: ic = c0 + ctrl_[std::size_t(j * L + l)]; break;
              }
              const dim_t icg = ic - oc / gw * gw;  // index within oc's group
              if (ic >= C || icg < 0 || icg >= gw) continue;
              dst[((ky * steps + j) * 3 + kx) * L + l] = weights[m][((oc * gw + icg) * 3 + ky) * 3 + kx];
            }
      for (dim_t l = 0; l < L && c0 + l < C; ++l) p[bias_offset_ + (m * blocks_ + b) * L + l] = bias[m][c0 + l];
    }
  }
}

namespace detail {

/// The driver shared by every ISA: image -> channel block -> output row -> tile -> branch.
/// Rows are covered greedily by tiles of the widths Ts (descending, ending in 1).
template <class Ops, int... Ts>
inline void sk_branches_run(const SKBranchGeometry& g, const float* src, const PackedBranchWeights& w,
                            float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end, dim_t oy_begin,
                            dim_t oy_end) {
  constexpr dim_t L = Ops::lanes;
  constexpr int kWidths[] = {Ts...};
  constexpr int kCount = int(sizeof...(Ts));
  static_assert(kWidths[kCount - 1] == 1, "the last tile width must be 1");
  assert(w.lanes() == L && w.channels() == g.c && w.groups() == g.groups && w.paths() == g.paths);
  assert(0 <= c_begin && c_begin <= c_end && c_end <= g.c && c_begin % kSKBranchChannelStep == 0);
  assert(c_end % kSKBranchChannelStep == 0 || c_end == g.c);
  assert(0 <= oy_begin && oy_begin <= oy_end && oy_end <= g.oh());
  if (c_begin >= c_end || oy_begin >= oy_end) return;
  const dim_t C = g.c, M = g.paths, s = g.stride, OW = g.ow(), OH = g.oh();
  const dim_t Wp = g.padded_w(), Hp = g.padded_h();

  // The row as (first pixel, width index) tiles, and the tile kernel per (branch, width).
  std::vector<std::pair<dim_t, int>> tiles;
  for (dim_t ox = 0; ox < OW;) {
    int i = 0;
    while (kWidths[i] > OW - ox) ++i;
    tiles.emplace_back(ox, i);
    ox += kWidths[i];
  }
  std::vector<SKTileFn> fns(std::size_t(M * kCount));
  for (dim_t m = 0; m < M; ++m) {
    const SKTileFn row[] = {sk_tile_for<Ops, Ts>(w.kind(), s, m + 1)...};
    for (int i = 0; i < kCount; ++i) fns[std::size_t(m * kCount + i)] = row[i];
  }

  SKTile t;
  t.row_stride = Wp * C;
  t.pix_stride = C;
  t.ctrl = w.lane_table();
  t.stride = s;
  const dim_t band = getenv("SKB") ? atoi(getenv("SKB")) : (oy_end - oy_begin);
  for (dim_t n = 0; n < g.n; ++n) {
    const float* image = src + n * Hp * Wp * C;
    for (dim_t y0 = oy_begin; y0 < oy_end; y0 += band)
    for (dim_t c0 = c_begin; c0 < c_end; c0 += L) {
      const dim_t b = c0 / L;
      t.lanes = int(std::min(L, C - c0));
      t.steps = w.steps(b);
      t.k0 = w.span_begin(b);
      t.sums = channel_sums ? channel_sums + n * C + c0 : nullptr;
      for (dim_t oy = y0; oy < std::min(y0 + band, oy_end); ++oy) {
        const float* src_row = image + (oy * s + g.pad) * Wp * C + g.pad * C + c0;
        const dim_t dst_row = ((n * OH + oy) * OW) * C + c0;
        const bool pf_on = getenv("SKPF") && oy + 1 < oy_end;
        for (const auto& tile : tiles) {
          t.src = src_row + tile.first * s * C;
          if (pf_on) {
            const float* pr = t.src + (s + M - s + 1) * Wp * C - M * C + t.k0;  // first new row of oy+1
            const dim_t npix = (kWidths[tile.second] - 1) * s + 2 * M + 1;
            for (dim_t r = 0; r < s; ++r, pr += Wp * C)
              for (dim_t x = 0; x < npix; ++x) {
                __builtin_prefetch(pr + x * C);
                if (t.steps > 16) __builtin_prefetch(pr + x * C + t.steps - 1);
              }
          }
          for (dim_t m = 0; m < M; ++m) {
            t.wei = w.weights(b, m);
            t.bias = w.bias(b, m);
            t.dilation = m + 1;
            t.dst = dst[m] + dst_row + tile.first * C;
            fns[std::size_t(m * kCount + tile.second)](t);
          }
        }
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
/// with a zero border; c_begin a multiple of kSKBranchChannelStep (16); c_end one too, or c; dst
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
