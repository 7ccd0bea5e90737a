// The int8 1x1 convolution kernels (kernels/pointwise_int8.hpp) against a double-precision reference
// over the integer codes: every int8 kernel of the kernel list that this CPU runs (the native vpdpbusd
// kernel, the AVX-512 widening kernel, the portable one; the others are reported as skipped), a shape
// sweep (partial quads, column tails, pixel tails), every epilogue, u8 and float outputs, strided rows
// and split ranges; the weight quantization, the zero-point compensation and the u8 rounding rules.
//
// Tolerance: the int32 sums are exact, so the only float errors are the epilogue's two fused
// multiply-adds (|err| <= 2 x 2^-24 S, S = |acc * scale| + |bias| + |residual term|, checked as 4x) and,
// for u8 outputs, one code where the value lies within that error of a rounding tie.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>

#include "support/random.hpp"
#include "support/runnable_kernels.hpp"

namespace {

using namespace sknet::kernels;

std::vector<u8_t> random_u8(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> dist(0, 255);
  std::vector<u8_t> v(n);
  for (auto& x : v) x = u8_t(dist(gen));
  return v;
}

/// n floats uniform in [-scale, scale).
std::vector<float> random_weights(std::size_t n, unsigned seed, float scale) {
  return sknet_test::uniform_floats(n, seed, -scale, scale);
}

std::vector<const PointwiseInt8KernelInfo*> runnable_kernels() {
  return sknet_test::runnable_kernels(kernel_list().pointwise_int8, kernel_list().pointwise_int8_count);
}

struct Case {
  dim_t pixels, cin, cout;
  bool strided, bias, residual, relu, sums, float_out;
  bool float_residual = false;
};

/// Runs kernel `k` on case `c` split into 2 x 2 ranges (one sums buffer per pixel range) and checks
/// every output against the double reference.
void check(const PointwiseInt8KernelInfo& k, const Case& c, unsigned seed) {
  const dim_t src_stride = c.strided ? c.cin + 5 : c.cin, dst_stride = c.strided ? c.cout + 3 : c.cout;
  const auto src = random_u8(std::size_t(c.pixels * src_stride), seed);
  const auto weight = random_weights(std::size_t(c.cout * c.cin), seed + 1, 1.0f / std::sqrt(float(c.cin)));
  const PackedPointwiseInt8Weights packed(weight.data(), c.cout, c.cin, k.isa);
  const float act_scale = 0.02f;
  std::vector<float> scale(std::size_t(c.cout)), bias(std::size_t(c.cout));
  for (dim_t co = 0; co < c.cout; ++co) {
    scale[std::size_t(co)] = act_scale * packed.weight_scales()[std::size_t(co)];
    bias[std::size_t(co)] = 0.05f * float(int(co % 37) - 18);
  }
  const auto residual = random_u8(std::size_t(c.pixels * dst_stride), seed + 2);
  const auto float_residual = random_weights(std::size_t(c.pixels * dst_stride), seed + 3, 0.4f);
  const float res_scale = 0.01f, out_scale = 0.03f;
  const int out_zp = c.relu ? 0 : 128;

  std::vector<u8_t> dst(std::size_t(c.pixels * dst_stride), u8_t(0xA5));  // sentinel
  std::vector<float> fdst(dst.size(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> sums(std::size_t(2 * c.cout), 0.0f);
  const PointwiseGeometry g{c.pixels, c.cin, c.cout, src_stride, dst_stride};
  const dim_t pcut = c.pixels / 2, ccut = c.cout > 16 ? 16 : c.cout;
  for (int half = 0; half < 2; ++half) {
    PointwiseInt8Epilogue ep;
    ep.scale = scale.data();
    ep.bias = c.bias ? bias.data() : nullptr;
    ep.residual = c.residual ? residual.data() : nullptr;
    ep.residual_stride = dst_stride;
    ep.residual_scale = res_scale;
    ep.float_residual = c.float_residual ? float_residual.data() : nullptr;
    ep.relu = c.relu;
    ep.channel_sums = c.sums ? sums.data() + half * c.cout : nullptr;
    ep.float_dst = c.float_out ? fdst.data() : nullptr;
    ep.out_inv_scale = 1.0f / out_scale;
    ep.out_zero_point = out_zp;
    const dim_t p0 = half ? pcut : 0, p1 = half ? c.pixels : pcut;
    k.fn(g, src.data(), packed.data(), ep, dst.data(), p0, p1, 0, ccut);
    k.fn(g, src.data(), packed.data(), ep, dst.data(), p0, p1, ccut, c.cout);
  }
  const std::string what = std::string(k.name) + " P=" + std::to_string(c.pixels) + " cin=" + std::to_string(c.cin) +
                           " cout=" + std::to_string(c.cout) + (c.strided ? " strided" : "") + (c.bias ? " bias" : "") +
                           (c.residual ? " residual" : "") + (c.float_residual ? " float-residual" : "") +
                           (c.relu ? " relu" : "") + (c.sums ? " sums" : "") +
                           (c.float_out ? " float-out" : " u8-out");
  std::vector<double> want_sums(std::size_t(c.cout), 0.0), sum_scale(std::size_t(c.cout), 0.0);
  int failures = 0;
  for (dim_t p = 0; p < c.pixels; ++p)
    for (dim_t co = 0; co < c.cout; ++co) {
      long long acc = 0;
      for (dim_t ci = 0; ci < c.cin; ++ci) acc += (long long)src[std::size_t(p * src_stride + ci)] * packed.code(co, ci);
      double v = double(acc) * scale[std::size_t(co)];
      double s = std::fabs(v);
      if (c.bias) v += bias[std::size_t(co)], s += std::fabs(bias[std::size_t(co)]);
      if (c.residual) {
        const double r = double(residual[std::size_t(p * dst_stride + co)]) * res_scale;
        v += r, s += std::fabs(r);
      }
      if (c.float_residual) {
        const double r = float_residual[std::size_t(p * dst_stride + co)];
        v += r, s += std::fabs(r);
      }
      if (c.relu) v = std::max(v, 0.0);
      want_sums[std::size_t(co)] += v, sum_scale[std::size_t(co)] += s;
      const double tol = 4.0 * std::ldexp(s, -24);
      const std::size_t at = std::size_t(p * dst_stride + co);
      bool ok;
      double got;
      if (c.float_out) {
        got = fdst[at];
        ok = std::fabs(got - v) <= tol;
      } else {
        got = dst[at];
        const double exact = std::min(255.0, std::max(0.0, v / out_scale + out_zp));
        ok = std::fabs(got - exact) <= 0.5 + tol / out_scale + 1e-6;
      }
      if (!ok && failures++ < 3)
        FAIL_CHECK(what << ": pixel " << p << " channel " << co << ": " << got << " vs " << v << " (tol " << tol << ")");
    }
  for (dim_t p = 0; p < c.pixels; ++p)  // padding columns of strided rows are never written
    for (dim_t co = c.cout; co < dst_stride; ++co) {
      const std::size_t at = std::size_t(p * dst_stride + co);
      if (c.float_out)
        REQUIRE(std::isnan(fdst[at]));
      else
        REQUIRE(dst[at] == u8_t(0xA5));
    }
  if (c.sums)
    for (dim_t co = 0; co < c.cout; ++co) {
      const double got = double(sums[std::size_t(co)]) + sums[std::size_t(c.cout + co)];
      const double tol = 4.0 * double(c.pixels + 2) * std::ldexp(sum_scale[std::size_t(co)], -24) + 1e-6;
      if (!(std::fabs(got - want_sums[std::size_t(co)]) <= tol) && failures++ < 3)
        FAIL_CHECK(what << ": channel sum " << co << ": " << got << " vs " << want_sums[std::size_t(co)]);
    }
  CHECK(failures == 0);
}

}  // namespace

TEST_CASE("u8 quantization rounds to nearest even, saturates and maps NaN to 0", "[kernels][int8]") {
  CHECK(quantize_u8(2.5f, 1.0f, 0) == 2);
  CHECK(quantize_u8(3.5f, 1.0f, 0) == 4);
  CHECK(quantize_u8(-0.5f, 1.0f, 128) == 128);
  CHECK(quantize_u8(-1.5f, 1.0f, 128) == 126);
  CHECK(quantize_u8(1000.0f, 1.0f, 0) == 255);
  CHECK(quantize_u8(-1000.0f, 1.0f, 200) == 0);
  CHECK(quantize_u8(std::numeric_limits<float>::infinity(), 1.0f, 0) == 255);
  CHECK(quantize_u8(-std::numeric_limits<float>::infinity(), 1.0f, 0) == 0);
  CHECK(quantize_u8(std::numeric_limits<float>::quiet_NaN(), 1.0f, 128) == 0);
  CHECK(quantize_round(126.5f, -127, 127) == 126);
  CHECK(quantize_round(-200.0f, -127, 127) == -127);
}

TEST_CASE("u8 quantizing kernels give quantize_u8's codes and flag non-finite rows", "[kernels][int8]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (const Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (!cpu_supports(isa)) continue;
    const U8QuantizeFn quantize = u8_quantize_kernel(isa);
    for (std::int64_t n : {0, 1, 15, 16, 17, 40, 64, 130, 147}) {  // 64-value steps, then 16-value tails
      std::vector<float> x = random_weights(std::size_t(n), unsigned(n) + 3, 6.0f);
      for (std::int64_t i = 0; i < n; i += 5) x[std::size_t(i)] = float(i % 7) - 2.5f;  // ties
      for (const int zp : {0, 128}) {
        INFO(isa_name(isa) << " n=" << n << " zero point " << zp);
        std::vector<u8_t> got(std::size_t(n) + 4, u8_t(0xA5));
        CHECK(quantize(x.data(), got.data(), n, 20.0f, zp));
        for (std::int64_t i = 0; i < n; ++i) CHECK(got[std::size_t(i)] == quantize_u8(x[std::size_t(i)], 20.0f, zp));
        for (std::size_t i = std::size_t(n); i < got.size(); ++i) CHECK(got[i] == u8_t(0xA5));  // nothing past n
        for (const float bad : {nan, inf, -inf})
          for (const std::int64_t at : {std::int64_t(0), n - 1})
            if (n > 0) {
              std::vector<float> y = x;
              y[std::size_t(at)] = bad;
              CHECK_FALSE(quantize(y.data(), got.data(), n, 20.0f, zp));
              CHECK(got[std::size_t(at)] == quantize_u8(bad, 20.0f, zp));
            }
      }
    }
  }
}

TEST_CASE("int8 weights are quantized per output channel, symmetric, with their code sums", "[kernels][int8]") {
  const dim_t cout = 19, cin = 37;
  auto weight = random_weights(std::size_t(cout * cin), 5, 0.7f);
  for (dim_t ci = 0; ci < cin; ++ci) weight[std::size_t(3 * cin + ci)] = 0.0f;  // an all-zero channel
  const PackedPointwiseInt8Weights packed(weight.data(), cout, cin, Isa::portable);
  for (dim_t co = 0; co < cout; ++co) {
    const float s = packed.weight_scales()[std::size_t(co)];
    int peak = 0;
    std::int32_t sum = 0;
    for (dim_t ci = 0; ci < cin; ++ci) {
      const int q = packed.code(co, ci);
      CHECK(std::fabs(double(weight[std::size_t(co * cin + ci)]) - double(s) * q) <= 0.5000001 * double(s));
      peak = std::max(peak, std::abs(q)), sum += q;
    }
    CHECK(sum == packed.weight_sums()[std::size_t(co)]);
    if (co == 3)
      CHECK((s == 1.0f && peak == 0));
    else
      CHECK(peak == 127);
  }
  weight[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(PackedPointwiseInt8Weights(weight.data(), cout, cin, Isa::portable), KernelError);
  CHECK_THROWS_AS(PackedPointwiseInt8Weights(weight.data(), 0, cin, Isa::portable), KernelError);
}

TEST_CASE("int8 pointwise kernels match the double reference over a shape sweep", "[kernels][int8]") {
  unsigned seed = 10;
  for (const auto* k : runnable_kernels())
    for (dim_t cin : {1, 3, 4, 5, 16, 63, 147})
      for (dim_t cout : {1, 16, 17, 48, 64, 65, 130})
        for (dim_t pixels : {1, 7, 13})
          check(*k, {pixels, cin, cout, (cin + cout) % 2 == 1, true, false, true, false, true}, seed++);
}

TEST_CASE("int8 pointwise kernels: every epilogue, strided rows, u8 and float outputs", "[kernels][int8]") {
  unsigned seed = 1000;
  for (const auto* k : runnable_kernels())
    for (int mask = 0; mask < 128; ++mask) {
      const Case c{37,          35,          80, (mask & 1) != 0, (mask & 2) != 0, (mask & 4) != 0, (mask & 8) != 0,
                   (mask & 16) != 0, (mask & 32) != 0, (mask & 64) != 0};
      check(*k, c, seed++);
    }
}

TEST_CASE("int8 pointwise kernels give the same bits as the portable kernel", "[kernels][int8]") {
  // Exact int32 sums, then the same two fused multiply-adds and the same rounding to codes.
  const dim_t pixels = 29, cin = 75, cout = 70;
  const auto src = random_u8(std::size_t(pixels * cin), 7);
  const auto weight = random_weights(std::size_t(cout * cin), 8, 0.3f);
  const auto residual = random_u8(std::size_t(pixels * cout), 9);
  const auto float_residual = random_weights(std::size_t(pixels * cout), 10, 0.5f);
  std::vector<float> scale(std::size_t(cout), 1.3e-4f), bias(std::size_t(cout), -0.25f);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto run = [&](const PointwiseInt8KernelInfo& k, bool float_out) {
    const PackedPointwiseInt8Weights packed(weight.data(), cout, cin, k.isa);
    std::vector<float> out(std::size_t(pixels * cout));
    std::vector<u8_t> codes(std::size_t(pixels * cout));
    PointwiseInt8Epilogue ep;
    ep.scale = scale.data();
    ep.bias = bias.data();
    ep.residual = residual.data();
    ep.residual_stride = cout;
    ep.residual_scale = 0.003f;
    ep.float_residual = float_residual.data();
    ep.float_dst = float_out ? out.data() : nullptr;
    ep.out_inv_scale = 40.0f;
    ep.out_zero_point = 100;
    k.fn(g, src.data(), packed.data(), ep, codes.data(), 0, pixels, 0, cout);
    std::vector<unsigned char> bytes(float_out ? sizeof(float) * out.size() : codes.size());
    std::memcpy(bytes.data(), float_out ? static_cast<const void*>(out.data()) : codes.data(), bytes.size());
    return bytes;
  };
  const KernelList& list = kernel_list();
  const auto& portable = list.pointwise_int8[list.pointwise_int8_count - 1];
  REQUIRE(portable.isa == Isa::portable);
  for (bool float_out : {true, false}) {
    const auto want = run(portable, float_out);
    for (const auto* k : runnable_kernels()) {
      if (k == &portable) continue;
      INFO(k->name << (float_out ? " float out" : " u8 out"));
      CHECK(run(*k, float_out) == want);
    }
  }
}

TEST_CASE("int8 pointwise: unsigned codes of a signed tensor, compensated in the bias", "[kernels][int8]") {
  // x in [-128, 127] stored as x + 128; bias' = bias - 128 * scale * sum(codes) gives sum x * q * scale + bias.
  const dim_t pixels = 11, cin = 43, cout = 33;
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> dist(-128, 127);
  std::vector<int> x(std::size_t(pixels * cin));
  std::vector<u8_t> codes(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = dist(gen), codes[i] = u8_t(x[i] + 128);
  const auto weight = random_weights(std::size_t(cout * cin), 4, 0.5f);
  for (const auto* k : runnable_kernels()) {
    const PackedPointwiseInt8Weights packed(weight.data(), cout, cin, k->isa);
    std::vector<float> scale(static_cast<std::size_t>(cout)), bias(static_cast<std::size_t>(cout));
    for (dim_t co = 0; co < cout; ++co) {
      scale[std::size_t(co)] = 0.01f * packed.weight_scales()[std::size_t(co)];
      bias[std::size_t(co)] = float(0.5 - 128.0 * double(scale[std::size_t(co)]) * packed.weight_sums()[std::size_t(co)]);
    }
    std::vector<float> out(std::size_t(pixels * cout));
    PointwiseInt8Epilogue ep;
    ep.scale = scale.data();
    ep.bias = bias.data();
    ep.float_dst = out.data();
    k->fn({pixels, cin, cout, cin, cout}, codes.data(), packed.data(), ep, nullptr, 0, pixels, 0, cout);
    INFO(k->name);
    for (dim_t p = 0; p < pixels; ++p)
      for (dim_t co = 0; co < cout; ++co) {
        long long acc = 0;
        for (dim_t ci = 0; ci < cin; ++ci) acc += (long long)x[std::size_t(p * cin + ci)] * packed.code(co, ci);
        const double want = double(acc) * scale[std::size_t(co)] + 0.5;
        // the compensation term is large (128 * sum |q| * scale): float error relative to it
        const double big = 128.0 * 127.0 * double(cin) * scale[std::size_t(co)];
        CHECK(std::fabs(out[std::size_t(p * cout + co)] - want) <= 4.0 * std::ldexp(big, -24));
      }
  }
}

TEST_CASE("int8 pointwise: u8 outputs saturate, NaN and infinity in the epilogue", "[kernels][int8]") {
  for (const auto* k : runnable_kernels()) {
    const dim_t pixels = 3, cin = 8, cout = 16;
    const std::vector<u8_t> src(std::size_t(pixels * cin), 200);
    const std::vector<float> weight(std::size_t(cout * cin), 1.0f);
    const PackedPointwiseInt8Weights packed(weight.data(), cout, cin, k->isa);
    std::vector<float> scale(std::size_t(cout), 1.0f), bias(std::size_t(cout), 0.0f);
    bias[0] = -1e9f, bias[1] = std::numeric_limits<float>::quiet_NaN(), bias[2] = std::numeric_limits<float>::infinity();
    bias[3] = -std::numeric_limits<float>::infinity();
    std::vector<u8_t> codes(std::size_t(pixels * cout));
    std::vector<float> out(codes.size());
    PointwiseInt8Epilogue ep;
    ep.scale = scale.data();
    ep.bias = bias.data();
    ep.out_inv_scale = 1.0f / 4096.0f;  // 200 * 127 * 8 = 203,200 -> 49.6 -> 50
    k->fn({pixels, cin, cout, cin, cout}, src.data(), packed.data(), ep, codes.data(), 0, pixels, 0, cout);
    ep.float_dst = out.data();
    ep.relu = true;
    k->fn({pixels, cin, cout, cin, cout}, src.data(), packed.data(), ep, nullptr, 0, pixels, 0, cout);
    INFO(k->name);
    for (dim_t p = 0; p < pixels; ++p) {
      CHECK(int(codes[std::size_t(p * cout + 0)]) == 0);
      CHECK(int(codes[std::size_t(p * cout + 1)]) == 0);  // NaN: no code holds it
      CHECK(int(codes[std::size_t(p * cout + 2)]) == 255);
      CHECK(int(codes[std::size_t(p * cout + 3)]) == 0);
      CHECK(int(codes[std::size_t(p * cout + 4)]) == 50);
      CHECK(std::isnan(out[std::size_t(p * cout + 1)]));  // the float path keeps NaN through ReLU
      CHECK(std::isinf(out[std::size_t(p * cout + 2)]));
      CHECK(out[std::size_t(p * cout + 3)] == 0.0f);
    }
  }
}

TEST_CASE("the int8 dispatcher runs vpdpbusd where the CPU has it, a widening kernel elsewhere", "[kernels][int8]") {
  const std::string avx512 = pointwise_int8_kernel_name(Isa::avx512);
  if (!cpu_supports(Isa::avx512))
    CHECK(avx512 == "pointwise_int8__portable");
  else if (cpu_has_avx512_vnni())
    CHECK(avx512 == "pointwise_int8__avx512_vnni");
  else
    CHECK(avx512 == "pointwise_int8__avx512_widening");
  CHECK(std::string(pointwise_int8_kernel_name(Isa::portable)) == "pointwise_int8__portable");
  CHECK(std::string(pointwise_int8_kernel_name(Isa::avx2)) == "pointwise_int8__portable");
}
