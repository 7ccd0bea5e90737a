// sknet kernels: 8-bit quantized values and the CPU feature that multiplies them natively.
//
// Weights are signed 8-bit (s8_t) with a scale per output channel, symmetric: w ~ scale * q with q in
// [-127, 127] (-128 is never produced, so -q always fits). Activations are unsigned 8-bit (u8_t) with
// one scale and zero point per tensor: x ~ scale * (q - zero_point), q in [0, 255]; a tensor that a
// ReLU produced is never negative and takes zero point 0 (all 256 levels for [0, max]).
// Rounding to the integer grid is to nearest, ties to even (what vcvtps2dq does in the default
// rounding mode), then saturation.
//
// AVX512_VNNI (vpdpbusd: per 32-bit lane, acc += the four products of unsigned bytes of one operand
// with signed bytes of the other, exactly in int32) is a CPU feature on top of AVX-512;
// cpu_has_avx512_vnni() tells whether this CPU (and operating system) runs it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "sknet/kernels/dispatch.hpp"

namespace sknet {
namespace kernels {

using u8_t = std::uint8_t;
using s8_t = std::int8_t;

/// round(x), ties to even, saturated to [lo, hi]; NaN -> lo.
inline int quantize_round(float x, int lo, int hi) noexcept {
  if (!(x >= float(lo))) return lo;  // also NaN
  if (x >= float(hi)) return hi;
  return int(std::nearbyint(x));
}
/// x as u8 at inv_scale (1 / scale) and zero point z (0..255): clamp(round(x * inv_scale) + z, 0, 255);
/// NaN -> 0 (no code holds it). The SIMD kernels compute exactly this (clamp to [-512, 512] in float
/// first, NaN to -512, then vcvtps2dq and integer saturation).
inline u8_t quantize_u8(float x, float inv_scale, int zero_point) noexcept {
  float v = x * inv_scale;
  v = v > -512.0f ? v : -512.0f;  // NaN -> -512
  v = v < 512.0f ? v : 512.0f;
  return u8_t(std::clamp(int(std::nearbyint(v)) + zero_point, 0, 255));
}

/// Whether this CPU runs AVX512_VNNI (with the AVX-512 subset sknet's avx512 kernels need).
inline bool cpu_has_avx512_vnni() noexcept { return cpu_has(Avx512Extension::vnni); }

}  // namespace kernels
}  // namespace sknet
