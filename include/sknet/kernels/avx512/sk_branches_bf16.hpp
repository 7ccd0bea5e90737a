// sknet kernels, AVX-512: the bf16 SK branch convolutions (kernels/sk_branches_bf16.hpp), two kernels over
// the shared tile and driver (kernels/sk_branches_body.inc) with the pair vocabulary of
// kernels/sk_branches_bf16_ops.inc:
//   avx512_bf16::grouped_conv3x3_sk_bf16  vdpbf16ps; tiles of 14 pixels (2 rows x 7 on 7-wide maps, 2
//                                         blocks x 7 where blocks share their span), specialised for
//                                         3x3 kernels with stride 1, 2 and dilation 1, 2;
//   avx512::grouped_conv3x3_sk_bf16       each pair widened to two FMAs (no AVX512_BF16), generic tiles
//                                         (run-time stride and dilation: the fallback is kept cheap to
//                                         compile).
// Register budget of the 14-pixel tile: 14 accumulators + 3 weight vectors + input + lane table.
#pragma once

#include <cstdint>
#include <cstring>

#include "sknet/kernels/avx512/grouped_conv.hpp"
#include "sknet/kernels/avx512/pointwise_bf16.hpp"
#include "sknet/kernels/sk_branches_bf16.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

// The widening kernel (no AVX512_BF16 needed): generic tiles only.
template <class Ops, SKKind Kind>
using SKPickBf16 = SKPickGeneric<Ops, Kind>;
#include "sknet/kernels/sk_branches_bf16_ops.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

SKNET_TARGET_AVX512_BF16_BEGIN
namespace sknet {
namespace kernels {
namespace avx512_bf16 {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/sk_branches_body.inc"

/// Tiles of at least 7 pixels specialised for 3x3 kernels with stride 1, 2 and dilation 1, 2 (every SK
/// branch of SKNet-26/50/101); everything else the generic tile.
template <class Ops, SKKind Kind>
struct SKPickBf16 {
  template <int T, int R, int NB = 1>
  static SKTileFn get(dim_t s, dim_t d, dim_t k) {
    if constexpr (T >= 7 && !SKNET_GENERIC_TILES) {
      if (k == 3 && s == 1 && d == 1) return &SKTileKernel<Ops, Kind, T, R, 1, 1, NB>::run;
      if (k == 3 && s == 1 && d == 2) return &SKTileKernel<Ops, Kind, T, R, 1, 2, NB>::run;
      if (k == 3 && s == 2 && d == 1) return &SKTileKernel<Ops, Kind, T, R, 2, 1, NB>::run;
      if (k == 3 && s == 2 && d == 2) return &SKTileKernel<Ops, Kind, T, R, 2, 2, NB>::run;
    }
    (void)s, (void)d, (void)k;
    return &SKTileKernel<Ops, Kind, T, R, 0, 0, NB>::run;
  }
};
// The native kernel (vdpbf16ps): requires cpu_has_avx512_bf16().
#include "sknet/kernels/sk_branches_bf16_ops.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512_bf16
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
