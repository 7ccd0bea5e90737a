// The int8 1x1 convolution of the prepared engine (PreparedPointwiseInt8) on float activations, for
// every ISA this CPU runs (int8 kernels: vpdpbusd, the widening AVX-512 kernel, the portable one), 1
// and 2 threads (split by rows or by output channels):
//  - against its definition computed in double from the same codes: the input codes of quantize_u8 at
//    the range's scale and zero point, the weight codes and scales of the packed weights; only the
//    float epilogue's rounding differs (checked at 4 x 2^-24 of the terms' magnitudes);
//  - against the float convolution within the quantization error it must stay inside: half a step of
//    the input (scale / 2 x sum |w|) plus half a step of each weight (s_w / 2 x sum |x|);
//  - NaN and infinity in an input row give that row NaN outputs and NaN channel sums; nothing else moves.
// Then whole int8 networks (prepare with Precision::int8 and calibrated ActivationRanges) against their
// float network: SK, ResNeXt and SE-ResNeXt bottlenecks (their 3x3 middles in int8 where the input
// channels per group are a multiple of 4: stages 2-4 of the reduced networks; stage 1's gw 2 middles in
// float), batch 1 and 3, 1 and 2 threads, every ISA; the calibration's ranges and their JSON form; what
// int8 refuses; NaN propagation (through the int8 middles' marking of NaN images too).
//
// Tolerance of the networks: every 1x1 input is rounded to one of 256 levels of its calibrated range
// (relative step 1/255 of the range, i.e. up to 2e-3 of it per value) and every weight to one of 255
// levels of its channel's largest (up to 4e-3 of it); the errors of the 3 x blocks + shortcuts
// quantizations add up like a random walk over the reduced test networks' 4-8 blocks. Checked: 4e-2 of
// max |logit| (measured 0.9e-2 to 1.7e-2 on the bottleneck networks, 3.5e-2 on the reduced SK-ResNet-18,
// whose basic blocks quantize narrow paths twice per block) and 1e-2 absolute on the attention (measured
// at most 5.6e-3);
// a wrong scale or compensation gives errors of the order of the logits themselves.
#include <catch2/catch.hpp>

#include <sknet/fast.hpp>

#include <filesystem>
#include <fstream>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support/precision_check.hpp"
#include "support/random.hpp"
#include "support/tiny_sknet.hpp"

using namespace sknet;
using kernels::dim_t;

namespace {


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
  const auto x = sknet_test::uniform_floats(std::size_t(pr.pixels * stride), seed, pr.lo, pr.hi);
  const auto w = sknet_test::uniform_floats(std::size_t(pr.cout * pr.cin), seed + 1, -1.0f / std::sqrt(float(pr.cin)),
                         1.0f / std::sqrt(float(pr.cin)));
  const auto b = sknet_test::uniform_floats(std::size_t(pr.cout), seed + 2, -0.5f, 0.5f);
  const auto res = sknet_test::uniform_floats(std::size_t(pr.pixels * pr.cout), seed + 3, -1.0f, 1.0f);
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
  const auto w = sknet_test::uniform_floats(std::size_t(cout * cin), 5, -0.3f, 0.3f);
  const auto b = sknet_test::uniform_floats(std::size_t(cout), 6, -0.5f, 0.5f);
  auto x = sknet_test::uniform_floats(std::size_t(pixels * cin), 7, 0.0f, 1.0f);
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

namespace {

Tensor4<float> random_input(Index n, Index h, Index w, Index c, unsigned seed) {
  Tensor4<float> x(n, h, w, c);
  const std::vector<float> v = sknet_test::uniform_floats(std::size_t(x.size()), seed, -1.0f, 1.0f);
  std::copy(v.begin(), v.end(), x.data());
  return x;
}

/// int8 forwards of `plan` (random weights, seed 41; calibrated on 4 other random images) against its
/// float network; returns the calibrated ranges.
ActivationRanges check_int8(const NetworkPlan& plan, Index batch, Index height, Index width, const std::string& what) {
  ActivationRanges out;
  with_paths(plan.paths > 0 ? plan.paths : 1, [&](auto m) {
    Network<float, decltype(m)::value> net(plan);
    randomize<float>(net, 41);
    const Index c = plan.config.in_channels;
    const Tensor4<float> x = random_input(batch, height, width, c, 7);
    AttentionMaps<float> want_attention;
    const Tensor2<float> want = net.forward(view(x), &want_attention);
    const PreparedNetwork f32 = prepare(net);
    const auto ranges = std::make_shared<const ActivationRanges>(
        calibrate(f32, {random_input(3, height, width, c, 100), random_input(1, height + 2, width - 2, c, 101)}));
    CHECK(ranges->images == 4);
    out = *ranges;
    sknet_test::check_precision(net, x, want, want_attention, kernels::Precision::int8, ranges, {4e-2, 1e-2}, what);
  });
  return out;
}

SKNetConfig small_config(Stem stem) {
  SKNetConfig c = sknet_test::tiny_sknet26_config();
  c.stem = stem;
  return c;
}

}  // namespace

TEST_CASE("int8 SK networks stay within the quantization error of the float network", "[prepared][int8]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  const ActivationRanges r = check_int8(sknet_plan(c, 2), 1, 37, 45, "sknet M=2");
  // Every bottleneck block has both ranges; a block's input range holds 0 (it follows a ReLU) and is
  // not empty.
  for (const char* block : {"layer1.0", "layer2.1", "layer4.1"}) {
    INFO(block);
    const auto& in = r.at(std::string(block) + ".input", "test");
    const auto& v = r.at(std::string(block) + ".v", "test");
    const auto& mid = r.at(std::string(block) + ".mid", "test");  // conv1's ReLU output, the middle's input
    CHECK(in.lo >= 0.0f);
    CHECK(in.hi > in.lo);
    CHECK(v.hi > v.lo);
    CHECK(mid.lo >= 0.0f);
    CHECK(mid.hi > mid.lo);
  }
  c.paths = 3;
  check_int8(sknet_plan(c, 3), 3, 29, 27, "sknet M=3, batch 3");
  // The Fashion-MNIST model's widths: group widths 8, 16, 32, 64 (every middle in int8).
  SKNetConfig wide = small_config(Stem::imagenet);
  wide.paths = 2;
  wide.planes = {8, 16, 32, 64};
  wide.base_width = 64;
  check_int8(sknet_plan(wide, 2), 2, 41, 39, "sknet, group widths 8-64");
}

/// A reduced timm skresnet18: basic blocks (split-input SK convolution, G = 1; plain 3x3 conv2).
SKNetConfig small_skresnet18() {
  SKNetConfig basic = architecture("skresnet18").config;
  basic.layers = {1, 1, 1, 1};
  basic.planes = {8, 16, 32, 64};
  basic.stem_width = 8;
  basic.paths = 2;
  return basic;
}

TEST_CASE("int8 SK-ResNet basic blocks (SK convolution and conv2 in int8)", "[prepared][int8]") {
  const ActivationRanges r = check_int8(skresnet_plan(small_skresnet18(), 2), 2, 37, 35, "skresnet18, batch 2");
  for (const char* tensor : {"stem.0.input", "layer1.0.input", "layer1.0.v", "layer4.0.input", "layer4.0.v"}) {
    INFO(tensor);
    CHECK(r.at(tensor, "test").hi > r.at(tensor, "test").lo);
  }
  const NetworkPlan plan = skresnet_plan(small_skresnet18(), 2);
  const auto ranges = std::make_shared<const ActivationRanges>(calibrate(prepare_random(plan, 3), {random_input(1, 33, 33, 3, 4)}));
  sknet_test::check_nan_propagation(
      prepare_random(plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8, ranges)), 3);
}

TEST_CASE("int8 ResNeXt and SE-ResNeXt bottlenecks", "[prepared][int8]") {
  check_int8(resnext_plan(small_config(Stem::imagenet)), 3, 33, 29, "resnext");
  SKNetConfig se = small_config(Stem::imagenet);
  se.se = se_rule();
  check_int8(resnext_plan(se), 1, 35, 31, "seresnext");
}

TEST_CASE("int8 networks: ranges are required, saved and loaded; what int8 refuses", "[prepared][int8]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  const NetworkPlan plan = sknet_plan(c, 2);
  const PreparedNetwork f32 = prepare_random(plan, 3);
  ActivationRanges ranges = calibrate(f32, {random_input(2, 33, 33, 3, 9)});
  CHECK_THROWS_WITH(prepare_random(plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8)),
                    Catch::Contains("activation ranges") && Catch::Contains("sknet calibrate"));
  ActivationRanges partial = ranges;
  partial.by_name.erase("layer3.0.v");
  CHECK_THROWS_WITH(prepare_random(plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8,
                                                           std::make_shared<const ActivationRanges>(partial))),
                    Catch::Contains("layer3.0.v"));
  partial = ranges;
  partial.by_name.erase("layer2.1.mid");  // an int8 SK middle's input
  CHECK_THROWS_WITH(prepare_random(plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8,
                                                           std::make_shared<const ActivationRanges>(partial))),
                    Catch::Contains("layer2.1.mid"));
  const PreparedNetwork int8 = prepare_random(
      plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8, std::make_shared<const ActivationRanges>(ranges)));
  CHECK_THROWS_WITH(calibrate(int8, {random_input(1, 33, 33, 3, 9)}), Catch::Contains("f32"));

  // JSON: save, load, the same ranges; malformed files are named.
  const std::string dir = (std::filesystem::temp_directory_path() / "sknet_test_int8_ranges").string();
  std::filesystem::create_directories(dir);
  ranges.save(dir + "/ranges.json");
  const ActivationRanges loaded = ActivationRanges::load(dir + "/ranges.json");
  CHECK(loaded.images == 2);
  REQUIRE(loaded.by_name.size() == ranges.by_name.size());
  for (const auto& e : ranges.by_name) {
    CHECK(loaded.at(e.first, "test").lo == e.second.lo);
    CHECK(loaded.at(e.first, "test").hi == e.second.hi);
  }
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  CHECK_THROWS_WITH(ActivationRanges::load(write("a.json", "{")), Catch::Contains("a.json") && Catch::Contains("JSON"));
  CHECK_THROWS_WITH(ActivationRanges::load(write("b.json", "{\"format\": \"x\"}")), Catch::Contains("b.json"));
  CHECK_THROWS_WITH(ActivationRanges::load(write("c.json", "{\"format\": \"sknet-activation-ranges\", \"version\": 1, "
                                                           "\"ranges\": {\"l.input\": [2, 1]}}")),
                    Catch::Contains("l.input") && Catch::Contains("lo <= hi"));
  CHECK_THROWS_AS(ActivationRanges::load(dir + "/absent.json"), FormatError);
  std::filesystem::remove_all(dir);

  // What has no int8 form yet is refused by name.
  const auto some = std::make_shared<const ActivationRanges>(ranges);
  CHECK_THROWS_WITH(prepare_random(architecture_plan("sk_shufflenetv2"), 1,
                                   PrepareOptions(1, false, std::nullopt, kernels::Precision::int8, some)),
                    Catch::Contains("SK-ShuffleNetV2") && Catch::Contains("int8"));
}

TEST_CASE("int8 networks propagate NaN from input to logits", "[prepared][int8]") {
  SKNetConfig c = small_config(Stem::imagenet);
  c.paths = 2;
  const NetworkPlan plan = sknet_plan(c, 2);
  const auto ranges = std::make_shared<const ActivationRanges>(calibrate(prepare_random(plan, 3), {random_input(1, 33, 33, 3, 4)}));
  sknet_test::check_nan_propagation(
      prepare_random(plan, 3, PrepareOptions(1, false, std::nullopt, kernels::Precision::int8, ranges)), 3);
}
