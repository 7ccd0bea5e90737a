// sknet kernels, AVX2 + FMA: the 3x3, stride-2 max pool row kernel (kernels/max_pool.hpp; body in
// kernels/max_pool_body.inc, vectorised for this ISA's registers).
#pragma once

#include "sknet/kernels/max_pool.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX2_BEGIN
namespace sknet {
namespace kernels {
namespace avx2 {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/max_pool_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx2
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
