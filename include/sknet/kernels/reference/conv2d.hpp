// sknet reference kernel: direct grouped, strided, dilated 2-D convolution.
//
// src: NHWC [n, ih, iw, ic]; wei: [oc, ic/groups, kh, kw] (PyTorch order); bias: [oc] or null;
// dst: NHWC [n, oh, ow, oc]. Zero padding. One output at a time, accumulated in double:
// slow and obviously correct, the oracle for every fast convolution kernel.
#pragma once

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/accumulator.hpp"

namespace sknet {
namespace kernels {
namespace reference {

template <class Scalar>
void conv2d_nhwc(const ConvGeometry& g, const Scalar* src, const Scalar* wei, const Scalar* bias,
                 Scalar* dst) {
  using Acc = accumulator_t<Scalar>;
  const dim_t icg = g.ic_per_group(), ocg = g.oc_per_group();
  for (dim_t n = 0; n < g.n; ++n)
    for (dim_t oy = 0; oy < g.oh; ++oy)
      for (dim_t ox = 0; ox < g.ow; ++ox) {
        Scalar* out = dst + ((n * g.oh + oy) * g.ow + ox) * g.oc;
        for (dim_t oc = 0; oc < g.oc; ++oc) {
          const dim_t group = oc / ocg;
          Acc acc = bias ? Acc(bias[oc]) : Acc(0);
          for (dim_t ky = 0; ky < g.kh; ++ky) {
            const dim_t iy = oy * g.sh - g.ph + ky * g.dh;
            if (iy < 0 || iy >= g.ih) continue;
            for (dim_t kx = 0; kx < g.kw; ++kx) {
              const dim_t ix = ox * g.sw - g.pw + kx * g.dw;
              if (ix < 0 || ix >= g.iw) continue;
              const Scalar* in = src + ((n * g.ih + iy) * g.iw + ix) * g.ic + group * icg;
              const Scalar* w = wei + oc * icg * g.kh * g.kw + ky * g.kw + kx;
              for (dim_t c = 0; c < icg; ++c) acc += Acc(in[c]) * Acc(w[c * g.kh * g.kw]);
            }
          }
          out[oc] = static_cast<Scalar>(acc);
        }
      }
}

}  // namespace reference
}  // namespace kernels
}  // namespace sknet
