// sknet: tensor aliases and the layout contract.
//
// Layout: every activation inside sknet is NHWC, an Eigen RowMajor tensor with dimensions
// [N, H, W, C] (channels innermost, contiguous). Weights keep PyTorch's order
// ([Cout, Cin/G, KH, KW] for convolutions, [out, in] for Linear) so checkpoints load unchanged.
// PyTorch's NCHW activations are converted only at a network boundary (to_nhwc / to_nchw).
#pragma once

#include <unsupported/Eigen/CXX11/Tensor>

#include <array>
#include <cstdint>
#include <sstream>
#include <string>

#include "sknet/error.hpp"

namespace sknet {

using Index = Eigen::Index;

template <class Scalar, int Rank>
using Tensor = Eigen::Tensor<Scalar, Rank, Eigen::RowMajor>;
template <class Scalar>
using Tensor1 = Tensor<Scalar, 1>;
template <class Scalar>
using Tensor2 = Tensor<Scalar, 2>;
template <class Scalar>
using Tensor3 = Tensor<Scalar, 3>;
/// An NHWC activation [N, H, W, C], or a PyTorch-ordered weight [Cout, Cin/G, KH, KW].
template <class Scalar>
using Tensor4 = Tensor<Scalar, 4>;

/// Zero-copy views of caller-owned memory in the same layouts.
template <class Scalar, int Rank>
using TensorMap = Eigen::TensorMap<Tensor<Scalar, Rank>>;
template <class Scalar, int Rank>
using ConstTensorMap = Eigen::TensorMap<const Tensor<Scalar, Rank>>;
template <class Scalar>
using TensorMap4 = TensorMap<Scalar, 4>;
template <class Scalar>
using ConstTensorMap4 = ConstTensorMap<Scalar, 4>;

/// A read-only view of any RowMajor tensor of the given rank.
template <class Scalar, int Rank>
ConstTensorMap<Scalar, Rank> view(const Tensor<Scalar, Rank>& t) {
  return ConstTensorMap<Scalar, Rank>(t.data(), t.dimensions());
}

/// "[2, 7, 9, 64]"
template <class Dims>
std::string shape_string(const Dims& dims) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < static_cast<std::size_t>(dims.size()); ++i) os << (i ? ", " : "") << dims[i];
  os << ']';
  return os.str();
}

/// Output extent of a convolution or pooling window: floor((in + 2p - d(k-1) - 1) / s) + 1,
/// or 0 when the window does not fit at all (callers turn that into a ShapeError).
constexpr Index out_extent(Index in, Index kernel, Index stride, Index padding, Index dilation) {
  const Index span = in + 2 * padding - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

/// PyTorch NCHW [N, C, H, W] -> sknet NHWC [N, H, W, C] (a copy).
template <class Scalar>
Tensor4<Scalar> to_nhwc(const ConstTensorMap4<Scalar>& nchw) {
  const std::array<int, 4> order{0, 2, 3, 1};
  return nchw.shuffle(order);
}
template <class Scalar>
Tensor4<Scalar> to_nhwc(const Tensor4<Scalar>& nchw) {
  return to_nhwc<Scalar>(view(nchw));
}

/// sknet NHWC [N, H, W, C] -> PyTorch NCHW [N, C, H, W] (a copy).
template <class Scalar>
Tensor4<Scalar> to_nchw(const ConstTensorMap4<Scalar>& nhwc) {
  const std::array<int, 4> order{0, 3, 1, 2};
  return nhwc.shuffle(order);
}
template <class Scalar>
Tensor4<Scalar> to_nchw(const Tensor4<Scalar>& nhwc) {
  return to_nchw<Scalar>(view(nhwc));
}

}  // namespace sknet
