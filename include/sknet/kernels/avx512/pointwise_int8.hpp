// sknet kernels, AVX-512: the int8 1x1 convolution (kernels/pointwise_int8.hpp), two kernels over one
// tile (kernels/pointwise_int8_body.inc):
//   avx512_vnni::pointwise_int8  vpdpbusd (AVX512_VNNI);
//   avx512::pointwise_int8       each quad split into its even and odd bytes as 16-bit values and two
//                                vpmaddwd (exact: no 16-bit saturation, unlike vpmaddubsw): CPUs
//                                without AVX512_VNNI.
// Tiles: 6 pixels x 64 channels (24 accumulators), narrower column tails taller (8x48, 12x32, 12x16).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "sknet/kernels/pointwise_int8.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

struct Int8Ops {
  /// acc + a.u8 . w.s8 per quad, in two exact 16-bit multiply-add pairs.
  static __m512i dot(__m512i acc, __m512i a, __m512i w) {
    const __m512i low = _mm512_set1_epi16(0x00FF);
    const __m512i a_even = _mm512_and_si512(a, low), a_odd = _mm512_srli_epi16(a, 8);
    const __m512i w_even = _mm512_srai_epi16(_mm512_slli_epi16(w, 8), 8), w_odd = _mm512_srai_epi16(w, 8);
    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(a_even, w_even));
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a_odd, w_odd));
  }
};

#include "sknet/kernels/pointwise_int8_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

SKNET_TARGET_AVX512_VNNI_BEGIN
namespace sknet {
namespace kernels {
namespace avx512_vnni {
inline namespace SKNET_BASELINE_TAG {

struct Int8Ops {
  /// vpdpbusd written as inline assembly: g++ 12 lowers the intrinsic with a copy of the accumulator
  /// per instruction, which spills a 6 x 4 tile (35% of the peak instead of 80+%).
  static __m512i dot(__m512i acc, __m512i a, __m512i w) {
#if defined(__GNUC__) && !defined(__clang__)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, a, w);
#endif
  }
};

#include "sknet/kernels/pointwise_int8_body.inc"

#include "sknet/kernels/fma_peak_body.inc"

/// vpdpbusd on zmm: 64 multiply-adds per instruction, 12 chains (on Zen 5, 8 to 12 chains reach 4x the
/// FMA rate and 16 or more only 2.2x).
struct Int8DotPeakOps {
  using acc = __m512i;
  static constexpr int chains = 12, ops_per_step = 2 * 64;
  static acc init(int i) { return _mm512_set1_epi32(i); }
  static acc step(acc a) {  // u8 1 x s8 (1, -1, 1, -1): the sums stay put
    return _mm512_dpbusd_epi32(a, _mm512_set1_epi32(0x01010101), _mm512_set1_epi32(0x01FF01FF));
  }
  static acc add(acc a, acc b) { return _mm512_add_epi32(a, b); }
  static int first(acc a) { return _mm512_reduce_add_epi32(a); }
};

/// Peak quad-dot throughput of one core in GOP/s (2 per multiply-add), measured for about `seconds`.
inline double int8_dot_peak_gops(double seconds) { return peak_rate<Int8DotPeakOps>(seconds); }

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512_vnni
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
