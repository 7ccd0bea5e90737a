// Layout helpers: output extents and the NCHW <-> NHWC boundary conversion.
#include <catch2/catch.hpp>

#include <sknet/tensor.hpp>

using namespace sknet;

TEST_CASE("out_extent follows PyTorch's floor formula and reports empty outputs as 0", "[tensor]") {
  CHECK(out_extent(224, 7, 2, 3, 1) == 112);
  CHECK(out_extent(112, 3, 2, 1, 1) == 56);
  CHECK(out_extent(7, 3, 1, 2, 2) == 7);
  CHECK(out_extent(1, 3, 2, 1, 1) == 1);
  CHECK(out_extent(2, 3, 1, 0, 1) == 0);
  CHECK(out_extent(1, 5, 1, 1, 1) == 0);
}

TEST_CASE("to_nhwc and to_nchw are inverse permutations", "[tensor]") {
  Tensor4<float> nchw(2, 3, 4, 5);
  for (int i = 0; i < nchw.size(); ++i) nchw.data()[i] = float(i);
  const Tensor4<float> nhwc = to_nhwc(nchw);
  REQUIRE(nhwc.dimension(0) == 2);
  REQUIRE(nhwc.dimension(1) == 4);
  REQUIRE(nhwc.dimension(2) == 5);
  REQUIRE(nhwc.dimension(3) == 3);
  CHECK(nhwc(1, 2, 3, 1) == nchw(1, 1, 2, 3));
  const Tensor4<float> back = to_nchw(nhwc);
  for (int i = 0; i < nchw.size(); ++i) CHECK(back.data()[i] == nchw.data()[i]);
}
