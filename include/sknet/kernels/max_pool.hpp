// sknet kernels: the 3x3, stride-2, padding-1 max pool (the ImageNet stem's) one output row at a time
// over NHWC float rows, one kernel per ISA (the same loops compiled for each ISA's vectors; body in
// kernels/max_pool_body.inc), chosen at run time by max_pool_row_kernel().
//
// NaN anywhere in a window gives NaN, as PyTorch's max pool (a plain max instruction would return
// whichever operand its definition picks).
#pragma once

#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// One output row: column_max[x][ch] = max over rows[0..count) (count 1..3: the input rows the window
/// covers, padding rows left out) of rows[i][x][ch], x < width; then dst[px][ch] = max of column_max
/// over x = 2px - 1 .. 2px + 1 within [0, width), for px < (width - 1) / 2 + 1 (the pooled width).
/// column_max holds width * channels floats and may be none of the rows; dst must not overlap them.
using MaxPoolRowFn = void (*)(const float* const* rows, int count, dim_t width, dim_t channels, float* column_max,
                              float* dst);

inline namespace SKNET_KERNEL_ABI {
/// The max pool row kernel of `isa` (the portable one when the CPU does not run `isa`).
SKNET_KERNEL_ENTRY MaxPoolRowFn max_pool_row_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
