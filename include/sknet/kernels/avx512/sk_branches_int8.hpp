// sknet kernels, AVX-512: the int8 SK branch convolutions (kernels/sk_branches_int8.hpp), two kernels over
// the shared tile and driver (kernels/sk_branches_body.inc) with the quad vocabulary of
// kernels/sk_branches_int8_ops.inc:
//   avx512_vnni::grouped_conv3x3_sk_int8  vpdpbusd; tiles of 14 pixels (2 rows x 7 on 7-wide maps, 2
//                                         blocks x 7 where blocks share their span), specialised for
//                                         3x3 kernels with stride 1, 2 and dilation 1, 2;
//   avx512::grouped_conv3x3_sk_int8       each quad dot as two exact vpmaddwd (no AVX512_VNNI), generic
//                                         tiles (run-time stride and dilation: the fallback is kept cheap
//                                         to compile).
// Register budget of the 14-pixel tile: 14 int32 accumulators + 3 weight vectors + input + lane table.
#pragma once

#include <cstdint>
#include <cstring>

#include "sknet/kernels/avx512/grouped_conv.hpp"
#include "sknet/kernels/avx512/pointwise_int8.hpp"
#include "sknet/kernels/sk_branches_int8.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

// The 16-bit multiply-add kernel (no AVX512_VNNI needed): generic tiles only.
template <class Ops, SKKind Kind>
using SKPickInt8 = SKPickGeneric<Ops, Kind>;
#include "sknet/kernels/sk_branches_int8_ops.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

SKNET_TARGET_AVX512_VNNI_BEGIN
namespace sknet {
namespace kernels {
namespace avx512_vnni {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/sk_branches_body.inc"

// Tiles specialised for SKNet's 3x3 branches (stride 1, 2; dilation 1, 2), generic elsewhere.
template <class Ops, SKKind Kind>
using SKPickInt8 = SKPickSKNet<Ops, Kind>;
// The native kernel (vpdpbusd): requires cpu_has_avx512_vnni().
#include "sknet/kernels/sk_branches_int8_ops.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512_vnni
}  // namespace kernels
}  // namespace sknet
SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
