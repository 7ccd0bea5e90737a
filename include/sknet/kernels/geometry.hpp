// sknet kernels: the flat problem descriptions every kernel takes (no layer types here).
#pragma once

#include <array>
#include <cstdint>
#include <utility>

namespace sknet {
namespace kernels {

using dim_t = std::int64_t;

/// A 2-D convolution over NHWC activations with PyTorch-ordered weights [oc, ic/groups, kh, kw].
/// ic and oc are the total channel counts; both are divisible by groups.
struct ConvGeometry {
  dim_t n = 1, groups = 1;
  dim_t ic = 0, ih = 0, iw = 0;
  dim_t oc = 0, oh = 0, ow = 0;
  dim_t kh = 1, kw = 1;
  dim_t sh = 1, sw = 1;  ///< strides
  dim_t dh = 1, dw = 1;  ///< dilations (1 = dense)
  dim_t ph = 0, pw = 0;  ///< zero padding at the top/left (and bottom/right)
  dim_t ic_per_group() const { return ic / groups; }
  dim_t oc_per_group() const { return oc / groups; }
  /// Multiply-adds of one forward.
  dim_t macs() const { return n * oh * ow * oc * ic_per_group() * kh * kw; }
};

/// A 1x1 convolution as a GEMM: C[pixels x cout] = A[pixels x cin] * W^T. Strides are in elements
/// between consecutive pixels (src_stride >= cin, dst_stride >= cout).
struct PointwiseGeometry {
  dim_t pixels = 0, cin = 0, cout = 0;
  dim_t src_stride = 0, dst_stride = 0;
  double flops() const { return 2.0 * double(pixels) * double(cin) * double(cout); }
};

/// A 2-D max pooling window over NHWC activations; padding behaves as -infinity.
struct PoolGeometry {
  dim_t n = 1, c = 0;
  dim_t ih = 0, iw = 0, oh = 0, ow = 0;
  dim_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

namespace detail {
/// The loop every low-precision (bf16, int8) pointwise driver shares: output pixels [pixel_begin,
/// pixel_end) in blocks of at most mb_max (evened out, a multiple of mr[4]) -> 64-column tiles of
/// [cout_begin, cout_end) -> row tiles of mr[nv] rows, nv = the tile's 16-column vectors. Calls
/// tile(r0, rows, c0, cols, nv) for each, so a column panel of weights serves every row tile of a block.
template <class Tile>
inline void for_each_pointwise_tile(dim_t pixel_begin, dim_t pixel_end, dim_t cout_begin, dim_t cout_end,
                                    const int (&mr)[5], dim_t mb_max, Tile&& tile) {
  if (pixel_begin >= pixel_end || cout_begin >= cout_end) return;
  const dim_t tile_cols = 64, rows = pixel_end - pixel_begin, mr_main = mr[4];
  const dim_t np = (rows + mb_max - 1) / mb_max;
  const dim_t mb = ((rows + np - 1) / np + mr_main - 1) / mr_main * mr_main;
  for (dim_t p0 = pixel_begin; p0 < pixel_end; p0 += mb) {
    const dim_t p1 = p0 + mb < pixel_end ? p0 + mb : pixel_end;
    for (dim_t c0 = cout_begin; c0 < cout_end; c0 += tile_cols) {
      const dim_t cols = tile_cols < cout_end - c0 ? tile_cols : cout_end - c0;
      const int nv = int((cols + 15) / 16);
      for (dim_t r0 = p0; r0 < p1; r0 += mr[nv]) tile(r0, int(mr[nv] < p1 - r0 ? mr[nv] : p1 - r0), c0, cols, nv);
    }
  }
}

/// {nullptr, Tile<1, NV>::run, ..., Tile<MaxMR, NV>::run}: the tile kernels of one width by height, as
/// function pointers of type Fn.
template <class Fn, template <int, int> class Tile, int NV, int... R>
constexpr std::array<Fn, sizeof...(R) + 1> tile_row(std::integer_sequence<int, R...>) {
  return {{nullptr, &Tile<R + 1, NV>::run...}};
}
template <class Fn, template <int, int> class Tile, int NV, int MaxMR>
constexpr std::array<Fn, MaxMR + 1> tile_row() {
  return tile_row<Fn, Tile, NV>(std::make_integer_sequence<int, MaxMR>{});
}
}  // namespace detail

}  // namespace kernels
}  // namespace sknet
