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

/// Row conversions between float and bf16 (to_bf16 / from_bf16 on n values), one per ISA: the bf16
/// engine's boundaries (the stem's output, the V rows conv3 reads, the last activation the head pools).
using Bf16NarrowFn = void (*)(const float* src, bf16_t* dst, std::int64_t n);
using Bf16WidenFn = void (*)(const bf16_t* src, float* dst, std::int64_t n);
inline namespace SKNET_KERNEL_ABI {
/// The fastest narrowing kernel this CPU runs for `isa` (vcvtneps2bf16 with AVX512_BF16).
SKNET_KERNEL_ENTRY Bf16NarrowFn bf16_narrow_kernel(Isa isa) noexcept;
SKNET_KERNEL_ENTRY Bf16WidenFn bf16_widen_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// Whether this CPU runs AVX512_BF16 (with the AVX-512 subset sknet's avx512 kernels need).
inline bool cpu_has_avx512_bf16() noexcept { return cpu_has(Avx512Extension::bf16); }

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
