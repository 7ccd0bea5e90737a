// sknet reference kernel: a fully connected layer, dst[n, o] = bias[o] + sum_i src[n, i] * wei[o, i].
#pragma once

#include "sknet/kernels/geometry.hpp"
#include "sknet/kernels/reference/accumulator.hpp"

namespace sknet {
namespace kernels {
namespace reference {

/// src [n, in], wei [out, in] (PyTorch order), bias [out] or null, dst [n, out].
template <class Scalar>
void linear(dim_t n, dim_t in, dim_t out, const Scalar* src, const Scalar* wei, const Scalar* bias,
            Scalar* dst) {
  using Acc = accumulator_t<Scalar>;
  for (dim_t b = 0; b < n; ++b)
    for (dim_t o = 0; o < out; ++o) {
      Acc acc = bias ? Acc(bias[o]) : Acc(0);
      for (dim_t i = 0; i < in; ++i) acc += Acc(src[b * in + i]) * Acc(wei[o * in + i]);
      dst[b * out + o] = static_cast<Scalar>(acc);
    }
}

}  // namespace reference
}  // namespace kernels
}  // namespace sknet
