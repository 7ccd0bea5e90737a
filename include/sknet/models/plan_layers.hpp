// sknet: the layers of a network plan as reference modules, one at a time.
//
// for_each_plan_layer builds each layer of a plan just before handing it to a callback and destroys it
// after, so a whole network never has to be held: the prepared engine packs them as they come, the
// checkpoint's expected keys are read off them, and seeded random weights are drawn into them.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "sknet/models/network_plan.hpp"
#include "sknet/models/resnet_stem.hpp"
#include "sknet/models/resnext_unit.hpp"
#include "sknet/models/shuffle_unit.hpp"
#include "sknet/sk/sk_unit.hpp"
#include "sknet/parameters.hpp"

namespace sknet {

/// Calls f(std::integral_constant<int, M>{}) for a run-time path count M in 1..4, so code that
/// reads M from a file or a command line can instantiate SKNet<Scalar, M>.
template <class F>
decltype(auto) with_paths(Index m, F&& f) {
  switch (m) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: detail::fail<ConfigError>("sknet", "paths M", "1, 2, 3 or 4", m);
  }
}

/// The reference module of one block of a plan: an SK bottleneck, an SK basic block, a grouped
/// (ResNeXt / SE-ResNeXt) bottleneck, a ShuffleNetV2 unit with a depthwise SK convolution or a 1x1
/// conv block (ShuffleNetV2's conv5).
template <class Scalar, int M>
using PlanBlock =
    std::variant<SKUnit<Scalar, M>, SKBasicUnit<Scalar, M>, ResNeXtUnit<Scalar>, ShuffleUnit<Scalar, M>, PointwiseBlock<Scalar>>;

/// Builds block `b` as its reference module (parameters unset). SK blocks require M == b.paths.
template <class Scalar, int M>
PlanBlock<Scalar, M> make_plan_block(const BlockPlan& b) {
  if (b.kind == BlockKind::pointwise) return PlanBlock<Scalar, M>(std::in_place_index<4>, b);
  if (b.kind == BlockKind::shuffle) return PlanBlock<Scalar, M>(std::in_place_index<3>, b);
  if (b.middle == Middle::grouped) return PlanBlock<Scalar, M>(std::in_place_index<2>, b);
  detail::require<ConfigError>(b.paths == M, b.name, "SK paths (M of the walker)", M, b.paths);
  const SKUnitOptions o = b.sk_unit().avg_down(b.avg_down);
  if (b.kind == BlockKind::basic) return PlanBlock<Scalar, M>(std::in_place_index<1>, o, b.name);
  return PlanBlock<Scalar, M>(std::in_place_index<0>, o, b.name);
}

/// Calls f(layer, prefix) for every layer of `plan` in network order: the stem ResNetStem<Scalar>
/// (prefix ""), each block as its reference module (make_plan_block: SKUnit<Scalar, M>,
/// SKBasicUnit<Scalar, M>, ResNeXtUnit<Scalar>, ShuffleUnit<Scalar, M> or PointwiseBlock<Scalar>) with its name as prefix, and the Linear<Scalar>
/// head ("fc"). f takes any of those types (a generic lambda). Layers start with unset parameters.
template <class Scalar, int M, class F>
void for_each_plan_layer(const NetworkPlan& plan, F&& f) {
  {
    ResNetStem<Scalar> stem(plan);
    f(stem, std::string());
  }
  for (const BlockPlan& b : plan.blocks) {
    PlanBlock<Scalar, M> block = make_plan_block<Scalar, M>(b);
    std::visit([&](auto& layer) { f(layer, b.name); }, block);
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
