// sknet: the layers of a network plan as reference modules, one at a time.
//
// for_each_plan_layer builds each layer of a plan just before handing it to a callback and destroys it
// after, so a whole network never has to be held: the prepared engine packs them as they come, the
// checkpoint's expected keys are read off them, and seeded random weights are drawn into them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/models/resnext.hpp"
#include "sknet/models/sknet.hpp"
#include "sknet/parameters.hpp"

namespace sknet {

/// Calls f(layer, prefix) for every layer of `plan` in network order: the stem ConvBnAct<Scalar>
/// (prefix ""), each block as SKUnit<Scalar, M> (SK blocks; requires M == plan.paths) or
/// ResNeXtUnit<Scalar> (grouped blocks) with its name as prefix, and the Linear<Scalar> head ("fc").
/// f takes any of those types (a generic lambda). Layers start with unset parameters.
template <class Scalar, int M, class F>
void for_each_plan_layer(const NetworkPlan& plan, F&& f) {
  {
    ConvBnAct<Scalar> stem(plan.stem, true, "", "conv1", "bn1");
    f(stem, std::string());
  }
  for (const BlockPlan& b : plan.blocks) {
    if (b.middle == Middle::sk) {
      detail::require<ConfigError>(b.paths == M, b.name, "SK paths (M of the walker)", M, b.paths);
      SKUnit<Scalar, M> unit(b.sk_unit(), b.name);
      f(unit, b.name);
    } else {
      ResNeXtUnit<Scalar> unit(b);
      f(unit, b.name);
    }
  }
  Linear<Scalar> fc(plan.head, "fc");
  f(fc, std::string("fc"));
}

/// The same with M read from the plan (1 when it has no SK blocks).
template <class Scalar, class F>
void for_each_plan_layer(const NetworkPlan& plan, F&& f) {
  with_paths(plan.paths > 0 ? plan.paths : 1, [&](auto m) { for_each_plan_layer<Scalar, decltype(m)::value>(plan, f); });
}

/// Every parameter name of the plan's checkpoint (timm's names) with its shape.
inline std::map<std::string, std::vector<Index>> expected_parameters(const NetworkPlan& plan) {
  std::map<std::string, std::vector<Index>> out;
  for_each_plan_layer<float>(plan, [&](auto& layer, const std::string& prefix) {
    layer.visit_parameters(prefix, [&](ParameterRef<float> p) { out[p.name] = p.shape; });
  });
  return out;
}

}  // namespace sknet
