// SKNet: sizes and names against timm, end-to-end agreement with the PyTorch network fixtures,
// safetensors round trip, bad configurations.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/sknet.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "support/compare.hpp"
#include "support/network_fixture.hpp"
#include "support/safetensors_fixture.hpp"

using namespace sknet;

using Catch::Matchers::Contains;

namespace {

SKNetConfig config_from(const sknet_test::Fixture& f) {
  SKNetConfig c = sknet_test::network_config_from(f);
  c.paths = f.meta_int("paths");
  c.reduction = f.meta_int("reduction");
  c.min_width = f.meta_int("min_width");
  return c;
}


template <int M>
void check_network_fixture(const std::string& name) {
  const std::string base = sknet_test::test_data_path("sknet/" + name);
  const sknet_test::Fixture meta = sknet_test::load_fixture(base + ".safetensors");
  SKNet<float, M> net(config_from(meta));
  load_state_dict(net, io::load_safetensors<float>(base + ".safetensors"));  // strict

  const NamedTensor<float> input = io::read_npy<float>(base + ".input.npy");
  const NamedTensor<float> expected = io::read_npy<float>(base + ".logits.npy");
  REQUIRE(input.shape.size() == 4);
  const ConstTensorMap4<float> nchw(input.values.data(), input.shape[0], input.shape[1], input.shape[2],
                                    input.shape[3]);
  const Tensor2<float> logits = net.forward_nchw(nchw);
  REQUIRE(std::vector<Index>{logits.dimension(0), logits.dimension(1)} == expected.shape);
  const double rel = sknet_test::relative_linf(logits, expected);
  INFO(name << ": logits L-inf error / max |logit| = " << rel);
  CHECK(rel <= 1e-4);

  const StateDict<float> attention = io::load_safetensors<float>(base + ".attention.safetensors");
  REQUIRE(attention.size() == net.num_units());
  for (const auto& unit : net.unit_names()) {
    const Tensor3<float>& a = net.attention(unit);
    const NamedTensor<float>& want = attention.at(unit);
    REQUIRE(std::vector<Index>(a.dimensions().begin(), a.dimensions().end()) == want.shape);
    SKNET_CHECK_CLOSE(a, want.values, (sknet_test::Tolerance{1e-5, 0.0}), name + " attention " + unit);
  }

  // The same weights after a safetensors round trip give bit-identical logits.
  const std::string path =
      (std::filesystem::temp_directory_path() / ("sknet_roundtrip_" + name + ".safetensors")).string();
  io::save_safetensors<float>(path, state_dict<float>(net));
  SKNet<float, M> again(config_from(meta));
  load_state_dict(again, io::load_safetensors<float>(path));
  std::remove(path.c_str());
  const Tensor2<float> logits2 = again.forward_nchw(nchw);
  for (Index i = 0; i < logits.size(); ++i) CHECK(logits2.data()[i] == logits.data()[i]);
}

}  // namespace

TEST_CASE("SKNet-50 has timm's parameter count and the paper's multiply-adds", "[sknet]") {
  auto net = sknet50<float>();
  CHECK(count_parameters<float>(net) == 27479784);
  const NetworkSummary s = net.summary(224, 224);
  CHECK(s.params == 27479784);
  CHECK(std::fabs(double(s.macs) / 4.47e9 - 1.0) < 0.01);
  CHECK(s.layers.back().output == std::array<Index, 4>{1, 1, 1, 1000});
  CHECK(s.to_string().find("params: 27479784\nmacs: ") != std::string::npos);

  auto net101 = sknet101<float>();
  CHECK(std::fabs(double(count_parameters<float>(net101)) / 48.9e6 - 1.0) < 0.01);
  CHECK(std::fabs(double(net101.summary(224, 224).macs) / 8.46e9 - 1.0) < 0.01);
  CHECK(sknet26<float>().num_units() == 8);
  CHECK(net101.num_units() == 33);
}

namespace {

/// The summary rows the built layers give (count_parameters, output_dims, ConvGeometry::macs):
/// an oracle for summarize_sknet, which never builds a layer.
template <int M>
void check_shape_only_summary(const SKNetConfig& config, Index h, Index w, Index batch) {
  SKNet<float, M> net(config);
  const NetworkSummary s = summarize_sknet(config, M, h, w, batch);
  CHECK(sknet_parameter_count(config, M) == count_parameters<float>(net));
  CHECK(s.params == count_parameters<float>(net));
  std::size_t row = 0;
  const auto expect = [&](const std::string& name, const std::array<Index, 4>& out, Index params, Index macs) {
    INFO("row " << row << ": " << name);
    REQUIRE(row < s.layers.size());
    CHECK(s.layers[row].name == name);
    CHECK(s.layers[row].output == out);
    CHECK(s.layers[row].params == params);
    CHECK(s.layers[row].macs == macs);
    ++row;
  };
  std::array<Index, 4> dims{batch, h, w, config.in_channels};
  expect("conv1+bn1", net.stem().conv(0).output_dims(dims), count_parameters<float>(const_cast<ConvBnAct<float>&>(net.stem().conv(0))),
         net.stem().conv(0).conv().geometry(dims).macs());
  dims = net.stem().conv(0).output_dims(dims);
  if (net.has_max_pool()) {
    dims = MaxPool2d<float>(MaxPool2dOptions(3).stride(2).padding(1)).output_dims(dims);
    expect("maxpool", dims, 0, 0);
  }
  Index total_macs = 0;
  for (const auto& r : s.layers) total_macs += r.macs;
  CHECK(s.macs == total_macs);
  for (std::size_t i = 0; i < net.num_units(); ++i) {
    auto& unit = net.unit(i);
    const auto in = dims;
    const auto a = unit.conv1().output_dims(in);
    expect(unit.name() + ".conv1", a, count_parameters<float>(unit.conv1()), unit.conv1().conv().geometry(in).macs());
    const auto b = unit.conv2().output_dims(a);
    Index sk_macs = 0;
    for (int m = 0; m < M; ++m) sk_macs += unit.conv2().split().conv(m).geometry(a).macs();
    const Index c = unit.conv2().options().out_channels(), d = unit.conv2().options().attention_width();
    expect(unit.name() + ".conv2", b, count_parameters<float>(unit.conv2()), sk_macs + a[0] * c * d * (M + 1));
    dims = unit.conv3().output_dims(b);
    expect(unit.name() + ".conv3", dims, count_parameters<float>(unit.conv3()), unit.conv3().conv().geometry(b).macs());
    if (unit.downsample()) {
      auto& ds = const_cast<ConvBnAct<float>&>(*unit.downsample());
      expect(unit.name() + ".downsample", ds.output_dims(in), count_parameters<float>(ds), ds.conv().geometry(in).macs());
    }
  }
  expect("global_pool", {batch, 1, 1, dims[3]}, 0, 0);
  auto& fc = const_cast<Linear<float>&>(net.fc());
  expect("fc", {batch, 1, 1, config.num_classes}, count_parameters<float>(fc), batch * dims[3] * config.num_classes);
  CHECK(row == s.layers.size());
  CHECK(net.summary(h, w, batch).to_string() == s.to_string());
}

}  // namespace

TEST_CASE("summarize_sknet gives the built network's shapes, parameters and multiply-adds", "[sknet]") {
  SKNetConfig tiny;
  tiny.layers = {2, 1, 2};
  tiny.planes = {8, 16, 12};
  tiny.strides = {1, 2, 3};
  tiny.groups = 4;
  tiny.base_width = 16;
  tiny.min_width = 4;
  tiny.reduction = 2;
  tiny.stem_width = 8;
  tiny.num_classes = 7;
  check_shape_only_summary<2>(tiny, 45, 37, 2);
  tiny.branch_kernel = BranchKernel::full;
  check_shape_only_summary<3>(tiny, 45, 37, 1);
  tiny.stem = Stem::small;
  tiny.in_channels = 1;
  check_shape_only_summary<2>(tiny, 13, 9, 3);
  SKNetConfig c50;
  c50.layers = sknet_depths("sknet50");
  check_shape_only_summary<2>(c50, 224, 224, 1);
  // An empty input names the layer, as running it would.
  CHECK_THROWS_AS(summarize_sknet(c50, 2, 0, 8), ShapeError);
  CHECK_THROWS_WITH(summarize_sknet(c50, 2, 0, 8), Contains("Conv2d 'conv1'") && Contains("spatial size"));
}

TEST_CASE("SKNet config and summary arithmetic is checked", "[sknet][errors]") {
  SKNetConfig c;
  // 4 * (2^62 + 64) wraps to 256: before the checks this passed as planes 64.
  c.planes = {Index(4611686018427387968), 128, 256, 512};
  CHECK_THROWS_AS(c.validate("test"), ConfigError);
  CHECK_THROWS_WITH(c.validate("test"), Contains("unit width of stage 1") && Contains("overflows"));
  CHECK_THROWS_WITH(SKNet<float>(c), Contains("overflows"));
  c = SKNetConfig{};
  c.groups = Index(1) << 62;
  CHECK_THROWS_WITH(c.validate("test"), Contains("overflows"));
  // A huge input: the multiply-adds would wrap (to a negative count before the checks).
  c = SKNetConfig{};
  CHECK_THROWS_AS(summarize_sknet(c, 2, 1000000000, 1000000000), ConfigError);
  CHECK_THROWS_WITH(summarize_sknet(c, 2, 1000000000, 1000000000), Contains("multiply-adds overflows"));
  CHECK_THROWS_WITH(summarize_sknet(c, 2, Index(1) << 62, 224), Contains("overflows"));
  // A network above 2^31 parameters is refused before anything is allocated (2500000 classes
  // would be 5.1 G parameters, 20 GB).
  c.num_classes = 2500000;
  CHECK_THROWS_WITH(SKNet<float>::validate_config(c), Contains("learnable parameters") && Contains("5147"));
  CHECK_THROWS_AS(SKNet<float>(c), ConfigError);
  CHECK(summarize_sknet(c, 2, 224, 224).params == Index(27479784) + Index(2048) * (2500000 - 1000) + (2500000 - 1000));
  c = SKNetConfig{};
  c.layers = {3, 4, 100000, 3};
  CHECK_THROWS_WITH(c.validate("test"), Contains("number of SK units") && Contains("at most 10000"));
  c = SKNetConfig{};
  c.min_width = Index(1) << 60;
  CHECK_THROWS_WITH(SKNet<float>::validate_config(c), Contains("overflows"));
}

TEST_CASE("SKNet-50 parameters carry timm's names and shapes", "[sknet]") {
  auto net = sknet50<float>();
  std::map<std::string, std::vector<Index>> shapes;
  for (const auto& p : named_parameters<float>(net)) shapes[p.name] = p.shape;
  CHECK(shapes.at("conv1.weight") == std::vector<Index>{64, 3, 7, 7});
  CHECK(shapes.at("bn1.running_var") == std::vector<Index>{64});
  CHECK(shapes.at("layer1.0.conv1.conv.weight") == std::vector<Index>{128, 64, 1, 1});
  CHECK(shapes.at("layer1.0.conv2.paths.1.conv.weight") == std::vector<Index>{128, 4, 3, 3});
  CHECK(shapes.at("layer1.0.conv2.attn.fc_reduce.weight") == std::vector<Index>{32, 128, 1, 1});
  CHECK(shapes.at("layer1.0.conv2.attn.fc_select.weight") == std::vector<Index>{256, 32, 1, 1});
  CHECK(shapes.at("layer4.2.conv2.attn.fc_reduce.weight") == std::vector<Index>{64, 1024, 1, 1});
  CHECK(shapes.at("layer2.0.downsample.0.weight") == std::vector<Index>{512, 256, 1, 1});
  CHECK(shapes.at("layer2.0.downsample.1.bias") == std::vector<Index>{512});
  CHECK(shapes.at("layer4.2.conv3.bn.weight") == std::vector<Index>{2048});
  CHECK(shapes.at("fc.weight") == std::vector<Index>{1000, 2048});
  CHECK(shapes.count("layer1.1.downsample.0.weight") == 0);
  CHECK(shapes.size() == 1 + 4 + 16 * 26 + 4 * 5 + 2);  // stem, units, downsamples, fc
}

TEST_CASE("SKNet reproduces the PyTorch network fixtures end to end", "[sknet][fixture]") {
  SECTION("tiny_m2 (SKNet-26 depth, reduced width, M = 2)") { check_network_fixture<2>("tiny_m2"); }
  SECTION("tiny_m3 (M = 3)") { check_network_fixture<3>("tiny_m3"); }
  SECTION("small_stem_m2 (3x3 stem, no pool)") { check_network_fixture<2>("small_stem_m2"); }
}

TEST_CASE("SKNet rejects bad configurations and inputs", "[sknet][errors]") {
  using Catch::Matchers::Contains;
  SKNetConfig c;
  c.planes = {64, 128, 256};
  CHECK_THROWS_WITH(SKNet<float>(c), Contains("planes per stage") && Contains("expected 4, got 3"));
  c = SKNetConfig{};
  c.paths = 3;
  CHECK_THROWS_AS(SKNet<float>(c), ConfigError);
  c = SKNetConfig{};
  c.base_width = 1;
  c.groups = 1;
  c.planes = {8, 16, 32, 32};
  CHECK_THROWS_WITH(SKNet<float>(c), Contains("unit width"));
  CHECK_THROWS_WITH(sknet_depths("sknet34"), Contains("sknet26, sknet50 or sknet101") && Contains("'sknet34'"));
  CHECK_THROWS_AS(with_paths(5, [](auto) { return 0; }), ConfigError);
  // Every library error is one sknet::Error (a std::runtime_error).
  CHECK_THROWS_AS(SKNet<float>(c), Error);
  CHECK(std::is_base_of<Error, ConfigError>::value);
  CHECK(std::is_base_of<Error, ShapeError>::value);
  CHECK(std::is_base_of<Error, ValueError>::value);
  CHECK(std::is_base_of<Error, FormatError>::value);
  CHECK(std::is_base_of<Error, StateDictError>::value);
  CHECK(std::is_base_of<Error, RuntimeError>::value);
  CHECK(std::is_base_of<std::runtime_error, Error>::value);

  SKNetConfig tiny;
  tiny.layers = {1, 1};
  tiny.planes = {8, 16};
  tiny.strides = {1, 2};
  tiny.groups = 4;
  tiny.base_width = 16;
  tiny.min_width = 4;
  tiny.stem_width = 8;
  tiny.num_classes = 5;
  SKNet<float> net(tiny);
  Tensor4<float> wrong(1, 32, 32, 4);
  wrong.setZero();
  CHECK_THROWS_WITH(net.forward(wrong), Contains("expected 3, got 4"));
  Tensor4<float> ok(2, 32, 32, 3);
  ok.setRandom();
  net.forward(ok);
  CHECK(net.attention("layer2.0").dimension(1) == 2);
  CHECK_THROWS_AS(net.attention("layer9.0"), RuntimeError);
  CHECK_THROWS_WITH(net.attention("layer9.0"), Contains("layer9.0") && Contains("layer1.0 .. layer2.0"));
  CHECK_THROWS_AS(net.attention("layer9.0"), Error);
}
