// SKConv = Split -> Fuse -> Select: PyTorch fixtures (float), naive reference (double), bad input.
#include <catch2/catch.hpp>

#include <sknet/init.hpp>
#include <sknet/sk/sk_conv.hpp>
#include <sknet/state_dict.hpp>

#include "support/compare.hpp"
#include "support/convert.hpp"

using namespace sknet;
using namespace sknet_test;

namespace {

SKConvOptions options_from(const Fixture& f) {
  return SKConvOptions(f.meta_int("in_channels"), f.meta_int("out_channels"))
      .paths(f.meta_int("paths"))
      .groups(f.meta_int("groups"))
      .reduction(f.meta_int("reduction"))
      .min_width(f.meta_int("min_width"))
      .stride(f.meta_int("stride"))
      .branch_kernel(f.meta("branch_kernels") == "full" ? BranchKernel::full : BranchKernel::dilated);
}

template <int M>
void check_against_fixture(const Fixture& f) {
  SKConv<float, M> sk(options_from(f), "sk");
  REQUIRE(sk.options().attention_width() == f.meta_int("attn_width"));
  load_state_dict(sk, state_dict_from<float>(f, {"input", "output", "attention"}), true, "sk");
  const auto y = sk.forward(to_tensor_nhwc<float>(f.tensor("input")));
  const naive::Array out = to_array_nchw(y);
  REQUIRE(out.shape == f.tensor("output").shape);
  SKNET_CHECK_CLOSE(out.data, f.tensor("output").data, kFloatTolerance, f.path + " output");
  const auto& a = sk.last_attention();
  REQUIRE(std::vector<std::int64_t>(a.dimensions().begin(), a.dimensions().end()) == f.tensor("attention").shape);
  SKNET_CHECK_CLOSE(a, f.tensor("attention").data, kFloatTolerance, f.path + " attention");
}

}  // namespace

TEST_CASE("SKConv matches the PyTorch implementation on every sk_conv fixture", "[sk_conv][fixture]") {
  const auto files = list_fixtures(test_data_path("sk_conv"));
  REQUIRE(files.size() >= 20);
  for (const auto& file : files) {
    DYNAMIC_SECTION(file) {
      const Fixture f = load_fixture(file);
      // state dict keys carry the prefix "sk." in this test
      Fixture prefixed = f;
      prefixed.tensors.clear();
      for (const auto& kv : f.tensors) {
        const bool data = kv.first == "input" || kv.first == "output" || kv.first == "attention";
        prefixed.tensors[data ? kv.first : "sk." + kv.first] = kv.second;
      }
      switch (f.meta_int("paths")) {
        case 2: check_against_fixture<2>(prefixed); break;
        case 3: check_against_fixture<3>(prefixed); break;
        default: FAIL("fixture with unsupported paths " << f.meta_int("paths"));
      }
    }
  }
}

namespace {

struct SKCase {
  int in, out, groups, reduction, min_width, stride, height, width, batch;
  bool full;
};

template <class Scalar, int M>
void check_against_naive(const SKCase& c, std::uint64_t seed) {
  naive::SKConfig cfg{c.in, c.out, M, c.groups, c.reduction, c.min_width, c.stride, c.full};
  naive::SKParams p = naive::sk_make_params(cfg);
  std::uint64_t s = seed;
  const auto rnd = [&](naive::Array& a, double lo, double hi) {
    naive::fill_uniform(a, ++s, lo, hi);
    for (double& v : a.data) v = static_cast<double>(static_cast<Scalar>(v));
  };
  for (int m = 0; m < M; ++m) {
    rnd(p.conv_weight[m], -0.4, 0.4);
    rnd(p.bn_weight[m], 0.5, 1.5);
    rnd(p.bn_bias[m], -0.2, 0.2);
    rnd(p.bn_mean[m], -0.2, 0.2);
    rnd(p.bn_var[m], 0.5, 2.0);
  }
  rnd(p.fc_reduce, -0.5, 0.5);
  rnd(p.attn_bn_weight, 0.5, 1.5);
  rnd(p.attn_bn_bias, -0.2, 0.2);
  rnd(p.attn_bn_mean, -0.2, 0.2);
  rnd(p.attn_bn_var, 0.5, 2.0);
  rnd(p.fc_select, -1.0, 1.0);
  naive::Array x({c.batch, c.in, c.height, c.width});
  rnd(x, -1, 1);
  const naive::SKResult expected = naive::sk_conv(x, p, cfg);

  SKConv<Scalar, M> sk(SKConvOptions(c.in, c.out)
                           .groups(c.groups)
                           .reduction(c.reduction)
                           .min_width(c.min_width)
                           .stride(c.stride)
                           .branch_kernel(c.full ? BranchKernel::full : BranchKernel::dilated));
  for (int m = 0; m < M; ++m) {
    assign(sk.split().conv(m).weight(), p.conv_weight[m]);
    assign(sk.split().bn(m).weight(), p.bn_weight[m]);
    assign(sk.split().bn(m).bias(), p.bn_bias[m]);
    assign(sk.split().bn(m).running_mean(), p.bn_mean[m]);
    assign(sk.split().bn(m).running_var(), p.bn_var[m]);
  }
  assign(sk.fuse().fc_reduce().weight(), p.fc_reduce);
  assign(sk.fuse().bn().weight(), p.attn_bn_weight);
  assign(sk.fuse().bn().bias(), p.attn_bn_bias);
  assign(sk.fuse().bn().running_mean(), p.attn_bn_mean);
  assign(sk.fuse().bn().running_var(), p.attn_bn_var);
  assign(sk.select().fc_select().weight(), p.fc_select);

  Tensor3<Scalar> attention;
  const auto y = sk.forward(view(to_tensor_nhwc<Scalar>(x)), attention);
  const naive::Array out = to_array_nchw(y);
  REQUIRE(out.shape == expected.output.shape);
  SKNET_CHECK_CLOSE(out.data, expected.output.data, tolerance_for<Scalar>(), "SK output");
  SKNET_CHECK_CLOSE(attention, expected.attention.data, tolerance_for<Scalar>(), "SK attention");
}

}  // namespace

TEMPLATE_TEST_CASE("SKConv matches the naive double reference over a sweep", "[sk_conv][reference]", float, double) {
  // {in, out, G, r, L, stride, H, W, N, full}
  const SKCase c = GENERATE(SKCase{64, 64, 32, 16, 32, 1, 7, 9, 1, false},   // d = L
                            SKCase{64, 64, 32, 2, 8, 2, 13, 11, 2, false},   // d = C / r, stride 2
                            SKCase{16, 16, 16, 4, 4, 1, 9, 7, 3, false},     // depthwise
                            SKCase{48, 48, 48, 16, 8, 2, 8, 8, 1, false},    // depthwise, stride 2
                            SKCase{24, 24, 4, 2, 4, 1, 5, 6, 2, true},       // G = 4, true kernels
                            SKCase{12, 12, 1, 3, 2, 2, 1, 1, 2, false},      // G = 1, 1x1 map, stride 2
                            SKCase{32, 64, 32, 16, 32, 1, 6, 5, 1, true},    // in != out
                            SKCase{17, 17, 17, 4, 3, 1, 4, 9, 1, false});    // odd channel count
  CAPTURE(c.in, c.out, c.groups, c.reduction, c.min_width, c.stride, c.height, c.width, c.batch, c.full);
  SECTION("M = 2") { check_against_naive<TestType, 2>(c, 100); }
  SECTION("M = 3") { check_against_naive<TestType, 3>(c, 200); }
}

TEST_CASE("SK attention is a distribution over the paths and uniform for a zero fc_select", "[sk_conv]") {
  SKConv<double, 3> sk(SKConvOptions(32).groups(8).reduction(4).min_width(4));
  randomize<double>(sk, 7);
  Tensor4<double> x(2, 6, 6, 32);
  x.setRandom();
  sk.forward(x);
  const auto& a = sk.last_attention();
  REQUIRE(a.dimension(0) == 2);
  REQUIRE(a.dimension(1) == 3);
  REQUIRE(a.dimension(2) == 32);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 32; ++c) CHECK(a(n, 0, c) + a(n, 1, c) + a(n, 2, c) == Approx(1.0).epsilon(1e-12));
  sk.select().fc_select().weight().setZero();
  sk.forward(x);
  for (int i = 0; i < sk.last_attention().size(); ++i) CHECK(sk.last_attention().data()[i] == Approx(1.0 / 3));
}

TEST_CASE("SKConv exposes timm parameter names", "[sk_conv]") {
  SKConv<float, 2> sk(SKConvOptions(64).groups(32), "layer1.0.conv2");
  std::vector<std::string> names;
  for (const auto& p : named_parameters<float>(sk, "layer1.0.conv2")) names.push_back(p.name);
  const std::vector<std::string> expected{
      "layer1.0.conv2.paths.0.conv.weight",     "layer1.0.conv2.paths.0.bn.weight",
      "layer1.0.conv2.paths.0.bn.bias",         "layer1.0.conv2.paths.0.bn.running_mean",
      "layer1.0.conv2.paths.0.bn.running_var",  "layer1.0.conv2.paths.1.conv.weight",
      "layer1.0.conv2.paths.1.bn.weight",       "layer1.0.conv2.paths.1.bn.bias",
      "layer1.0.conv2.paths.1.bn.running_mean", "layer1.0.conv2.paths.1.bn.running_var",
      "layer1.0.conv2.attn.fc_reduce.weight",   "layer1.0.conv2.attn.bn.weight",
      "layer1.0.conv2.attn.bn.bias",            "layer1.0.conv2.attn.bn.running_mean",
      "layer1.0.conv2.attn.bn.running_var",     "layer1.0.conv2.attn.fc_select.weight"};
  CHECK(names == expected);
  const auto params = named_parameters<float>(sk);
  CHECK(params[0].shape == std::vector<Index>{64, 2, 3, 3});
  CHECK(params[10].shape == std::vector<Index>{32, 64, 1, 1});
  CHECK(params[15].shape == std::vector<Index>{128, 32, 1, 1});
}

TEST_CASE("SKConv rejects bad options and bad input", "[sk_conv][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH((SKConv<float, 2>(SKConvOptions(48).groups(32), "layer2.0.conv2")),
                    Contains("layer2.0.conv2") && Contains("in_channels % groups"));
  CHECK_THROWS_AS((SKConv<float, 2>(SKConvOptions(64).paths(3))), ConfigError);
  CHECK_THROWS_WITH((SKConv<float, 2>(SKConvOptions(64).paths(3))), Contains("expected 2, got 3"));
  CHECK_THROWS_AS((SKConv<float, 2>(SKConvOptions(64).reduction(0))), ConfigError);
  CHECK_THROWS_AS((SKConv<float, 2>(SKConvOptions(64).min_width(0))), ConfigError);
  CHECK_THROWS_AS((SKConv<float, 2>(SKConvOptions(64).stride(0))), ConfigError);
  CHECK_THROWS_AS((SKConv<float, 2>(SKConvOptions(0))), ConfigError);

  SKConv<float, 2> sk(SKConvOptions(64), "sk");
  Tensor4<float> wrong(1, 7, 7, 32);
  wrong.setZero();
  CHECK_THROWS_WITH(sk.forward(wrong), Contains("sk.paths.0.conv") && Contains("expected 64, got 32"));
  Tensor4<float> empty(0, 7, 7, 64);
  CHECK_THROWS_AS(sk.forward(empty), ShapeError);

  // Select and Fuse check what they are given.
  Tensor2<float> z(1, 5);
  z.setZero();
  std::array<Tensor4<float>, 2> branches{Tensor4<float>(1, 3, 3, 64), Tensor4<float>(1, 3, 3, 64)};
  Tensor3<float> a;
  CHECK_THROWS_WITH(sk.select().forward(z, branches, a), Contains("Select 'sk.attn'") && Contains("expected 32, got 5"));
  branches[1] = Tensor4<float>(1, 3, 4, 64);
  branches[0].setZero();
  branches[1].setZero();
  CHECK_THROWS_AS(sk.fuse().forward(branches), ShapeError);
}
