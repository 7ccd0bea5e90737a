// sknet kernels: the squeeze-and-excitation gate of a bottleneck block applied to its conv3 output,
// with the shortcut add and the ReLU in the same pass: y = ReLU(gate * y + residual), per channel,
// over NHWC float rows of one image; one kernel per ISA (the same loop compiled for each ISA's
// vectors; body in kernels/se_gate_body.inc), chosen at run time by se_gate_rows_kernel().
//
// The ReLU keeps NaN (as PyTorch's), so NaN in y, the gate or the residual gives NaN out.
#pragma once

#include "sknet/kernels/dispatch.hpp"
#include "sknet/kernels/geometry.hpp"

namespace sknet {
namespace kernels {

/// y[p][ch] = ReLU(gate[ch] * y[p][ch] + residual[p][ch]) for p < rows, ch < channels (rows
/// `channels` floats apart, y in place); then, when channel_sums is not null, channel_sums[ch] += the
/// new y[p][ch] over the rows (the global average pool of the head). residual must not overlap y.
using SEGateRowsFn = void (*)(float* y, const float* residual, const float* gate, dim_t rows, dim_t channels,
                              float* channel_sums);

inline namespace SKNET_KERNEL_ABI {
/// The SE gate kernel of `isa` (the portable one when the CPU does not run `isa`).
SKNET_KERNEL_ENTRY SEGateRowsFn se_gate_rows_kernel(Isa isa) noexcept;
}  // namespace SKNET_KERNEL_ABI

}  // namespace kernels
}  // namespace sknet

#if SKNET_KERNEL_BODIES
#include "sknet/kernels/kernel_list.hpp"  // every ISA's kernels and the dispatcher
#endif
