// sknet reference kernels: max pooling and global average pooling over NHWC activations.
#pragma once

#include <limits>

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/accumulator.hpp"

namespace sknet {
namespace kernels {
namespace reference {

/// src NHWC [n, ih, iw, c] -> dst NHWC [n, oh, ow, c]; padded positions never win.
/// Requires every window to overlap the input (guaranteed when padding <= kernel / 2).
template <class Scalar>
void max_pool2d_nhwc(const PoolGeometry& g, const Scalar* src, Scalar* dst) {
  for (dim_t n = 0; n < g.n; ++n)
    for (dim_t oy = 0; oy < g.oh; ++oy)
      for (dim_t ox = 0; ox < g.ow; ++ox)
        for (dim_t c = 0; c < g.c; ++c) {
          Scalar best = -std::numeric_limits<Scalar>::infinity();
          for (dim_t ky = 0; ky < g.kh; ++ky) {
            const dim_t iy = oy * g.sh - g.ph + ky;
            if (iy < 0 || iy >= g.ih) continue;
            for (dim_t kx = 0; kx < g.kw; ++kx) {
              const dim_t ix = ox * g.sw - g.pw + kx;
              if (ix < 0 || ix >= g.iw) continue;
              const Scalar v = src[((n * g.ih + iy) * g.iw + ix) * g.c + c];
              if (v > best || v != v) best = v;  // NaN propagates, as in PyTorch
            }
          }
          dst[((n * g.oh + oy) * g.ow + ox) * g.c + c] = best;
        }
}

/// src [n, pixels, c] -> dst [n, c]: the mean over the pixels of each channel.
template <class Scalar>
void global_avg_pool(dim_t n, dim_t pixels, dim_t c, const Scalar* src, Scalar* dst) {
  using Acc = accumulator_t<Scalar>;
  for (dim_t b = 0; b < n; ++b)
    for (dim_t ch = 0; ch < c; ++ch) {
      Acc acc = 0;
      for (dim_t p = 0; p < pixels; ++p) acc += Acc(src[(b * pixels + p) * c + ch]);
      dst[b * c + ch] = static_cast<Scalar>(acc / Acc(pixels));
    }
}

}  // namespace reference
}  // namespace kernels
}  // namespace sknet
