// The bf16 SK branch convolution kernels (kernels/sk_branches_bf16.hpp) against a naive double reference
// over the bf16 values: every bf16 branch kernel of the kernel list that this CPU runs (the native
// vdpbf16ps kernel, the AVX-512 widening kernel, the portable one; the others are reported as skipped),
// over a sweep of group widths (2, 4, 8: the cross kind; 16, 32, gwi != gwo, dense: the broadcast kind,
// 2-block tiles for gw 32), channel counts that are not multiples of 16, split input, 1-3 branches
// (dilation 3 and 5x5 kernels: the generic tiles), stride 1 and 2, odd maps, dense and zero-bordered
// inputs, ReLU on and off, a residual, and channel / row ranges; then the three kernels give the same
// bits for U_m at SKNet-50's shapes (the channel sums too where the tiles are the same), bf16 input rows,
// bf16 outputs and bf16 residuals (in place too), the bf16 Select kernels, and unsupported geometries are
// refused.
//
// Tolerance: the reference rounds the input and the weights to bf16 exactly as the kernels do, so the
// only error left is the float32 accumulation: |err| <= 4 (terms + 2) 2^-24 S, S = sum of |terms|.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>

#include "support/random.hpp"
#include "support/sk_branch_problem.hpp"
#include "support/runnable_kernels.hpp"

namespace {

using namespace sknet::kernels;

std::vector<const SKBranchBf16KernelInfo*> runnable_kernels() {
  return sknet_test::runnable_kernels(kernel_list().sk_branches_bf16, kernel_list().sk_branches_bf16_count);
}

double as_bf16(float x) { return double(from_bf16(to_bf16(x))); }

using Problem = sknet_test::SKBranchProblem;
using Outputs = sknet_test::SKBranchOutputs;
using sknet_test::kSKChannelCases;

std::vector<float> random_floats(std::size_t n, unsigned seed, float scale) {
  return sknet_test::uniform_floats(n, seed, -scale, scale);
}

PackedBranchWeightsBf16 pack(const Problem& p, Isa isa) {
  return PackedBranchWeightsBf16(p.g, p.weight_ptrs().data(), p.bias_ptrs().data(), isa);
}

/// Runs kernel k over the problem in four channel x row pieces (sknet_test::run_split); bf16 outputs
/// with bf16_out; with bf16_residual, that residual instead of the problem's.
Outputs run(const SKBranchBf16KernelInfo& k, const Problem& p, const PackedBranchWeightsBf16& w, bool bf16_out = false,
            const bf16_t* bf16_residual = nullptr) {
  SKBranchEpilogue ep = p.epilogue();
  ep.bf16_out = bf16_out;
  if (bf16_residual) ep.residual = reinterpret_cast<const float*>(bf16_residual), ep.bf16_residual = true;
  return sknet_test::run_split(k, p, w, ep);
}

void check_against_reference(const SKBranchBf16KernelInfo& k, const Problem& p) {
  const SKBranchGeometry& g = p.g;
  INFO(k.name << ": " << p.describe());
  Outputs o = run(k, p, pack(p, k.isa));
  const dim_t OH = g.oh(), OW = g.ow(), C = g.c;
  std::vector<double> want_sums(std::size_t(g.n * C), 0.0), sum_scale(std::size_t(g.n * C), 0.0);
  int failures = 0;
  for (dim_t m = 0; m < g.paths; ++m) {
    const auto& wm = p.w[std::size_t(m)];
    const auto term = [&](float x, std::size_t i) { return as_bf16(x) * as_bf16(wm[i]); };
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t oy = 0; oy < OH; ++oy)
        for (dim_t ox = 0; ox < OW; ++ox)
          for (dim_t co = 0; co < C; ++co) {
            double s = 0.0;
            dim_t terms = 0;
            double v = p.tap_sum(m, n, oy, ox, co, term, s, terms) + p.b[std::size_t(m)][std::size_t(co)];
            s += std::fabs(p.b[std::size_t(m)][std::size_t(co)]);
            const std::size_t at = std::size_t(((n * OH + oy) * OW + ox) * C + co);
            if (p.residual) v += p.res[at], s += std::fabs(p.res[at]);
            if (p.relu) v = std::max(v, 0.0);
            want_sums[std::size_t(n * C + co)] += v, sum_scale[std::size_t(n * C + co)] += s;
            const double tol = 4.0 * double(terms + 2) * std::ldexp(s, -24);
            const double got = o.u[std::size_t(m)][at + 16];
            if (!(std::fabs(got - v) <= tol) && failures++ < 3)
              FAIL_CHECK("U_" << m + 1 << " pixel (" << n << ", " << oy << ", " << ox << ") channel " << co << ": "
                              << got << " vs " << v << " (tol " << tol << ")");
          }
  }
  sknet_test::check_channel_sums(o, g, want_sums, sum_scale, failures);
  CHECK(failures == 0);
}

}  // namespace

TEST_CASE("bf16 SK branch kernels match the double reference over a shape sweep", "[kernels][bf16][grouped_conv]") {
  const auto kernels = runnable_kernels();
  sknet_test::sweep_sk_branch_problems(2, 500, -1.0f, [&](const Problem& p) {
    for (const auto* k : kernels) check_against_reference(*k, p);
  });
}

TEST_CASE("bf16 SK branch kernels: 5x5 and dilation-3 branches (generic tiles)", "[kernels][bf16][grouped_conv]") {
  const auto kernels = runnable_kernels();
  unsigned seed = 900;
  for (dim_t groups : {8, 2})
    for (dim_t stride = 1; stride <= 2; ++stride) {
      SKBranchGeometry g{1, 11, 15, 32, groups, 2, stride, 0};
      g.kernel[0] = 5, g.dilation[0] = 1, g.kernel[1] = 3, g.dilation[1] = 3;
      const Problem p(g, true, false, ++seed);
      for (const auto* k : kernels) check_against_reference(*k, p);
    }
}

TEST_CASE("bf16 SK branch kernels give the same bits at SKNet-50's shapes", "[kernels][bf16][grouped_conv]") {
  sknet_test::check_same_bits_at_sknet50_shapes(runnable_kernels(), pack, -1.0f, 1200);
}

TEST_CASE("bf16 SK branch kernels read bf16 rows as float rows holding the same values", "[kernels][bf16][grouped_conv]") {
  unsigned seed = 1300;
  for (const auto* k : runnable_kernels())
    for (const sknet_test::SKChannelCase& cc : {kSKChannelCases[2], kSKChannelCases[4], kSKChannelCases[7], kSKChannelCases[10]}) {
      SKBranchGeometry g{2, 9, 13, cc.c, cc.groups, 2, 1 + dim_t(seed % 2), dim_t(seed % 2) * 2};
      g.cin = cc.cin, g.split_input = cc.split;
      const Problem p(g, true, false, ++seed);
      INFO(k->name << ": " << p.describe());
      std::vector<bf16_t> rows(p.x.size());
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = to_bf16(p.x[i]);
      const PackedBranchWeightsBf16 w = pack(p, k->isa);
      const Outputs from_float = run(*k, p, w);
      Outputs from_bf16(g);
      const auto dst = from_bf16.ptrs();
      k->fn(g, rows.data(), w, dst.data(), from_bf16.sums.data(), 0, g.c, 0, g.oh(), p.epilogue());
      for (std::size_t m = 0; m < from_bf16.u.size(); ++m)
        CHECK(std::memcmp(from_bf16.u[m].data(), from_float.u[m].data(), sizeof(float) * from_bf16.u[m].size()) == 0);
    }
}

TEST_CASE("bf16 SK branch kernels' bf16 outputs are the float outputs rounded, after the same sums",
          "[kernels][bf16][grouped_conv]") {
  unsigned seed = 1400;
  for (const auto* k : runnable_kernels())
    for (const sknet_test::SKChannelCase& cc : {kSKChannelCases[1], kSKChannelCases[2], kSKChannelCases[6], kSKChannelCases[9]}) {
      SKBranchGeometry g{1, 7, 11, cc.c, cc.groups, 2, 1 + dim_t(seed % 2), 2};
      g.cin = cc.cin;
      ++seed;
      const Problem p(g, seed % 2 == 0, seed % 3 == 0, seed);
      INFO(k->name << ": " << p.describe());
      const PackedBranchWeightsBf16 w = pack(p, k->isa);
      const Outputs floats = run(*k, p, w), rounded = run(*k, p, w, true);
      for (std::size_t m = 0; m < floats.u.size(); ++m) {
        const auto* got = reinterpret_cast<const bf16_t*>(rounded.u[m].data() + 16);
        int wrong = 0;
        for (dim_t i = 0; i < floats.size; ++i) wrong += got[i] != to_bf16(floats.u[m][std::size_t(i + 16)]);
        CHECK(wrong == 0);
        CHECK(std::isnan(rounded.u[m][std::size_t(floats.size / 2 + 16)]));  // the second half is untouched
      }
      CHECK(std::memcmp(rounded.sums.data(), floats.sums.data(), sizeof(float) * floats.sums.size()) == 0);
    }
  // The float kernels refuse bf16 outputs.
  const SKBranchGeometry g{1, 4, 4, 16, 4, 2, 1, 0};
  const std::vector<float> x(16 * 16, 1.0f), wt(16 * 4 * 9, 0.1f), b(16, 0.0f);
  const float* wp[2] = {wt.data(), wt.data()};
  const float* bp[2] = {b.data(), b.data()};
  const PackedBranchWeights fw(g, wp, bp, Isa::portable);
  std::vector<float> u0(256), u1(256);
  float* const dst[2] = {u0.data(), u1.data()};
  SKBranchEpilogue ep;
  ep.bf16_out = true;
  CHECK_THROWS_AS(sk_branches_conv3x3(g, x.data(), fw, dst, nullptr, 0, 16, 0, 4, ep), KernelError);
}

TEST_CASE("bf16 SK branch kernels add a bf16 residual as the float residual of the same values, in place too",
          "[kernels][bf16][grouped_conv]") {
  unsigned seed = 1450;
  for (const auto* k : runnable_kernels())
    for (const sknet_test::SKChannelCase& cc : {kSKChannelCases[1], kSKChannelCases[2], kSKChannelCases[6], kSKChannelCases[9]})
      for (dim_t paths : {1, 2}) {
        SKBranchGeometry g{1 + dim_t(seed % 2), 7, 11, cc.c, cc.groups, paths, 1 + dim_t(seed % 2), 0};
        g.cin = cc.cin;
        ++seed;
        Problem p(g, seed % 2 == 0, true, seed);
        std::vector<bf16_t> res(p.res.size());
        for (std::size_t i = 0; i < res.size(); ++i) res[i] = to_bf16(p.res[i]), p.res[i] = from_bf16(res[i]);
        INFO(k->name << ": " << p.describe());
        const PackedBranchWeightsBf16 w = pack(p, k->isa);
        for (bool bf16_out : {false, true}) {
          const Outputs want = run(*k, p, w, bf16_out), got = run(*k, p, w, bf16_out, res.data());
          for (std::size_t m = 0; m < got.u.size(); ++m)
            CHECK(std::memcmp(got.u[m].data(), want.u[m].data(), sizeof(float) * got.u[m].size()) == 0);
          CHECK(std::memcmp(got.sums.data(), want.sums.data(), sizeof(float) * got.sums.size()) == 0);
          if (!bf16_out || paths != 1) continue;
          // In place: the residual's rows receive the outputs (a basic block's conv2 onto its shortcut).
          std::vector<bf16_t> inout = res;
          std::vector<float> sums(got.sums.size(), 0.0f);
          float* const in_place[1] = {reinterpret_cast<float*>(inout.data())};
          SKBranchEpilogue ep = p.epilogue();
          ep.residual = in_place[0], ep.bf16_residual = true, ep.bf16_out = true;
          k->fn(g, p.x.data(), w, in_place, sums.data(), 0, g.c, 0, g.oh(), ep);
          CHECK(std::memcmp(inout.data(), want.u[0].data() + 16, sizeof(bf16_t) * inout.size()) == 0);
        }
      }
  // The float kernels refuse a bf16 residual.
  const SKBranchGeometry g{1, 4, 4, 16, 4, 1, 1, 0};
  const std::vector<float> x(16 * 16, 1.0f), wt(16 * 4 * 9, 0.1f), b(16, 0.0f), res(256, 0.0f);
  const float* wp[1] = {wt.data()};
  const float* bp[1] = {b.data()};
  const PackedBranchWeights fw(g, wp, bp, Isa::portable);
  std::vector<float> u0(256);
  float* const dst[1] = {u0.data()};
  SKBranchEpilogue ep;
  ep.residual = res.data();
  ep.bf16_residual = true;
  CHECK_THROWS_AS(sk_branches_conv3x3(g, x.data(), fw, dst, nullptr, 0, 16, 0, 4, ep), KernelError);
}

TEST_CASE("bf16 Select kernels match the double reference and each other", "[kernels][bf16][grouped_conv]") {
  const auto kernels = sknet_test::runnable_kernels(kernel_list().sk_select_bf16, kernel_list().sk_select_bf16_count);
  unsigned seed = 1500;
  for (dim_t paths = 1; paths <= 3; ++paths)
    for (dim_t c : {1, 15, 16, 17, 40, 128}) {
      const dim_t rows = 3;
      const auto a = random_floats(std::size_t(paths * c), ++seed, 1.0f);
      std::vector<std::vector<bf16_t>> u;
      std::vector<const bf16_t*> up;
      for (dim_t m = 0; m < paths; ++m) {
        const auto f = random_floats(std::size_t(rows * c), seed + 7 + unsigned(m), 4.0f);
        u.emplace_back(f.size());
        for (std::size_t i = 0; i < f.size(); ++i) u.back()[i] = to_bf16(f[i]);
        up.push_back(u.back().data());
      }
      std::vector<bf16_t> first;
      for (const auto* k : kernels) {
        INFO(k->name << " paths " << paths << " c " << c);
        std::vector<bf16_t> v(std::size_t(rows * c + 1), bf16_t(0x7FC1));
        k->fn(rows, c, paths, a.data(), up.data(), v.data());
        CHECK(v.back() == bf16_t(0x7FC1));
        v.pop_back();
        for (dim_t i = 0; i < rows * c; ++i) {
          double want = 0, scale = 0;
          for (dim_t m = 0; m < paths; ++m) {
            const double t = double(a[std::size_t(m * c + i % c)]) * from_bf16(u[std::size_t(m)][std::size_t(i)]);
            want += t, scale += std::fabs(t);
          }
          const double got = from_bf16(v[std::size_t(i)]);
          CHECK(std::fabs(got - want) <= std::ldexp(std::fabs(want), -8) + 4.0 * double(paths) * std::ldexp(scale, -24));
        }
        if (first.empty())
          first = v;
        else
          CHECK(v == first);
      }
    }
}

TEST_CASE("PackedBranchWeightsBf16 refuses odd group widths and invalid geometries", "[kernels][bf16][grouped_conv]") {
  const std::vector<float> w(64 * 64 * 9, 0.01f), b(64, 0.0f);
  const float* wp[2] = {w.data(), w.data()};
  const float* bp[2] = {b.data(), b.data()};
  const SKBranchGeometry depthwise{1, 8, 8, 32, 32, 2, 1, 0};
  CHECK(!sk_branches_bf16_unsupported(depthwise).empty());
  CHECK_THROWS_AS(PackedBranchWeightsBf16(depthwise, wp, bp, Isa::portable), KernelError);
  CHECK_THROWS_WITH(PackedBranchWeightsBf16(depthwise, wp, bp, Isa::portable), Catch::Contains("even"));
  const SKBranchGeometry odd{1, 8, 8, 24, 8, 2, 1, 0};  // gw 3
  CHECK_THROWS_AS(PackedBranchWeightsBf16(odd, wp, bp, Isa::portable), KernelError);
  const SKBranchGeometry bad_groups{1, 8, 8, 30, 4, 2, 1, 0};
  CHECK_THROWS_AS(PackedBranchWeightsBf16(bad_groups, wp, bp, Isa::portable), KernelError);
  const SKBranchGeometry sknet{1, 8, 8, 64, 32, 2, 1, 0};  // gw 2
  CHECK(sk_branches_bf16_unsupported(sknet).empty());
  CHECK_NOTHROW(PackedBranchWeightsBf16(sknet, wp, bp, Isa::portable));
}

TEST_CASE("bf16 SK branch dispatch names a listed kernel", "[kernels][bf16][grouped_conv]") {
  const std::string name = sk_branches_bf16_kernel_name(cpu_isa());
  bool listed = false;
  for (int i = 0; i < kernel_list().sk_branches_bf16_count; ++i) listed |= name == kernel_list().sk_branches_bf16[i].name;
  CHECK(listed);
  CHECK(std::string(sk_branches_bf16_kernel_name(Isa::portable)) == "grouped_conv3x3_sk_bf16__portable");
  if (cpu_isa() == Isa::avx512 && cpu_has_avx512_bf16()) CHECK(name == "grouped_conv3x3_sk_bf16__avx512_bf16");
}
