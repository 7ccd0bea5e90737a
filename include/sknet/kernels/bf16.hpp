// sknet kernels: bfloat16 values and the CPU feature that multiplies them natively.
//
// A bf16 is the upper half of a float32: same sign and exponent, 8 bits of significand (7 stored).
// sknet stores bf16 as std::uint16_t bit patterns. Conversion from float rounds to nearest, ties to
// even (what vcvtneps2bf16 does), keeps infinities and turns every NaN into a quiet NaN of the same
// sign (never into an infinity); conversion to float is exact.
//
// AVX512_BF16 (vdpbf16ps: per 32-bit lane, acc += a[2i] * b[2i] + a[2i+1] * b[2i+1] with the products
// exact in float32) is a CPU feature on top of AVX-512; cpu_has_avx512_bf16() tells whether this CPU
// (and operating system) runs it.
#pragma once

#include <cstdint>
#include <cstring>

#include "sknet/kernels/dispatch.hpp"

namespace sknet {
namespace kernels {

using bf16_t = std::uint16_t;

/// float -> bf16, round to nearest even; NaN stays NaN (quiet, same sign).
inline bf16_t to_bf16(float x) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bf16_t((u >> 16) | 0x0040u);  // NaN: quiet it
  u += 0x7FFFu + ((u >> 16) & 1u);
  return bf16_t(u >> 16);
}

/// bf16 -> float (exact).
inline float from_bf16(bf16_t h) noexcept {
  const std::uint32_t u = std::uint32_t(h) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

/// The float nearest to x that a bf16 holds (to_bf16 then from_bf16).
inline float round_to_bf16(float x) noexcept { return from_bf16(to_bf16(x)); }

/// Whether this CPU runs AVX512_BF16 (with the AVX-512 subset sknet's avx512 kernels need).
inline bool cpu_has_avx512_bf16() noexcept { return cpu_has(Avx512Extension::bf16); }

}  // namespace kernels
}  // namespace sknet
