// The FMA peak of one core, measured once per benchmark process: the reference of every
// peak_pct counter. 24 independent chains of vector multiply-adds in the build's widest ISA
// (zmm with AVX-512, ymm with AVX2 + FMA; plain SSE mul + add otherwise) keep every FMA pipe busy;
// the best of several short runs is taken, since the machine is shared.
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
    for (int run = 0; run < 7; ++run) {
      const PeakVec a = detail::peak_set(0.999f), b = detail::peak_set(1e-6f);
      PeakVec acc[kChains];
      for (int c = 0; c < kChains; ++c) acc[c] = detail::peak_set(float(c));
      const auto t0 = std::chrono::steady_clock::now();
      for (long s = 0; s < kSteps; ++s) {
#pragma GCC unroll 24
        for (int c = 0; c < kChains; ++c) acc[c] = detail::peak_fma(acc[c], a, b);
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      float sink[kLanes];
      PeakVec total = acc[0];
      for (int c = 1; c < kChains; ++c) total = detail::peak_fma(total, a, acc[c]);
      std::memcpy(sink, &total, sizeof(sink));
      if (sink[0] == 12345.0f) std::puts("");  // keeps the chains alive
      best = std::max(best, 2.0 * kLanes * kChains * double(kSteps) / seconds * 1e-9);
    }
    std::fprintf(stderr, "measured FMA peak of one core: %.1f GFLOP/s (peak_pct counters are against it)\n", best);
    return best;
  }();
  return peak;
}

}  // namespace sknet_bench
