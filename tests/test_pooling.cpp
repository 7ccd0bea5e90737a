// MaxPool2d and global average pooling: PyTorch fixtures, naive reference, bad input.
#include <catch2/catch.hpp>

#include <sknet/ops/pooling.hpp>

#include "support/compare.hpp"
#include "support/convert.hpp"

using namespace sknet;
using namespace sknet_test;

TEST_CASE("MaxPool2d matches PyTorch on the max_pool2d fixtures", "[pooling][fixture]") {
  const auto files = list_fixtures(test_data_path("max_pool2d"));
  REQUIRE(files.size() >= 4);
  for (const auto& file : files) {
    DYNAMIC_SECTION(file) {
      const Fixture f = load_fixture(file);
      MaxPool2d<float> pool(
          MaxPool2dOptions(f.meta_int("kernel")).stride(f.meta_int("stride")).padding(f.meta_int("padding")));
      const auto y = to_array_nchw(pool.forward(to_tensor_nhwc<float>(f.tensor("input"))));
      REQUIRE(y.shape == f.tensor("output").shape);
      SKNET_CHECK_CLOSE(y.data, f.tensor("output").data, kFloatTolerance, file);
    }
  }
}

TEMPLATE_TEST_CASE("MaxPool2d and global_avg_pool match the naive reference", "[pooling][reference]", float, double) {
  const int kernel = GENERATE(1, 2, 3, 5);
  const int stride = GENERATE(1, 2, 3);
  const int padding = GENERATE(0, 1, 2);
  if (padding > kernel / 2) return;  // rejected by design, tested below
  const int height = GENERATE(5, 8, 11);
  CAPTURE(kernel, stride, padding, height);
  naive::Array x({2, 17, height, 6});
  naive::fill_uniform(x, 21, -3, -1);  // all negative: padding must never win
  for (double& v : x.data) v = static_cast<double>(static_cast<TestType>(v));
  const auto expected = naive::max_pool2d(x, kernel, stride, padding);
  MaxPool2d<TestType> pool(MaxPool2dOptions(kernel).stride(stride).padding(padding));
  const auto input = to_tensor_nhwc<TestType>(x);
  SKNET_CHECK_CLOSE(to_array_nchw(pool.forward(input)).data, expected.data, tolerance_for<TestType>(), "max_pool2d");

  const auto gap = global_avg_pool(input);
  SKNET_CHECK_CLOSE(gap, naive::global_avg_pool(x).data, tolerance_for<TestType>(), "global_avg_pool");
}

TEST_CASE("Pooling rejects bad input", "[pooling][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(MaxPool2d<float>(MaxPool2dOptions(3).padding(2), "maxpool"),
                    Contains("MaxPool2d 'maxpool'") && Contains("padding") && Contains("got 2"));
  CHECK_THROWS_AS(MaxPool2d<float>(MaxPool2dOptions(0)), ConfigError);
  CHECK_THROWS_AS(MaxPool2d<float>(MaxPool2dOptions(3).stride(0)), ConfigError);
  MaxPool2d<float> pool(MaxPool2dOptions(3).stride(2));
  Tensor4<float> small(1, 2, 2, 4);  // 3x3 window does not fit a 2x2 map without padding
  small.setZero();
  CHECK_THROWS_AS(pool.forward(small), ShapeError);
  Tensor4<float> empty(1, 4, 4, 0);
  CHECK_THROWS_AS(pool.forward(empty), ShapeError);
  Tensor4<float> empty_map(1, 0, 4, 3);
  CHECK_THROWS_AS(global_avg_pool(empty_map), ShapeError);
}
