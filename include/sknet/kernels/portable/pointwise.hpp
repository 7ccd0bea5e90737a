// sknet kernels, portable C++: 1x1 convolution (pointwise GEMM) over NHWC float activations.
//
// Same structure as the SIMD kernels, with no intrinsics: weights packed as [cout/8][cin][8], a
// 4 pixels x 8 channels tile of float accumulators whose 8 lanes per row g++ -O3 vectorises (two SSE
// registers per row on baseline x86-64: about 40 GFLOP/s on Zen 5, against 13-20 when GCC's loop
// vectoriser is left to pick the k loop). Only a fallback: with -march=native on an AVX-512 machine
// g++ 12 packs it badly (about 7 GFLOP/s), but there pointwise_conv runs the avx512 kernel.
#pragma once

#include "sknet/kernels/pointwise.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#define SKNET_PW_KERNEL __attribute__((noinline, optimize("no-tree-loop-vectorize")))
#else
#define SKNET_PW_KERNEL
#endif

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

/// One mr x (nv * 8) tile over one k-block, with the epilogue on the last k-block.
template <int MR, int NV>
struct PointwiseTileKernel {
  static constexpr int kLanes = 8, kCols = NV * kLanes;

  /// sum[r][j] = sum_k a[r * lda + k] * w[(j / 8) * ldw + k * 8 + j % 8]. Kept out of line with
  /// constant trip counts only, so that acc lives in registers and the SLP vectoriser packs each
  /// row's lanes into vector multiply-adds (GCC's loop vectoriser would pick the k loop instead).
  SKNET_PW_KERNEL static void accumulate(dim_t kc, const float* a, dim_t lda, const float* w, dim_t ldw,
                                         float (&sum)[MR][kCols]) {
    float acc[MR][kCols] = {};
    for (dim_t k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const float ar = a[r * lda + k];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
#pragma GCC unroll 8
          for (int j = 0; j < kLanes; ++j) acc[r][v * kLanes + j] += ar * w[v * ldw + k * kLanes + j];
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 32
      for (int j = 0; j < kCols; ++j) sum[r][j] = acc[r][j];
  }

  static void run(const detail::PointwiseTile& t) {
    const int cols = int(t.cols);
    float acc[MR][kCols];
    accumulate(t.kc, t.src, t.src_stride, t.wei, t.wei_stride, acc);
    // Starting value: bias + residual on the first k-block, else the partial sums in dst.
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < cols; ++j) {
        const float start = t.first ? (t.bias ? t.bias[j] : 0.0f) +
                                          (t.residual ? t.residual[r * t.residual_stride + j] : 0.0f)
                                    : t.dst[r * t.dst_stride + j];
        acc[r][j] += start;
        if (t.last && t.relu) acc[r][j] = acc[r][j] < 0.0f ? 0.0f : acc[r][j];  // NaN stays NaN
      }
    if (t.last && t.channel_sums)
      for (int j = 0; j < cols; ++j) {
        float s = 0.0f;
        for (int r = 0; r < MR; ++r) s += acc[r][j];
        t.channel_sums[j] += s;
      }
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < cols; ++j) t.dst[r * t.dst_stride + j] = acc[r][j];
  }
};

/// The tile kernel for mr rows x nv vectors (mr <= 4, nv = 1).
inline detail::PointwiseTileFn pointwise_tile(int mr, int /*nv*/) {
  static constexpr auto t1 = detail::pointwise_tile_row<PointwiseTileKernel, 1, 4>();
  return t1[mr];
}

inline constexpr detail::PointwiseBlocking kPointwise4x8{8, 1, {0, 4, 0, 0, 0}, 256, 192};

/// 4 pixels x 8 channels tile.
inline void pointwise_4x8__portable(const PointwiseGeometry& g, const float* src, const float* packed,
                                    const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                                    dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                            kPointwise4x8, pointwise_tile);
}

inline void pointwise_conv(const PointwiseGeometry& g, const float* src, const float* packed,
                           const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  pointwise_4x8__portable(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet

#undef SKNET_PW_KERNEL
