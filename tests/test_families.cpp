// timm's SK-ResNets (skresnet18/34/50/50d), the paper's SE-ResNeXt baseline and the official
// SKNet-101's per-stage attention widths against the PyTorch fixtures of tools/gen_family_fixtures.py
// (tests/data/families), and the SK ablations of the paper's section 4 (per-path kernels, dilations
// and groups, M = 3, sum aggregation) against those of tools/gen_ablation_fixtures.py
// (tests/data/ablations): the plan read off the fixture's metadata loads the state_dict strictly, and
// the logits and every SK attention map match, on the reference path and on the prepared engine.
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>
#include <sknet/models/infer_network.hpp>
#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "support/compare.hpp"
#include "support/network_fixture.hpp"

using namespace sknet;

namespace {

/// "1/16" -> {1, 16}.
std::pair<Index, Index> ratio(const std::string& text) {
  const auto slash = text.find('/');
  return {std::stoll(text.substr(0, slash)), std::stoll(text.substr(slash + 1))};
}

/// The family and config the fixture's metadata describes, written from the keys alone (not read
/// back from the weights).
std::pair<std::string, SKNetConfig> family_config(const sknet_test::Fixture& f) {
  SKNetConfig c = sknet_test::network_config_from(f);
  const std::string stem = f.meta("stem");
  c.stem = stem == "deep" ? Stem::deep : stem == "small" ? Stem::small : Stem::imagenet;
  c.block = f.meta("block") == "basic" ? BlockKind::basic : BlockKind::bottleneck;
  c.avg_down = f.meta("avg_down") == "1";
  if (f.meta("se") == "1") {
    const auto r = ratio(f.meta("se_ratio"));
    c.se = AttentionWidth::divisible(r.first, r.second, f.meta_int("se_divisor"));
    c.se->round_limit_tenths = 0;  // timm's SEModule: make_divisible(..., round_limit=0)
  }
  std::string family = f.meta("family");
  if (family == "skresnet_d") family = "skresnet";
  if (f.meta("middle") == "sk") {
    c.paths = f.meta_int("paths");
    c.split_input = f.meta("split_input") == "1";
    const std::string rule = f.meta("attn_rule");
    if (rule == "paper") {
      c.reduction = f.meta_int("reduction"), c.min_width = f.meta_int("min_width");
    } else if (rule == "divisible") {
      const auto r = ratio(f.meta("rd_ratio"));
      c.attention = AttentionWidth::divisible(r.first, r.second, f.meta_int("rd_divisor"));
    } else {
      c.attention_widths = sknet_test::int_list(f.meta("attn_widths"));
    }
    if (f.metadata.count("path_kernels")) {  // the ablations: resolved per-path lists
      c.path_kernels = sknet_test::int_list(f.meta("path_kernels"));
      c.path_dilations = sknet_test::int_list(f.meta("path_dilations"));
      c.path_groups = sknet_test::int_list(f.meta("path_groups"));
      c.aggregation = f.meta("aggregation") == "sum" ? Aggregation::sum : Aggregation::attention;
    }
  }
  return {family, c};
}


struct FamilyFixture {
  std::string name, family;
  SKNetConfig config;
  NetworkPlan plan;
  StateDict<float> weights, attention;
  NamedTensor<float> input, logits;
  Tensor4<float> nhwc;
};

/// The fixture `name` of tests/data/`dir`.
FamilyFixture load(const std::string& name, const std::string& dir = "families") {
  const std::string base = sknet_test::test_data_path(dir + "/" + name);
  const sknet_test::Fixture meta = sknet_test::load_fixture(base + ".safetensors");
  FamilyFixture f;
  f.name = name;
  std::tie(f.family, f.config) = family_config(meta);
  f.plan = family_plan(f.family, f.config, f.config.paths);
  f.weights = io::load_safetensors<float>(base + ".safetensors");
  f.input = io::read_npy<float>(base + ".input.npy");
  f.logits = io::read_npy<float>(base + ".logits.npy");
  if (f.plan.paths > 0) f.attention = io::load_safetensors<float>(base + ".attention.safetensors");
  REQUIRE(f.input.shape.size() == 4);
  const ConstTensorMap4<float> nchw(f.input.values.data(), f.input.shape[0], f.input.shape[1], f.input.shape[2],
                                    f.input.shape[3]);
  f.nhwc = to_nhwc<float>(nchw);
  // The plan's SE and attention widths are the fixture's, unit by unit.
  if (meta.meta("se") == "1") {
    std::vector<Index> widths;
    for (const BlockPlan& b : f.plan.blocks) widths.push_back(b.se_width);
    CHECK(widths == sknet_test::int_list(meta.meta("se_widths")));
  }
  if (f.plan.paths > 0) {
    std::vector<Index> widths;
    for (const BlockPlan& b : f.plan.blocks) widths.push_back(b.sk.attention_width());
    CHECK(widths == sknet_test::int_list(meta.meta("attn_widths")));
  }
  return f;
}

void check_outputs(const FamilyFixture& f, const Tensor2<float>& logits, const AttentionMaps<float>& attention,
                   const std::string& what) {
  sknet_test::check_network_outputs(logits, attention, f.logits, f.attention, f.name + ", " + what);
}

/// The reference network of the fixture's plan, and (with `prepared`) the prepared engine for every ISA
/// the CPU runs and 1 and 2 threads (from the network and from the state_dict), against the fixture.
void check_fixture(const FamilyFixture& f, bool prepared = true) {
  CHECK(expected_parameters(f.plan).size() + 0 > 0);

  with_paths(f.plan.paths > 0 ? f.plan.paths : 1, [&](auto m) {
    Network<float, decltype(m)::value> net(f.plan);
    load_state_dict(net, f.weights);  // strict: every key and shape of the PyTorch state_dict
    AttentionMaps<float> attention;
    const Tensor2<float> logits = net.forward(f.nhwc, &attention);
    check_outputs(f, logits, attention, "reference");
    if (!prepared) return;

    for (int isa = 0; isa <= int(kernels::cpu_isa()); ++isa)
      for (int threads : {1, 2}) {
        const PrepareOptions options(threads, false, kernels::Isa(isa));
        const std::string what = std::string(kernels::isa_name(kernels::Isa(isa))) + ", threads " + std::to_string(threads);
        const PreparedNetwork fast = prepare(net, options);
        const Tensor2<float> y = fast.forward(f.nhwc);
        check_outputs(f, y, fast.attention_maps(), what + ", prepare(net)");
        StateDict<float> dict = f.weights;
        const PreparedNetwork from_dict = prepare_from_state_dict(f.plan, std::move(dict), options);
        const Tensor2<float> y2 = from_dict.forward(f.nhwc);
        check_outputs(f, y2, from_dict.attention_maps(), what + ", prepare_from_state_dict");
      }
  });
}

}  // namespace

TEST_CASE("Every family reproduces its PyTorch fixture", "[families][fixture]") {
  const std::string name = GENERATE(as<std::string>{}, "skresnet18_tiny", "skresnet34_tiny", "skresnet50_tiny",
                                    "skresnet50d_tiny", "seresnext50_tiny", "sknet101_official_tiny", "sknet29_tiny",
                                    "senet29_tiny");
  check_fixture(load(name));
}

TEST_CASE("Every SK ablation reproduces its PyTorch fixture", "[ablations][fixture]") {
  const std::string name =
      GENERATE(as<std::string>{}, "sknet_d1_tiny", "sknet_d3_tiny", "sknet_5x5_tiny", "sknet_7x7_g2_tiny",
               "sknet_m3_dilated_tiny", "sknet_m3_full_tiny", "sknet_sum_tiny", "skresnet_5x5_sum_tiny");
  const FamilyFixture f = load(name, "ablations");
  // The plan has the fixture's per-path options and no attention parameters without attention.
  const BlockPlan& b = f.plan.blocks.front();
  for (Index m = 0; m < f.plan.paths; ++m) {
    CHECK(b.sk.kernel_of(m) == f.config.path_kernels[std::size_t(m)]);
    CHECK(b.sk.dilation_of(m) == f.config.path_dilations[std::size_t(m)]);
  }
  const ShapeMap shapes = plan_shapes(f.plan);
  CHECK(shapes.count(b.name + (b.kind == BlockKind::basic ? ".conv1" : ".conv2") + ".attn.fc_select.weight") ==
        (f.config.aggregation == Aggregation::attention ? 1u : 0u));
  // The counted parameters are the PyTorch state_dict's learnable values.
  Index learnable = 0;
  for (const auto& [key, t] : f.weights) {
    const bool buffer = key.find("running_") != std::string::npos || key.find("num_batches") != std::string::npos;
    if (!buffer) learnable += Index(t.values.size());
  }
  CHECK(f.plan.parameters() == learnable);
  CHECK(f.plan.summary(35, 37, 2).params == learnable);
  check_fixture(f);
}

TEST_CASE("The named families have timm's parameter counts and multiply-adds", "[families]") {
  // tools/family_counts.json (PyTorch modules, checked against timm itself).
  const std::vector<std::tuple<std::string, Index, Index>> counts{
      {"skresnet18", 11958056, 1814337536}, {"skresnet34", 22282376, 3664237568},
      {"skresnet50", 25803160, 4089422336}, {"skresnet50d", 25822392, 4329062912},
      {"seresnext50", 27559896, 4232994816}, {"resnext50", 25028904, 4230479872},
      {"sknet50", 27479784, 4462710784},     {"sknet101", 48736040, 8448724992},
      // CIFAR-100 at 32x32 (the paper: ResNeXt-29 16x32d 25.2 M, SKNet-29 27.7 M; see architectures.hpp)
      {"resnext29", 25229220, 4028403712},   {"senet29", 25751028, 4028919808},
      {"sknet29", 28348644, 4031500288}};
  for (const auto& [name, params, macs] : counts) {
    INFO(name);
    const Index size = default_input_size(architecture(name).config);
    CHECK(size == (name.find("29") != std::string::npos ? 32 : 224));
    const NetworkSummary s = architecture_plan(name).summary(size, size);
    CHECK(s.params == params);
    CHECK(s.macs == macs);
    CHECK(architecture_plan(name).parameters() == params);
  }
  // The official SKNet-101 (Caffe release): d = 32, 16, 32, 64 per stage, 48,686,760 parameters.
  SKNetConfig official = architecture("sknet101").config;
  for (std::size_t s = 0; s < official.layers.size(); ++s)
    for (Index u = 0; u < official.layers[s]; ++u) official.attention_widths.push_back(Index(32) >> (s == 1) << (s == 3));
  const NetworkSummary s = sknet_plan(official, 2).summary(224, 224);
  CHECK(s.params == 48686760);
  CHECK(s.macs == 8448675840);
}

TEST_CASE("Attention-width rules follow timm's make_divisible", "[families]") {
  const AttentionWidth timm18 = AttentionWidth::divisible(1, 8, 16);
  CHECK(timm18.of(64) == 16);   // 8 -> 16 (at least the divisor)
  CHECK(timm18.of(256) == 32);
  CHECK(timm18.of(512) == 64);
  const AttentionWidth timm50 = AttentionWidth::divisible(1, 16, 8);
  CHECK(timm50.of(64) == 8);
  CHECK(timm50.of(200) == 16);  // 12.5 -> 16 (halves round up)
  CHECK(timm50.of(184) == 16);  // 11.5 -> 8, under 0.9 x 11.5: bumped to 16
  const AttentionWidth skresnext = AttentionWidth::divisible(1, 16, 32);
  CHECK(skresnext.of(768) == 64);                               // timm's rule ...
  CHECK(AttentionWidth::paper(16, 32).of(768) == 48);           // ... differs from the paper's here
  CHECK(se_rule().of(184) == 8);                                 // SE: no 0.9 bump
  CHECK_THROWS_AS(SKConvOptions(64).attention(AttentionWidth::divisible(0, 8, 16)).validate("sk", 2), ConfigError);
  CHECK_THROWS_AS(SKConvOptions(63, 64).split_input(true).validate("sk", 2), ConfigError);
}

TEST_CASE("The network of a checkpoint is inferred from its names and shapes", "[families][infer]") {
  // Every named architecture, from the names and shapes its plan expects (1000 and 10 classes).
  for (const Architecture& a : architectures())
    for (Index classes : {Index(1000), a.name == "skresnet18" ? Index(10) : Index(0)}) {
      if (classes == 0) continue;
      INFO(a.name << ", " << classes << " classes");
      SKNetConfig c = a.config;
      c.num_classes = classes;
      const NetworkPlan plan = family_plan(a.family, c, a.paths);
      const InferredNetwork inferred = infer_network(plan_shapes(plan), a.name);
      CHECK(inferred.architecture == a.name);
      CHECK(inferred.family == a.family);
      CHECK(inferred.paths == a.paths);
      CHECK(plan_shapes(inferred.plan()) == plan_shapes(plan));
      CHECK(inferred.plan().summary(224, 224).macs == plan.summary(224, 224).macs);
    }
  // Every family fixture: the inferred plan is the metadata's (attention and SE widths included).
  for (const char* name : {"skresnet18_tiny", "skresnet34_tiny", "skresnet50_tiny", "skresnet50d_tiny", "seresnext50_tiny",
                           "sknet101_official_tiny", "sknet29_tiny", "senet29_tiny"}) {
    INFO(name);
    const FamilyFixture f = load(name);
    const io::SafetensorsLayout header =
        io::read_safetensors_header(sknet_test::test_data_path(std::string("families/") + name + ".safetensors"));
    const InferredNetwork inferred = infer_network(io::tensor_shapes(header), name, header.metadata);
    CHECK(inferred.family == f.family);
    CHECK(inferred.architecture.empty());  // reduced widths: no named architecture
    CHECK(plan_shapes(inferred.plan()) == plan_shapes(f.plan));
    CHECK(inferred.plan().summary(45, 41, 2).macs == f.plan.summary(45, 41, 2).macs);
    std::vector<Index> a, b;
    for (const BlockPlan& blk : inferred.plan().blocks) a.push_back(blk.paths ? blk.sk.attention_width() : blk.se_width);
    for (const BlockPlan& blk : f.plan.blocks) b.push_back(blk.paths ? blk.sk.attention_width() : blk.se_width);
    CHECK(a == b);
  }
  // Shapes alone cannot tell G = M groups from timm's split input (both weights are [C, Cin / M, 3, 3]):
  // without the metadata the convention (split input, timm's skresnet) is taken, and it says so.
  const io::SafetensorsLayout g2 = io::read_safetensors_header(sknet_test::test_data_path("families/sknet29_tiny.safetensors"));
  REQUIRE(g2.metadata.at("split_input") == "0");
  const InferredNetwork by_shape = infer_network(io::tensor_shapes(g2), "sknet29_tiny");
  CHECK(by_shape.family == "skresnet");
  CHECK(by_shape.config.split_input);
  CHECK_THAT(by_shape.description(), Catch::Matchers::Contains("split input"));
  std::map<std::string, std::string> bad = g2.metadata;
  bad["split_input"] = "yes";
  CHECK_THROWS_WITH(infer_network(io::tensor_shapes(g2), "sknet29_tiny", bad),
                    Catch::Matchers::Contains("metadata 'split_input'"));
}

TEST_CASE("The inferring loader recognises every SK ablation", "[ablations][infer]") {
  // Kernel sizes and groups from the weights' shapes, sum aggregation from the missing attn.* keys,
  // dilations from the file's metadata ("path_dilations"), else by convention (3x3 path m: m + 1).
  for (const char* name : {"sknet_d1_tiny", "sknet_d3_tiny", "sknet_5x5_tiny", "sknet_7x7_g2_tiny",
                           "sknet_m3_dilated_tiny", "sknet_m3_full_tiny", "sknet_sum_tiny", "skresnet_5x5_sum_tiny"}) {
    INFO(name);
    const FamilyFixture f = load(name, "ablations");
    const std::string path = sknet_test::test_data_path(std::string("ablations/") + name + ".safetensors");
    const io::SafetensorsLayout header = io::read_safetensors_header(path);
    const InferredNetwork inferred = infer_network(io::tensor_shapes(header), name, header.metadata);
    CHECK(inferred.family == f.family);
    CHECK(inferred.paths == f.plan.paths);
    CHECK(inferred.architecture.empty());
    const NetworkPlan plan = inferred.plan();
    CHECK(plan_shapes(plan) == plan_shapes(f.plan));
    CHECK(plan.summary(35, 37, 2).macs == f.plan.summary(35, 37, 2).macs);
    for (std::size_t i = 0; i < plan.blocks.size(); ++i)
      for (Index m = 0; m < plan.paths; ++m) {
        CHECK(plan.blocks[i].sk.branch_conv(m, plan.paths).kernel_size() == f.plan.blocks[i].sk.branch_conv(m, plan.paths).kernel_size());
        CHECK(plan.blocks[i].sk.dilation_of(m) == f.plan.blocks[i].sk.dilation_of(m));
        CHECK(plan.blocks[i].sk.groups_of(m) == f.plan.blocks[i].sk.groups_of(m));
        CHECK(plan.blocks[i].sk.has_attention() == f.plan.blocks[i].sk.has_attention());
      }
    CHECK_THAT(inferred.description(), Catch::Matchers::Contains(f.config.aggregation == Aggregation::sum ? "sum aggregation" : ", d "));
    // Without the metadata the dilations follow the convention (a 3x3 path m: m + 1; larger: 1).
    const NetworkPlan bare = infer_network(io::tensor_shapes(header), name).plan();
    const SKConvOptions& sk = bare.blocks.front().sk;
    for (Index m = 0; m < plan.paths; ++m) CHECK(sk.dilation_of(m) == (sk.kernel_of(m) == 3 ? m + 1 : 1));
  }
  // A dilation list of the wrong length is named.
  const std::string path = sknet_test::test_data_path("ablations/sknet_d3_tiny.safetensors");
  CHECK_THROWS_WITH(infer_network(io::read_safetensors_shapes(path), "x.safetensors", {{"path_dilations", "1,2,3"}}),
                    Catch::Matchers::Contains("x.safetensors") && Catch::Matchers::Contains("path_dilations"));
}

TEST_CASE("Checkpoint differences are grouped by unit", "[families][infer]") {
  const auto lines = checkpoint_differences(plan_shapes(architecture_plan("sknet26")), plan_shapes(architecture_plan("sknet50")));
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "layer1.2, layer2.2-3, layer3.2-5, layer4.2: missing (26 keys each)");

  SKNetConfig narrow = architecture("sknet50").config;
  narrow.min_width = 16;
  const auto reshaped = checkpoint_differences(plan_shapes(sknet_plan(narrow, 2)), plan_shapes(architecture_plan("sknet50")));
  REQUIRE(!reshaped.empty());
  CHECK(reshaped[0] == "layer1.0.conv2.attn.bn.bias: [16] in the file, [32] expected");
  CHECK_THAT(reshaped.back(), Catch::Matchers::Contains("more keys with another shape"));

  // Keys that fit no family: the error says what was looked for.
  ShapeMap junk{{"encoder.weight", {3, 3}}};
  CHECK_THROWS_AS(infer_network(junk, "junk.safetensors"), FormatError);
  CHECK_THROWS_WITH(infer_network(junk, "junk.safetensors"),
                    Catch::Matchers::Contains("junk.safetensors") && Catch::Matchers::Contains("conv1.weight"));
  // A recognised family whose shapes do not fit: the differences are named.
  ShapeMap broken = plan_shapes(architecture_plan("skresnet18"));
  broken["layer2.1.conv2.conv.weight"] = {128, 64, 3, 3};
  CHECK_THROWS_WITH(infer_network(broken, "broken.safetensors"),
                    Catch::Matchers::Contains("layer2.1.conv2.conv.weight: [128, 64, 3, 3] in the file, [128, 128, 3, 3] expected"));
}

TEST_CASE("Stage strides come from the checkpoint's metadata when it has them", "[families][infer]") {
  SKNetConfig c = architecture("sknet26").config;
  c.planes = {16, 32, 64, 128}, c.groups = 4, c.num_classes = 10, c.strides = {1, 2, 2, 1};
  const NetworkPlan plan = sknet_plan(c, 2);
  CHECK(infer_network(plan_shapes(plan), "x").config.strides == std::vector<Index>{1, 2, 2, 2});  // timm's convention
  const InferredNetwork inferred = infer_network(plan_shapes(plan), "x", {{"strides", "1,2,2,1"}});
  CHECK(inferred.config.strides == c.strides);
  CHECK(inferred.plan().summary(64, 64).layers.back().output == plan.summary(64, 64).layers.back().output);
  CHECK_THROWS_WITH(infer_network(plan_shapes(plan), "x.safetensors", {{"strides", "1,2,2"}}),
                    Catch::Matchers::Contains("x.safetensors") && Catch::Matchers::Contains("one per stage"));
  CHECK_THROWS_WITH(infer_network(plan_shapes(plan), "x.safetensors", {{"strides", "1,2,two,1"}}),
                    Catch::Matchers::Contains("metadata 'strides'"));
}
