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
