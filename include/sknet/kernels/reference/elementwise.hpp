// sknet reference kernels: per-channel and element-wise passes over channel-innermost data.
#pragma once

#include <cmath>

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/accumulator.hpp"

namespace sknet {
namespace kernels {
namespace reference {

/// dst[p, c] = src[p, c] * scale[c] + shift[c] over rows p < rows (in place allowed).
template <class Scalar>
void scale_shift_channels(dim_t rows, dim_t c, const Scalar* src, const Scalar* scale,
                          const Scalar* shift, Scalar* dst) {
  for (dim_t p = 0; p < rows; ++p)
    for (dim_t ch = 0; ch < c; ++ch) dst[p * c + ch] = src[p * c + ch] * scale[ch] + shift[ch];
}

/// x = max(x, 0); NaN stays NaN as in PyTorch.
template <class Scalar>
void relu(dim_t count, Scalar* x) {
  for (dim_t i = 0; i < count; ++i)
    if (x[i] < Scalar(0)) x[i] = Scalar(0);
}

/// Softmax across the middle axis of src [n, paths, c], written to dst of the same shape.
template <class Scalar>
void softmax_middle_axis(dim_t n, dim_t paths, dim_t c, const Scalar* src, Scalar* dst) {
  using Acc = accumulator_t<Scalar>;
  for (dim_t b = 0; b < n; ++b)
    for (dim_t ch = 0; ch < c; ++ch) {
      const Scalar* in = src + b * paths * c + ch;
      Scalar* out = dst + b * paths * c + ch;
      Acc top = Acc(in[0]);
      for (dim_t m = 1; m < paths; ++m) top = std::fmax(top, Acc(in[m * c]));
      Acc total = 0;
      for (dim_t m = 0; m < paths; ++m) total += std::exp(Acc(in[m * c]) - top);
      for (dim_t m = 0; m < paths; ++m) out[m * c] = static_cast<Scalar>(std::exp(Acc(in[m * c]) - top) / total);
    }
}

/// dst[b, p, c] = sum_m weight[b, m, c] * src[m][b, p, c] for `paths` tensors src[m] of shape
/// [n, pixels, c] and weights [n, paths, c].
template <class Scalar>
void weighted_sum_channels(dim_t n, dim_t pixels, dim_t c, dim_t paths, const Scalar* const* src,
                           const Scalar* weight, Scalar* dst) {
  using Acc = accumulator_t<Scalar>;
  for (dim_t b = 0; b < n; ++b)
    for (dim_t p = 0; p < pixels; ++p)
      for (dim_t ch = 0; ch < c; ++ch) {
        const dim_t at = (b * pixels + p) * c + ch;
        Acc acc = 0;
        for (dim_t m = 0; m < paths; ++m) acc += Acc(weight[(b * paths + m) * c + ch]) * Acc(src[m][at]);
        dst[at] = static_cast<Scalar>(acc);
      }
}

}  // namespace reference
}  // namespace kernels
}  // namespace sknet
