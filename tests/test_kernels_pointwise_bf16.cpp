// The bf16 1x1 convolution kernels (kernels/pointwise_bf16.hpp) against a double-precision reference
// over the bf16 values: every bf16 kernel of the kernel list that this CPU runs (the native vdpbf16ps
// kernel, the AVX-512 widening kernel, the portable one; the others are reported as skipped), a shape
// sweep (odd channel counts, column tails, pixel tails), every epilogue, bf16 and float outputs, strided
// rows and split ranges; plus the float <-> bf16 conversions.
//
// Tolerance: the inputs are exactly the bf16 values, so the only float errors are the float32
// accumulation (|err| <= 4 (cin + 2) 2^-24 S with S = sum of |terms|) and, for bf16 outputs, the final
// rounding (half a bf16 ulp, 2^-9 |value|, checked as 2^-8 |value|).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>

#include "support/random.hpp"
#include "support/runnable_kernels.hpp"

namespace {

using namespace sknet::kernels;

std::vector<bf16_t> random_bf16(std::size_t n, unsigned seed, float scale) {
  const std::vector<float> f = sknet_test::uniform_floats(n, seed, -scale, scale);
  std::vector<bf16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = to_bf16(f[i]);
  return v;
}

std::vector<const PointwiseBf16KernelInfo*> runnable_kernels() {
  return sknet_test::runnable_kernels(kernel_list().pointwise_bf16, kernel_list().pointwise_bf16_count);
}

struct Case {
  dim_t pixels, cin, cout;
  bool strided, bias, residual, relu, sums, float_out;
};

/// Runs kernel `k` on case `c` split into 2 x 2 ranges (as two threads would, one sums buffer per pixel
/// range) and checks every output against the double reference.
void check(const PointwiseBf16KernelInfo& k, const Case& c, unsigned seed) {
  const dim_t src_stride = c.strided ? c.cin + 5 : c.cin, dst_stride = c.strided ? c.cout + 3 : c.cout;
  const auto src = random_bf16(std::size_t(c.pixels * src_stride), seed, 1.0f);
  std::vector<float> weight(std::size_t(c.cout * c.cin));
  {
    const auto w = random_bf16(weight.size(), seed + 1, 1.0f / std::sqrt(float(c.cin)));
    for (std::size_t i = 0; i < w.size(); ++i) weight[i] = from_bf16(w[i]);
  }
  std::vector<float> bias(std::size_t(c.cout));
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * float(int(i % 37) - 18);
  const auto residual = random_bf16(std::size_t(c.pixels * dst_stride), seed + 2, 1.0f);

  const PackedPointwiseBf16Weights packed(weight.data(), c.cout, c.cin, k.isa);
  std::vector<bf16_t> dst(std::size_t(c.pixels * dst_stride), bf16_t(0x7FC1));  // NaN sentinel
  std::vector<float> fdst(dst.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> sums(std::size_t(2 * c.cout), 0.0f);
  const PointwiseGeometry g{c.pixels, c.cin, c.cout, src_stride, dst_stride};
  const dim_t pcut = c.pixels / 2, ccut = c.cout > 16 ? 16 : c.cout;
  for (int half = 0; half < 2; ++half) {
    PointwiseBf16Epilogue ep;
    ep.bias = c.bias ? bias.data() : nullptr;
    ep.residual = c.residual ? residual.data() : nullptr;
    ep.residual_stride = dst_stride;
    ep.relu = c.relu;
    ep.channel_sums = c.sums ? sums.data() + half * c.cout : nullptr;
    ep.float_dst = c.float_out ? fdst.data() : nullptr;
    const dim_t p0 = half ? pcut : 0, p1 = half ? c.pixels : pcut;
    k.fn(g, src.data(), packed.data(), ep, dst.data(), p0, p1, 0, ccut);
    k.fn(g, src.data(), packed.data(), ep, dst.data(), p0, p1, ccut, c.cout);
  }
  const std::string what = std::string(k.name) + " P=" + std::to_string(c.pixels) + " cin=" + std::to_string(c.cin) +
                           " cout=" + std::to_string(c.cout) + (c.strided ? " strided" : "") + (c.bias ? " bias" : "") +
                           (c.residual ? " residual" : "") + (c.relu ? " relu" : "") + (c.sums ? " sums" : "") +
                           (c.float_out ? " float-out" : " bf16-out");
  std::vector<double> want_sums(std::size_t(c.cout), 0.0), sum_scale(std::size_t(c.cout), 0.0);
  int failures = 0;
  for (dim_t p = 0; p < c.pixels; ++p)
    for (dim_t co = 0; co < c.cout; ++co) {
      double v = 0, s = 0;
      for (dim_t ci = 0; ci < c.cin; ++ci) {
        const double t = double(from_bf16(src[std::size_t(p * src_stride + ci)])) * weight[std::size_t(co * c.cin + ci)];
        v += t, s += std::fabs(t);
      }
      if (c.bias) v += bias[std::size_t(co)], s += std::fabs(bias[std::size_t(co)]);
      if (c.residual) {
        const double r = from_bf16(residual[std::size_t(p * dst_stride + co)]);
        v += r, s += std::fabs(r);
      }
      if (c.relu) v = std::max(v, 0.0);
      want_sums[std::size_t(co)] += v, sum_scale[std::size_t(co)] += s;
      const double tol = 4.0 * double(c.cin + 2) * std::ldexp(s, -24) + (c.float_out ? 0.0 : std::ldexp(std::fabs(v), -8));
      const std::size_t at = std::size_t(p * dst_stride + co);
      const double got = c.float_out ? double(fdst[at]) : double(from_bf16(dst[at]));
      if (!(std::fabs(got - v) <= tol) && failures++ < 3)
        FAIL_CHECK(what << ": pixel " << p << " channel " << co << ": " << got << " vs " << v << " (tol " << tol << ")");
    }
  // Padding columns of strided rows are never written.
  for (dim_t p = 0; p < c.pixels; ++p)
    for (dim_t co = c.cout; co < dst_stride; ++co) {
      const std::size_t at = std::size_t(p * dst_stride + co);
      if (c.float_out)
        REQUIRE(std::isnan(fdst[at]));
      else
        REQUIRE(dst[at] == bf16_t(0x7FC1));
    }
  if (c.sums)
    for (dim_t co = 0; co < c.cout; ++co) {
      const double got = double(sums[std::size_t(co)]) + sums[std::size_t(c.cout + co)];
      const double tol = 4.0 * double(c.cin + c.pixels + 2) * std::ldexp(sum_scale[std::size_t(co)], -24) + 1e-6;
      if (!(std::fabs(got - want_sums[std::size_t(co)]) <= tol) && failures++ < 3)
        FAIL_CHECK(what << ": channel sum " << co << ": " << got << " vs " << want_sums[std::size_t(co)]);
    }
  CHECK(failures == 0);
}

}  // namespace

TEST_CASE("bf16 conversion rounds to nearest even and keeps NaN and infinity", "[kernels][bf16]") {
  CHECK(to_bf16(1.0f) == 0x3F80);
  CHECK(from_bf16(0x3F80) == 1.0f);
  CHECK(to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3F80);                                    // tie -> even (down)
  CHECK(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3F82);                                // tie -> even (up)
  CHECK(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3F81);            // above the tie
  CHECK(to_bf16(-2.5f) == 0xC020);
  CHECK(to_bf16(std::numeric_limits<float>::infinity()) == 0x7F80);
  CHECK(to_bf16(-std::numeric_limits<float>::infinity()) == 0xFF80);
  CHECK(to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds up to infinity, as it should
  const float nan_low = [] {  // a NaN whose payload lives only in the low 16 bits
    const std::uint32_t u = 0x7F800001u;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }();
  CHECK(std::isnan(from_bf16(to_bf16(nan_low))));
  CHECK(std::isnan(from_bf16(to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::signbit(from_bf16(to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
  for (float x : {0.1f, -3.7e-5f, 65504.0f, 1e30f})
    CHECK(std::fabs(round_to_bf16(x) - x) <= std::ldexp(std::fabs(x), -9));
}

TEST_CASE("bf16 pointwise kernels match the double reference over a shape sweep", "[kernels][bf16]") {
  unsigned seed = 10;
  for (const auto* k : runnable_kernels())
    for (dim_t cin : {1, 2, 3, 16, 17, 64, 147})
      for (dim_t cout : {1, 16, 17, 48, 64, 65, 130})
        for (dim_t pixels : {1, 7, 13})
          check(*k, {pixels, cin, cout, (cin + cout) % 2 == 1, true, false, true, false, false}, seed++);
}

TEST_CASE("bf16 pointwise kernels: every epilogue, strided rows, bf16 and float outputs", "[kernels][bf16]") {
  unsigned seed = 1000;
  for (const auto* k : runnable_kernels())
    for (int mask = 0; mask < 64; ++mask) {
      const Case c{37, 35, 80, (mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0,
                   (mask & 8) != 0, (mask & 16) != 0, (mask & 32) != 0};
      check(*k, c, seed++);
    }
}

TEST_CASE("bf16 pointwise kernels give the same bits as the portable kernel", "[kernels][bf16]") {
  // Each kernel adds a pair as vdpbf16ps defines it (odd product, then even, each exact in float), from
  // bias + residual, in channel order: the outputs agree bit for bit on values without denormals.
  const dim_t pixels = 29, cin = 75, cout = 70;
  const auto src = random_bf16(std::size_t(pixels * cin), 7, 2.0f);
  const auto w16 = random_bf16(std::size_t(cout * cin), 8, 0.3f);
  std::vector<float> weight(w16.size());
  for (std::size_t i = 0; i < w16.size(); ++i) weight[i] = from_bf16(w16[i]);
  std::vector<float> bias(std::size_t(cout), 0.25f);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto run = [&](const PointwiseBf16KernelInfo& k) {
    const PackedPointwiseBf16Weights packed(weight.data(), cout, cin, k.isa);
    std::vector<float> out(std::size_t(pixels * cout));
    PointwiseBf16Epilogue ep;
    ep.bias = bias.data();
    ep.float_dst = out.data();
    k.fn(g, src.data(), packed.data(), ep, nullptr, 0, pixels, 0, cout);
    return out;
  };
  const KernelList& list = kernel_list();
  const auto& portable = list.pointwise_bf16[list.pointwise_bf16_count - 1];
  REQUIRE(portable.isa == Isa::portable);
  const std::vector<float> want = run(portable);
  for (const auto* k : runnable_kernels()) {
    if (k == &portable) continue;
    const std::vector<float> out = run(*k);
    INFO(k->name);
    CHECK(std::memcmp(out.data(), want.data(), sizeof(float) * out.size()) == 0);
  }
}

TEST_CASE("bf16 pointwise kernels propagate NaN and infinity", "[kernels][bf16]") {
  for (const auto* k : runnable_kernels()) {
    const dim_t pixels = 8, cin = 33, cout = 32;
    auto src = random_bf16(std::size_t(pixels * cin), 3, 1.0f);
    src[std::size_t(2 * cin + 5)] = to_bf16(std::numeric_limits<float>::quiet_NaN());
    src[std::size_t(5 * cin + 32)] = to_bf16(std::numeric_limits<float>::infinity());  // the odd last channel
    std::vector<float> weight(std::size_t(cout * cin), 0.5f);
    const PackedPointwiseBf16Weights packed(weight.data(), cout, cin, k->isa);
    std::vector<bf16_t> dst(std::size_t(pixels * cout));
    PointwiseBf16Epilogue ep;
    ep.relu = true;
    k->fn({pixels, cin, cout, cin, cout}, src.data(), packed.data(), ep, dst.data(), 0, pixels, 0, cout);
    INFO(k->name);
    for (dim_t co = 0; co < cout; ++co) {
      CHECK(std::isnan(from_bf16(dst[std::size_t(2 * cout + co)])));
      CHECK(std::isinf(from_bf16(dst[std::size_t(5 * cout + co)])));
      CHECK(std::isfinite(from_bf16(dst[std::size_t(4 * cout + co)])));
    }
  }
}

TEST_CASE("the bf16 dispatcher runs vdpbf16ps where the CPU has it, a widening kernel elsewhere", "[kernels][bf16]") {
  const std::string avx512 = pointwise_bf16_kernel_name(Isa::avx512);
  if (!cpu_supports(Isa::avx512))
    CHECK(avx512 == "pointwise_bf16__portable");
  else if (cpu_has_avx512_bf16())
    CHECK(avx512 == "pointwise_bf16__avx512_bf16");
  else
    CHECK(avx512 == "pointwise_bf16__avx512_widening");
  CHECK(std::string(pointwise_bf16_kernel_name(Isa::portable)) == "pointwise_bf16__portable");
  CHECK(std::string(pointwise_bf16_kernel_name(Isa::avx2)) == "pointwise_bf16__portable");
  const std::vector<float> w(4, 1.0f);
  CHECK_THROWS_AS(PackedPointwiseBf16Weights(w.data(), 0, 4, Isa::portable), KernelError);
}
