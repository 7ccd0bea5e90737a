// NaN in, NaN out, as in PyTorch, on the reference path and on the prepared fast path packed for every
// instruction set this CPU runs (portable, AVX2, AVX-512), with 1 and 2 pool threads: a NaN pixel, an
// input of 3e38 everywhere (overflow to inf, then inf - inf = NaN), and a NaN weight (conv1.weight, an
// SK path weight), which propagates (it is not rejected at load).
#include <catch2/catch.hpp>

#include <sknet/models/prepared_network.hpp>
#include <sknet/sknet.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support/tiny_sknet.hpp"

using namespace sknet;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// Every instruction set this CPU runs, narrowest first.
std::vector<kernels::Isa> cpu_isas() {
  std::vector<kernels::Isa> isas;
  for (int i = 0; i <= int(kernels::cpu_isa()); ++i) isas.push_back(kernels::Isa(i));
  return isas;
}

SKNet<float, 2> tiny_net(unsigned seed) {
  SKNet<float, 2> net(sknet_test::tiny_sknet26_config());
  randomize<float>(net, seed);
  return net;
}

float& parameter(SKNet<float, 2>& net, const std::string& key, Index i) {
  for (auto& p : named_parameters<float>(net))
    if (p.name == key) return p.data[i];
  FAIL("no parameter " << key);
  throw;
}

bool all_nan(const float* p, Index n) {
  for (Index i = 0; i < n; ++i)
    if (!std::isnan(p[i])) return false;
  return n > 0;
}

bool all_finite(const float* p, Index n) {
  for (Index i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

/// NaN, +inf, -inf or finite, per value.
int kind(float v) { return std::isnan(v) ? 0 : std::isinf(v) ? (v > 0 ? 1 : 2) : 3; }

/// One row of logits / attention per image.
const float* row(const Tensor2<float>& t, Index i) { return t.data() + i * t.dimension(1); }
const float* row(const Tensor3<float>& t, Index i) { return t.data() + i * t.dimension(1) * t.dimension(2); }

/// Runs `check(result, label)` on the reference network's result and on the fast path's for every ISA
/// and 1 and 2 pool threads.
template <class Check>
void on_every_path(SKNet<float, 2>& net, const Tensor4<float>& x, Check&& check) {
  {
    sknet_test::EngineResult r;
    r.logits = net.forward(x);
    r.attention = net.attention_maps();
    check(r, std::string("reference"));
  }
  for (kernels::Isa isa : cpu_isas()) {
    for (int threads : {1, 2}) {
      const PreparedNetwork fast = prepare(net, PrepareOptions(threads, false, isa));
      REQUIRE(fast.isa() == isa);
      ExecutionContext ctx(threads);
      sknet_test::EngineResult r;
      r.logits = fast.forward(ctx, view(x));
      r.attention = ctx.attention_maps();
      check(r, std::string("fast ") + kernels::isa_name(isa) + ", " + std::to_string(threads) + " threads");
    }
  }
}

}  // namespace

TEST_CASE("A NaN pixel gives all-NaN logits and attention for its image on every path, the other images unchanged",
          "[engine][nonfinite]") {
  SKNet<float, 2> net = tiny_net(13);
  const Index n = GENERATE(1, 2);
  const Tensor4<float> clean = sknet_test::seeded_input(n, 40, 40, 3, 13);
  Tensor4<float> x = clean;
  x(n - 1, 17, 23, 1) = kNaN;  // one channel of one pixel of the last image
  // The clean result of each path, computed with the same path below.
  on_every_path(net, x, [&](const sknet_test::EngineResult& r, const std::string& path) {
    INFO(path << ", batch " << n);
    REQUIRE(r.logits.dimension(0) == n);
    CHECK(all_nan(row(r.logits, n - 1), r.logits.dimension(1)));
    for (const auto& a : r.attention) {
      INFO("attention of " << a.first);
      CHECK(all_nan(row(a.second, n - 1), a.second.dimension(1) * a.second.dimension(2)));
    }
    if (n == 2) {
      CHECK(all_finite(row(r.logits, 0), r.logits.dimension(1)));
      for (const auto& a : r.attention) CHECK(all_finite(row(a.second, 0), a.second.dimension(1) * a.second.dimension(2)));
    }
  });
  if (n == 2) {
    // Image 0 does not see image 1's NaN: the same bits as the clean batch on the fast path.
    for (kernels::Isa isa : cpu_isas()) {
      for (int threads : {1, 2}) {
        INFO(kernels::isa_name(isa) << ", " << threads << " threads");
        const PreparedNetwork fast = prepare(net, PrepareOptions(threads, false, isa));
        ExecutionContext ctx(threads);
        const Tensor2<float> want = fast.forward(ctx, view(clean));
        const Tensor2<float> got = fast.forward(ctx, view(x));
        CHECK(std::memcmp(row(got, 0), row(want, 0), sizeof(float) * std::size_t(want.dimension(1))) == 0);
      }
    }
  }
}

TEST_CASE("An input of 3e38 everywhere overflows to inf and then NaN on every path, as in PyTorch", "[engine][nonfinite]") {
  // What PyTorch does with these weights: the stem's sums overflow to +-inf; ReLU keeps +inf, the max pool
  // spreads it, and the next convolution adds +inf and -inf products: NaN, which the SK attention (a
  // global average pool) carries to every channel and the head to every logit. Checked on every path:
  // every logit and every attention value NaN, as the reference path gives.
  SKNet<float, 2> net = tiny_net(14);
  Tensor4<float> x(1, 40, 40, 3);
  x.setConstant(3e38f);
  std::vector<int> reference_kinds;
  on_every_path(net, x, [&](const sknet_test::EngineResult& r, const std::string& path) {
    INFO(path);
    std::vector<int> kinds;
    for (Index i = 0; i < r.logits.size(); ++i) kinds.push_back(kind(r.logits.data()[i]));
    if (reference_kinds.empty()) reference_kinds = kinds;
    CHECK(kinds == reference_kinds);
    CHECK(all_nan(r.logits.data(), r.logits.size()));
    for (const auto& a : r.attention) {
      INFO("attention of " << a.first);
      CHECK(all_nan(a.second.data(), a.second.size()));
    }
  });
}

TEST_CASE("A NaN weight propagates to every logit on every path", "[engine][nonfinite]") {
  const std::string key = GENERATE(std::string("conv1.weight"), std::string("layer2.0.conv2.paths.1.conv.weight"),
                                   std::string("layer1.1.conv2.paths.0.conv.weight"));
  INFO("NaN at " << key << "[0]");
  SKNet<float, 2> net = tiny_net(15);
  parameter(net, key, 0) = kNaN;
  const Tensor4<float> x = sknet_test::seeded_input(2, 40, 40, 3, 15);
  on_every_path(net, x, [&](const sknet_test::EngineResult& r, const std::string& path) {
    INFO(path);
    CHECK(all_nan(r.logits.data(), r.logits.size()));
  });
}
