// sknet kernels, AVX2 + FMA: 1x1 convolution (pointwise GEMM) over NHWC float activations.
//
// Layout: src rows used in place (one element per row and k broadcast to a ymm); weights packed as
// [cout/8][cin][8]; dst NHWC. Per k: load nv weight vectors, then for each of the mr rows one
// broadcast and nv FMAs into mr x nv ymm accumulators (16 ymm registers in all).
//   pointwise_6x16__avx2: 6 pixels x 16 channels, 12 accumulators (+2 weights +1 broadcast);
//   column tails of 8 channels run 8x8 tiles, pixel tails shorter ones. (4x24, with 16 live
//   registers, spills under g++ 12 and runs at half the speed.)
// A partial last vector is masked in the epilogue only (packed weights are zero-padded).
// Blocking and prefetching as in the AVX-512 kernel: k-blocks of <= 512 channels, pixel blocks of
// <= 192 rows; while a tile runs, the next tile's activation rows go to L1 and a share of the next
// weight panel to L2.
#pragma once

#include "sknet/kernels/pointwise.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX2_BEGIN
namespace sknet {
namespace kernels {
namespace avx2 {
inline namespace SKNET_BASELINE_TAG {

/// One mr x (nv * 8) register tile over one k-block, with the epilogue on the last k-block.
template <int MR, int NV>
struct PointwiseTileKernel {
  static void run(const detail::PointwiseTile& t) {
    const dim_t kc = t.kc, lda = t.src_stride, ldw = t.wei_stride, ldc = t.dst_stride;
    const float* a = t.src;
    const float* w = t.wei;
    float* c = t.dst;
    const int tail_cols = int(t.cols - (NV - 1) * 8);  // 1..8
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail_cols), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i full = _mm256_set1_epi32(-1);
    const auto mask = [&](int v) { return v == NV - 1 ? tail : full; };

    __m256 acc[MR][NV];
    if (t.first) {
      __m256 b[NV];
      for (int v = 0; v < NV; ++v)
        b[v] = t.bias ? _mm256_maskload_ps(t.bias + 8 * v, mask(v)) : _mm256_setzero_ps();
      if (t.residual) {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < NV; ++v)
            acc[r][v] =
                _mm256_add_ps(b[v], _mm256_maskload_ps(t.residual + r * t.residual_stride + 8 * v, mask(v)));
      } else {
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < NV; ++v) acc[r][v] = b[v];
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v)
          acc[r][v] = v == NV - 1 ? _mm256_maskload_ps(c + r * ldc + 8 * v, tail) : _mm256_loadu_ps(c + r * ldc + 8 * v);
    }

    const auto step = [&](dim_t k) {
      __m256 wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_ps(w + v * ldw + 8 * k);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r * lda + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(ar, wv[v], acc[r][v]);
      }
    };
    // Every 16 k (one cache line per row), prefetch the same line of the next row tile's rows.
    // Spread this tile's share of the next weight panel evenly over the same steps (into L2).
    const float* next = a + MR * lda;
    detail::PointwisePrefetchCursor next_wei(t.prefetch);
    const dim_t quota = kc >= 16 ? (next_wei.left() + kc / 16 - 1) / (kc / 16) : 0;
    dim_t k = 0;
    for (; k + 16 <= kc; k += 16) {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * lda + k), _MM_HINT_T0);
      for (dim_t q = 0; q < quota && next_wei.left() > 0; ++q) _mm_prefetch(next_wei.next(), _MM_HINT_T1);
#pragma GCC unroll 4
      for (int kk = 0; kk < 16; ++kk) step(k + kk);
    }
#pragma GCC unroll 4
    for (; k < kc; ++k) step(k);
    while (next_wei.left() > 0) _mm_prefetch(next_wei.next(), _MM_HINT_T1);

    if (t.last) {
      if (t.relu) {
        const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_max_ps(zero, acc[r][v]);  // NaN stays NaN
      }
      if (t.channel_sums) {
        for (int v = 0; v < NV; ++v) {
          __m256 s = acc[0][v];
#pragma GCC unroll 8
          for (int r = 1; r < MR; ++r) s = _mm256_add_ps(s, acc[r][v]);
          float* sums = t.channel_sums + 8 * v;
          _mm256_maskstore_ps(sums, mask(v), _mm256_add_ps(s, _mm256_maskload_ps(sums, mask(v))));
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) {
        if (v == NV - 1)
          _mm256_maskstore_ps(c + r * ldc + 8 * v, tail, acc[r][v]);
        else
          _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
      }
  }
};

/// The tile kernel for mr rows x nv vectors (mr <= 8, 6 for nv = 1, 2).
inline detail::PointwiseTileFn pointwise_tile(int mr, int nv) {
  static constexpr auto t1 = detail::pointwise_tile_row<PointwiseTileKernel, 1, 8>();
  static constexpr auto t2 = detail::pointwise_tile_row<PointwiseTileKernel, 2, 6>();
  return nv == 1 ? t1[mr] : t2[mr];
}

inline constexpr detail::PointwiseBlocking kPointwise6x16{8, 2, {0, 8, 6, 0, 0}, 512, 192};

/// 6 pixels x 16 channels main tile.
inline void pointwise_6x16__avx2(const PointwiseGeometry& g, const float* src, const float* packed,
                                 const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                                 dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                            kPointwise6x16, pointwise_tile);
}

inline void pointwise_conv(const PointwiseGeometry& g, const float* src, const float* packed,
                           const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  pointwise_6x16__avx2(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx2
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
