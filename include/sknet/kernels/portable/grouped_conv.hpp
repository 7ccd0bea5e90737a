// sknet kernels, portable C++: the SK branch convolutions (grouped 3x3, dilation m, all branches).
//
// The same algorithm, driver and packed layout as the SIMD kernels (see grouped_conv.hpp) over 8-float
// "vectors" held in plain arrays, which compilers auto-vectorise; tiles of 4, 2, 1 pixels of a row.
// Correct for every geometry; the fallback when neither AVX-512 nor AVX2 + FMA is enabled.
#pragma once

#include "sknet/kernels/grouped_conv.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

/// The vector vocabulary of detail::SKTileKernel over float[N] (the float kernel: N = 8; the bf16
/// kernel's float side: N = 16).
template <int N>
struct SKBranchOpsN {
  static constexpr int lanes = N;
  struct vec {
    float v[N];
  };
  using mask_t = int;  // valid lanes
  struct ctrl_t {
    const std::int32_t* p = nullptr;
  };
  static mask_t make_mask(int n) { return n; }
  static vec zero() { return vec{}; }
  static vec load(const float* p) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = p[l];
    return r;
  }
  static vec loadu(const float* p) { return load(p); }
  static void storeu(float* p, const vec& a) { store(p, a); }
  static void store(float* p, const vec& a) {
    for (int l = 0; l < lanes; ++l) p[l] = a.v[l];
  }
  static vec load_masked(const float* p, mask_t k) {
    vec r{};
    for (int l = 0; l < k; ++l) r.v[l] = p[l];
    return r;
  }
  static vec broadcast(const float* p) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = *p;
    return r;
  }
  static ctrl_t load_ctrl(const std::int32_t* p) { return ctrl_t{p}; }
  static vec permute_cross(const vec& a, ctrl_t c) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = a.v[c.p[l]];
    return r;
  }
  static vec permute_inlane(const vec& a, ctrl_t c) { return permute_cross(a, c); }
  static vec fma(const vec& a, const vec& b, const vec& c) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = a.v[l] * b.v[l] + c.v[l];
    return r;
  }
  static vec add(const vec& a, const vec& b) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = a.v[l] + b.v[l];
    return r;
  }
  static vec relu(const vec& a) {
    vec r;
    for (int l = 0; l < lanes; ++l) r.v[l] = a.v[l] < 0.0f ? 0.0f : a.v[l];  // NaN stays NaN
    return r;
  }
  static void store_masked(float* p, mask_t k, const vec& a) {
    for (int l = 0; l < k; ++l) p[l] = a.v[l];
  }
};
using SKBranchOps = SKBranchOpsN<8>;

/// The operand side of the packed-word vocabularies (bf16 pairs, u8 / s8 quads): 16 lanes of 32-bit
/// words, loaded from the packed weights, broadcast from the ring, or (cross kind) permuted from the
/// block's `BlockWords` words.
template <int BlockWords>
struct SKWordOperands {
  struct words {
    std::uint32_t v[16];
  };
  using in_vec = words;
  using wvec = words;
  static wvec load_weights(const float* p) {
    words r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static in_vec broadcast(const float* p) {
    std::uint32_t word;
    std::memcpy(&word, p, sizeof word);
    words r;
    for (auto& x : r.v) x = word;
    return r;
  }
  static in_vec input_cross(const float* p, SKBranchOpsN<16>::ctrl_t c) {
    std::uint32_t block[BlockWords];
    std::memcpy(block, p, sizeof block);
    words r;
    for (int l = 0; l < 16; ++l) r.v[l] = block[c.p[l]];
    return r;
  }
};

#include "sknet/kernels/sk_branches_body.inc"

/// The tile plan of one call: 1-row tiles of 4 pixels, narrower 1-row tiles for the rest (see
/// sk_branches_run), all generic in stride and dilation: the portable kernel is the fallback for CPUs
/// without AVX2, so it is kept small to compile rather than fast.
inline detail::SKTilePlan sk_tile_plan(const SKBranchGeometry& g, const PackedBranchWeights& w) {
  return sk_plan<SKBranchOps, SKPickGeneric>(detail::SKWidths<>{}, detail::SKWidths<4, 2, 1>{}, detail::SKBlocks<>{}, w,
                                             g);
}

/// The portable kernel (tiles of 4, 2, 1 pixels). See sknet::kernels::sk_branches_conv3x3.
inline void grouped_conv3x3_sk__portable(const SKBranchGeometry& g, const float* src_padded,
                                         const PackedBranchWeights& w, float* const* dst, float* channel_sums,
                                         dim_t c_begin, dim_t c_end, dim_t oy_begin, dim_t oy_end,
                                         const SKBranchEpilogue& epilogue) {
  sk_branches_run<SKBranchOps>(sk_tile_plan(g, w), g, src_padded, w, dst, channel_sums, c_begin, c_end, oy_begin,
                               oy_end, epilogue);
}

/// The portable Select kernel. See sknet::kernels::SKSelectKernelFn.
inline void sk_select__portable(dim_t rows, dim_t c_count, dim_t paths, const float* a, const float* const* u, float* v) {
  sk_select_run<SKBranchOps>(rows, c_count, paths, a, u, v);
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
