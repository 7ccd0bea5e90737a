// sknet kernels, AVX-512: 1x1 convolution (pointwise GEMM) over NHWC float activations.
//
// Layout: src rows used in place (one element per row and k broadcast to a zmm); weights packed as
// [cout/16][cin][16]; dst NHWC. Per k: load nv weight vectors, then for each of the mr rows one
// broadcast and nv FMAs into mr x nv zmm accumulators.
//   pointwise_6x64__avx512: 6 pixels x 64 channels, 24 accumulators (+4 weights +1 broadcast);
//   pointwise_7x48__avx512: 7 pixels x 48 channels, 21 accumulators, for small maps (7x7 = 49 pixels).
// Narrower column tails run taller tiles (8x48, 12x32, 12x16), pixel tails shorter ones; a partial
// last vector is masked in the epilogue only (packed weights are zero-padded).
// Blocking (tuned on Zen 5, flat within noise from kc = 256..1024 and mb = 48..400): k-blocks of
// <= 1024 channels (the kc x 64 weight panel stays in L2), pixel blocks of <= 256 rows. Partial sums
// of earlier k-blocks go through dst; the epilogue runs in registers on the last k-block.
// Prefetch: when a tile starts, the next row tile's residual lines (or, without a residual, its output
// lines) go to L1 (ResNeXt-50 batch 1: 2.3% and 1.4% of the whole network at 1 thread); while a tile
// runs, the next tile's activation rows go to L1 (they come from DRAM at
// batch > 1: 256->128 at P = 25088, 195 -> 228 GFLOP/s) and its share of the next weight panel to
// all cache levels (at 7x7 a panel is read by only 7 row tiles and the weights stream from DRAM:
// 1024->2048 at P = 49 with cold weights, 180 -> 225 GFLOP/s with prefetches into L2; prefetching into
// L1 as well is another 5-8% there on Zen 5, bench_pointwise BM_PointwiseColdWeights).
#pragma once

#include "sknet/kernels/pointwise.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

/// One mr x (nv * 16) register tile over one k-block, with the epilogue on the last k-block.
template <int MR, int NV>
struct PointwiseTileKernel {
  static void run(const detail::PointwiseTile& t) {
    const dim_t kc = t.kc, lda = t.src_stride, ldw = t.wei_stride, ldc = t.dst_stride;
    const float* a = t.src;
    const float* w = t.wei;
    float* c = t.dst;
    const unsigned tail_cols = unsigned(t.cols - (NV - 1) * 16);  // 1..16
    const __mmask16 tail = __mmask16((1u << tail_cols) - 1u);
    const auto mask = [tail](int v) { return v == NV - 1 ? tail : __mmask16(0xFFFF); };

    __m512 acc[MR][NV];
    if (t.first) {
      __m512 b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        b[v] = t.bias ? _mm512_maskz_loadu_ps(mask(v), t.bias + 16 * v) : _mm512_setzero_ps();
      if (t.residual) {
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            acc[r][v] = _mm512_add_ps(
                b[v], _mm512_maskz_loadu_ps(mask(v), t.residual + r * t.residual_stride + 16 * v));
        // The next row tile's residual lines (a prefetch past the end is harmless).
        const float* next_res = t.residual + MR * t.residual_stride;
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            _mm_prefetch(reinterpret_cast<const char*>(next_res + r * t.residual_stride + 16 * v), _MM_HINT_T0);
      } else {
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[r][v] = b[v];
        // The next row tile's output lines, so that its stores do not wait for them.
        float* next_dst = c + MR * ldc;
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            _mm_prefetch(reinterpret_cast<const char*>(next_dst + r * ldc + 16 * v), _MM_HINT_T0);
      }
    } else {
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_maskz_loadu_ps(mask(v), c + r * ldc + 16 * v);
    }

    const auto step = [&](dim_t k) {
      __m512 wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + v * ldw + 16 * k);
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r * lda + k]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(ar, wv[v], acc[r][v]);
      }
    };
    // Every 16 k (one cache line per row), prefetch the same line of the next row tile's rows:
    // they come from DRAM when the activations do not fit in cache (large maps, batch > 1).
    // Spread this tile's share of the next weight panel evenly over the same steps.
    const float* next = a + MR * lda;
    detail::PointwisePrefetchCursor next_wei(t.prefetch);
    const dim_t quota = kc >= 16 ? (next_wei.left() + kc / 16 - 1) / (kc / 16) : 0;
    dim_t k = 0;
    for (; k + 16 <= kc; k += 16) {
#pragma GCC unroll 12
      for (int r = 0; r < MR; ++r) _mm_prefetch(reinterpret_cast<const char*>(next + r * lda + k), _MM_HINT_T0);
      for (dim_t q = 0; q < quota && next_wei.left() > 0; ++q) _mm_prefetch(next_wei.next(), _MM_HINT_T0);
#pragma GCC unroll 4
      for (int kk = 0; kk < 16; ++kk) step(k + kk);
    }
#pragma GCC unroll 4
    for (; k < kc; ++k) step(k);
    while (next_wei.left() > 0) _mm_prefetch(next_wei.next(), _MM_HINT_T0);

    if (t.last) {
      if (t.relu) {
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
        for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)  // max(0, x) keeps NaN; maskz: GCC 12 warns on max_ps's undefined source
            acc[r][v] = _mm512_maskz_max_ps(__mmask16(0xFFFF), zero, acc[r][v]);
      }
      if (t.channel_sums) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          __m512 s = acc[0][v];
#pragma GCC unroll 12
          for (int r = 1; r < MR; ++r) s = _mm512_add_ps(s, acc[r][v]);
          float* sums = t.channel_sums + 16 * v;
          _mm512_mask_storeu_ps(sums, mask(v), _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask(v), sums)));
        }
      }
    }
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if (v == NV - 1)
          _mm512_mask_storeu_ps(c + r * ldc + 16 * v, tail, acc[r][v]);
        else
          _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
      }
  }
};

/// The tile kernel for mr rows x nv vectors (mr <= 12, 12, 8, 6 for nv = 1, 2, 3, 4).
inline detail::PointwiseTileFn pointwise_tile(int mr, int nv) {
  static constexpr auto t1 = detail::pointwise_tile_row<PointwiseTileKernel, 1, 12>();
  static constexpr auto t2 = detail::pointwise_tile_row<PointwiseTileKernel, 2, 12>();
  static constexpr auto t3 = detail::pointwise_tile_row<PointwiseTileKernel, 3, 8>();
  static constexpr auto t4 = detail::pointwise_tile_row<PointwiseTileKernel, 4, 6>();
  switch (nv) {
    case 1: return t1[mr];
    case 2: return t2[mr];
    case 3: return t3[mr];
    default: return t4[mr];
  }
}

inline constexpr detail::PointwiseBlocking kPointwise6x64{16, 4, {0, 12, 12, 8, 6}, 1024, 256};
inline constexpr detail::PointwiseBlocking kPointwise7x48{16, 3, {0, 12, 12, 7, 0}, 1024, 196};

/// 6 pixels x 64 channels main tile: large maps.
inline void pointwise_6x64__avx512(const PointwiseGeometry& g, const float* src, const float* packed,
                                   const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin,
                                   dim_t pixel_end, dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                            kPointwise6x64, pointwise_tile);
}

/// 7 pixels x 48 channels main tile: small maps (7x7).
inline void pointwise_7x48__avx512(const PointwiseGeometry& g, const float* src, const float* packed,
                                   const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin,
                                   dim_t pixel_end, dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                            kPointwise7x48, pointwise_tile);
}

inline void pointwise_conv(const PointwiseGeometry& g, const float* src, const float* packed,
                           const PointwiseEpilogue& ep, float* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  const dim_t rows = pixel_end - pixel_begin;
  // Rows of the 6-row tiling wasted on a short last tile vs the 7-row tiling (P = 49: 5 vs 0).
  const dim_t waste6 = (rows + 5) / 6 * 6 - rows, waste7 = (rows + 6) / 7 * 7 - rows;
  if (rows <= 128 && waste7 < waste6)
    pointwise_7x48__avx512(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
  else
    pointwise_6x64__avx512(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
