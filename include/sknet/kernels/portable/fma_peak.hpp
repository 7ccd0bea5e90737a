// sknet kernels, portable C++: the FMA peak microkernel (12 chains of 8-float multiply-adds the compiler vectorises for the baseline; body in kernels/fma_peak_body.inc).
#pragma once

#include <algorithm>
#include <chrono>

#include "sknet/kernels/dispatch.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

struct PeakOps {
  struct vec {
    float v[8];
  };
  static constexpr int chains = 12;
  static vec set(float x) {
    vec r;
    for (float& f : r.v) f = x;
    return r;
  }
  static vec fma(const vec& a, const vec& b, const vec& c) {
    vec r;
    for (int l = 0; l < 8; ++l) r.v[l] = a.v[l] * b.v[l] + c.v[l];
    return r;
  }
  static vec add(const vec& a, const vec& b) {
    vec r;
    for (int l = 0; l < 8; ++l) r.v[l] = a.v[l] + b.v[l];
    return r;
  }
  static float first(const vec& a) { return a.v[0]; }
};

#include "sknet/kernels/fma_peak_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
