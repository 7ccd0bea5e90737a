// MaxPool2d and global average pooling: PyTorch fixtures, naive reference, bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <sknet/kernels/max_pool.hpp>
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

// The stem's pool kernels (kernels/max_pool.hpp): every ISA this CPU runs, one output row at a time as
// the stem calls them, against naive::max_pool2d (exact: a max is one of its inputs), then NaN.
namespace {
std::vector<float> pool_rows_with(sknet::kernels::MaxPoolRowFn kernel, const std::vector<float>& x, std::int64_t h,
                                  std::int64_t w, std::int64_t c) {
  const std::int64_t ph = (h - 1) / 2 + 1, pw = (w - 1) / 2 + 1;
  std::vector<float> out(std::size_t(ph * pw * c), -1.0f), column_max(std::size_t(w * c), -1.0f);
  for (std::int64_t py = 0; py < ph; ++py) {
    const float* rows[3];
    int count = 0;
    for (std::int64_t y = std::max<std::int64_t>(0, 2 * py - 1); y <= std::min(h - 1, 2 * py + 1); ++y)
      rows[count++] = x.data() + y * w * c;
    kernel(rows, count, w, c, column_max.data(), out.data() + py * pw * c);
  }
  return out;
}
}  // namespace

TEST_CASE("the 3x3 stride-2 max pool row kernels match the naive reference, NaN included", "[pooling][kernels]") {
  using sknet::kernels::Isa;
  for (int i = 0; i <= int(sknet::kernels::cpu_isa()); ++i) {
    const Isa isa = Isa(i);
    const sknet::kernels::MaxPoolRowFn kernel = sknet::kernels::max_pool_row_kernel(isa);
    for (const std::int64_t h : {1, 2, 3, 4, 7})
      for (const std::int64_t w : {1, 2, 3, 5, 8, 17, 112})
        for (const std::int64_t c : {1, 3, 16, 17, 64, 70}) {
          CAPTURE(sknet::kernels::isa_name(isa), h, w, c);
          naive::Array x({1, c, h, w});
          naive::fill_uniform(x, std::uint64_t(h * 1000 + w * 10 + c), -3, -1);  // padding must never win
          std::vector<float> nhwc(std::size_t(h * w * c));
          for (std::int64_t y = 0; y < h; ++y)
            for (std::int64_t xx = 0; xx < w; ++xx)
              for (std::int64_t ch = 0; ch < c; ++ch) nhwc[std::size_t((y * w + xx) * c + ch)] = float(x.at(0, ch, y, xx));
          for (double& v : x.data) v = double(float(v));
          const naive::Array expected = naive::max_pool2d(x, 3, 2, 1);
          const std::int64_t ph = expected.dim(2), pw = expected.dim(3);
          std::vector<float> got = pool_rows_with(kernel, nhwc, h, w, c);
          REQUIRE(std::int64_t(got.size()) == ph * pw * c);
          bool equal = true;
          for (std::int64_t py = 0; py < ph; ++py)
            for (std::int64_t px = 0; px < pw; ++px)
              for (std::int64_t ch = 0; ch < c; ++ch)
                equal = equal && double(got[std::size_t((py * pw + px) * c + ch)]) == expected.at(0, ch, py, px);
          CHECK(equal);

          // One NaN input: exactly the outputs whose window holds it are NaN, the others unchanged.
          const std::int64_t ny = h / 2, nx = w - 1, nc = c / 2;
          nhwc[std::size_t((ny * w + nx) * c + nc)] = std::numeric_limits<float>::quiet_NaN();
          const std::vector<float> with_nan = pool_rows_with(kernel, nhwc, h, w, c);
          bool nan_right = true;
          for (std::int64_t py = 0; py < ph; ++py)
            for (std::int64_t px = 0; px < pw; ++px)
              for (std::int64_t ch = 0; ch < c; ++ch) {
                const float v = with_nan[std::size_t((py * pw + px) * c + ch)];
                const bool covers = ch == nc && std::abs(2 * py - ny) <= 1 && std::abs(2 * px - nx) <= 1;
                nan_right = nan_right && (covers ? std::isnan(v) : v == got[std::size_t((py * pw + px) * c + ch)]);
              }
          CHECK(nan_right);
        }
  }
}
