// SK-ShuffleNetV2 (the paper's section 3.4 on torchvision's ShuffleNetV2 1.0x) against the PyTorch
// fixture of tools/gen_shufflenet_fixtures.py (tests/data/shufflenet): the plan read off the
// fixture's metadata loads the state_dict strictly (torchvision's names, the SK convolutions' timm
// names), and the logits and every unit's attention match on the reference path and on the prepared
// engine (every ISA this CPU runs, 1 and 2 threads); the full-size counts.
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>
#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/models/infer_network.hpp>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "support/compare.hpp"
#include "support/network_fixture.hpp"

using namespace sknet;

namespace {

struct ShuffleFixture {
  NetworkPlan plan;
  StateDict<float> weights, attention;
  NamedTensor<float> logits;
  Tensor4<float> nhwc;
};

/// The fixture's plan, written from its metadata alone (not read back from the weights).
ShuffleFixture load(const std::string& name) {
  const std::string base = sknet_test::test_data_path("shufflenet/" + name);
  const sknet_test::Fixture meta = sknet_test::load_fixture(base + ".safetensors");
  SKNetConfig c = architecture("sk_shufflenetv2").config;
  c.layers = sknet_test::int_list(meta.meta("layers"));
  c.planes = sknet_test::int_list(meta.meta("planes"));
  c.strides = sknet_test::int_list(meta.meta("strides"));
  c.stem_width = meta.meta_int("stem_width");
  c.head_width = meta.meta_int("head_width");
  c.num_classes = meta.meta_int("num_classes");
  c.in_channels = meta.meta_int("in_chans");
  c.attention = AttentionWidth::paper(meta.meta_int("reduction"), meta.meta_int("min_width"));
  ShuffleFixture f;
  f.plan = family_plan("sk_shufflenetv2", c, meta.meta_int("paths"));
  std::vector<Index> widths;
  for (const BlockPlan& b : f.plan.blocks)
    if (b.has_attention()) widths.push_back(b.sk.attention_width());
  CHECK(widths == sknet_test::int_list(meta.meta("attn_widths")));
  f.weights = io::load_safetensors<float>(base + ".safetensors");
  f.attention = io::load_safetensors<float>(base + ".attention.safetensors");
  f.logits = io::read_npy<float>(base + ".logits.npy");
  const NamedTensor<float> input = io::read_npy<float>(base + ".input.npy");
  REQUIRE(input.shape.size() == 4);
  f.nhwc = to_nhwc<float>(ConstTensorMap4<float>(input.values.data(), input.shape[0], input.shape[1], input.shape[2],
                                                 input.shape[3]));
  return f;
}

void check_outputs(const ShuffleFixture& f, const Tensor2<float>& logits, const AttentionMaps<float>& attention,
                   const std::string& what) {
  sknet_test::check_network_outputs(logits, attention, f.logits, f.attention, "sk_shufflenetv2_tiny, " + what);
}

}  // namespace

TEST_CASE("SK-ShuffleNetV2 reproduces its PyTorch fixture", "[shufflenet][fixture]") {
  const ShuffleFixture f = load("sk_shufflenetv2_tiny");
  Network<float, 2> net(f.plan);
  load_state_dict(net, f.weights);  // strict: every key and shape of the PyTorch state_dict
  AttentionMaps<float> attention;
  const Tensor2<float> logits = net.forward(f.nhwc, &attention);
  check_outputs(f, logits, attention, "reference");

  for (int isa = 0; isa <= int(kernels::cpu_isa()); ++isa)
    for (int threads : {1, 2}) {
      const PrepareOptions options(threads, false, kernels::Isa(isa));
      const std::string what = std::string(kernels::isa_name(kernels::Isa(isa))) + ", threads " + std::to_string(threads);
      const PreparedNetwork fast = prepare(net, options);
      check_outputs(f, fast.forward(f.nhwc), fast.attention_maps(), what + ", prepare(net)");
      // One image at a time: the head reads the channel sums conv5's epilogue leaves.
      for (Index img = 0; img < 2; ++img) {
        const Tensor4<float> one = f.nhwc.slice(std::array<Index, 4>{img, 0, 0, 0},
                                                std::array<Index, 4>{1, f.nhwc.dimension(1), f.nhwc.dimension(2),
                                                                     f.nhwc.dimension(3)});
        const Tensor2<float> y = fast.forward(one);
        const Tensor2<float> want = net.forward(one);
        for (Index k = 0; k < y.dimension(1); ++k) CHECK(std::abs(y(0, k) - want(0, k)) <= 1e-4f);
      }
      StateDict<float> dict = f.weights;
      const PreparedNetwork from_dict = prepare_from_state_dict(f.plan, std::move(dict), options);
      check_outputs(f, from_dict.forward(f.nhwc), from_dict.attention_maps(), what + ", prepare_from_state_dict");
    }
}

TEST_CASE("SK-ShuffleNetV2 1.0x counts", "[shufflenet]") {
  // tools/gen_shufflenet_fixtures.py's self-check: the same counts from the PyTorch module (whose
  // plain version has torchvision's 2,278,604 parameters).
  const NetworkSummary s = architecture_plan("sk_shufflenetv2").summary(224, 224);
  CHECK(s.params == 2503044);
  CHECK(s.macs == 148791672);
  CHECK(architecture_plan("sk_shufflenetv2").parameters() == 2503044);
  const auto keys = expected_parameters(architecture_plan("sk_shufflenetv2"));
  CHECK(keys.count("stage2.0.branch1.0.weight") == 1);
  CHECK(keys.at("stage2.0.branch1.0.weight") == std::vector<Index>{24, 1, 3, 3});
  CHECK(keys.at("stage3.1.branch2.3.paths.1.conv.weight") == std::vector<Index>{116, 1, 3, 3});
  CHECK(keys.at("stage4.3.branch2.3.attn.fc_reduce.weight") == std::vector<Index>{32, 232, 1, 1});
  CHECK(keys.at("conv5.0.weight") == std::vector<Index>{1024, 464, 1, 1});
  CHECK(keys.count("stage2.1.branch1.0.weight") == 0);
  CHECK(keys.count("stage2.0.branch2.4.weight") == 0);
}

TEST_CASE("The inferring loader recognises SK-ShuffleNetV2", "[shufflenet][infer]") {
  const std::string path = sknet_test::test_data_path("shufflenet/sk_shufflenetv2_tiny.safetensors");
  const ShuffleFixture f = load("sk_shufflenetv2_tiny");
  const InferredNetwork inferred = infer_network(io::read_safetensors_shapes(path), path);
  CHECK(inferred.family == "sk_shufflenetv2");
  CHECK(inferred.architecture.empty());  // reduced widths: no named architecture
  CHECK(inferred.paths == 2);
  CHECK(plan_shapes(inferred.plan()) == plan_shapes(f.plan));
  CHECK(inferred.plan().summary(37, 45, 2).macs == f.plan.summary(37, 45, 2).macs);
  const InferredNetwork full = infer_network(plan_shapes(architecture_plan("sk_shufflenetv2")), "full");
  CHECK(full.architecture == "sk_shufflenetv2");
  CHECK(full.description().find("shuffle units 4,8,4") != std::string::npos);
  // A stage-3 unit without its SK attention: named, grouped by unit.
  ShapeMap broken = plan_shapes(f.plan);
  broken.erase("stage3.1.branch2.3.attn.fc_select.weight");
  CHECK_THROWS_WITH(infer_network(broken, "broken.safetensors"),
                    Catch::Matchers::Contains("stage3.1: missing (1 key)"));
}
