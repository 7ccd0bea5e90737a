// sknet: Network, the reference (double- or float-precision, unfused) form of any network plan:
// the stem, every block as its reference module (make_plan_block) and the classifier. Used for the
// families that have no class of their own (SK-ResNet, SE-ResNeXt) and as ResNeXt's base.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sknet/models/plan_layers.hpp"

namespace sknet {

/// The attention weights of every SK unit of one forward, in network order: (unit name, [N, M, C]).
template <class Scalar>
using AttentionMaps = std::vector<std::pair<std::string, Tensor3<Scalar>>>;

/// The network of `plan` with M paths in its SK blocks (any M when it has none). Input NHWC
/// [N, H, W, in_channels] (or NCHW through forward_nchw); output logits [N, num_classes]. Parameter
/// names are those of the plan's family (timm's). Weights start unset: load them (load_state_dict).
template <class Scalar, int M = 2>
class Network : public Module {
 public:
  explicit Network(NetworkPlan plan, const char* type = "Network")
      : Module(type), plan_(buildable(std::move(plan))), stem_(plan_), fc_(plan_.head, "fc") {
    for (const BlockPlan& b : plan_.blocks) blocks_.push_back(make_plan_block<Scalar, M>(b));
  }

  const NetworkPlan& plan() const { return plan_; }
  const SKNetConfig& config() const { return plan_.config; }
  const ResNetStem<Scalar>& stem() const { return stem_; }
  const Linear<Scalar>& fc() const { return fc_; }
  std::size_t num_blocks() const { return blocks_.size(); }
  const PlanBlock<Scalar, M>& block(std::size_t i) const { return blocks_[i]; }
  PlanBlock<Scalar, M>& block(std::size_t i) { return blocks_[i]; }

  /// requires: input NHWC [N, H, W, in_channels] large enough for every stride. ensures: returns the
  /// logits; `attention` (if given) receives every SK block's attention [N, M, C]. const, re-entrant.
  Tensor2<Scalar> forward(const ConstTensorMap4<Scalar>& input, AttentionMaps<Scalar>* attention = nullptr) const {
    detail::require<ShapeError>(input.dimension(3) == plan_.config.in_channels, label(),
                                "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) + ")",
                                plan_.config.in_channels, input.dimension(3));
    Tensor4<Scalar> x = stem_.forward(input);
    if (attention) attention->clear();
    Tensor3<Scalar> a;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      x = std::visit([&](const auto& block) { return block.forward(view(x), a); }, blocks_[i]);
      if (attention && plan_.blocks[i].has_attention()) attention->emplace_back(plan_.blocks[i].name, a);
    }
    return fc_.forward(global_avg_pool(x));
  }
  Tensor2<Scalar> forward(const Tensor4<Scalar>& input, AttentionMaps<Scalar>* attention = nullptr) const {
    return forward(view(input), attention);
  }
  /// PyTorch-ordered input [N, C, H, W] (converted once at the boundary).
  Tensor2<Scalar> forward_nchw(const ConstTensorMap4<Scalar>& input, AttentionMaps<Scalar>* attention = nullptr) const {
    return forward(to_nhwc<Scalar>(input), attention);
  }

  NetworkSummary summary(Index height, Index width, Index batch = 1) const { return plan_.summary(height, width, batch); }

  template <class Visitor>
  void visit_parameters(const std::string& prefix, Visitor&& visit) {
    stem_.visit_parameters(prefix, visit);
    for (std::size_t i = 0; i < blocks_.size(); ++i)
      std::visit([&](auto& block) { block.visit_parameters(detail::join_name(prefix, plan_.blocks[i].name), visit); },
                 blocks_[i]);
    fc_.visit_parameters(detail::join_name(prefix, "fc"), visit);
  }

 private:
  static NetworkPlan buildable(NetworkPlan p) {
    p.check_buildable();
    return p;
  }
  NetworkPlan plan_;
  ResNetStem<Scalar> stem_;
  std::vector<PlanBlock<Scalar, M>> blocks_;
  Linear<Scalar> fc_;
};

}  // namespace sknet
