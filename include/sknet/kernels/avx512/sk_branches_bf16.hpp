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

// Tiles specialised for SKNet's 3x3 branches (stride 1, 2; dilation 1, 2), generic elsewhere.
template <class Ops, SKKind Kind>
using SKPickBf16 = SKPickSKNet<Ops, Kind>;
// The native kernel (vdpbf16ps): requires cpu_has_avx512_bf16().
#include "sknet/kernels/sk_branches_bf16_ops.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512_bf16
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
