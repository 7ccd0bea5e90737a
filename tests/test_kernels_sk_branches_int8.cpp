// The int8 SK branch convolution kernels (kernels/sk_branches_int8.hpp) against a double reference over
// the quantized values: every int8 branch kernel of the kernel list that this CPU runs (the native
// vpdpbusd kernel, the AVX-512 16-bit multiply-add kernel, the portable one; the others are reported as
// skipped), over the sweep the bf16 kernels run (tests/support/sk_branch_problem.hpp: group widths 4 and
// 8 for the cross kind, 16, 32, gwi != gwo and dense for the broadcast kind, 2-block tiles for gw 32,
// channel counts that are not multiples of 16, split input, 1-3 branches, stride 1 and 2, odd maps,
// dense and zero-bordered inputs, ReLU on and off, a residual, channel / row ranges), 5x5 and dilation-3
// branches; then the three kernels give the same bits at SKNet-50's shapes, saturation and negative
// inputs, u8 code rows read as the float rows they come from, and unsupported geometries are refused.
//
// The reference quantizes as the kernels document it, independently: input codes
// clamp(round(x * (1 / s_in)), 0, 255) (the product in float, ties to even), weight codes
// round(w / s_w), s_w = max |w| / 127 per branch and channel (float); the sum of code products is exact,
// so the only error left is the float epilogue: |err| <= 4 * 2^-24 (|sum * scale| + |bias| + |residual|).
// It also bounds the quantization error against the float convolution (every term within
// s_in / 2 |w| + |x_q| s_w / 2).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>

#include "support/random.hpp"
#include "support/runnable_kernels.hpp"
#include "support/sk_branch_problem.hpp"

namespace {

using namespace sknet::kernels;
using Problem = sknet_test::SKBranchProblem;
using Outputs = sknet_test::SKBranchOutputs;
using sknet_test::kSKChannelCases;

std::vector<const SKBranchInt8KernelInfo*> runnable_kernels() {
  return sknet_test::runnable_kernels(kernel_list().sk_branches_int8, kernel_list().sk_branches_int8_count);
}

constexpr float kInputScale = 1.0f / 255.0f;  // inputs in [0, 1): the full code range

PackedBranchWeightsInt8 pack(const Problem& p, Isa isa, float input_scale = kInputScale) {
  return PackedBranchWeightsInt8(p.g, p.weight_ptrs().data(), p.bias_ptrs().data(), input_scale, isa);
}

/// The input code of x at scale s (zero point 0).
double input_code(float x, float s) {
  const float v = x * (1.0f / s);
  if (!(v > 0.0f)) return 0.0;
  if (v >= 255.0f) return 255.0;
  return std::nearbyint(double(v));
}

/// Per branch and channel: the weight scale (float) and codes.
struct QuantizedWeights {
  std::vector<std::vector<float>> scale;
  std::vector<std::vector<double>> code;
  explicit QuantizedWeights(const Problem& p) {
    for (std::size_t m = 0; m < p.w.size(); ++m) {
      const std::size_t per = p.w[m].size() / std::size_t(p.g.c);
      scale.emplace_back(std::size_t(p.g.c));
      code.emplace_back(p.w[m].size());
      for (std::size_t co = 0; co < std::size_t(p.g.c); ++co) {
        float amax = 0.0f;
        for (std::size_t i = 0; i < per; ++i) amax = std::max(amax, std::fabs(p.w[m][co * per + i]));
        const float s = amax > 0.0f ? amax / 127.0f : 1.0f;
        scale[m][co] = s;
        for (std::size_t i = 0; i < per; ++i)
          code[m][co * per + i] = std::clamp(std::nearbyint(double(p.w[m][co * per + i] / s)), -127.0, 127.0);
      }
    }
  }
};

/// Checks kernel k on p against the reference; and, when the inputs are all within [0, 255 input_scale]
/// (in_range), against the float convolution within the quantization error.
void check_against_reference(const SKBranchInt8KernelInfo& k, const Problem& p, float input_scale = kInputScale,
                             bool in_range = true) {
  const SKBranchGeometry& g = p.g;
  INFO(k.name << ": " << p.describe() << " input scale " << input_scale);
  const Outputs o = sknet_test::run_split(k, p, pack(p, k.isa, input_scale), p.epilogue());
  const QuantizedWeights q(p);
  const dim_t OH = g.oh(), OW = g.ow(), C = g.c;
  std::vector<double> want_sums(std::size_t(g.n * C), 0.0), sum_scale(std::size_t(g.n * C), 0.0);
  int failures = 0;
  for (dim_t m = 0; m < g.paths; ++m) {
    const auto& codes = q.code[std::size_t(m)];
    const auto& wm = p.w[std::size_t(m)];
    const auto code_term = [&](float x, std::size_t i) { return input_code(x, input_scale) * codes[i]; };
    const auto float_term = [&](float x, std::size_t i) { return double(x) * double(wm[i]); };
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t oy = 0; oy < OH; ++oy)
        for (dim_t ox = 0; ox < OW; ++ox)
          for (dim_t co = 0; co < C; ++co) {
            double unused = 0.0, s_float = 0.0;
            dim_t terms = 0;
            const double sum = p.tap_sum(m, n, oy, ox, co, code_term, unused, terms);
            const double exact = p.tap_sum(m, n, oy, ox, co, float_term, s_float, terms);
            const float ws = q.scale[std::size_t(m)][std::size_t(co)];
            const double scale = double(input_scale * ws), bias = p.b[std::size_t(m)][std::size_t(co)];
            double v = sum * scale + bias, s = std::fabs(sum * scale) + std::fabs(bias);
            const std::size_t at = std::size_t(((n * OH + oy) * OW + ox) * C + co);
            if (p.residual) v += p.res[at], s += std::fabs(p.res[at]);
            if (p.relu) v = std::max(v, 0.0);
            want_sums[std::size_t(n * C + co)] += v, sum_scale[std::size_t(n * C + co)] += s;
            const double got = o.at(m, at);
            const double tol = 4.0 * std::ldexp(s, -24);
            if (!(std::fabs(got - v) <= tol) && failures++ < 3)
              FAIL_CHECK("U_" << m + 1 << " pixel (" << n << ", " << oy << ", " << ox << ") channel " << co << ": "
                              << got << " vs " << v << " (tol " << tol << ")");
            // Quantization error against the float convolution.
            if (in_range) {
              double f = exact + bias;
              if (p.residual) f += p.res[at];
              if (p.relu) f = std::max(f, 0.0);
              const double bound = double(terms) * (input_scale / 2.0 + ws / 2.0) + tol + 1e-6;
              if (!(std::fabs(got - f) <= bound) && failures++ < 3)
                FAIL_CHECK("U_" << m + 1 << " channel " << co << ": " << got << " is " << std::fabs(got - f)
                                << " from the float convolution's " << f << " (bound " << bound << ")");
            }
          }
  }
  sknet_test::check_channel_sums(o, g, want_sums, sum_scale, failures);
  CHECK(failures == 0);
}

}  // namespace

TEST_CASE("int8 SK branch kernels match the double reference over a shape sweep", "[kernels][int8][grouped_conv]") {
  const auto kernels = runnable_kernels();
  sknet_test::sweep_sk_branch_problems(4, 2500, 0.0f, [&](const Problem& p) {
    for (const auto* k : kernels) check_against_reference(*k, p);
  });
}

TEST_CASE("int8 SK branch kernels: 5x5 and dilation-3 branches (generic tiles)", "[kernels][int8][grouped_conv]") {
  const auto kernels = runnable_kernels();
  unsigned seed = 2900;
  for (dim_t groups : {8, 2})
    for (dim_t stride = 1; stride <= 2; ++stride) {
      SKBranchGeometry g{1, 11, 15, 32, groups, 2, stride, 0};
      g.kernel[0] = 5, g.dilation[0] = 1, g.kernel[1] = 3, g.dilation[1] = 3;
      const Problem p(g, true, false, ++seed, 0.0f);
      for (const auto* k : kernels) check_against_reference(*k, p);
    }
}

TEST_CASE("int8 SK branch kernels saturate large inputs and read negative ones as 0", "[kernels][int8][grouped_conv]") {
  unsigned seed = 3000;
  for (const auto* k : runnable_kernels())
    for (const sknet_test::SKChannelCase& cc : {kSKChannelCases[1], kSKChannelCases[3], kSKChannelCases[6]}) {
      SKBranchGeometry g{1, 9, 10, cc.c, cc.groups, 2, 1, 0};
      g.cin = cc.cin;
      const Problem negative(g, true, true, ++seed, -1.0f);  // half the inputs below 0
      check_against_reference(*k, negative, kInputScale, false);
      const Problem large(g, false, false, ++seed, 0.0f);
      check_against_reference(*k, large, 0.5f / 255.0f, false);  // inputs above 0.5 saturate at code 255
    }
}

TEST_CASE("int8 SK branch kernels give the same bits at SKNet-50's shapes", "[kernels][int8][grouped_conv]") {
  sknet_test::check_same_bits_at_sknet50_shapes(
      runnable_kernels(), [](const Problem& p, Isa isa) { return pack(p, isa); }, 0.0f, 3200);
}

TEST_CASE("int8 SK branch kernels read u8 code rows as float rows that quantize to them", "[kernels][int8][grouped_conv]") {
  unsigned seed = 3300;
  for (const auto* k : runnable_kernels())
    for (const sknet_test::SKChannelCase& cc : {kSKChannelCases[2], kSKChannelCases[4], kSKChannelCases[7], kSKChannelCases[10]}) {
      SKBranchGeometry g{2, 9, 13, cc.c, cc.groups, 2, 1 + dim_t(seed % 2), dim_t(seed % 2) * 2};
      g.cin = cc.cin, g.split_input = cc.split;
      ++seed;
      const Problem p(g, true, seed % 2 == 0, seed, 0.0f);
      INFO(k->name << ": " << p.describe());
      std::vector<u8_t> rows(p.x.size());
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = u8_t(input_code(p.x[i], kInputScale));
      const PackedBranchWeightsInt8 w = pack(p, k->isa);
      const Outputs from_float = sknet_test::run_split(*k, p, w, p.epilogue());
      Outputs from_codes(g);
      const auto dst = from_codes.ptrs();
      for (const auto& c : {std::pair<dim_t, dim_t>{0, 16}, std::pair<dim_t, dim_t>{16, g.c}})
        for (const auto& r : {std::pair<dim_t, dim_t>{0, g.oh() / 2}, std::pair<dim_t, dim_t>{g.oh() / 2, g.oh()}})
          k->fn(g, rows.data(), w, dst.data(), from_codes.sums.data(), c.first, c.second, r.first, r.second, p.epilogue());
      for (std::size_t m = 0; m < from_codes.u.size(); ++m)
        CHECK(std::memcmp(from_codes.u[m].data(), from_float.u[m].data(), sizeof(float) * from_codes.u[m].size()) == 0);
      CHECK(std::memcmp(from_codes.sums.data(), from_float.sums.data(), sizeof(float) * from_codes.sums.size()) == 0);
    }
}

TEST_CASE("PackedBranchWeightsInt8 refuses group widths that are not quads, bad scales and bad weights",
          "[kernels][int8][grouped_conv]") {
  std::vector<float> w(64 * 64 * 9, 0.01f);
  const std::vector<float> b(128, 0.0f);
  const float* wp[2] = {w.data(), w.data()};
  const float* bp[2] = {b.data(), b.data()};
  const SKBranchGeometry depthwise{1, 8, 8, 32, 32, 2, 1, 0};
  CHECK(!sk_branches_int8_unsupported(depthwise).empty());
  CHECK_THROWS_WITH(PackedBranchWeightsInt8(depthwise, wp, bp, 0.1f, Isa::portable), Catch::Contains("multiple of 4"));
  const SKBranchGeometry gw2{1, 8, 8, 64, 32, 2, 1, 0};
  CHECK_THROWS_AS(PackedBranchWeightsInt8(gw2, wp, bp, 0.1f, Isa::portable), KernelError);
  const SKBranchGeometry sknet{1, 8, 8, 128, 32, 2, 1, 0};  // gw 4
  CHECK(sk_branches_int8_unsupported(sknet).empty());
  CHECK_NOTHROW(PackedBranchWeightsInt8(sknet, wp, bp, 0.1f, Isa::portable));
  for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    CHECK_THROWS_WITH(PackedBranchWeightsInt8(sknet, wp, bp, bad, Isa::portable), Catch::Contains("input scale"));
  w[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(PackedBranchWeightsInt8(sknet, wp, bp, 0.1f, Isa::portable), Catch::Contains("non-finite weight"));
}

TEST_CASE("int8 SK branch dispatch names a listed kernel", "[kernels][int8][grouped_conv]") {
  const std::string name = sk_branches_int8_kernel_name(cpu_isa());
  bool listed = false;
  for (int i = 0; i < kernel_list().sk_branches_int8_count; ++i) listed |= name == kernel_list().sk_branches_int8[i].name;
  CHECK(listed);
  CHECK(std::string(sk_branches_int8_kernel_name(Isa::portable)) == "grouped_conv3x3_sk_int8__portable");
  if (cpu_isa() == Isa::avx512 && cpu_has_avx512_vnni()) CHECK(name == "grouped_conv3x3_sk_int8__avx512_vnni");
}
