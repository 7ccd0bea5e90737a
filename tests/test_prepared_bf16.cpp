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

#include "support/compare.hpp"
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
    for (int isa = 0; isa <= int(kernels::cpu_isa()); ++isa)
      for (int threads : {1, 2}) {
        const PreparedNetwork fast = prepare(net, PrepareOptions(threads, false, kernels::Isa(isa), kernels::Precision::bf16));
        REQUIRE(fast.precision() == kernels::Precision::bf16);
        const Tensor2<float> got = fast.forward(x);
        const double rel = sknet_test::relative_linf(got.data(), want.data(), std::size_t(want.size()));
        INFO(what << ", " << kernels::isa_name(kernels::Isa(isa)) << ", threads " << threads << ", batch " << batch
                  << ": logits error / max |logit| = " << rel);
        CHECK(rel <= 2e-2);
        CHECK(rel > 0.0);  // it really ran in bf16
        REQUIRE(fast.attention_maps().size() == want_attention.size());
        for (std::size_t u = 0; u < want_attention.size(); ++u) {
          const auto& a = fast.attention_maps()[u].second;
          const auto& b = want_attention[u].second;
          double worst = 0;
          for (Index i = 0; i < b.size(); ++i) worst = std::max(worst, std::fabs(double(a.data()[i]) - double(b.data()[i])));
          INFO(want_attention[u].first << ": attention error " << worst);
          CHECK(worst <= 3e-3);
        }
      }
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

TEST_CASE("bf16 prepare refuses SK-ShuffleNetV2 (no bf16 form yet) and int8", "[prepared][bf16]") {
  CHECK_THROWS_WITH(prepare_random(architecture_plan("sk_shufflenetv2"), 1,
                                   PrepareOptions(1, false, std::nullopt, kernels::Precision::bf16)),
                    Catch::Contains("SK-ShuffleNetV2") && Catch::Contains("bf16"));
  CHECK_THROWS_AS(prepare_random(resnext_plan(small_config(Stem::imagenet)), 1,
                                 PrepareOptions(1, false, std::nullopt, kernels::Precision::int8)),
                  kernels::KernelError);
}

TEST_CASE("bf16 networks propagate NaN from input to logits", "[prepared][bf16]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  const PreparedNetwork fast = prepare_random(sknet_plan(c, 2), 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::bf16));
  Tensor4<float> x(2, 33, 33, 3);
  x.setConstant(0.25f);
  x(1, 16, 16, 1) = std::numeric_limits<float>::quiet_NaN();
  const Tensor2<float> y = fast.forward(x);
  for (Index k = 0; k < y.dimension(1); ++k) {
    CHECK(std::isfinite(y(0, k)));
    CHECK(std::isnan(y(1, k)));
  }
}
