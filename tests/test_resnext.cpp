// ResNeXt, the paper's baseline: sizes and names against timm, summaries against the built layers,
// the reference modules and the prepared engine (every ISA of this CPU, 1 and 2 threads, batch 1 and
// 2) against the PyTorch fixtures of tools/gen_net_fixtures.py, and strict checkpoint loading.
#include <catch2/catch.hpp>

#include <sknet/io/npy.hpp>
#include <sknet/kernels/se_gate.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/models/prepared_network.hpp>
#include <sknet/models/architectures.hpp>
#include <sknet/models/resnext.hpp>
#include <sknet/sknet.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <vector>

#include "support/network_fixture.hpp"
#include "support/safetensors_fixture.hpp"

using namespace sknet;

using Catch::Matchers::Contains;

namespace {

/// The config a ResNeXt fixture was generated from (its safetensors metadata).
SKNetConfig config_from(const sknet_test::Fixture& f) {
  REQUIRE(f.meta("family") == "resnext");
  return sknet_test::network_config_from(f);
}

/// max |actual - expected| over rows [first, first + actual rows) of `expected`, divided by max
/// |expected| over those rows (the acceptance measure of the SK network fixtures).
double relative_linf(const Tensor2<float>& actual, const NamedTensor<float>& expected, Index first = 0) {
  const Index classes = expected.shape[1];
  REQUIRE(actual.dimension(1) == classes);
  REQUIRE(first + actual.dimension(0) <= expected.shape[0]);
  double err = 0, scale = 0;
  for (Index i = 0; i < actual.size(); ++i) {
    const double want = expected.values[std::size_t(first * classes + i)];
    err = std::max(err, std::fabs(double(actual.data()[i]) - want));
    scale = std::max(scale, std::fabs(want));
  }
  return err / scale;
}

struct Fixture {
  SKNetConfig config;
  StateDict<float> weights;
  Tensor4<float> input;  ///< NHWC
  NamedTensor<float> logits;
};

Fixture load_fixture(const std::string& name) {
  const std::string base = sknet_test::test_data_path("resnext/" + name);
  Fixture f;
  f.config = config_from(sknet_test::load_fixture(base + ".safetensors"));
  f.weights = io::load_safetensors<float>(base + ".safetensors");
  const NamedTensor<float> x = io::read_npy<float>(base + ".input.npy");
  REQUIRE(x.shape.size() == 4);
  f.input = to_nhwc<float>(ConstTensorMap4<float>(x.values.data(), x.shape[0], x.shape[1], x.shape[2], x.shape[3]));
  f.logits = io::read_npy<float>(base + ".logits.npy");
  REQUIRE(f.logits.shape == (std::vector<Index>{x.shape[0], f.config.num_classes}));
  REQUIRE(f.input.dimension(0) >= 2);
  return f;
}

/// Image i of an NHWC batch, as a batch of one.
Tensor4<float> image(const Tensor4<float>& x, Index i) {
  const Index h = x.dimension(1), w = x.dimension(2), c = x.dimension(3);
  return ConstTensorMap4<float>(x.data() + i * h * w * c, 1, h, w, c);
}

/// The whole batch, then each image alone, through `forward`: every result within 1e-4 of PyTorch.
template <class Forward>
void check_against_pytorch(const Fixture& f, Forward&& forward, const std::string& what) {
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses a planned workspace
    const Tensor2<float> all = forward(f.input);
    const double rel = relative_linf(all, f.logits);
    INFO(what << ", batch " << f.input.dimension(0) << ", call " << repeat << ": rel " << rel);
    CHECK(rel <= 1e-4);
  }
  for (Index i = 0; i < f.input.dimension(0); ++i) {
    const double rel = relative_linf(forward(image(f.input, i)), f.logits, i);
    INFO(what << ", image " << i << " alone: rel " << rel);
    CHECK(rel <= 1e-4);
  }
}

SKNetConfig resnext50_config() {
  SKNetConfig c;
  c.layers = architecture("resnext50").config.layers;
  return c;
}

}  // namespace

TEST_CASE("ResNeXt-50 32x4d has timm's parameter count, names and shapes", "[resnext]") {
  const SKNetConfig c = resnext50_config();
  // tools/resnext_torch.py counts the same (and checks 25,028,904 against timm's resnext50_32x4d).
  CHECK(resnext_plan(c).parameters() == 25028904);
  CHECK(architecture_plan("resnext50").parameters() == 25028904);
  CHECK(architecture_plan("resnext26").parameters() == 15389480);
  CHECK(architecture_plan("resnext101").parameters() == 44177704);
  CHECK(architecture_plan("resnext50").family == "resnext");

  ResNeXt<float> net(c);
  CHECK(count_parameters<float>(net) == 25028904);
  CHECK(net.num_units() == 16);
  const NetworkSummary s = net.summary(224, 224);
  CHECK(s.params == 25028904);
  // The paper (Table 2): ResNeXt-50 (32x4d), 4.24 GFLOPs (multiply-adds).
  CHECK(std::fabs(double(s.macs) / 4.24e9 - 1.0) < 0.01);
  CHECK(s.to_string().find("params: 25028904\nmacs: ") != std::string::npos);

  std::map<std::string, std::vector<Index>> shapes;
  for (const auto& p : named_parameters<float>(net)) shapes[p.name] = p.shape;
  CHECK(shapes.at("conv1.weight") == std::vector<Index>{64, 3, 7, 7});
  CHECK(shapes.at("bn1.running_var") == std::vector<Index>{64});
  CHECK(shapes.at("layer1.0.conv1.weight") == std::vector<Index>{128, 64, 1, 1});
  CHECK(shapes.at("layer1.0.conv2.weight") == std::vector<Index>{128, 4, 3, 3});
  CHECK(shapes.at("layer1.0.bn2.bias") == std::vector<Index>{128});
  CHECK(shapes.at("layer3.5.conv2.weight") == std::vector<Index>{512, 16, 3, 3});
  CHECK(shapes.at("layer4.2.conv3.weight") == std::vector<Index>{2048, 1024, 1, 1});
  CHECK(shapes.at("layer4.2.bn3.weight") == std::vector<Index>{2048});
  CHECK(shapes.at("layer2.0.downsample.0.weight") == std::vector<Index>{512, 256, 1, 1});
  CHECK(shapes.at("layer2.0.downsample.1.running_mean") == std::vector<Index>{512});
  CHECK(shapes.at("fc.weight") == std::vector<Index>{1000, 2048});
  CHECK(shapes.count("layer1.1.downsample.0.weight") == 0);
  CHECK(shapes.size() == 5 + 16 * 15 + 4 * 5 + 2);  // stem, units (3 conv + BN), downsamples, fc
  // The checkpoint keys the prepared engine expects are the reference modules' keys.
  const auto expected = expected_parameters(resnext_plan(c));
  CHECK(expected == shapes);
}

namespace {

/// The summary rows the built layers give (count_parameters, output_dims, ConvGeometry::macs): an
/// oracle for NetworkPlan::summary, which never builds a layer.
void check_summary(const SKNetConfig& config, Index h, Index w, Index batch) {
  ResNeXt<float> net(config);
  const NetworkSummary s = net.summary(h, w, batch);
  CHECK(resnext_plan(config).parameters() == count_parameters<float>(net));
  CHECK(s.params == count_parameters<float>(net));
  std::size_t row = 0;
  Index total_macs = 0;
  const auto expect = [&](const std::string& name, const std::string& type, const std::array<Index, 4>& out,
                          Index params, Index macs) {
    INFO("row " << row << ": " << name);
    REQUIRE(row < s.layers.size());
    CHECK(s.layers[row].name == name);
    CHECK(s.layers[row].type == type);
    CHECK(s.layers[row].output == out);
    CHECK(s.layers[row].params == params);
    CHECK(s.layers[row].macs == macs);
    total_macs += macs;
    ++row;
  };
  const auto conv_bn = [&](const std::string& name, const ConvBnAct<float>& layer, const std::array<Index, 4>& in) {
    expect(name, "ConvBnAct", layer.output_dims(in), count_parameters<float>(const_cast<ConvBnAct<float>&>(layer)),
           layer.conv().geometry(in).macs());
    return layer.output_dims(in);
  };
  std::array<Index, 4> dims = conv_bn("conv1+bn1", net.stem().conv(0), {batch, h, w, config.in_channels});
  if (config.stem == Stem::imagenet) {
    dims = MaxPool2d<float>(MaxPool2dOptions(3).stride(2).padding(1)).output_dims(dims);
    expect("maxpool", "MaxPool2d", dims, 0, 0);
  }
  for (std::size_t i = 0; i < net.num_units(); ++i) {
    const ResNeXtUnit<float>& unit = net.unit(i);
    const auto in = dims;
    const auto a = conv_bn(unit.name() + ".conv1", unit.conv1(), in);
    CHECK(unit.conv2().conv().options().groups() == config.groups);
    const auto b = conv_bn(unit.name() + ".conv2", unit.conv2(), a);
    dims = conv_bn(unit.name() + ".conv3", unit.conv3(), b);
    if (unit.downsample()) conv_bn(unit.name() + ".downsample", *unit.downsample(), in);
  }
  expect("global_pool", "AvgPool", {batch, 1, 1, dims[3]}, 0, 0);
  auto& fc = const_cast<Linear<float>&>(net.fc());
  expect("fc", "Linear", {batch, 1, 1, config.num_classes}, count_parameters<float>(fc),
         batch * dims[3] * config.num_classes);
  CHECK(row == s.layers.size());
  CHECK(s.macs == total_macs);
}

}  // namespace

TEST_CASE("ResNeXt summaries give the built network's shapes, parameters and multiply-adds", "[resnext]") {
  SKNetConfig tiny;
  tiny.layers = {2, 1, 2};
  tiny.planes = {8, 16, 12};
  tiny.strides = {1, 2, 3};
  tiny.groups = 4;
  tiny.base_width = 16;
  tiny.stem_width = 8;
  tiny.num_classes = 7;
  check_summary(tiny, 45, 37, 2);
  tiny.stem = Stem::small;
  tiny.in_channels = 1;
  check_summary(tiny, 13, 9, 3);
  check_summary(resnext50_config(), 224, 224, 1);
  // An empty input names the layer, as running it would.
  CHECK_THROWS_AS(resnext_plan(resnext50_config()).summary(0, 8), ShapeError);
  CHECK_THROWS_WITH(resnext_plan(resnext50_config()).summary(0, 8), Contains("Conv2d 'conv1'"));
}

TEST_CASE("ResNeXt reproduces the PyTorch fixtures on the reference and the prepared path", "[resnext][fixture]") {
  const std::string name = GENERATE(std::string("tiny"), std::string("small_stem"));
  const Fixture f = load_fixture(name);
  INFO("fixture resnext/" << name);

  ResNeXt<float> net(f.config);
  load_state_dict(net, f.weights);  // strict
  check_against_pytorch(f, [&](const Tensor4<float>& x) { return net.forward(x); }, "reference");

  // The prepared engine, from the built network and straight from the checkpoint, for every ISA
  // this CPU runs and 1 and 2 threads.
  for (int isa = 0; isa <= int(kernels::cpu_isa()); ++isa) {
    for (int threads : {1, 2}) {
      const PrepareOptions options(threads, false, kernels::Isa(isa));
      const std::string what = std::string(kernels::isa_name(kernels::Isa(isa))) + ", threads " + std::to_string(threads);
      const PreparedNetwork from_net = prepare(net, options);
      CHECK(from_net.isa() == kernels::Isa(isa));
      CHECK(from_net.num_blocks() == net.num_units());
      check_against_pytorch(f, [&](const Tensor4<float>& x) { return from_net.forward(x); }, what + ", prepare(net)");
      CHECK(from_net.attention_maps().empty());  // no SK blocks

      StateDict<float> dict = f.weights;
      const PreparedNetwork from_dict = prepare_from_state_dict(resnext_plan(f.config), std::move(dict), options);
      CHECK(from_dict.plan().family == "resnext");
      check_against_pytorch(f, [&](const Tensor4<float>& x) { return from_dict.forward(x); },
                            what + ", prepare_from_state_dict");

      const PreparedNetwork from_file = prepare_from_safetensors(
          resnext_plan(f.config), sknet_test::test_data_path("resnext/" + name + ".safetensors"), options);
      check_against_pytorch(f, [&](const Tensor4<float>& x) { return from_file.forward(x); },
                            what + ", prepare_from_safetensors");
    }
  }
}

TEST_CASE("ResNeXt checkpoints load strictly", "[resnext][errors]") {
  const Fixture f = load_fixture("tiny");
  const NetworkPlan plan = resnext_plan(f.config);

  SECTION("SKNet weights into a ResNeXt: every missing and unexpected key is named") {
    const std::string sk = sknet_test::test_data_path("sknet/tiny_m2.safetensors");
    SKNetConfig c = f.config;
    c.layers = {2, 2, 2, 2};  // the SKNet fixture's depths
    ResNeXt<float> net(c);
    const StateDict<float> weights = io::load_safetensors<float>(sk);
    CHECK_THROWS_AS(load_state_dict(net, weights), StateDictError);
    CHECK_THROWS_WITH(load_state_dict(net, weights),
                      Contains("missing key(s)") && Contains("layer1.0.conv2.weight") && Contains("layer4.1.bn3.bias") &&
                          Contains("unexpected key(s)") && Contains("layer1.0.conv2.attn.fc_reduce.weight"));
    StateDict<float> dict = weights;
    CHECK_THROWS_AS(prepare_from_state_dict(resnext_plan(c), std::move(dict)), StateDictError);
    // And the other way round: ResNeXt weights into an SKNet.
    SKNet<float, 2> sknet(c);
    CHECK_THROWS_WITH(load_state_dict(sknet, f.weights), Contains("missing key(s)") && Contains("layer1.0.conv2.attn"));
  }

  SECTION("one key missing, one extra, one mis-shaped") {
    StateDict<float> missing = f.weights;
    REQUIRE(missing.erase("layer2.1.bn2.running_var") == 1);
    CHECK_THROWS_WITH(prepare_from_state_dict(plan, std::move(missing)),
                      Contains("1 missing key(s)") && Contains("layer2.1.bn2.running_var"));

    StateDict<float> extra = f.weights;
    extra.emplace("layer9.0.conv1.weight", f.weights.at("layer1.0.conv1.weight"));
    ResNeXt<float> net(f.config);
    CHECK_THROWS_WITH(load_state_dict(net, extra), Contains("1 unexpected key(s)") && Contains("layer9.0.conv1.weight"));
    StateDict<float> extra2 = extra;
    CHECK_THROWS_AS(prepare_from_state_dict(plan, std::move(extra2)), StateDictError);
    // Non-strict: the extra key is ignored and the network still matches PyTorch.
    const PreparedNetwork lenient = prepare_from_state_dict(plan, std::move(extra), {}, /*strict=*/false);
    CHECK(relative_linf(lenient.forward(f.input), f.logits) <= 1e-4);

    // The same three problems read straight from files: the error names the file and the keys.
    const std::string dir = (std::filesystem::temp_directory_path() / "sknet_test_resnext_stream").string();
    std::filesystem::create_directories(dir);
    StateDict<float> missing2 = f.weights, extra3 = f.weights, misshaped = f.weights;
    REQUIRE(missing2.erase("layer2.1.bn2.running_var") == 1);
    extra3.emplace("layer9.0.conv1.weight", f.weights.at("layer1.0.conv1.weight"));
    misshaped.at("layer1.0.conv1.weight").shape.push_back(1);
    io::save_safetensors<float>(dir + "/missing.safetensors", missing2);
    io::save_safetensors<float>(dir + "/extra.safetensors", extra3);
    io::save_safetensors<float>(dir + "/misshaped.safetensors", misshaped);
    CHECK_THROWS_WITH(prepare_from_safetensors(plan, dir + "/missing.safetensors"),
                      Contains("missing.safetensors") && Contains("1 missing key(s)") &&
                          Contains("layer2.1.bn2.running_var"));
    CHECK_THROWS_WITH(prepare_from_safetensors(plan, dir + "/extra.safetensors"),
                      Contains("1 unexpected key(s)") && Contains("layer9.0.conv1.weight"));
    CHECK_THROWS_WITH(prepare_from_safetensors(plan, dir + "/misshaped.safetensors"),
                      Contains("layer1.0.conv1.weight") && Contains(shape_string(misshaped.at("layer1.0.conv1.weight").shape)));
    CHECK_THROWS_AS(prepare_from_safetensors(plan, dir + "/absent.safetensors"), FormatError);
    const PreparedNetwork lenient2 = prepare_from_safetensors(plan, dir + "/extra.safetensors", {}, /*strict=*/false);
    CHECK(relative_linf(lenient2.forward(f.input), f.logits) <= 1e-4);
    std::filesystem::remove_all(dir);

    // Two groups instead of the checkpoint's four: every grouped conv2 has the wrong shape.
    SKNetConfig c = f.config;
    c.groups = 2;
    c.base_width = 64;  // the same widths (8, 16, 32, 64) with 2 groups
    StateDict<float> dict = f.weights;
    CHECK_THROWS_WITH(prepare_from_state_dict(resnext_plan(c), std::move(dict)),
                      Contains("shape mismatch") && Contains("layer1.0.conv2.weight"));
  }
}

TEST_CASE("ResNeXt rejects bad configurations and inputs", "[resnext][errors]") {
  SKNetConfig c = resnext50_config();
  c.planes = {64, 128, 256};
  CHECK_THROWS_AS(ResNeXt<float>(c), ConfigError);
  CHECK_THROWS_WITH(ResNeXt<float>(c), Contains("planes per stage") && Contains("expected 4, got 3"));
  CHECK_THROWS_AS(architecture_plan("resnext34"), ConfigError);
  CHECK_THROWS_WITH(architecture("resnext34"), Contains("resnext50") && Contains("'resnext34'"));
  c = resnext50_config();
  c.num_classes = 2500000;  // 5.1 G parameters: refused before anything is allocated
  CHECK_THROWS_WITH(ResNeXt<float>(c), Contains("learnable parameters"));
  CHECK_THROWS_AS(prepare_random(resnext_plan(c), 1), ConfigError);

  const Fixture f = load_fixture("small_stem");
  ResNeXt<float> net(f.config);
  load_state_dict(net, f.weights);
  const PreparedNetwork fast = prepare(net);
  Tensor4<float> wrong(1, 16, 16, 4);
  wrong.setZero();
  CHECK_THROWS_WITH(net.forward(wrong), Contains("expected 3, got 4"));
  CHECK_THROWS_AS(fast.forward(wrong), ShapeError);
}

// SE-ResNeXt's gate kernels (kernels/se_gate.hpp): every ISA this CPU runs against the same formula in
// double, y = ReLU(gate * y + residual) with the head's channel sums, then NaN in y, the residual
// and the gate.
TEST_CASE("the SE gate row kernels match the naive formula, NaN included", "[resnext][kernels]") {
  using sknet::kernels::Isa;
  for (int i = 0; i <= int(sknet::kernels::cpu_isa()); ++i) {
    const Isa isa = Isa(i);
    const sknet::kernels::SEGateRowsFn kernel = sknet::kernels::se_gate_rows_kernel(isa);
    for (const std::int64_t rows : {1, 3, 7})
      for (const std::int64_t c : {1, 15, 16, 17, 64, 100}) {
        CAPTURE(sknet::kernels::isa_name(isa), rows, c);
        sknet_test::naive::Array y0({rows, c}), res({rows, c}), gate({c});
        sknet_test::naive::fill_uniform(y0, std::uint64_t(rows * 100 + c), -2, 2);
        sknet_test::naive::fill_uniform(res, std::uint64_t(rows * 100 + c + 1), -1, 1);
        sknet_test::naive::fill_uniform(gate, std::uint64_t(c), 0, 1);
        std::vector<float> y(y0.data.begin(), y0.data.end()), r(res.data.begin(), res.data.end());
        std::vector<float> g(gate.data.begin(), gate.data.end()), sums(std::size_t(c), 1.0f);
        kernel(y.data(), r.data(), g.data(), rows, c, sums.data());
        bool close = true, sums_close = true;
        for (std::int64_t ch = 0; ch < c; ++ch) {
          double sum = 1.0, scale = 1.0;
          for (std::int64_t p = 0; p < rows; ++p) {
            const std::size_t k = std::size_t(p * c + ch);
            const double v = double(float(y0.data[k])) * double(g[std::size_t(ch)]) + double(r[k]);
            const double want = v > 0.0 ? v : 0.0;
            close = close && std::abs(double(y[k]) - want) <= 1e-6 * (1.0 + std::abs(v));
            sum += want;
            scale += std::abs(want);
          }
          sums_close = sums_close && std::abs(double(sums[std::size_t(ch)]) - sum) <= 1e-6 * scale;
        }
        CHECK(close);
        CHECK(sums_close);

        // NaN in y at (0, 0), in the residual at (rows - 1, c - 1), in the gate of channel c / 2: those
        // outputs (and their channels' sums) are NaN, and only those.
        std::vector<float> yn(y0.data.begin(), y0.data.end());
        const float nan = std::numeric_limits<float>::quiet_NaN();
        yn[0] = nan;
        r[std::size_t(rows * c - 1)] = nan;
        g[std::size_t(c / 2)] = nan;
        std::fill(sums.begin(), sums.end(), 0.0f);
        kernel(yn.data(), r.data(), g.data(), rows, c, sums.data());
        bool nan_right = true;
        for (std::int64_t p = 0; p < rows; ++p)
          for (std::int64_t ch = 0; ch < c; ++ch) {
            const bool want_nan = (p == 0 && ch == 0) || (p == rows - 1 && ch == c - 1) || ch == c / 2;
            nan_right = nan_right && std::isnan(yn[std::size_t(p * c + ch)]) == want_nan;
          }
        for (std::int64_t ch = 0; ch < c; ++ch)
          nan_right = nan_right && std::isnan(sums[std::size_t(ch)]) == (ch == 0 || ch == c - 1 || ch == c / 2);
        CHECK(nan_right);
      }
  }
}
