// sknet: named access to a layer's learnable parameters and buffers.
//
// Every layer exposes visit_parameters(prefix, visitor), calling visitor(ParameterRef) once per
// tensor with the PyTorch/timm state_dict name ("paths.0.bn.running_var"), so checkpoints map
// onto layers by name. The visitor may read or overwrite the values in place.
#pragma once

#include <string>
#include <vector>

#include "sknet/tensor.hpp"

namespace sknet {

template <class Scalar>
struct ParameterRef {
  std::string name;          ///< full state_dict key
  Scalar* data;              ///< contiguous, C order
  std::vector<Index> shape;  ///< PyTorch shape of the tensor
  bool buffer = false;       ///< a running statistic (BN mean/var), not a learnable parameter
  Index size() const {
    Index n = 1;
    for (Index d : shape) n *= d;
    return n;
  }
};

namespace detail {

/// "prefix.name", or "name" when prefix is empty.
inline std::string join_name(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

template <class Scalar, int Rank>
ParameterRef<Scalar> parameter_ref(const std::string& name, Tensor<Scalar, Rank>& t, bool buffer = false) {
  std::vector<Index> shape(t.dimensions().begin(), t.dimensions().end());
  return {name, t.data(), std::move(shape), buffer};
}

}  // namespace detail

/// Collects every parameter of a layer (anything with visit_parameters) into a list.
template <class Scalar, class Layer>
std::vector<ParameterRef<Scalar>> named_parameters(Layer& layer, const std::string& prefix = "") {
  std::vector<ParameterRef<Scalar>> out;
  layer.visit_parameters(prefix, [&](ParameterRef<Scalar> p) { out.push_back(std::move(p)); });
  return out;
}

/// The number of learnable values (buffers such as BN running statistics excluded), as
/// PyTorch's sum(p.numel() for p in model.parameters()).
template <class Scalar, class Layer>
Index count_parameters(Layer& layer) {
  Index total = 0;
  layer.visit_parameters("", [&](const ParameterRef<Scalar>& p) { total += p.buffer ? 0 : p.size(); });
  return total;
}

}  // namespace sknet
