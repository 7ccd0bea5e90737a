// sknet kernels, portable C++: the int8 SK branch convolutions (kernels/sk_branches_int8.hpp) over
// 16-lane struct vectors, generic tiles of 4, 2, 1 pixels: the same packed layout, driver, exact int32
// sums and fused dequantizing multiply-add as the AVX-512 kernels (so the same bits).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "sknet/kernels/portable/grouped_conv.hpp"
#include "sknet/kernels/sk_branches_int8.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

/// detail::SKTileKernel's vocabulary for u8 x s8 quads: int32[16] accumulators, 16 32-bit quads as
/// operands, float[16] after dequantizing.
struct SKBranchInt8Ops : SKBranchOpsN<16>, SKWordOperands<4> {
  struct sums {
    std::int32_t v[16];
  };
  using SKWordOperands<4>::broadcast;
  static constexpr int kValuesPerWord = 4;
  static constexpr bool kQuantized = true;
  using acc_vec = sums;
  static acc_vec zero_acc() { return sums{}; }
  static acc_vec fma(const in_vec& a, const wvec& w, const acc_vec& acc) {
    sums r;
    for (int l = 0; l < 16; ++l) {
      std::int32_t x = acc.v[l];
      for (int e = 0; e < 4; ++e)
        x += std::int32_t((a.v[l] >> (8 * e)) & 0xFFu) * std::int32_t(std::int8_t(std::uint8_t(w.v[l] >> (8 * e))));
      r.v[l] = x;
    }
    return r;
  }
  static vec dequantize(const acc_vec& acc, const vec& scale, const vec& bias) {
    vec r;
    for (int l = 0; l < 16; ++l) r.v[l] = std::fma(float(acc.v[l]), scale.v[l], bias.v[l]);
    return r;
  }
  /// One pixel of the ring: nfull chunks of 64 channels, then `tail` quads (zero-padded), as u8 codes at
  /// zero point 0 (quantize_u8: the SIMD kernels' codes) from float rows, or copied from code rows.
  template <class Src>
  static void pack_pixel(float* d, dim_t chunk, const Src* sp, dim_t nfull, dim_t tail, float inv_scale) {
    for (dim_t q = 0; q < nfull + (tail ? 1 : 0); ++q) {
      const dim_t n = q < nfull ? 64 : 4 * tail;
      std::uint8_t out[64] = {};
      for (dim_t i = 0; i < n; ++i) out[i] = code(sp[64 * q + i], inv_scale);
      std::memcpy(d + q * chunk, out, sizeof out);
    }
  }

  static u8_t code(float x, float inv_scale) { return quantize_u8(x, inv_scale, 0); }
  static u8_t code(u8_t x, float) { return x; }
};

/// The portable kernel. See sknet::kernels::sk_branches_conv3x3_int8.
inline void grouped_conv3x3_sk_int8(const SKBranchGeometry& g, SKBranchInt8Source src, const PackedBranchWeightsInt8& w,
                                    float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                    dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue) {
  const auto plan = sk_plan<SKBranchInt8Ops, SKPickGeneric>(detail::SKWidths<>{}, detail::SKWidths<4, 2, 1>{},
                                                            detail::SKBlocks<>{}, w, g);
  if (src.u8)
    sk_branches_run<SKBranchInt8Ops>(plan, g, src.u8, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
  else
    sk_branches_run<SKBranchInt8Ops>(plan, g, src.f32, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
