// sknet: the fast float inference form of an SKNet (PreparedNetwork over sknet_plan), under the names
// the SKNet API has always used.
#pragma once

#include "sknet/models/prepared_network.hpp"

namespace sknet {

/// An SKNet with M paths, prepared (see PreparedNetwork; M only selects the plan's SK paths).
template <int M>
using PreparedSKNet = PreparedNetwork;

/// The fast form straight from a checkpoint (see prepare_from_state_dict(NetworkPlan, ...)).
template <int M>
PreparedNetwork prepare_from_state_dict(const SKNetConfig& config, StateDict<float>&& dict,
                                        const PrepareOptions& options = {}, bool strict = true) {
  SKNet<float, M>::validate_config(config);
  ConsumingLoader<float> loader(std::move(dict));
  PreparedNetwork net(std::integral_constant<int, M>{}, sknet_plan(config, M), loader, options);
  loader.finish(strict);
  return net;
}

/// The fast form with seeded random weights (non-trivial BN statistics), for benchmarks.
template <int M>
PreparedNetwork prepare_random(const SKNetConfig& config, std::uint64_t seed, const PrepareOptions& options = {}) {
  SKNet<float, M>::validate_config(config);
  auto fill = [seed](auto& layer, const std::string& prefix) {
    randomize<float>(layer, seed ^ std::hash<std::string>{}(prefix));
  };
  return PreparedNetwork(std::integral_constant<int, M>{}, sknet_plan(config, M), fill, options);
}

}  // namespace sknet
