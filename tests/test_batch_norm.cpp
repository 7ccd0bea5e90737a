// BatchNorm2d (inference): naive reference and bad input.
#include <catch2/catch.hpp>

#include <sknet/ops/batch_norm.hpp>

#include <limits>

#include "support/compare.hpp"
#include "support/convert.hpp"

using namespace sknet;
using namespace sknet_test;

TEMPLATE_TEST_CASE("BatchNorm2d matches the naive reference", "[batch_norm][reference]", float, double) {
  const int channels = GENERATE(1, 15, 16, 17, 64);
  const double eps = GENERATE(1e-5, 1e-3);
  naive::Array x({2, channels, 5, 3}), gamma({channels}), beta({channels}), mean({channels}), var({channels});
  naive::fill_uniform(x, 11, -2, 2);
  naive::fill_uniform(gamma, 12, 0.5, 1.5);
  naive::fill_uniform(beta, 13, -0.3, 0.3);
  naive::fill_uniform(mean, 14, -0.5, 0.5);
  naive::fill_uniform(var, 15, 0.2, 2.0);
  for (auto* a : {&x, &gamma, &beta, &mean, &var})
    for (double& v : a->data) v = static_cast<double>(static_cast<TestType>(v));
  const naive::Array expected = naive::batch_norm(x, gamma, beta, mean, var, eps);

  BatchNorm2d<TestType> bn(BatchNorm2dOptions(channels).eps(eps));
  assign(bn.weight(), gamma);
  assign(bn.bias(), beta);
  assign(bn.running_mean(), mean);
  assign(bn.running_var(), var);
  const auto y = to_array_nchw(bn.forward(to_tensor_nhwc<TestType>(x)));
  SKNET_CHECK_CLOSE(y.data, expected.data, tolerance_for<TestType>(), "batch_norm");

  // In place gives the same answer.
  auto inplace = to_tensor_nhwc<TestType>(x);
  bn.template forward<4>(view(inplace), TensorMap4<TestType>(inplace.data(), inplace.dimensions()));
  SKNET_CHECK_CLOSE(to_array_nchw(inplace).data, expected.data, tolerance_for<TestType>(), "batch_norm in place");
}

TEST_CASE("BatchNorm2d rejects bad input", "[batch_norm][errors]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(BatchNorm2d<float>(BatchNorm2dOptions(0)), ConfigError);
  CHECK_THROWS_AS(BatchNorm2d<float>(BatchNorm2dOptions(4).eps(-1)), ConfigError);
  BatchNorm2d<float> bn(BatchNorm2dOptions(4), "bn1");
  Tensor4<float> x(1, 2, 2, 5);
  x.setZero();
  CHECK_THROWS_WITH(bn.forward(x), Contains("BatchNorm2d 'bn1'") && Contains("expected 4, got 5"));
  Tensor4<float> ok(1, 2, 2, 4);
  ok.setZero();
  bn.running_var()(2) = -1.0f;
  CHECK_THROWS_WITH(bn.forward(ok), Contains("running_var[2]"));
  CHECK_THROWS_AS(bn.forward(ok), ValueError);
  bn.running_var()(2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(bn.forward(ok), ValueError);
}
