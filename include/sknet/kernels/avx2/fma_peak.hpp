// sknet kernels, AVX2 + FMA: the FMA peak microkernel (12 chains of 256-bit vfmadd; body in kernels/fma_peak_body.inc).
#pragma once

#include <algorithm>
#include <chrono>

#include "sknet/kernels/dispatch.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX2_BEGIN
namespace sknet {
namespace kernels {
namespace avx2 {
inline namespace SKNET_BASELINE_TAG {

struct PeakOps {
  using vec = __m256;
  static constexpr int chains = 12;
  static vec set(float x) { return _mm256_set1_ps(x); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static float first(vec a) { return _mm256_cvtss_f32(a); }
};

#include "sknet/kernels/fma_peak_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx2
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
