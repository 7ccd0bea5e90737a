// Conv2d: PyTorch fixtures (float), the independent naive reference (double), and bad input.
#include <catch2/catch.hpp>

#include <sknet/ops/conv2d.hpp>

#include "support/compare.hpp"
#include "support/convert.hpp"

using namespace sknet;
using namespace sknet_test;

TEST_CASE("Conv2d matches PyTorch on the conv2d fixtures", "[conv2d][fixture]") {
  const auto files = list_fixtures(test_data_path("conv2d"));
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    DYNAMIC_SECTION(file) {
      const Fixture f = load_fixture(file);
      const bool has_bias = f.meta_int("bias") != 0;
      Conv2d<float> conv(Conv2dOptions(f.meta_int("in_channels"), f.meta_int("out_channels"),
                                       {f.meta_int("kernel_h"), f.meta_int("kernel_w")})
                             .stride(f.meta_int("stride"))
                             .padding(f.meta_int("padding"))
                             .dilation(f.meta_int("dilation"))
                             .groups(f.meta_int("groups"))
                             .bias(has_bias));
      load_state_dict(conv, state_dict_from<float>(f, {"input", "output"}));
      const auto y = to_array_nchw(conv.forward(to_tensor_nhwc<float>(f.tensor("input"))));
      REQUIRE(y.shape == f.tensor("output").shape);
      SKNET_CHECK_CLOSE(y.data, f.tensor("output").data, kFloatTolerance, file);
    }
  }
}

namespace {
struct ConvCase {
  int kernel, dilation, stride, padding;
};
}  // namespace

TEMPLATE_TEST_CASE("Conv2d matches the naive reference over a shape sweep", "[conv2d][reference]", float, double) {
  // ncnn-style {kernel, dilation, stride, padding} table crossed with groups and channel counts.
  const ConvCase k = GENERATE(ConvCase{1, 1, 1, 0}, ConvCase{1, 1, 2, 0}, ConvCase{3, 1, 1, 1}, ConvCase{3, 2, 1, 2},
                              ConvCase{3, 1, 2, 1}, ConvCase{3, 2, 2, 2}, ConvCase{3, 3, 1, 3}, ConvCase{5, 1, 1, 2},
                              ConvCase{5, 1, 2, 0}, ConvCase{7, 1, 2, 3}, ConvCase{3, 1, 1, 0});
  const int channels = GENERATE(4, 15, 16, 17, 32);
  const int groups_kind = GENERATE(0, 1, 2);  // 1 group, 4 channels per group (when divisible), depthwise
  const int groups = groups_kind == 0 ? 1 : groups_kind == 2 ? channels : (channels % 4 == 0 ? channels / 4 : 1);
  const int out_channels = groups == channels ? channels : 2 * channels;
  const bool bias = (channels + k.kernel) % 2 == 0;
  const int batch = channels == 15 ? 2 : 1, height = 9, width = 7;
  CAPTURE(k.kernel, k.dilation, k.stride, k.padding, channels, groups, out_channels, bias);

  naive::Array x({batch, channels, height, width}), w({out_channels, channels / groups, k.kernel, k.kernel}),
      b({out_channels});
  naive::fill_uniform(x, 1, -1, 1);
  naive::fill_uniform(w, 2, -0.5, 0.5);
  naive::fill_uniform(b, 3, -0.5, 0.5);
  // Round the data to TestType first so both sides see the same inputs.
  for (auto* a : {&x, &w, &b})
    for (double& v : a->data) v = static_cast<double>(static_cast<TestType>(v));
  const naive::Array expected = naive::conv2d(x, w, bias ? &b : nullptr, k.stride, k.stride, k.padding, k.padding,
                                              k.dilation, k.dilation, groups);

  Conv2d<TestType> conv(Conv2dOptions(channels, out_channels, k.kernel)
                            .stride(k.stride)
                            .padding(k.padding)
                            .dilation(k.dilation)
                            .groups(groups)
                            .bias(bias));
  assign(conv.weight(), w);
  if (bias) assign(conv.bias(), b);
  const auto y = to_array_nchw(conv.forward(to_tensor_nhwc<TestType>(x)));
  REQUIRE(y.shape == expected.shape);
  SKNET_CHECK_CLOSE(y.data, expected.data, tolerance_for<TestType>(), "conv2d");
}

TEST_CASE("Conv2d non-allocating forward writes into caller memory", "[conv2d]") {
  Conv2d<float> conv(Conv2dOptions(8, 8, 3).padding(1).groups(2));
  conv.weight().setConstant(0.25f);
  Tensor4<float> x(1, 5, 5, 8), y(1, 5, 5, 8);
  x.setConstant(1.0f);
  conv.forward(view(x), TensorMap4<float>(y.data(), y.dimensions()));
  // center pixel sees 9 taps x 4 channels x 0.25
  CHECK(y(0, 2, 2, 0) == Approx(9.0f));
  CHECK(y(0, 0, 0, 7) == Approx(4.0f));  // corner: 4 taps inside
  Tensor4<float> wrong(1, 5, 4, 8);
  CHECK_THROWS_AS(conv.forward(view(x), TensorMap4<float>(wrong.data(), wrong.dimensions())), ShapeError);
}

TEST_CASE("Conv2d rejects bad options and bad input with clear messages", "[conv2d][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(Conv2d<float>(Conv2dOptions(30, 64, 3).groups(32), "layer1.0.conv2.paths.0.conv"),
                    Contains("Conv2d 'layer1.0.conv2.paths.0.conv'") && Contains("in_channels % groups") &&
                        Contains("got 30"));
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(32, 48, 3).groups(32)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(0, 8, 3)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, -1, 3)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, 8, 0)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, 8, 3).stride(0)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, 8, 3).dilation(0)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, 8, 3).padding(-1)), ConfigError);
  CHECK_THROWS_AS(Conv2d<float>(Conv2dOptions(8, 8, 3).groups(0)), ConfigError);

  Conv2d<float> conv(Conv2dOptions(8, 16, 3), "stem");
  Tensor4<float> wrong_channels(1, 5, 5, 7);
  wrong_channels.setZero();
  CHECK_THROWS_WITH(conv.forward(wrong_channels), Contains("Conv2d 'stem'") && Contains("expected 8, got 7"));
  Tensor4<float> too_small(1, 2, 5, 8);  // 3x3 kernel without padding does not fit 2 rows
  too_small.setZero();
  CHECK_THROWS_AS(conv.forward(too_small), ShapeError);
  Tensor4<float> empty_batch(0, 5, 5, 8);
  CHECK_THROWS_AS(conv.forward(empty_batch), ShapeError);
  Tensor4<float> empty_map(1, 0, 5, 8);
  CHECK_THROWS_AS(conv.forward(empty_map), ShapeError);
}
