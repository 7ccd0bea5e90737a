// sknet: ReLU.
#pragma once

#include "sknet/kernels/reference/elementwise.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// max(x, 0) element-wise, in place, on a tensor of any rank (NaN stays NaN).
template <class Scalar, int Rank>
void relu_(Tensor<Scalar, Rank>& x) {
  kernels::reference::relu<Scalar>(x.size(), x.data());
}
template <class Scalar, int Rank>
void relu_(TensorMap<Scalar, Rank> x) {
  kernels::reference::relu<Scalar>(x.size(), x.data());
}

/// max(x, 0) element-wise, returning a new tensor.
template <class Scalar, int Rank>
Tensor<Scalar, Rank> relu(const Tensor<Scalar, Rank>& x) {
  Tensor<Scalar, Rank> y = x;
  relu_(y);
  return y;
}

}  // namespace sknet
