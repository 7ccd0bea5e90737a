// sknet kernels, AVX-512: the small row kernels, one body each compiled for this ISA's registers:
// the stem's 3x3, stride-2 max pool (kernels/max_pool.hpp, body kernels/max_pool_body.inc) and the
// SE gate (kernels/se_gate.hpp, body kernels/se_gate_body.inc).
#pragma once

#include "sknet/kernels/max_pool.hpp"
#include "sknet/kernels/se_gate.hpp"

#if SKNET_HAS_SIMD_KERNELS

SKNET_TARGET_AVX512_BEGIN
namespace sknet {
namespace kernels {
namespace avx512 {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/max_pool_body.inc"
#include "sknet/kernels/se_gate_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace avx512
}  // namespace kernels
}  // namespace sknet

SKNET_TARGET_END

#endif  // SKNET_HAS_SIMD_KERNELS
