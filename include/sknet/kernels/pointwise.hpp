// sknet kernels: the 1x1 convolution (pointwise GEMM) over NHWC float activations.
//
//   dst[p, co] = epilogue( sum_ci src[p, ci] * weight[co, ci] ),   i.e.  C[P x Cout] = A[P x Cin] * W^T
//
// A is the activation tensor used in place (rows `src_stride` floats apart, so it may be a channel
// slice of a wider tensor); W is packed once by PackedPointwiseWeights into [Cout/NR][Cin][NR]
// column blocks (zero-padded). Per output tile the kernels run the epilogue in registers:
// + bias, + residual, ReLU, then optional per-channel sums of the result (for global pooling).
//
// Every ISA has its own kernels (kernels/<isa>/pointwise.hpp: avx512 6x64 / 7x48 register tiles, avx2
// 6x16, portable 4x8; listed in kernels/kernel_list.hpp); the ISA is chosen at run time (dispatch.hpp):
// PackedPointwiseWeights records the ISA it was packed for, and pointwise_conv runs that ISA's kernel.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "sknet/kernels/aligned.hpp"
#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// What happens to each output after the reduction, in this order:
/// + bias[co], + residual[p, co], ReLU, then channel_sums[co] += output.
/// (bias + residual is the accumulators' starting value, so the residual is read before dst is
/// written, and the sum is rounded in a different order than "products, then bias, then residual".)
struct PointwiseEpilogue {
  const float* bias = nullptr;      ///< [cout] or null (BN already folded into weights + bias by the caller)
  const float* residual = nullptr;  ///< [pixels x cout] with row stride residual_stride, or null.
                                    ///< May be dst itself (same pointer and stride): in-place residual add.
  dim_t residual_stride = 0;
  bool relu = false;
  /// [cout] or null: += the sum over the processed pixels of the final output (global average pooling).
  /// The caller zeroes it. Threads that split the pixels must each pass their own buffer and add them
  /// up afterwards; threads that split the output channels may share one (they touch disjoint entries).
  float* channel_sums = nullptr;
};

namespace detail {

/// A share of the next weight panel for one tile to prefetch into L2: lines [begin, end) of the
/// panel's (block, 64-byte line) pairs flattened block-major; blocks have `lines` lines each and
/// start `stride` bytes apart from `base`.
struct PointwisePrefetch {
  const char* base = nullptr;
  dim_t stride = 0, lines = 0, begin = 0, end = 0;
};

/// Walks a PointwisePrefetch range one line at a time.
class PointwisePrefetchCursor {
 public:
  explicit PointwisePrefetchCursor(const PointwisePrefetch& p)
      : base_(p.base), stride_(p.stride), lines_(p.lines), left_(p.end - p.begin) {
    if (left_ > 0) {
      block_ = p.begin / lines_;
      line_ = p.begin % lines_;
      ptr_ = base_ + block_ * stride_ + line_ * 64;
    }
  }
  dim_t left() const { return left_; }
  /// The next line's address; requires left() > 0.
  const char* next() {
    const char* p = ptr_;
    --left_;
    if (++line_ == lines_) {
      line_ = 0;
      ptr_ = base_ + ++block_ * stride_;
    } else {
      ptr_ += 64;
    }
    return p;
  }

 private:
  const char* base_;
  const char* ptr_ = nullptr;
  dim_t stride_, lines_, left_, block_ = 0, line_ = 0;
};

/// Everything one register tile needs; built by pointwise_blocked, read by an ISA tile kernel.
struct PointwiseTile {
  dim_t kc = 0;                  ///< reduction length of this k-block
  const float* src = nullptr;    ///< row 0 of the tile at channel k0
  dim_t src_stride = 0;
  const float* wei = nullptr;    ///< block 0 of the tile at k0: (k, j) of block v is wei[v * wei_stride + k * NR + j]
  dim_t wei_stride = 0;          ///< floats between consecutive column blocks (cin * NR)
  float* dst = nullptr;          ///< row 0, column 0 of the tile
  dim_t dst_stride = 0;
  dim_t cols = 0;                ///< valid columns (the last vector is partial when cols % lanes != 0)
  bool first = false;            ///< first k-block: start from bias + residual instead of dst
  bool last = false;             ///< last k-block: ReLU, channel sums
  const float* bias = nullptr;   ///< at column 0, or null
  const float* residual = nullptr;
  dim_t residual_stride = 0;
  bool relu = false;
  float* channel_sums = nullptr;  ///< at column 0, or null
  /// This tile's share of the next weight panel, prefetched into L2 while it computes: with small
  /// maps the weights stream from DRAM, and a panel is read by only a few row tiles.
  PointwisePrefetch prefetch;
};
using PointwiseTileFn = void (*)(const PointwiseTile&);

/// Register tiling and cache blocking of one kernel variant.
struct PointwiseBlocking {
  dim_t lanes;     ///< floats per vector = columns per packed block
  int nv_max;      ///< vectors per tile row in the main tile (tile width nv_max * lanes)
  int mr[5];       ///< rows per tile for a tile of nv vectors (mr[nv]); mr[0] unused
  dim_t kc_max;    ///< k-block: the kc x tile-width weight panel stays in L1/L2
  dim_t mb_max;    ///< pixel block: the mb x kc activation panel stays in L2
};

/// Packs PyTorch-ordered weight [cout][cin] into [ceil(cout/block)][cin][block], zero-padded.
inline void pack_pointwise(const float* weight, dim_t cout, dim_t cin, dim_t block, float* packed) {
  const dim_t blocks = (cout + block - 1) / block;
  for (dim_t b = 0; b < blocks; ++b)
    for (dim_t k = 0; k < cin; ++k)
      for (dim_t j = 0; j < block; ++j) {
        const dim_t co = b * block + j;
        packed[(b * cin + k) * block + j] = co < cout ? weight[co * cin + k] : 0.0f;
      }
}

inline dim_t pointwise_packed_size(dim_t cout, dim_t cin, dim_t block) {
  return (cout + block - 1) / block * block * cin;
}

/// The blocked driver shared by every ISA. Loop order: pixel block -> k-block -> column tile -> row
/// tile, so a kc x tile-width weight panel is reused by all row tiles of the pixel block while the
/// activation panel stays in L2; partial sums of earlier k-blocks live in dst.
/// `tile(mr, nv)` returns the kernel for an mr x (nv * lanes) tile, 1 <= mr <= blk.mr[nv].
template <class TileSelector>
inline void pointwise_blocked(const PointwiseGeometry& g, const float* src, const float* packed,
                              const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                              dim_t cout_begin, dim_t cout_end, const PointwiseBlocking& blk,
                              TileSelector tile) {
  assert(0 <= pixel_begin && pixel_begin <= pixel_end && pixel_end <= g.pixels);
  assert(0 <= cout_begin && cout_begin <= cout_end && cout_end <= g.cout);
  if (pixel_begin == pixel_end || cout_begin == cout_end) return;
  assert(g.cin >= 1 && g.src_stride >= g.cin && g.dst_stride >= g.cout);
  assert(cout_begin % 16 == 0 && (cout_end % 16 == 0 || cout_end == g.cout));
  const dim_t lanes = blk.lanes, cin = g.cin;
  const dim_t tile_cols = blk.nv_max * lanes;
  // Balanced k-blocks (multiples of 8 when split) and pixel blocks (multiples of the main tile height).
  const dim_t nk = (cin + blk.kc_max - 1) / blk.kc_max;
  const dim_t kc_step = nk == 1 ? cin : ((cin + nk - 1) / nk + 7) / 8 * 8;
  const dim_t rows = pixel_end - pixel_begin, mr_main = blk.mr[blk.nv_max];
  const dim_t np = (rows + blk.mb_max - 1) / blk.mb_max;
  const dim_t mb = ((rows + np - 1) / np + mr_main - 1) / mr_main * mr_main;

  PointwiseTile t;
  t.src_stride = g.src_stride;
  t.wei_stride = cin * lanes;
  t.dst_stride = g.dst_stride;
  t.residual_stride = ep.residual_stride;
  t.relu = ep.relu;
  for (dim_t p0 = pixel_begin; p0 < pixel_end; p0 += mb) {
    const dim_t p1 = std::min(p0 + mb, pixel_end);
    for (dim_t k0 = 0; k0 < cin; k0 += kc_step) {
      t.kc = std::min(kc_step, cin - k0);
      t.first = k0 == 0;
      t.last = k0 + t.kc == cin;
      for (dim_t c0 = cout_begin; c0 < cout_end; c0 += tile_cols) {
        t.cols = std::min(tile_cols, cout_end - c0);
        const int nv = int((t.cols + lanes - 1) / lanes);
        const dim_t mr_max = blk.mr[nv];
        t.wei = packed + (c0 / lanes) * cin * lanes + k0 * lanes;
        t.bias = ep.bias ? ep.bias + c0 : nullptr;
        t.channel_sums = ep.channel_sums ? ep.channel_sums + c0 : nullptr;
        // The panel after this one: next columns, else the next k-block, else the next pixel block.
        dim_t next_c0 = c0 + tile_cols, next_k0 = k0;
        if (next_c0 >= cout_end) {
          next_c0 = cout_begin;
          next_k0 = k0 + kc_step < cin ? k0 + kc_step : (p1 < pixel_end ? 0 : cin);
        }
        // With one row tile per panel (a matrix-vector product, e.g. the classifier at batch 1) the
        // tile reads its panel once, as a few sequential streams the hardware prefetcher follows;
        // prefetching the next panel as well made it slower (2048 -> 1000 at 1 pixel with cold
        // weights: 0.30 ms with, 0.20-0.24 ms without; with 2 or more row tiles it helps).
        const dim_t tiles = (p1 - p0 + mr_max - 1) / mr_max;
        dim_t pf_total = 0;
        if (next_k0 < cin && tiles > 1) {
          const dim_t next_cols = std::min(tile_cols, cout_end - next_c0);
          const dim_t next_kc = std::min(kc_step, cin - next_k0);
          t.prefetch.base = reinterpret_cast<const char*>(packed + (next_c0 / lanes) * cin * lanes + next_k0 * lanes);
          t.prefetch.stride = dim_t(sizeof(float)) * cin * lanes;
          t.prefetch.lines = (next_kc * lanes * dim_t(sizeof(float)) + 63) / 64;
          pf_total = (next_cols + lanes - 1) / lanes * t.prefetch.lines;
        }
        dim_t i = 0;
        for (dim_t r0 = p0; r0 < p1; r0 += mr_max, ++i) {
          const int mr = int(std::min(mr_max, p1 - r0));
          t.src = src + r0 * g.src_stride + k0;
          t.dst = dst + r0 * g.dst_stride + c0;
          t.residual = ep.residual ? ep.residual + r0 * ep.residual_stride + c0 : nullptr;
          t.prefetch.begin = pf_total * i / tiles;
          t.prefetch.end = pf_total * (i + 1) / tiles;
          tile(mr, nv)(t);
        }
      }
    }
  }
}

template <template <int, int> class Tile, int NV, int MaxMR>
constexpr std::array<PointwiseTileFn, MaxMR + 1> pointwise_tile_row() {
  return tile_row<PointwiseTileFn, Tile, NV, MaxMR>();
}

}  // namespace detail

/// The kernel signature every ISA's pointwise kernels share: computes output pixels
/// [pixel_begin, pixel_end) and channels [cout_begin, cout_end) from weights packed by
/// detail::pack_pointwise with that ISA's pointwise_block().
using PointwiseKernelFn = void (*)(const PointwiseGeometry& g, const float* src, const float* packed,
                                   const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                                   dim_t cout_begin, dim_t cout_end);

/// Columns per packed block (NR) of `isa`'s pointwise kernels: 16 for avx512, 8 otherwise.
inline constexpr dim_t pointwise_block(Isa isa) noexcept { return isa == Isa::avx512 ? 16 : 8; }

inline namespace SKNET_KERNEL_ABI {
/// The pointwise kernel of `isa` (it picks its register tiling from the shape). Requires
/// cpu_supports(isa).
SKNET_KERNEL_ENTRY PointwiseKernelFn pointwise_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// 1x1 convolution weights packed once for one ISA's kernels: [ceil(cout/NR)][cin][NR] floats with
/// NR = block() (pointwise_block(isa())), zero-padded columns, 64-byte aligned. Immutable once built.
class PackedPointwiseWeights {
 public:
  PackedPointwiseWeights() = default;
  /// weight: [cout][cin] (PyTorch [cout, cin, 1, 1]), packed for `isa` (default: active_isa()).
  /// Throws KernelError unless cout >= 1, cin >= 1 and the CPU runs `isa`.
  PackedPointwiseWeights(const float* weight, dim_t cout, dim_t cin) : PackedPointwiseWeights(weight, cout, cin, active_isa()) {}
  PackedPointwiseWeights(const float* weight, dim_t cout, dim_t cin, Isa isa, Precision precision = Precision::f32)
      : cout_(cout), cin_(cin), isa_(isa) {
    if (cout < 1 || cin < 1)
      sknet::detail::fail<KernelError>("PackedPointwiseWeights", "cout and cin", ">= 1",
                                       std::to_string(cout) + " and " + std::to_string(cin));
    require_kernels(isa, precision, "PackedPointwiseWeights");
    if (precision != Precision::f32)
      sknet::detail::fail<KernelError>("PackedPointwiseWeights", "precision", "f32 (bf16: PackedPointwiseBf16Weights)",
                                       precision_name(precision));
    allocate();
    detail::pack_pointwise(weight, cout, cin, block(), data_.get());
  }
  PackedPointwiseWeights(const PackedPointwiseWeights& o) : cout_(o.cout_), cin_(o.cin_), isa_(o.isa_) {
    if (o.data_) {
      allocate();
      std::memcpy(data_.get(), o.data_.get(), sizeof(float) * std::size_t(size()));
    }
  }
  PackedPointwiseWeights& operator=(const PackedPointwiseWeights& o) {
    if (this != &o) *this = PackedPointwiseWeights(o);
    return *this;
  }
  PackedPointwiseWeights(PackedPointwiseWeights&&) noexcept = default;
  PackedPointwiseWeights& operator=(PackedPointwiseWeights&&) noexcept = default;

  dim_t cout() const noexcept { return cout_; }
  dim_t cin() const noexcept { return cin_; }
  /// The ISA whose kernels this layout is for.
  Isa isa() const noexcept { return isa_; }
  Precision precision() const noexcept { return Precision::f32; }
  PackedLayout layout() const noexcept { return {isa_, precision(), block(), reduction_group(precision())}; }
  /// Columns per packed block (NR).
  dim_t block() const noexcept { return pointwise_block(isa_); }
  /// Floats in data(), padding included.
  dim_t size() const noexcept { return data_ ? detail::pointwise_packed_size(cout_, cin_, block()) : 0; }
  bool empty() const noexcept { return !data_; }
  const float* data() const noexcept { return data_.get(); }

 private:
  void allocate() {
    const std::size_t n = std::size_t(detail::pointwise_packed_size(cout_, cin_, block()));
    data_ = allocate_aligned<float>(n);
  }
  dim_t cout_ = 0, cin_ = 0;
  Isa isa_ = Isa::portable;
  AlignedArray<float> data_;
};

/// Computes output pixels [pixel_begin, pixel_end) and output channels [cout_begin, cout_end) of
/// dst[p * dst_stride + co] = relu?(sum_ci src[p * src_stride + ci] * W[co, ci] + bias + residual)
/// with the kernel of the ISA `w` was packed for.
/// Requires: w.cout() == g.cout, w.cin() == g.cin >= 1; cout_begin a multiple of 16; cout_end a
/// multiple of 16 or g.cout; dst overlaps neither src nor the residual (except residual == dst with
/// the same stride). Disjoint ranges may run concurrently on different threads (see channel_sums).
/// For a given geometry every output element is computed in the same order whatever the ranges, so
/// splitting the work does not change the results. ReLU propagates NaN (as PyTorch's does).
inline void pointwise_conv(const PointwiseGeometry& g, const float* src, const PackedPointwiseWeights& w,
                           const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  assert(w.cout() == g.cout && w.cin() == g.cin);
  pointwise_kernel(w.isa())(g, src, w.data(), ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

/// The whole output: pixels [0, g.pixels), channels [0, g.cout).
inline void pointwise_conv(const PointwiseGeometry& g, const float* src, const PackedPointwiseWeights& w,
                           const PointwiseEpilogue& ep, float* dst) {
  pointwise_conv(g, src, w, ep, dst, 0, g.pixels, 0, g.cout);
}

/// One pixel (a matrix-vector product, e.g. an attention or SE fully connected layer):
/// y[co] = relu?(sum_ci W[co, ci] * x[ci] + bias[co]) for co < w.cout(); bias may be null. ReLU keeps NaN.
inline void pointwise_matvec(const PackedPointwiseWeights& w, const float* x, const float* bias, bool relu, float* y) {
  PointwiseEpilogue ep;
  ep.bias = bias;
  ep.relu = relu;
  pointwise_conv({1, w.cin(), w.cout(), w.cin(), w.cout()}, x, w, ep, y);
}

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
