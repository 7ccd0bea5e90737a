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

#include "sknet/kernels/fma_peak_body.inc"

/// vfmadd231ps on zmm: 16 multiply-adds per instruction, 24 chains.
struct FmaPeakOps {
  using acc = __m512;
  static constexpr int chains = 24, ops_per_step = 2 * 16;
  static acc init(int i) { return _mm512_set1_ps(float(i)); }
  static acc step(acc a) { return _mm512_fmadd_ps(a, _mm512_set1_ps(0.999f), _mm512_set1_ps(1e-6f)); }
  static acc add(acc a, acc b) { return _mm512_add_ps(a, b); }
  static float first(acc a) { return _mm512_cvtss_f32(a); }
};

/// GFLOP/s of one core at full multiply-add throughput with this ISA's instructions, measured for
/// about `seconds`.
inline double fma_peak_gflops(double seconds) { return peak_rate<FmaPeakOps>(seconds); }

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
