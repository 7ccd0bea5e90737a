// PreparedSKNet (folded BN, packed weights, SIMD kernels, thread pool) against the reference SKNet.
#include <catch2/catch.hpp>

#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sk/prepared_sk_conv.hpp>
#include <sknet/sknet.hpp>

#include <cmath>

#include "support/compare.hpp"

using namespace sknet;

namespace {

double relative_linf(const Tensor2<float>& actual, const Tensor2<float>& expected) {
  return sknet_test::relative_linf(actual.data(), expected.data(), std::size_t(expected.size()));
}

SKNetConfig small_config(Stem stem, Index paths) {
  SKNetConfig c;
  c.layers = {2, 1, 2, 1};
  c.planes = {8, 16, 32, 64};
  c.groups = 8;  // unit widths 16/32/64/128: group widths 2, 4, 8, 16
  c.base_width = 16;
  c.reduction = 4;
  c.min_width = 8;
  c.stem_width = 16;
  c.num_classes = 17;
  c.stem = stem;
  c.paths = paths;
  return c;
}

template <int M>
void check_prepared(const SKNetConfig& config, Index batch, Index height, Index width, int threads) {
  SKNet<float, M> net(config);
  randomize<float>(net, 41);
  Tensor4<float> x(batch, height, width, config.in_channels);
  x.setRandom();
  x = x * 2.0f - 1.0f;
  const Tensor2<float> expected = net.forward(x);

  PreparedSKNet<M> fast = prepare(net, PrepareOptions{threads});
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the planned workspace
    const Tensor2<float> logits = fast.forward(x);
    REQUIRE(logits.dimensions() == expected.dimensions());
    const double rel = relative_linf(logits, expected);
    INFO("batch " << batch << ", " << height << "x" << width << ", threads " << threads << ": rel " << rel);
    CHECK(rel <= 1e-4);
    REQUIRE(fast.attention_maps().size() == net.attention_maps().size());
    for (std::size_t u = 0; u < net.attention_maps().size(); ++u) {
      const auto& want = net.attention_maps()[u];
      const auto& got = fast.attention_maps()[u];
      CHECK(got.first == want.first);
      SKNET_CHECK_CLOSE(got.second, want.second, (sknet_test::Tolerance{2e-5, 0.0}), want.first);
    }
  }
}

}  // namespace

TEST_CASE("PreparedSKNet matches the reference network", "[prepared]") {
  const int threads = GENERATE(1, 2);
  SECTION("ImageNet stem, M = 2, batch 1, odd size") { check_prepared<2>(small_config(Stem::imagenet, 2), 1, 45, 37, threads); }
  SECTION("ImageNet stem, M = 2, batch 3") { check_prepared<2>(small_config(Stem::imagenet, 2), 3, 33, 32, threads); }
  SECTION("ImageNet stem, M = 3") { check_prepared<3>(small_config(Stem::imagenet, 3), 2, 40, 41, threads); }
  SECTION("small stem, M = 2, one channel") {
    SKNetConfig c = small_config(Stem::small, 2);
    c.in_channels = 1;
    check_prepared<2>(c, 2, 19, 23, threads);
  }
  SECTION("ImageNet stem on tiny inputs: one or two stem rows and columns, rows split over threads") {
    check_prepared<2>(small_config(Stem::imagenet, 2), 2, 3, 4, threads);
    check_prepared<2>(small_config(Stem::imagenet, 2), 1, 1, 9, threads);
  }
  SECTION("batch 10 and 7 of small maps: chunks of several images, split by image or by layer") {
    check_prepared<2>(small_config(Stem::imagenet, 2), 10, 21, 18, threads);
    check_prepared<2>(small_config(Stem::small, 2), 7, 9, 12, threads);
  }
  SECTION("SKNet-50 group widths (4/8/16/32), tiny map") {
    SKNetConfig c;  // the real SKNet-50 widths, one unit per stage
    c.layers = {1, 1, 1, 1};
    c.num_classes = 10;
    check_prepared<2>(c, 1, 64, 64, threads);
  }
}

TEST_CASE("PreparedSKNet rejects what it cannot run", "[prepared][errors]") {
  SKNetConfig c = small_config(Stem::imagenet, 2);
  c.path_kernels = {3, 17};  // beyond the SK branch kernel's 15
  SKNet<float, 2> net(c);
  CHECK_THROWS_AS(prepare(net), ConfigError);
  SKNet<float, 2> ok(small_config(Stem::imagenet, 2));
  auto fast = prepare(ok);
  Tensor4<float> wrong(1, 32, 32, 4);
  wrong.setZero();
  CHECK_THROWS_AS(fast.forward(wrong), ShapeError);
}

namespace {

template <int M>
void check_prepared_sk_conv(Index c, Index groups, Index stride, Index batch, Index h, Index w, int threads) {
  const SKConvOptions options = SKConvOptions(c).paths(M).groups(groups).reduction(4).min_width(8).stride(stride);
  SKConv<float, M> sk(options, "unit.conv2");
  randomize<float>(sk, 7 + unsigned(c));
  Tensor4<float> x(batch, h, w, c);
  x.setRandom();
  x = x * 2.0f - 1.0f;
  Tensor3<float> want_attention;
  const Tensor4<float> want = sk.forward(view(x), want_attention);

  PreparedSKConv<M> fast(sk);
  ThreadPool pool(threads);
  Tensor4<float> v(want.dimensions());
  Tensor3<float> attention;
  for (int repeat = 0; repeat < 2; ++repeat) {  // the second call reuses the workspace
    v.setConstant(1234.5f);
    fast.forward(pool, view(x), TensorMap4<float>(v.data(), v.dimensions()), attention);
    INFO("C " << c << ", G " << groups << ", stride " << stride << ", batch " << batch << ", " << h << "x" << w
              << ", threads " << threads << ", call " << repeat);
    SKNET_CHECK_CLOSE(v, want, sknet_test::kFloatTolerance, "V");
    SKNET_CHECK_CLOSE(attention, want_attention, (sknet_test::Tolerance{2e-6, 1e-5}), "attention");
  }
}

}  // namespace

TEST_CASE("PreparedSKConv matches the reference SK convolution", "[prepared][sk_conv]") {
  const int threads = GENERATE(1, 2);
  SECTION("M = 2, group widths 1 (depthwise), 4, 8, 32") {
    check_prepared_sk_conv<2>(32, 32, 1, 1, 9, 11, threads);
    check_prepared_sk_conv<2>(128, 32, 1, 1, 14, 14, threads);  // SKNet-50 stage-1 grouping
    check_prepared_sk_conv<2>(64, 8, 2, 2, 13, 10, threads);
    check_prepared_sk_conv<2>(64, 2, 1, 1, 7, 7, threads);
  }
  SECTION("M = 3, odd channel count, stride 2") {
    check_prepared_sk_conv<3>(24, 6, 2, 2, 15, 12, threads);
    check_prepared_sk_conv<3>(48, 12, 1, 1, 8, 9, threads);
  }
}

TEST_CASE("PreparedSKConv runs Cin != C and split inputs (timm's skresnet)", "[prepared][sk_conv]") {
  for (bool split : {false, true})
    for (Index stride : {1, 2}) {
      INFO("split " << split << ", stride " << stride);
      // 24 -> 32 channels, G = 1 (split: each path 12 -> 32) or G = 4 (24 -> 32 per path).
      SKConv<float, 2> sk(SKConvOptions(24, 32).groups(split ? 1 : 4).split_input(split).stride(stride).reduction(4).min_width(8),
                          "layer1.0.conv1");
      randomize<float>(sk, 11);
      PreparedSKConv<2> fast(sk);
      CHECK(fast.in_channels() == 24);
      CHECK(fast.split_input() == split);
      Tensor4<float> x(2, 9, 11, 24);
      x.setRandom();
      Tensor3<float> want_a, got_a;
      const Tensor4<float> want = sk.forward(view(x), want_a);
      Tensor4<float> v(want.dimensions());
      ThreadPool pool(2);
      fast.forward(pool, view(x), TensorMap4<float>(v.data(), v.dimensions()), got_a);
      double err = 0, scale = 0;
      for (Index i = 0; i < want.size(); ++i) {
        err = std::max(err, std::fabs(double(v.data()[i]) - double(want.data()[i])));
        scale = std::max(scale, std::fabs(double(want.data()[i])));
      }
      CHECK(err <= 1e-5 * std::max(1.0, scale));
      for (Index i = 0; i < want_a.size(); ++i) CHECK(std::fabs(got_a.data()[i] - want_a.data()[i]) <= 1e-5);
    }
}

TEST_CASE("PreparedSKConv runs the paper's ablations: per-path kernels, dilations, groups, sum",
          "[prepared][sk_conv][ablations]") {
  struct Case {
    std::vector<Index> kernels, dilations, groups;
    bool split, sum;
  };
  const Case cases[] = {
      {{3, 5}, {1, 1}, {}, false, false},          // one call, a true 5x5 path
      {{3, 7}, {1, 1}, {4, 8}, false, false},      // one call per path (groups G and 2G)
      {{3, 5}, {1, 1}, {2, 4}, true, false},       // per path, split input (each call reads its slice)
      {{3, 3}, {1, 3}, {}, false, true},           // dilation 3, sum aggregation
      {{1, 5}, {1, 2}, {4, 2}, true, true},        // a 1x1 path, a dilated 5x5, split, sum
  };
  for (const Case& k : cases)
    for (Index stride : {1, 2}) {
      SKConvOptions o = SKConvOptions(24, 32).groups(4).split_input(k.split).stride(stride).reduction(4).min_width(8);
      o.path_kernels(k.kernels).path_dilations(k.dilations).path_groups(k.groups);
      o.aggregation(k.sum ? Aggregation::sum : Aggregation::attention);
      INFO(o << ", stride " << stride);
      SKConv<float, 2> sk(o, "layer1.0.conv2");
      randomize<float>(sk, 12);
      PreparedSKConv<2> fast(sk);
      CHECK(fast.calls() == (k.groups.empty() ? 1 : 2));
      Tensor4<float> x(2, 11, 9, 24);
      x.setRandom();
      Tensor3<float> want_a, got_a;
      const Tensor4<float> want = sk.forward(view(x), want_a);
      Tensor4<float> v(want.dimensions());
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        v.setConstant(1234.5f);
        fast.forward(pool, view(x), TensorMap4<float>(v.data(), v.dimensions()), got_a);
        SKNET_CHECK_CLOSE(v, want, sknet_test::kFloatTolerance, "V");
        SKNET_CHECK_CLOSE(got_a, want_a, (sknet_test::Tolerance{2e-6, 1e-5}), "attention");
      }
    }
}

TEST_CASE("PreparedSKConv rejects what it cannot run", "[prepared][sk_conv][errors]") {
  SKConv<float, 2> huge(SKConvOptions(32).groups(8).path_kernels({3, 17}), "layer1.0.conv2");
  CHECK_THROWS_WITH(PreparedSKConv<2>(huge), Catch::Matchers::Contains("layer1.0.conv2") &&
                                                 Catch::Matchers::Contains("kernel size of path 1"));
  SKConv<float, 2> sk(SKConvOptions(32).groups(8), "layer1.0.conv2");
  PreparedSKConv<2> fast(sk);
  ThreadPool pool(1);
  Tensor4<float> x(1, 8, 8, 16), v(1, 8, 8, 32);
  x.setZero();
  Tensor3<float> a;
  CHECK_THROWS_WITH(fast.forward(pool, view(x), TensorMap4<float>(v.data(), v.dimensions()), a),
                    Catch::Matchers::Contains("layer1.0.conv2") && Catch::Matchers::Contains("32"));
  Tensor4<float> x2(1, 8, 8, 32), small(1, 4, 4, 32);
  x2.setZero();
  CHECK_THROWS_AS(fast.forward(pool, view(x2), TensorMap4<float>(small.data(), small.dimensions()), a), ShapeError);
}

TEST_CASE("prepare records the ISA and precision and refuses what has no kernels", "[prepared]") {  // bf16: test_prepared_bf16
  SKNet<float, 2> net(small_config(Stem::imagenet, 2));
  randomize<float>(net, 5);
  for (int i = 0; i <= int(kernels::cpu_isa()); ++i) {
    const PreparedNetwork fast = prepare(net, PrepareOptions(1, false, kernels::Isa(i)));
    CHECK(fast.isa() == kernels::Isa(i));
    CHECK(fast.precision() == kernels::Precision::f32);
  }
  CHECK(prepare(net).isa() == kernels::active_isa());
  CHECK(prepare(net, PrepareOptions(1, false, std::nullopt, kernels::Precision::bf16)).precision() == kernels::Precision::bf16);
  CHECK_THROWS_WITH(prepare(net, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8)),
                    Catch::Contains("activation ranges") && Catch::Contains("int8"));  // calibration first
  CHECK_THROWS_AS(prepare(net, PrepareOptions(0)), ConfigError);
  CHECK(kernels::parse_precision("bf16", "test") == kernels::Precision::bf16);
  CHECK_THROWS_AS(kernels::parse_precision("fp16", "test"), ConfigError);
}
