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
/// NaN -> 0 (no code holds it). The SIMD kernels compute exactly this as round(clamp(x * inv_scale,
/// -z, 255 - z)) + z (clamped in float, NaN to -z, then vcvtps2dq: the same codes, the bounds being
/// integers).
inline u8_t quantize_u8(float x, float inv_scale, int zero_point) noexcept {
  float v = x * inv_scale;
  v = v > -512.0f ? v : -512.0f;  // NaN -> -512
  v = v < 512.0f ? v : 512.0f;
  return u8_t(std::clamp(int(std::nearbyint(v)) + zero_point, 0, 255));
}

/// The per-tensor u8 quantization of activations in [lo, hi]: x ~ scale * (code - zero_point). The range
/// is widened to hold 0 (so that 0, the ReLU floor and the zero padding, is exact); an empty or
/// non-finite range gives scale 1, zero point 0.
struct U8Quantization {
  float scale = 1.0f;
  int zero_point = 0;
  static U8Quantization for_range(float lo, float hi) noexcept {
    U8Quantization q;
    lo = std::min(lo, 0.0f), hi = std::max(hi, 0.0f);
    if (!(hi > lo) || !std::isfinite(hi - lo)) return q;
    q.scale = (hi - lo) / 255.0f;
    q.zero_point = std::clamp(int(std::nearbyint(-lo / q.scale)), 0, 255);
    return q;
  }
};

/// Quantizes n floats to u8 codes (quantize_u8 each, at inv_scale and zero_point); returns whether every
/// value was finite (a NaN or infinity has no code: the caller marks what it feeds). One per ISA: the
/// int8 engine's boundaries (the activations an int8 1x1 convolution reads).
using U8QuantizeFn = bool (*)(const float* src, u8_t* dst, std::int64_t n, float inv_scale, int zero_point);
inline namespace SKNET_KERNEL_ABI {
/// The quantizing kernel this CPU runs for `isa` (AVX-512 or portable; every form gives the same codes).
SKNET_KERNEL_ENTRY U8QuantizeFn u8_quantize_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

/// Whether this CPU runs AVX512_VNNI (with the AVX-512 subset sknet's avx512 kernels need).
inline bool cpu_has_avx512_vnni() noexcept { return cpu_has(Avx512Extension::vnni); }

}  // namespace kernels
}  // namespace sknet
