// The bf16 engine (prepare with Precision::bf16) against the float reference network: SK bottlenecks
// (M = 2 and 3, the ImageNet and small stems, split input, average-pool shortcuts), ResNeXt
// bottlenecks, SK-ResNet basic blocks (in bf16, and in float where a path reads an odd number of
// channels) and SK-ShuffleNetV2 units, batch 1 to 3, odd map sizes, 1 and 2 threads, every ISA this
// CPU runs (bf16 kernels: vdpbf16ps, the widening AVX-512 kernel, the portable one); NaN propagation.
//
// Tolerance: a bf16 value carries 8 significant bits (rounding error up to 2^-9 relative). Weights,
// the block inputs and V are rounded once per block, and the errors of the roughly 3 + 2 x blocks
// roundings on a path add up like a random walk: about 2^-9 x sqrt(20) ~ 9e-3 of the logits' scale for
// these 4- and 8-block networks. Checked: 2e-2 of max |logit| (measured at most 5.6e-3 for the
// bottleneck networks and SK-ShuffleNetV2, 1.0e-2 for the SK-ResNet basic blocks, which round the block
// input, U_m, V and the output of every block, here on paths of 3 to 4 channels) and 3e-3 absolute on
// the attention (computed in float, only its inputs carry the rounding; measured at most 1.5e-3).
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

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

/// How many of `fast`'s blocks are bf16 basic blocks, and how many of those run bf16 arithmetic.
std::pair<int, int> bf16_basic_blocks(const PreparedNetwork& fast) {
  std::pair<int, int> count{0, 0};
  for (std::size_t i = 0; i < fast.num_blocks(); ++i)
    if (const auto* b = dynamic_cast<const PreparedBasicBlock<SKMiddle<2>, kernels::bf16_t>*>(&fast.block(i))) {
      ++count.first;
      count.second += b->bf16_arithmetic() ? 1 : 0;
    }
  return count;
}

/// skresnet18's plan, reduced: layers {2, 1, 1, 1} of `planes`, an 8-wide stem, 5 classes, M = 2.
NetworkPlan small_skresnet18(std::vector<Index> planes) {
  SKNetConfig basic = architecture("skresnet18").config;
  basic.layers = {2, 1, 1, 1};
  basic.planes = std::move(planes);
  basic.stem_width = 8;
  basic.num_classes = 5;
  basic.paths = 2;
  return skresnet_plan(basic, 2);
}

/// SK-ShuffleNetV2 reduced as its PyTorch fixture (tools/gen_shufflenet_fixtures.py) with stage widths
/// `planes` (each unit's branches are half as wide).
NetworkPlan small_shufflenet(std::vector<Index> planes) {
  SKNetConfig c = architecture("sk_shufflenetv2").config;
  c.layers = {2, 2, 2};
  c.planes = std::move(planes);
  c.stem_width = 6;
  c.head_width = 40;
  c.num_classes = 7;
  return family_plan("sk_shufflenetv2", c, 2);
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

TEST_CASE("bf16 SK-ResNet basic blocks run in bf16, in float where a path reads odd channels", "[prepared][bf16]") {
  // Planes 8, 16, ...: every block in bf16 (identity and projection shortcuts). Planes 6, 12, ...: the
  // blocks reading 6 channels, 3 per path (the second of stage 1, identity; the first of stage 2,
  // projection), fall back to float, the others run in bf16. Planes ..., 63: the last block's SK
  // convolution runs in bf16 (16 channels per path) before a float conv2 (63 input channels).
  const PrepareOptions bf16(1, false, std::nullopt, kernels::Precision::bf16);
  const NetworkPlan even = small_skresnet18({8, 16, 32, 64}), odd = small_skresnet18({6, 12, 20, 36});
  const NetworkPlan odd_last = small_skresnet18({8, 16, 32, 63});
  CHECK(bf16_basic_blocks(prepare_random(even, 1, bf16)) == std::pair<int, int>{5, 5});
  CHECK(bf16_basic_blocks(prepare_random(odd, 1, bf16)) == std::pair<int, int>{5, 3});
  CHECK(bf16_basic_blocks(prepare_random(odd_last, 1, bf16)) == std::pair<int, int>{5, 4});
  check_bf16(odd_last, 2, 27, 25, "skresnet18-like, odd last conv2, batch 2");
  check_bf16(even, 1, 37, 45, "skresnet18-like");
  check_bf16(even, 3, 25, 23, "skresnet18-like, batch 3");
  check_bf16(even, 2, 19, 33, "skresnet18-like, batch 2");
  check_bf16(odd, 1, 29, 27, "skresnet18-like, odd widths");
  check_bf16(odd, 3, 21, 17, "skresnet18-like, odd widths, batch 3");
}

TEST_CASE("bf16 SK-ShuffleNetV2 (bf16 1x1 convolutions, float depthwise SK convolutions)", "[prepared][bf16]") {
  check_bf16(small_shufflenet({12, 20, 36}), 1, 37, 45, "sk_shufflenetv2-like");
  check_bf16(small_shufflenet({12, 20, 36}), 3, 29, 23, "sk_shufflenetv2-like, batch 3");
  // Odd branch widths (7, 11): the second half of a unit's input starts at an odd channel.
  check_bf16(small_shufflenet({14, 22, 36}), 2, 33, 31, "sk_shufflenetv2-like, odd widths, batch 2");
}

TEST_CASE("bf16 networks propagate NaN from input to logits", "[prepared][bf16]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  const PrepareOptions bf16(1, false, std::nullopt, kernels::Precision::bf16);
  sknet_test::check_nan_propagation(prepare_random(sknet_plan(c, 2), 3, bf16), 3);
  sknet_test::check_nan_propagation(prepare_random(small_skresnet18({8, 16, 32, 64}), 3, bf16), 3);
  sknet_test::check_nan_propagation(prepare_random(small_shufflenet({12, 20, 36}), 3, bf16), 3);
}
