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

#include "sknet/kernels/fma_peak_body.inc"

/// vfmadd231ps on ymm: 8 multiply-adds per instruction, 12 chains.
struct FmaPeakOps {
  using acc = __m256;
  static constexpr int chains = 12, ops_per_step = 2 * 8;
  static acc init(int i) { return _mm256_set1_ps(float(i)); }
  static acc step(acc a) { return _mm256_fmadd_ps(a, _mm256_set1_ps(0.999f), _mm256_set1_ps(1e-6f)); }
  static acc add(acc a, acc b) { return _mm256_add_ps(a, b); }
  static float first(acc a) { return _mm256_cvtss_f32(a); }
};

/// GFLOP/s of one core at full multiply-add throughput with this ISA's instructions, measured for
/// about `seconds`.
inline double fma_peak_gflops(double seconds) { return peak_rate<FmaPeakOps>(seconds); }

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx2
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
