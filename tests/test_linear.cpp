// Linear and ReLU: naive reference and bad input.
#include <catch2/catch.hpp>

#include <sknet/ops/activation.hpp>
#include <sknet/ops/linear.hpp>

#include <cmath>
#include <limits>

#include "support/compare.hpp"
#include "support/convert.hpp"

using namespace sknet;
using namespace sknet_test;

TEMPLATE_TEST_CASE("Linear matches the naive reference", "[linear][reference]", float, double) {
  const int in = GENERATE(1, 15, 16, 17, 300);
  const int out = GENERATE(1, 10, 33);
  const bool bias = GENERATE(true, false);
  naive::Array x({3, in}), w({out, in}), b({out});
  naive::fill_uniform(x, 31, -1, 1);
  naive::fill_uniform(w, 32, -1, 1);
  naive::fill_uniform(b, 33, -1, 1);
  for (auto* a : {&x, &w, &b})
    for (double& v : a->data) v = static_cast<double>(static_cast<TestType>(v));
  const auto expected = naive::linear(x, w, bias ? &b : nullptr);
  Linear<TestType> fc(LinearOptions(in, out).bias(bias));
  assign(fc.weight(), w);
  if (bias) assign(fc.bias(), b);
  const auto y = fc.forward(to_tensor_same_order<TestType, 2>(x));
  SKNET_CHECK_CLOSE(y, expected.data, tolerance_for<TestType>(), "linear");
}

TEST_CASE("Linear rejects bad input", "[linear][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(Linear<float>(LinearOptions(0, 3)), ConfigError);
  CHECK_THROWS_AS(Linear<float>(LinearOptions(3, 0)), ConfigError);
  Linear<float> fc(LinearOptions(8, 3), "fc");
  Tensor2<float> x(2, 9);
  x.setZero();
  CHECK_THROWS_WITH(fc.forward(x), Contains("Linear 'fc'") && Contains("expected 8, got 9"));
  Tensor2<float> none(0, 8);
  CHECK_THROWS_AS(fc.forward(none), ShapeError);
}

TEST_CASE("relu clamps negatives, keeps NaN, works in place", "[activation]") {
  Tensor2<float> x(1, 4);
  x.setValues({{-1.0f, 0.0f, 2.5f, std::numeric_limits<float>::quiet_NaN()}});
  const auto y = relu(x);
  CHECK(y(0, 0) == 0.0f);
  CHECK(y(0, 1) == 0.0f);
  CHECK(y(0, 2) == 2.5f);
  CHECK(std::isnan(y(0, 3)));
  relu_(x);
  CHECK(x(0, 0) == 0.0f);
}
