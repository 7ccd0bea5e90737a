// sknet kernels, AVX2 + FMA: the SK branch convolutions (grouped 3x3, dilation m, all branches) for float.
//
// One ymm = one block of 8 output channels. Register tiles (detail::SKTileKernel over SKBranchOps):
// 8 or 7 output pixels of a row x 1 block x 1 branch (at most 8 accumulators + 3 weight vectors +
// input + lane table of the 16 ymm registers), 4/2/1-pixel tiles for other row ends. Per reduction
// step the input vector of a pixel, from the compact scratch rows, is
//   gw = 1:       the block's 8 channels (vertical FMAs);
//   gw = 2, 4:    those permuted within 128-bit lanes (vpermilps, table control);
//   gw = 8, 16, 32 and every other width: one input channel broadcast (vbroadcastss).
// Epilogue in registers: bias, ReLU, masked store of U_m, per-channel sums.
#pragma once

#include "sknet/kernels/grouped_conv.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX2_BEGIN
namespace sknet {
namespace kernels {
namespace avx2 {
inline namespace SKNET_BASELINE_TAG {

/// The vector vocabulary of detail::SKTileKernel for ymm registers.
struct SKBranchOps {
  using vec = __m256;
  using mask_t = __m256i;
  using ctrl_t = __m256i;
  static constexpr int lanes = 8;
  static mask_t make_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static vec zero() { return _mm256_setzero_ps(); }
  static vec load(const float* p) { return _mm256_load_ps(p); }
  static vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, vec v) { _mm256_store_ps(p, v); }
  static vec load_masked(const float* p, mask_t k) { return _mm256_maskload_ps(p, k); }
  static vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static ctrl_t load_ctrl(const std::int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static vec permute_inlane(vec v, ctrl_t c) { return _mm256_permutevar_ps(v, c); }
  static vec permute_cross(vec v, ctrl_t c) { return _mm256_permutevar8x32_ps(v, c); }
  static vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static vec relu(vec a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }  // NaN stays NaN
  static void store_masked(float* p, mask_t k, vec v) { _mm256_maskstore_ps(p, k, v); }
};

#include "sknet/kernels/sk_branches_body.inc"

/// The tile plan of one call: 1-row tiles of 8 pixels,
/// narrower 1-row tiles for the rest (see detail::sk_branches_run).
inline detail::SKTilePlan sk_tile_plan(const SKBranchGeometry& g, const PackedBranchWeights& w) {
  return sk_plan<SKBranchOps>(detail::SKWidths<>{}, detail::SKWidths<8, 7, 4, 2, 1>{}, detail::SKBlocks<>{}, w,
                              g);
}

/// The avx2 kernel (tiles of 8, 4, 2, 1 pixels). See sknet::kernels::sk_branches_conv3x3.
inline void grouped_conv3x3_sk__avx2(const SKBranchGeometry& g, const float* src_padded,
                                     const PackedBranchWeights& w, float* const* dst, float* channel_sums,
                                     dim_t c_begin, dim_t c_end, dim_t oy_begin, dim_t oy_end,
                                     const SKBranchEpilogue& epilogue) {
  sk_branches_run<SKBranchOps>(sk_tile_plan(g, w), g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin,
                               oy_end, epilogue);
}

/// The avx2 Select kernel. See sknet::kernels::SKSelectKernelFn.
inline void sk_select__avx2(dim_t rows, dim_t c_count, dim_t paths, const float* a, const float* const* u, float* v) {
  sk_select_run<SKBranchOps>(rows, c_count, paths, a, u, v);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx2
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
