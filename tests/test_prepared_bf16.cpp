// The bf16 engine (prepare with Precision::bf16) against the float reference network: SK bottlenecks
// (M = 2 and 3, the ImageNet and small stems, split input, average-pool shortcuts) and ResNeXt
// bottlenecks, batch 1 and 3, 1 and 2 threads, every ISA this CPU runs (bf16 kernels: vdpbf16ps, the
// widening AVX-512 kernel, the portable one); what it refuses; NaN propagation.
//
// Tolerance: a bf16 value carries 8 significant bits (rounding error up to 2^-9 relative). Weights,
// the block inputs and V are rounded once per block, and the errors of the roughly 3 + 2 x blocks
// roundings on a path add up like a random walk: about 2^-9 x sqrt(20) ~ 9e-3 of the logits' scale for
// these 4- and 8-block networks. Checked: 2e-2 of max |logit| (measured at most 2.9e-3) and 3e-3
// absolute on the attention (computed in float from float rows, only its inputs carry the rounding;
// measured at most 8.8e-4).
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "support/precision_check.hpp"
#include "support/tiny_sknet.hpp"

using namespace sknet;

namespace {

/// The reduced SKNet-26 of the engine tests (group widths 2, 4, 8, 16) with `stem`.
SKNetConfig small_config(Stem stem) {
  SKNetConfig c = sknet_test::tiny_sknet26_config();
  c.stem = stem;
  return c;
}

/// bf16 forwards of `plan` (random weights, seed 41) against its float reference network.
void check_bf16(const NetworkPlan& plan, Index batch, Index height, Index width, const std::string& what) {
  with_paths(plan.paths > 0 ? plan.paths : 1, [&](auto m) {
    Network<float, decltype(m)::value> net(plan);
    randomize<float>(net, 41);
    Tensor4<float> x(batch, height, width, plan.config.in_channels);
    x.setRandom();
    x = x * 2.0f - 1.0f;
    AttentionMaps<float> want_attention;
    const Tensor2<float> want = net.forward(view(x), &want_attention);
    sknet_test::check_precision(net, x, want, want_attention, kernels::Precision::bf16, nullptr, {2e-2, 3e-3}, what);
  });
}

}  // namespace

TEST_CASE("bf16 SK networks stay within bf16 rounding of the float reference", "[prepared][bf16]") {
  for (Index paths : {2, 3}) {
    SKNetConfig c = small_config(Stem::imagenet);
    c.paths = paths;
    check_bf16(sknet_plan(c, paths), 1, 37, 45, "sknet M=" + std::to_string(paths));
  }
  SKNetConfig small = small_config(Stem::small);
  small.paths = 2;
  check_bf16(sknet_plan(small, 2), 3, 15, 13, "sknet, small stem");
}

TEST_CASE("bf16 ResNeXt, SE-ResNeXt and SK-ResNet bottlenecks (split input, average-pool shortcuts)", "[prepared][bf16]") {
  SKNetConfig resnext = small_config(Stem::imagenet);
  check_bf16(resnext_plan(resnext), 3, 33, 29, "resnext");
  SKNetConfig se = small_config(Stem::imagenet);  // SE-ResNeXt: the gate in float between bf16 rows
  se.se = se_rule();
  check_bf16(resnext_plan(se), 1, 35, 31, "seresnext");
  check_bf16(resnext_plan(se), 3, 23, 21, "seresnext, batch 3");
  SKNetConfig d = architecture("skresnet50d").config;  // deep stem, avg_down, G = 1, split input
  d.layers = {1, 1, 1, 1};
  d.planes = {8, 16, 32, 64};
  d.stem_width = 8;
  d.num_classes = 11;
  d.paths = 2;
  check_bf16(skresnet_plan(d, 2), 1, 41, 37, "skresnet50d-like");
}

TEST_CASE("bf16 SK-ResNet basic blocks (bf16 storage between blocks, float arithmetic)", "[prepared][bf16]") {
  SKNetConfig basic = architecture("skresnet18").config;
  basic.layers = {2, 1, 1, 1};
  basic.planes = {8, 16, 32, 64};
  basic.stem_width = 8;
  basic.num_classes = 5;
  basic.paths = 2;
  check_bf16(skresnet_plan(basic, 2), 1, 37, 45, "skresnet18-like");
  check_bf16(skresnet_plan(basic, 2), 3, 25, 23, "skresnet18-like, batch 3");
}

TEST_CASE("bf16 prepare refuses SK-ShuffleNetV2 (no bf16 form yet)", "[prepared][bf16]") {
  CHECK_THROWS_WITH(prepare_random(architecture_plan("sk_shufflenetv2"), 1,
                                   PrepareOptions(1, false, std::nullopt, kernels::Precision::bf16)),
                    Catch::Contains("SK-ShuffleNetV2") && Catch::Contains("bf16"));
}

TEST_CASE("bf16 networks propagate NaN from input to logits", "[prepared][bf16]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  sknet_test::check_nan_propagation(
      prepare_random(sknet_plan(c, 2), 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::bf16)), 3);
}
