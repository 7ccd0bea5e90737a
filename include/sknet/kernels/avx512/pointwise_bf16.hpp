// sknet kernels, AVX-512: the bf16 1x1 convolution (kernels/pointwise_bf16.hpp), two kernels over one
// tile (kernels/pointwise_bf16_body.inc):
//   avx512_bf16::pointwise_bf16  vdpbf16ps and vcvtneps2bf16 (AVX512_BF16);
//   avx512::pointwise_bf16       each pair widened to two float32 vectors (shift / mask) and two FMAs,
//                                rounding to bf16 in integer arithmetic: CPUs without AVX512_BF16.
// Tiles: 6 pixels x 64 channels (24 accumulators), narrower column tails taller (8x48, 12x32, 12x16).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "sknet/kernels/pointwise_bf16.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

struct Bf16Ops {
  /// acc + odd products + even products, the order vdpbf16ps defines (each product exact in float).
  static __m512 dot(__m512 acc, __m512i a, __m512i w) {
    const __m512i high = _mm512_set1_epi32(std::int32_t(0xFFFF0000u));
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(a, high)), _mm512_castsi512_ps(_mm512_and_si512(w, high)), acc);
    return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)), acc);
  }
  /// Round to nearest even; NaN -> quiet NaN of the same sign.
  static __m256i round(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x0040));
    return _mm512_cvtepi32_epi16(r);
  }
};

#include "sknet/kernels/pointwise_bf16_body.inc"

/// bf16 -> float rows (exact).
inline void widen_bf16_rows(const bf16_t* src, float* dst, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << unsigned(n - i)) - 1u);
    _mm512_mask_storeu_ps(dst + i, m, widen_bf16(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

/// The widening bf16 kernel (no AVX512_BF16 needed).
inline void pointwise_bf16(const PointwiseGeometry& g, const bf16_t* src, const bf16_t* packed,
                           const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_bf16_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                                 kPointwiseBf16Blocking, pointwise_bf16_tile);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

SKNET_TARGET_AVX512_BF16_BEGIN
namespace sknet {
namespace kernels {
namespace avx512_bf16 {
inline namespace SKNET_BASELINE_TAG {

struct Bf16Ops {
  static __m512 dot(__m512 acc, __m512i a, __m512i w) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)w); }
  static __m256i round(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }
};

#include "sknet/kernels/pointwise_bf16_body.inc"

/// The native bf16 kernel (vdpbf16ps); requires cpu_has_avx512_bf16().
inline void pointwise_bf16(const PointwiseGeometry& g, const bf16_t* src, const bf16_t* packed,
                           const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  detail::pointwise_bf16_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end,
                                 kPointwiseBf16Blocking, pointwise_bf16_tile);
}

#include "sknet/kernels/fma_peak_body.inc"

/// vdpbf16ps on zmm: 32 multiply-adds per instruction, 24 chains.
struct Bf16DotPeakOps {
  using acc = __m512;
  static constexpr int chains = 24, ops_per_step = 2 * 32;
  static acc init(int i) { return _mm512_set1_ps(float(i)); }
  static acc step(acc a) {  // pairs (0.996, 0.996) . (1e-6, 1e-6)
    return _mm512_dpbf16_ps(a, (__m512bh)_mm512_set1_epi32(0x3F7F3F7F), (__m512bh)_mm512_set1_epi32(0x358C358C));
  }
  static acc add(acc a, acc b) { return _mm512_add_ps(a, b); }
  static float first(acc a) { return _mm512_cvtss_f32(a); }
};

/// Peak pair-dot throughput of one core in GFLOP/s (2 per multiply-add), measured for about `seconds`.
inline double bf16_dot_peak_gflops(double seconds) { return peak_rate<Bf16DotPeakOps>(seconds); }

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512_bf16
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
