// sknet kernels, portable C++: the bf16 SK branch convolutions (kernels/sk_branches_bf16.hpp) over
// 16-lane struct vectors, generic tiles of 4, 2, 1 pixels: the same packed layout, driver and order of
// operations as the AVX-512 kernels (each pair added as vdpbf16ps adds it: the odd product, then the
// even one, both exact in float).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "sknet/kernels/portable/grouped_conv.hpp"
#include "sknet/kernels/sk_branches_bf16.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

/// detail::SKTileKernel's vocabulary for bf16 pairs: float[16] accumulators, 16 32-bit pairs as operands.
struct SKBranchBf16Ops : SKBranchOpsN<16>, SKWordOperands<8> {
  using SKWordOperands<8>::broadcast;
  static constexpr int kValuesPerWord = 2;  // a bf16 pair per 32-bit word
  static constexpr bool kQuantized = false;
  using acc_vec = vec;
  static vec load_bf16(const bf16_t* p, mask_t k) {
    vec r;
    for (int l = 0; l < 16; ++l) r.v[l] = l < k ? from_bf16(p[l]) : 0.0f;
    return r;
  }
  static void store_bf16(bf16_t* p, mask_t k, const vec& v) {
    for (int l = 0; l < k; ++l) p[l] = to_bf16(v.v[l]);
  }
  static float high(std::uint32_t pair) { return from_bf16(bf16_t(pair >> 16)); }
  static float low(std::uint32_t pair) { return from_bf16(bf16_t(pair & 0xFFFFu)); }
  static vec fma(const in_vec& a, const wvec& w, const vec& acc) {
    vec r;
    for (int l = 0; l < 16; ++l) {
      float x = acc.v[l];
      x += high(a.v[l]) * high(w.v[l]);  // exact products: fused or not, the same sum
      x += low(a.v[l]) * low(w.v[l]);
      r.v[l] = x;
    }
    return r;
  }
  /// One pixel of the ring: nfull chunks of 32 channels, then `tail` pairs (zero-padded), from float rows
  /// (rounded) or bf16 rows.
  template <class Src>
  static void pack_pixel(float* d, dim_t chunk, const Src* sp, dim_t nfull, dim_t tail) {
    for (dim_t q = 0; q < nfull + (tail ? 1 : 0); ++q) {
      const dim_t n = q < nfull ? 32 : 2 * tail;
      std::uint32_t out[16];
      for (dim_t i = 0; i < 16; ++i) {
        const std::uint32_t lo = 2 * i < n ? as_bf16(sp[32 * q + 2 * i]) : 0u;
        const std::uint32_t hi = 2 * i + 1 < n ? as_bf16(sp[32 * q + 2 * i + 1]) : 0u;
        out[i] = lo | hi << 16;
      }
      std::memcpy(d + q * chunk, out, sizeof out);
    }
  }
  static bf16_t as_bf16(float x) { return to_bf16(x); }
  static bf16_t as_bf16(bf16_t x) { return x; }
};

/// The portable bf16 Select kernel (see SKSelectBf16KernelFn), with the SIMD kernels' fused multiply-adds.
inline void sk_select_bf16(dim_t rows, dim_t c_count, dim_t paths, const float* a, const bf16_t* const* u, bf16_t* v) {
  for (dim_t r = 0; r < rows; ++r)
    for (dim_t c = 0; c < c_count; ++c) {
      const dim_t at = r * c_count + c;
      float acc = std::fma(a[c], from_bf16(u[0][at]), 0.0f);
      for (dim_t m = 1; m < paths; ++m) acc = std::fma(a[m * c_count + c], from_bf16(u[m][at]), acc);
      v[at] = to_bf16(acc);
    }
}

/// The portable kernel. See sknet::kernels::sk_branches_conv3x3_bf16.
inline void grouped_conv3x3_sk_bf16(const SKBranchGeometry& g, SKBranchBf16Source src, const PackedBranchWeightsBf16& w,
                                    float* const* dst, float* channel_sums, dim_t c_begin, dim_t c_end,
                                    dim_t oy_begin, dim_t oy_end, const SKBranchEpilogue& epilogue) {
  const auto plan = sk_plan<SKBranchBf16Ops, SKPickGeneric>(detail::SKWidths<>{}, detail::SKWidths<4, 2, 1>{},
                                                            detail::SKBlocks<>{}, w, g);
  if (src.bf16)
    sk_branches_run<SKBranchBf16Ops>(plan, g, src.bf16, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
  else
    sk_branches_run<SKBranchBf16Ops>(plan, g, src.f32, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
