// sknet kernels, portable C++: the small row kernels, one body each compiled for the baseline:
// the stem's 3x3, stride-2 max pool (kernels/max_pool.hpp, body kernels/max_pool_body.inc) and the
// SE gate (kernels/se_gate.hpp, body kernels/se_gate_body.inc).
#pragma once

#include "sknet/kernels/max_pool.hpp"
#include "sknet/kernels/se_gate.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/max_pool_body.inc"
#include "sknet/kernels/se_gate_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
