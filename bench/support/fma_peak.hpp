// The FMA peak of one core, measured once per benchmark process: the reference of every
// peak_pct counter. 24 independent chains of vector multiply-adds in the build's widest ISA
// (zmm with AVX-512, ymm with AVX2 + FMA; plain SSE mul + add otherwise) keep every FMA pipe busy;
// after a warm-up (so the core has left any low clock state), the best of 20 runs of ~5 ms is
// taken, since the machine is shared.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace sknet_bench {

namespace detail {

#if defined(__AVX512F__)
using PeakVec = __m512;
inline PeakVec peak_set(float x) { return _mm512_set1_ps(x); }
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__AVX2__) && defined(__FMA__)
using PeakVec = __m256;
inline PeakVec peak_set(float x) { return _mm256_set1_ps(x); }
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) { return _mm256_fmadd_ps(a, b, c); }
#else
using PeakVec = __m128;
inline PeakVec peak_set(float x) { return _mm_set1_ps(x); }
inline PeakVec peak_fma(PeakVec a, PeakVec b, PeakVec c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
#endif

}  // namespace detail

/// GFLOP/s (2 per multiply-add) of one core at full FMA throughput, measured on first use.
inline double fma_peak_gflops() {
  static const double peak = [] {
    using detail::PeakVec;
    constexpr int kChains = 24, kLanes = int(sizeof(PeakVec) / sizeof(float));
    constexpr long kSteps = 400000;
    double best = 0;
    for (int run = -10; run < 20; ++run) {  // runs < 0 warm the core up and are not counted
      const PeakVec a = detail::peak_set(0.999f), b = detail::peak_set(1e-6f);
      // 24 named accumulators: an array may live in memory in some inlining contexts.
#define SKNET_PEAK_CHAINS(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) \
      X(20) X(21) X(22) X(23)
#define SKNET_PEAK_INIT(i) PeakVec acc##i = detail::peak_set(float(i));
#define SKNET_PEAK_STEP(i) acc##i = detail::peak_fma(acc##i, a, b);
#define SKNET_PEAK_SUM(i) total = detail::peak_fma(total, a, acc##i);
      SKNET_PEAK_CHAINS(SKNET_PEAK_INIT)
      const auto t0 = std::chrono::steady_clock::now();
      for (long s = 0; s < kSteps; ++s) {
        SKNET_PEAK_CHAINS(SKNET_PEAK_STEP)
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      PeakVec total = detail::peak_set(0.0f);
      SKNET_PEAK_CHAINS(SKNET_PEAK_SUM)
#undef SKNET_PEAK_SUM
#undef SKNET_PEAK_STEP
#undef SKNET_PEAK_INIT
#undef SKNET_PEAK_CHAINS
      float sink[kLanes];
      std::memcpy(sink, &total, sizeof(sink));
      if (sink[0] == 12345.0f) std::puts("");  // keeps the chains alive
      if (run >= 0) best = std::max(best, 2.0 * kLanes * kChains * double(kSteps) / seconds * 1e-9);
    }
    std::fprintf(stderr, "measured FMA peak of one core: %.1f GFLOP/s (peak_pct counters are against it)\n", best);
    return best;
  }();
  return peak;
}

}  // namespace sknet_bench
