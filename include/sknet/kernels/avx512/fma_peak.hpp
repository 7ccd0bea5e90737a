// sknet kernels, AVX-512: the FMA peak microkernel (24 chains of 512-bit vfmadd; body in kernels/fma_peak_body.inc).
#pragma once

#include <algorithm>
#include <chrono>

#include "sknet/kernels/dispatch.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

struct PeakOps {
  using vec = __m512;
  static constexpr int chains = 24;
  static vec set(float x) { return _mm512_set1_ps(x); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static float first(vec a) { return _mm512_cvtss_f32(a); }
};

#include "sknet/kernels/fma_peak_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
