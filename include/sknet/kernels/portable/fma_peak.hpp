// sknet kernels, portable C++: the FMA peak microkernel (12 chains of 8-float multiply-adds the compiler vectorises for the baseline; body in kernels/fma_peak_body.inc).
#pragma once

#include <algorithm>
#include <chrono>

#include "sknet/kernels/dispatch.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/fma_peak_body.inc"

/// Multiply-adds on 8-float arrays (which the compiler vectorises for the baseline), 12 chains.
struct FmaPeakOps {
  struct acc {
    float v[8];
  };
  static constexpr int chains = 12, ops_per_step = 2 * 8;
  static acc init(int i) {
    acc r;
    for (float& f : r.v) f = float(i);
    return r;
  }
  static acc step(const acc& a) {
    acc r;
    for (int l = 0; l < 8; ++l) r.v[l] = a.v[l] * 0.999f + 1e-6f;
    return r;
  }
  static acc add(const acc& a, const acc& b) {
    acc r;
    for (int l = 0; l < 8; ++l) r.v[l] = a.v[l] + b.v[l];
    return r;
  }
  static float first(const acc& a) { return a.v[0]; }
};

/// GFLOP/s of one core at full multiply-add throughput with this ISA's instructions, measured for
/// about `seconds`.
inline double fma_peak_gflops(double seconds) { return peak_rate<FmaPeakOps>(seconds); }

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
