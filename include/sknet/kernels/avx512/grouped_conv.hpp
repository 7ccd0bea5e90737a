// sknet kernels, AVX-512: the SK branch convolutions (grouped 3x3, dilation m, all branches) for float.
//
// One zmm = one block of 16 output channels. Register tiles (detail::SKTileKernel over SKBranchOps):
// 14 output pixels of a row x 1 block x 1 branch (14 accumulators + 3 weight vectors + input + lane
// table), 2 rows x 7 pixels for 7-wide maps (stage 4), 7/4/2/1-pixel tiles for other row ends; where
// blocks share their input span (dense convolutions, gwo >= 32), 7 pixels x 2 blocks (14 accumulators
// + 6 weight vectors + input: each broadcast feeds 6 FMAs), which lifts 7x7 and 14x14 maps from about
// 65-72% of the FMA peak to about 80% (bench/RESULTS.md). Per reduction step the input vector of a
// pixel, from the compact scratch rows, is
//   gw = 1:       the block's 16 channels (vertical FMAs);
//   gw = 2, 4:    those permuted within 128-bit lanes (vpermilps, table control, load folded in);
//   gw = 8:       those permuted across lanes (vpermps, table control);
//   gw = 16, 32 and every other width: one input channel broadcast (vbroadcastss).
// Measured from L1 on Zen 5 (boost clock, FMA peak ~269 GF/s): 230-245 GF/s with permutes, 260-270
// with broadcasts for 14-pixel tiles. Epilogue in registers: bias (the accumulators start from it),
// ReLU, masked store of U_m, the tile's per-channel sum added to channel_sums.
#pragma once

#include "sknet/kernels/grouped_conv.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

/// The vector vocabulary of detail::SKTileKernel for zmm registers.
struct SKBranchOps {
  using vec = __m512;
  using mask_t = __mmask16;
  using ctrl_t = __m512i;
  static constexpr int lanes = 16;
  static mask_t make_mask(int n) { return mask_t((1u << n) - 1u); }
  static vec zero() { return _mm512_setzero_ps(); }
  static vec load(const float* p) { return _mm512_load_ps(p); }
  static vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, vec v) { _mm512_store_ps(p, v); }
  static vec load_masked(const float* p, mask_t k) { return _mm512_maskz_loadu_ps(k, p); }
  static vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static ctrl_t load_ctrl(const std::int32_t* p) { return _mm512_loadu_si512(p); }
  // The merge-masked forms with a full mask avoid g++ 12's spurious -Wuninitialized on _mm512_undefined_ps.
  static vec permute_inlane(vec v, ctrl_t c) { return _mm512_mask_permutevar_ps(v, 0xFFFF, v, c); }
  static vec permute_cross(vec v, ctrl_t c) { return _mm512_mask_permutexvar_ps(v, 0xFFFF, c, v); }
  static vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static vec relu(vec a) { return _mm512_mask_max_ps(a, 0xFFFF, _mm512_setzero_ps(), a); }  // NaN stays NaN
  static void store_masked(float* p, mask_t k, vec v) { _mm512_mask_storeu_ps(p, k, v); }
};

#include "sknet/kernels/sk_branches_body.inc"

/// The tile plan of one call: 1-row tiles of 14 pixels, 2-row tiles of 7 for what remains of a row pair,
/// narrower 1-row tiles for the rest (see detail::sk_branches_run); 1-row tiles of 2 blocks x 7 pixels
/// when the packed blocks share their input span in pairs or more. Rows a multiple of 8 but not of 7
/// wide (CIFAR's 32, 16, 8) take tiles of 16 and 8 instead (2-row tiles of 8, 2 blocks x 8), so that no
/// narrow tail tile finishes each row (32 = 14 + 14 + 4 ran the last 4 pixels at half speed).
inline detail::SKTilePlan sk_tile_plan(const SKBranchGeometry& g, const PackedBranchWeights& w) {
  if (g.ow() % 8 == 0 && g.ow() % 7 != 0)
    return sk_plan<SKBranchOps>(detail::SKWidths<8>{}, detail::SKWidths<16, 8, 4, 2, 1>{}, detail::SKBlocks<2, 8>{}, w,
                                g);
  return sk_plan<SKBranchOps>(detail::SKWidths<7>{}, detail::SKWidths<14, 7, 4, 2, 1>{}, detail::SKBlocks<2, 7>{}, w,
                              g);
}

/// The avx512 kernel (tiles of 14, 7, 4, 2, 1 pixels, and 2 blocks x 7; or of 16, 8, ...). See sknet::kernels::sk_branches_conv3x3.
inline void grouped_conv3x3_sk__avx512(const SKBranchGeometry& g, const float* src_padded,
                                       const PackedBranchWeights& w, float* const* dst, float* channel_sums,
                                       dim_t c_begin, dim_t c_end, dim_t oy_begin, dim_t oy_end,
                                       const SKBranchEpilogue& epilogue) {
  sk_branches_run<SKBranchOps>(sk_tile_plan(g, w), g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin,
                               oy_end, epilogue);
}

/// The avx512 Select kernel. See sknet::kernels::SKSelectKernelFn.
inline void sk_select__avx512(dim_t rows, dim_t c_count, dim_t paths, const float* a, const float* const* u, float* v) {
  sk_select_run<SKBranchOps>(rows, c_count, paths, a, u, v);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
