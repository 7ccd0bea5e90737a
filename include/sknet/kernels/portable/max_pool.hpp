// sknet kernels, portable C++: the 3x3, stride-2 max pool row kernel (kernels/max_pool.hpp; body in
// kernels/max_pool_body.inc, vectorised for the baseline).
#pragma once

#include "sknet/kernels/max_pool.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

#include "sknet/kernels/max_pool_body.inc"

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
