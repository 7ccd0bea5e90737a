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
#include "support/runnable_kernels.hpp"

namespace {

using namespace sknet::kernels;

std::vector<const SKBranchBf16KernelInfo*> runnable_kernels() {
  return sknet_test::runnable_kernels(kernel_list().sk_branches_bf16, kernel_list().sk_branches_bf16_count);
}

/// n floats uniform in [-scale, scale).
std::vector<float> random_floats(std::size_t n, unsigned seed, float scale) {
  return sknet_test::uniform_floats(n, seed, -scale, scale);
}

double as_bf16(float x) { return double(from_bf16(to_bf16(x))); }

/// One problem: the float input (padded by g.pad), weights, biases, a residual, and what a kernel wrote.
struct Problem {
  SKBranchGeometry g;
  bool relu = true, residual = false;
  std::vector<float> x, res;
  std::vector<std::vector<float>> w, b;

  Problem(const SKBranchGeometry& geometry, bool relu_on, bool with_residual, unsigned seed)
      : g(geometry), relu(relu_on), residual(with_residual) {
    validate(g);
    const dim_t cin = g.in_channels();
    x.assign(std::size_t(g.n * g.padded_h() * g.padded_w() * cin), 0.0f);
    const auto values = random_floats(x.size(), seed, 1.0f);
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t y = 0; y < g.h; ++y)
        for (dim_t xx = 0; xx < g.w; ++xx)
          for (dim_t c = 0; c < cin; ++c) {
            const std::size_t i = std::size_t(((n * g.padded_h() + y + g.pad) * g.padded_w() + xx + g.pad) * cin + c);
            x[i] = values[i];
          }
    for (dim_t m = 0; m < g.paths; ++m) {
      const dim_t k = g.path_kernel(m);
      w.push_back(random_floats(std::size_t(g.c * g.in_group_width() * k * k), seed + 1 + unsigned(m),
                                1.0f / std::sqrt(float(g.in_group_width() * k * k))));
      b.push_back(random_floats(std::size_t(g.c), seed + 11 + unsigned(m), 0.1f));
    }
    if (residual) res = random_floats(std::size_t(g.n * g.oh() * g.ow() * g.c), seed + 21, 1.0f);
  }

  PackedBranchWeightsBf16 pack(Isa isa) const {
    std::vector<const float*> wp, bp;
    for (const auto& v : w) wp.push_back(v.data());
    for (const auto& v : b) bp.push_back(v.data());
    return PackedBranchWeightsBf16(g, wp.data(), bp.data(), isa);
  }
  SKBranchEpilogue epilogue() const {
    SKBranchEpilogue ep;
    ep.relu = relu;
    ep.residual = residual ? res.data() : nullptr;
    return ep;
  }
  std::string describe() const {
    std::string s = "n=" + std::to_string(g.n) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) +
                    " cin=" + std::to_string(g.in_channels()) + " c=" + std::to_string(g.c) +
                    " G=" + std::to_string(g.groups) + " M=" + std::to_string(g.paths) +
                    " s=" + std::to_string(g.stride) + " pad=" + std::to_string(g.pad);
    for (dim_t m = 0; m < g.paths; ++m)
      s += " " + std::to_string(g.path_kernel(m)) + "x" + std::to_string(g.path_kernel(m)) + "/D" +
           std::to_string(g.path_dilation(m));
    return s + (g.split_input ? " split" : "") + (relu ? " relu" : "") + (residual ? " residual" : "");
  }
};

/// Outputs of one run, surrounded by NaN guards.
struct Outputs {
  dim_t size;
  std::vector<std::vector<float>> u;
  std::vector<float> sums;
  explicit Outputs(const SKBranchGeometry& g) : size(g.n * g.oh() * g.ow() * g.c) {
    for (dim_t m = 0; m < g.paths; ++m) u.emplace_back(std::size_t(size + 32), std::numeric_limits<float>::quiet_NaN());
    sums.assign(std::size_t(g.n * g.c), 0.0f);
  }
  std::vector<float*> ptrs() {
    std::vector<float*> p;
    for (auto& v : u) p.push_back(v.data() + 16);
    return p;
  }
};

/// Runs kernel k over the problem split into channel ranges [0, 16), [16, c) and two row ranges (one
/// sums buffer: the channel ranges are disjoint and the rows add up in both halves); bf16 outputs with
/// bf16_out; with bf16_residual, that residual instead of the problem's.
Outputs run(const SKBranchBf16KernelInfo& k, const Problem& p, const PackedBranchWeightsBf16& w, bool bf16_out = false,
            const bf16_t* bf16_residual = nullptr) {
  Outputs o(p.g);
  const auto dst = o.ptrs();
  SKBranchEpilogue ep = p.epilogue();
  ep.bf16_out = bf16_out;
  if (bf16_residual) ep.residual = reinterpret_cast<const float*>(bf16_residual), ep.bf16_residual = true;
  const dim_t ccut = std::min<dim_t>(16, p.g.c), rcut = p.g.oh() / 2;
  const float* src = p.x.data();
  for (const auto& c : {std::pair<dim_t, dim_t>{0, ccut}, std::pair<dim_t, dim_t>{ccut, p.g.c}})
    for (const auto& r : {std::pair<dim_t, dim_t>{0, rcut}, std::pair<dim_t, dim_t>{rcut, p.g.oh()}})
      k.fn(p.g, src, w, dst.data(), o.sums.data(), c.first, c.second, r.first, r.second, ep);
  return o;
}

void check_against_reference(const SKBranchBf16KernelInfo& k, const Problem& p) {
  const SKBranchGeometry& g = p.g;
  INFO(k.name << ": " << p.describe());
  Outputs o = run(k, p, p.pack(k.isa));
  const dim_t OH = g.oh(), OW = g.ow(), C = g.c, gwi = g.in_group_width(), gwo = g.group_width();
  const dim_t Hp = g.padded_h(), Wp = g.padded_w(), Cin = g.in_channels();
  std::vector<double> want_sums(std::size_t(g.n * C), 0.0), sum_scale(std::size_t(g.n * C), 0.0);
  int failures = 0;
  for (dim_t m = 0; m < g.paths; ++m) {
    const dim_t k_m = g.path_kernel(m), d = g.path_dilation(m), r = g.path_reach(m), in0 = g.path_in_begin(m);
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t oy = 0; oy < OH; ++oy)
        for (dim_t ox = 0; ox < OW; ++ox)
          for (dim_t co = 0; co < C; ++co) {
            double v = p.b[std::size_t(m)][std::size_t(co)], s = std::fabs(v);
            dim_t terms = 0;
            for (dim_t ky = 0; ky < k_m; ++ky)
              for (dim_t kx = 0; kx < k_m; ++kx) {
                const dim_t iy = oy * g.stride + ky * d - r, ix = ox * g.stride + kx * d - r;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                for (dim_t j = 0; j < gwi; ++j) {
                  const dim_t ci = in0 + co / gwo * gwi + j;
                  const double t =
                      as_bf16(p.x[std::size_t(((n * Hp + iy + g.pad) * Wp + ix + g.pad) * Cin + ci)]) *
                      as_bf16(p.w[std::size_t(m)][std::size_t(((co * gwi + j) * k_m + ky) * k_m + kx)]);
                  v += t, s += std::fabs(t), ++terms;
                }
              }
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
  for (std::size_t i = 0; i < want_sums.size(); ++i) {
    const double tol = 4.0 * double(9 * gwi * g.paths + OH * OW * g.paths + 2) * std::ldexp(sum_scale[i], -24) + 1e-6;
    if (!(std::fabs(double(o.sums[i]) - want_sums[i]) <= tol) && failures++ < 3)
      FAIL_CHECK("channel sum " << i << ": " << o.sums[i] << " vs " << want_sums[i]);
  }
  for (const auto& u : o.u)  // the guards around every output are untouched
    for (std::size_t i : {std::size_t(0), std::size_t(15), std::size_t(o.size + 16), u.size() - 1})
      if (!std::isnan(u[i]) && failures++ < 3) FAIL_CHECK("guard " << i << " overwritten");
  CHECK(failures == 0);
}

/// {cin, c, groups, split}: the cross kind (gw 2, 4, 8; c not a multiple of 16), the broadcast kind
/// (gw 16, 32, gwi != gwo, dense), split input with a section per branch.
struct ChannelCase {
  dim_t cin, c, groups;
  bool split;
};
constexpr ChannelCase kChannelCases[] = {
    {32, 32, 16, false},  // gw 2
    {64, 64, 16, false},  // gw 4
    {40, 40, 10, false},  // gw 4, a half block at the end
    {32, 32, 4, false},   // gw 8
    {24, 24, 3, false},   // gw 8, a half block at the end
    {48, 48, 3, false},   // gw 16
    {64, 64, 2, false},   // gw 32: 2-block tiles
    {96, 96, 3, false},   // gw 32, three spans
    {32, 64, 8, false},   // gwi 4 -> gwo 8
    {24, 20, 1, false},   // dense, c not a multiple of 16
    {64, 32, 8, true},    // split, gw 4 per branch (cross, one section per branch)
    {64, 32, 2, true},    // split, gwi 16 per branch (broadcast)
};

}  // namespace

TEST_CASE("bf16 SK branch kernels match the double reference over a shape sweep", "[kernels][bf16][grouped_conv]") {
  const auto kernels = runnable_kernels();
  const dim_t sizes[][2] = {{7, 7}, {14, 14}, {5, 9}, {13, 11}, {1, 9}};
  unsigned seed = 500;
  for (const ChannelCase& cc : kChannelCases)
    for (dim_t paths = 1; paths <= 3; ++paths) {
      if (cc.split && cc.cin % paths != 0) continue;
      if ((cc.split ? cc.cin / paths : cc.cin) % cc.groups != 0) continue;
      if ((cc.split ? cc.cin / paths : cc.cin) / cc.groups % 2 != 0) continue;
      for (dim_t stride = 1; stride <= 2; ++stride)
        for (const auto& hw : sizes) {
          ++seed;
          if (hw[0] == 14 && seed % 3 != 0) continue;  // keep the double reference quick
          const dim_t pad = seed % 3 == 0 ? 0 : paths + dim_t(seed % 2);
          SKBranchGeometry g{1 + dim_t(seed % 5 == 0), hw[0], hw[1], cc.c, cc.groups, paths, stride, pad};
          g.cin = cc.cin, g.split_input = cc.split;
          const Problem p(g, seed % 4 != 1, seed % 3 == 1, seed);
          for (const auto* k : kernels) check_against_reference(*k, p);
        }
    }
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
  const auto kernels = runnable_kernels();
  if (kernels.size() < 2) {
    WARN("only one bf16 SK branch kernel runs here: nothing to compare");
    return;
  }
  // {c, h, stride}: SKNet-50's SK convolutions (G = 32, M = 2, dilations 1 and 2; gw 4, 8, 16, 32),
  // on maps cut down to keep the portable kernel quick.
  const dim_t shapes[][3] = {{128, 14, 1}, {256, 14, 2}, {256, 7, 1}, {512, 14, 2}, {512, 7, 1}, {1024, 7, 1}, {1024, 8, 2}};
  unsigned seed = 1200;
  for (const auto& s : shapes) {
    const SKBranchGeometry g{1, s[1], s[1], s[0], 32, 2, s[2], 0};
    const Problem p(g, true, false, ++seed);
    INFO(p.describe());
    const Outputs first = run(*kernels[0], p, p.pack(kernels[0]->isa));
    for (std::size_t i = 1; i < kernels.size(); ++i) {
      INFO(kernels[i]->name << " vs " << kernels[0]->name);
      const Outputs o = run(*kernels[i], p, p.pack(kernels[i]->isa));
      for (std::size_t m = 0; m < o.u.size(); ++m)
        CHECK(std::memcmp(o.u[m].data() + 16, first.u[m].data() + 16, sizeof(float) * std::size_t(o.size)) == 0);
      // The channel sums add a row's outputs tile by tile: the same bits for the same tiles (both AVX-512
      // kernels), the same value up to the float rounding of the sum for the portable tiles.
      if (kernels[i]->isa == kernels[0]->isa) {
        CHECK(std::memcmp(o.sums.data(), first.sums.data(), sizeof(float) * o.sums.size()) == 0);
      } else {
        for (std::size_t c = 0; c < o.sums.size(); ++c)
          CHECK(std::fabs(o.sums[c] - first.sums[c]) <= 1e-5f * (1.0f + std::fabs(first.sums[c])));
      }
    }
  }
}

TEST_CASE("bf16 SK branch kernels read bf16 rows as float rows holding the same values", "[kernels][bf16][grouped_conv]") {
  unsigned seed = 1300;
  for (const auto* k : runnable_kernels())
    for (const ChannelCase& cc : {kChannelCases[2], kChannelCases[4], kChannelCases[7], kChannelCases[10]}) {
      SKBranchGeometry g{2, 9, 13, cc.c, cc.groups, 2, 1 + dim_t(seed % 2), dim_t(seed % 2) * 2};
      g.cin = cc.cin, g.split_input = cc.split;
      const Problem p(g, true, false, ++seed);
      INFO(k->name << ": " << p.describe());
      std::vector<bf16_t> rows(p.x.size());
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = to_bf16(p.x[i]);
      const PackedBranchWeightsBf16 w = p.pack(k->isa);
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
    for (const ChannelCase& cc : {kChannelCases[1], kChannelCases[2], kChannelCases[6], kChannelCases[9]}) {
      SKBranchGeometry g{1, 7, 11, cc.c, cc.groups, 2, 1 + dim_t(seed % 2), 2};
      g.cin = cc.cin;
      ++seed;
      const Problem p(g, seed % 2 == 0, seed % 3 == 0, seed);
      INFO(k->name << ": " << p.describe());
      const PackedBranchWeightsBf16 w = p.pack(k->isa);
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
    for (const ChannelCase& cc : {kChannelCases[1], kChannelCases[2], kChannelCases[6], kChannelCases[9]})
      for (dim_t paths : {1, 2}) {
        SKBranchGeometry g{1 + dim_t(seed % 2), 7, 11, cc.c, cc.groups, paths, 1 + dim_t(seed % 2), 0};
        g.cin = cc.cin;
        ++seed;
        Problem p(g, seed % 2 == 0, true, seed);
        std::vector<bf16_t> res(p.res.size());
        for (std::size_t i = 0; i < res.size(); ++i) res[i] = to_bf16(p.res[i]), p.res[i] = from_bf16(res[i]);
        INFO(k->name << ": " << p.describe());
        const PackedBranchWeightsBf16 w = p.pack(k->isa);
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
