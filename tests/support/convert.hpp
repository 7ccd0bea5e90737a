// Conversions between the test oracle's NCHW double arrays and sknet's NHWC tensors.
#pragma once

#include <sknet/sknet.hpp>

#include <string>

#include "reference/naive.hpp"
#include "support/safetensors_fixture.hpp"

namespace sknet_test {

/// naive NCHW [N, C, H, W] -> sknet NHWC tensor [N, H, W, C].
template <class Scalar>
sknet::Tensor4<Scalar> to_tensor_nhwc(const naive::Array& a) {
  REQUIRE(a.shape.size() == 4);
  const auto N = a.shape[0], C = a.shape[1], H = a.shape[2], W = a.shape[3];
  sknet::Tensor4<Scalar> t(N, H, W, C);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t x = 0; x < W; ++x) t(n, y, x, c) = static_cast<Scalar>(a.at(n, c, y, x));
  return t;
}

/// sknet NHWC tensor [N, H, W, C] -> naive NCHW [N, C, H, W].
template <class Scalar>
naive::Array to_array_nchw(const sknet::Tensor4<Scalar>& t) {
  const auto N = t.dimension(0), H = t.dimension(1), W = t.dimension(2), C = t.dimension(3);
  naive::Array a({N, C, H, W});
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t x = 0; x < W; ++x) a.at(n, c, y, x) = static_cast<double>(t(n, y, x, c));
  return a;
}

/// Any rank: a copy of the values in the same (C) order.
template <class Scalar, int Rank>
sknet::Tensor<Scalar, Rank> to_tensor_same_order(const naive::Array& a) {
  REQUIRE(a.shape.size() == static_cast<std::size_t>(Rank));
  Eigen::array<Eigen::Index, Rank> dims;
  for (int i = 0; i < Rank; ++i) dims[i] = a.shape[i];
  sknet::Tensor<Scalar, Rank> t(dims);
  for (std::size_t i = 0; i < a.data.size(); ++i) t.data()[i] = static_cast<Scalar>(a.data[i]);
  return t;
}

/// A state dict made of the fixture's tensors whose names are not in `exclude`.
template <class Scalar>
sknet::StateDict<Scalar> state_dict_from(const Fixture& f, const std::vector<std::string>& exclude) {
  sknet::StateDict<Scalar> dict;
  for (const auto& kv : f.tensors) {
    if (std::find(exclude.begin(), exclude.end(), kv.first) != exclude.end()) continue;
    sknet::NamedTensor<Scalar> t;
    t.shape.assign(kv.second.shape.begin(), kv.second.shape.end());
    for (double v : kv.second.data) t.values.push_back(static_cast<Scalar>(v));
    dict[kv.first] = std::move(t);
  }
  return dict;
}

/// Copies a naive array into a layer parameter of identical size (C order).
template <class Scalar, int Rank>
void assign(sknet::Tensor<Scalar, Rank>& dst, const naive::Array& src) {
  REQUIRE(static_cast<std::size_t>(dst.size()) == src.data.size());
  for (std::size_t i = 0; i < src.data.size(); ++i) dst.data()[i] = static_cast<Scalar>(src.data[i]);
}

}  // namespace sknet_test
