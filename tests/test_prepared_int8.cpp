// The int8 1x1 convolution of the prepared engine (PreparedPointwiseInt8) on float activations, for
// every ISA this CPU runs (int8 kernels: vpdpbusd, the widening AVX-512 kernel, the portable one), 1
// and 2 threads (split by rows or by output channels):
//  - against its definition computed in double from the same codes: the input codes of quantize_u8 at
//    the range's scale and zero point, the weight codes and scales of the packed weights; only the
//    float epilogue's rounding differs (checked at 4 x 2^-24 of the terms' magnitudes);
//  - against the float convolution within the quantization error it must stay inside: half a step of
//    the input (scale / 2 x sum |w|) plus half a step of each weight (s_w / 2 x sum |x|);
//  - NaN and infinity in an input row give that row NaN outputs and NaN channel sums; nothing else moves.
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace sknet;
using kernels::dim_t;

namespace {

std::vector<float> uniform(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

struct Problem {
  dim_t pixels, cin, cout;
  float lo, hi;  // the input's range (also the calibrated one)
  bool relu, residual, sums;
};

void check(const Problem& pr, kernels::Isa isa, int threads, unsigned seed) {
  const std::string what = std::string(kernels::isa_name(isa)) + " threads " + std::to_string(threads) + " P=" +
                           std::to_string(pr.pixels) + " cin=" + std::to_string(pr.cin) + " cout=" +
                           std::to_string(pr.cout) + " range [" + std::to_string(pr.lo) + ", " +
                           std::to_string(pr.hi) + "]" + (pr.relu ? " relu" : "") + (pr.residual ? " residual" : "") +
                           (pr.sums ? " sums" : "");
  INFO(what);
  const dim_t stride = pr.cin + 3;  // rows of a wider buffer
  const auto x = uniform(std::size_t(pr.pixels * stride), seed, pr.lo, pr.hi);
  const auto w = uniform(std::size_t(pr.cout * pr.cin), seed + 1, -1.0f / std::sqrt(float(pr.cin)),
                         1.0f / std::sqrt(float(pr.cin)));
  const auto b = uniform(std::size_t(pr.cout), seed + 2, -0.5f, 0.5f);
  const auto res = uniform(std::size_t(pr.pixels * pr.cout), seed + 3, -1.0f, 1.0f);
  const PreparedPointwiseInt8 conv(w.data(), b.data(), pr.cout, pr.cin, isa, pr.lo, pr.hi);
  ThreadPool pool(threads);
  std::vector<kernels::u8_t> scratch(conv.scratch_bytes(pr.pixels));
  std::vector<float> y(std::size_t(pr.pixels * pr.cout), -99.0f), sums(std::size_t(threads * pr.cout), -99.0f);
  PreparedPointwiseInt8::Epilogue ep;
  ep.relu = pr.relu;
  ep.residual = pr.residual ? res.data() : nullptr;
  ep.residual_stride = pr.cout;
  ep.channel_sums = pr.sums;
  conv.run(pool, pr.pixels, x.data(), ep, y.data(), scratch.data(), sums.data(), stride);

  const kernels::U8Quantization q = conv.input_quantization();
  const auto& pw = conv.weights();
  int failures = 0;
  std::vector<double> want_sums(std::size_t(pr.cout), 0.0);
  for (dim_t p = 0; p < pr.pixels; ++p)
    for (dim_t co = 0; co < pr.cout; ++co) {
      double exact = 0.0, quantized = 0.0, terms = 0.0, bound = 0.0;
      const double s_w = pw.weight_scales()[std::size_t(co)];
      for (dim_t ci = 0; ci < pr.cin; ++ci) {
        const double xv = x[std::size_t(p * stride + ci)], wv = w[std::size_t(co * pr.cin + ci)];
        const int code = kernels::quantize_u8(float(xv), 1.0f / q.scale, q.zero_point);
        const double xq = double(q.scale) * (code - q.zero_point), wq = s_w * pw.code(co, ci);
        exact += xv * wv, quantized += xq * wq, terms += std::fabs(xq * wq);
        bound += 0.5 * q.scale * std::fabs(wv) + 0.5 * s_w * std::fabs(xv) + 0.25 * q.scale * s_w;
      }
      const double bias = b[std::size_t(co)], r = pr.residual ? res[std::size_t(p * pr.cout + co)] : 0.0;
      quantized += bias + r, exact += bias + r;
      if (pr.relu) quantized = std::max(quantized, 0.0), exact = std::max(exact, 0.0);
      want_sums[std::size_t(co)] += quantized;
      const double got = y[std::size_t(p * pr.cout + co)];
      const double tol = 4.0 * std::ldexp(terms + std::fabs(bias) + std::fabs(r) + double(q.zero_point) * q.scale * s_w * pr.cin, -24);
      if (!(std::fabs(got - quantized) <= tol) && failures++ < 3)
        FAIL_CHECK("pixel " << p << " channel " << co << ": " << got << " vs the quantized definition " << quantized);
      if (!(std::fabs(got - exact) <= bound + tol) && failures++ < 3)
        FAIL_CHECK("pixel " << p << " channel " << co << ": " << got << " vs float " << exact << " (bound " << bound << ")");
    }
  if (pr.sums)
    for (dim_t co = 0; co < pr.cout; ++co) {
      double got = 0.0;
      for (int t = 0; t < threads; ++t) got += sums[std::size_t(t * pr.cout + co)];
      const double want = want_sums[std::size_t(co)];
      if (!(std::fabs(got - want) <= 1e-4 * (1.0 + std::fabs(want))) && failures++ < 3)
        FAIL_CHECK("channel sum " << co << ": " << got << " vs " << want);
    }
  CHECK(failures == 0);
}

std::vector<kernels::Isa> isas() {
  std::vector<kernels::Isa> v;
  for (int i = 0; i <= int(kernels::cpu_isa()); ++i) v.push_back(kernels::Isa(i));
  return v;
}

}  // namespace

TEST_CASE("PreparedPointwiseInt8 equals its quantized definition and stays within the quantization error",
          "[prepared][int8]") {
  unsigned seed = 1;
  for (const kernels::Isa isa : isas())
    for (int threads : {1, 2}) {
      check({7, 5, 3, 0.0f, 2.0f, true, false, true}, isa, threads, seed++);           // one partial block
      check({200, 64, 48, 0.0f, 6.0f, true, true, true}, isa, threads, seed++);        // split by rows
      check({9, 147, 130, -1.5f, 2.5f, false, true, true}, isa, threads, seed++);     // by channels, zero point
      check({33, 40, 17, -3.0f, -0.5f, false, false, false}, isa, threads, seed++);   // all negative: zp 255
    }
}

TEST_CASE("PreparedPointwiseInt8: a non-finite input row gives NaN outputs and sums, no other row moves",
          "[prepared][int8]") {
  const dim_t pixels = 12, cin = 20, cout = 33;
  const auto w = uniform(std::size_t(cout * cin), 5, -0.3f, 0.3f);
  const auto b = uniform(std::size_t(cout), 6, -0.5f, 0.5f);
  auto x = uniform(std::size_t(pixels * cin), 7, 0.0f, 1.0f);
  for (const kernels::Isa isa : isas())
    for (int threads : {1, 2}) {
      INFO(kernels::isa_name(isa) << " threads " << threads);
      const PreparedPointwiseInt8 conv(w.data(), b.data(), cout, cin, isa, 0.0f, 1.0f);
      ThreadPool pool(threads);
      std::vector<kernels::u8_t> scratch(conv.scratch_bytes(pixels));
      PreparedPointwiseInt8::Epilogue ep;
      ep.relu = true;
      ep.channel_sums = true;
      std::vector<float> clean(std::size_t(pixels * cout)), sums(std::size_t(threads * cout));
      conv.run(pool, pixels, x.data(), ep, clean.data(), scratch.data(), sums.data());
      for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()}) {
        auto xb = x;
        xb[std::size_t(4 * cin + 11)] = bad;  // row 4
        std::vector<float> y(clean.size());
        conv.run(pool, pixels, xb.data(), ep, y.data(), scratch.data(), sums.data());
        for (dim_t p = 0; p < pixels; ++p)
          for (dim_t co = 0; co < cout; ++co) {
            const float v = y[std::size_t(p * cout + co)];
            if (p == 4)
              CHECK(std::isnan(v));
            else
              CHECK(v == clean[std::size_t(p * cout + co)]);
          }
        for (dim_t co = 0; co < cout; ++co) {
          float s = 0.0f;
          for (int t = 0; t < threads; ++t) s += sums[std::size_t(t * cout + co)];
          CHECK(std::isnan(s));
        }
      }
    }
}
