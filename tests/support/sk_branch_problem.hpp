// One SK branch convolution problem for the kernel tests of every precision (float inputs padded by
// g.pad, float weights and biases, an optional residual), the outputs a kernel writes (guarded by NaN),
// and the sweep of channel layouts (tile kinds) the bf16 and int8 kernels share.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <sknet/kernels/grouped_conv.hpp>

#include "support/random.hpp"

namespace sknet_test {

using sknet::kernels::dim_t;
using sknet::kernels::SKBranchEpilogue;
using sknet::kernels::SKBranchGeometry;

/// The problem's data: input values uniform in [lo, 1) (lo = 0: a ReLU's output), weights in
/// +-1/sqrt(fan-in), biases in +-0.1, a residual in +-1.
struct SKBranchProblem {
  SKBranchGeometry g;
  bool relu = true, residual = false;
  std::vector<float> x, res;
  std::vector<std::vector<float>> w, b;

  SKBranchProblem(const SKBranchGeometry& geometry, bool relu_on, bool with_residual, unsigned seed, float lo = -1.0f)
      : g(geometry), relu(relu_on), residual(with_residual) {
    sknet::kernels::validate(g);
    const dim_t cin = g.in_channels();
    x.assign(std::size_t(g.n * g.padded_h() * g.padded_w() * cin), 0.0f);
    const auto values = uniform_floats(x.size(), seed, lo, 1.0f);
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t y = 0; y < g.h; ++y)
        for (dim_t xx = 0; xx < g.w; ++xx)
          for (dim_t c = 0; c < cin; ++c) {
            const std::size_t i = std::size_t(((n * g.padded_h() + y + g.pad) * g.padded_w() + xx + g.pad) * cin + c);
            x[i] = values[i];
          }
    for (dim_t m = 0; m < g.paths; ++m) {
      const dim_t k = g.path_kernel(m);
      const float scale = 1.0f / std::sqrt(float(g.in_group_width() * k * k));
      w.push_back(uniform_floats(std::size_t(g.c * g.in_group_width() * k * k), seed + 1 + unsigned(m), -scale, scale));
      b.push_back(uniform_floats(std::size_t(g.c), seed + 11 + unsigned(m), -0.1f, 0.1f));
    }
    if (residual) res = uniform_floats(std::size_t(g.n * g.oh() * g.ow() * g.c), seed + 21, -1.0f, 1.0f);
  }

  std::vector<const float*> weight_ptrs() const {
    std::vector<const float*> p;
    for (const auto& v : w) p.push_back(v.data());
    return p;
  }
  std::vector<const float*> bias_ptrs() const {
    std::vector<const float*> p;
    for (const auto& v : b) p.push_back(v.data());
    return p;
  }
  /// The input value at (n, iy, ix, channel) of the unpadded map.
  float input(dim_t n, dim_t iy, dim_t ix, dim_t ch) const {
    return x[std::size_t(((n * g.padded_h() + iy + g.pad) * g.padded_w() + ix + g.pad) * g.in_channels() + ch)];
  }
  /// The reference sum of output (n, oy, ox, co) of branch m over its taps inside the map: sum of
  /// term(input value, index of the weight in w[m]) (a double product of whatever
  /// the precision makes of them); abs_sum gets the sum of |term|, terms their count.
  template <class Term>
  double tap_sum(dim_t m, dim_t n, dim_t oy, dim_t ox, dim_t co, Term term, double& abs_sum, dim_t& terms) const {
    const dim_t k = g.path_kernel(m), d = g.path_dilation(m), r = g.path_reach(m), in0 = g.path_in_begin(m);
    const dim_t gwi = g.in_group_width(), gwo = g.group_width();
    double v = 0.0;
    abs_sum = 0.0, terms = 0;
    for (dim_t ky = 0; ky < k; ++ky)
      for (dim_t kx = 0; kx < k; ++kx) {
        const dim_t iy = oy * g.stride + ky * d - r, ix = ox * g.stride + kx * d - r;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
        for (dim_t j = 0; j < gwi; ++j) {
          const double t = term(input(n, iy, ix, in0 + co / gwo * gwi + j), std::size_t(((co * gwi + j) * k + ky) * k + kx));
          v += t, abs_sum += std::fabs(t), ++terms;
        }
      }
    return v;
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

/// Outputs of one run, surrounded by NaN guards (16 floats before, 16 after).
struct SKBranchOutputs {
  dim_t size;
  std::vector<std::vector<float>> u;
  std::vector<float> sums;
  explicit SKBranchOutputs(const SKBranchGeometry& g) : size(g.n * g.oh() * g.ow() * g.c) {
    for (dim_t m = 0; m < g.paths; ++m) u.emplace_back(std::size_t(size + 32), std::numeric_limits<float>::quiet_NaN());
    sums.assign(std::size_t(g.n * g.c), 0.0f);
  }
  std::vector<float*> ptrs() {
    std::vector<float*> p;
    for (auto& v : u) p.push_back(v.data() + 16);
    return p;
  }
  /// Output `at` of branch m.
  float at(dim_t m, std::size_t at) const { return u[std::size_t(m)][at + 16]; }
  /// Whether every guard is still NaN.
  bool guards_intact() const {
    for (const auto& v : u)
      for (std::size_t i : {std::size_t(0), std::size_t(15), std::size_t(size + 16), v.size() - 1})
        if (!std::isnan(v[i])) return false;
    return true;
  }
};

/// Runs kernel k (fn(g, src, w, dst, sums, c0, c1, y0, y1, ep)) over the problem split into channel
/// ranges [0, 16), [16, c) and two row ranges (one sums buffer: the channel ranges are disjoint and the
/// rows add up in both halves).
template <class Info, class Weights>
SKBranchOutputs run_split(const Info& k, const SKBranchProblem& p, const Weights& w, const SKBranchEpilogue& ep) {
  SKBranchOutputs o(p.g);
  const auto dst = o.ptrs();
  const dim_t ccut = std::min<dim_t>(16, p.g.c), rcut = p.g.oh() / 2;
  const float* src = p.x.data();
  for (const auto& c : {std::pair<dim_t, dim_t>{0, ccut}, std::pair<dim_t, dim_t>{ccut, p.g.c}})
    for (const auto& r : {std::pair<dim_t, dim_t>{0, rcut}, std::pair<dim_t, dim_t>{rcut, p.g.oh()}})
      k.fn(p.g, src, w, dst.data(), o.sums.data(), c.first, c.second, r.first, r.second, ep);
  return o;
}

/// Checks a run's channel sums against the reference's (want[n * c + co], the sums of the reference
/// outputs, and scale, the sums of their terms' magnitudes) within the float rounding of adding the
/// outputs tile by tile: 4 (k^2 gwi M + oh ow M + 2) 2^-24 scale + 1e-6; counts (and reports up to 3)
/// failures.
inline void check_channel_sums(const SKBranchOutputs& o, const SKBranchGeometry& g, const std::vector<double>& want,
                               const std::vector<double>& scale, int& failures) {
  dim_t taps = 0;
  for (dim_t m = 0; m < g.paths; ++m) taps = std::max(taps, g.path_kernel(m) * g.path_kernel(m));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double tol =
        4.0 * double(taps * g.in_group_width() * g.paths + g.oh() * g.ow() * g.paths + 2) * std::ldexp(scale[i], -24) + 1e-6;
    if (!(std::fabs(double(o.sums[i]) - want[i]) <= tol) && failures++ < 3)
      FAIL_CHECK("channel sum " << i << ": " << o.sums[i] << " vs " << want[i]);
  }
  if (!o.guards_intact() && failures++ < 3) FAIL_CHECK("a guard around the outputs was overwritten");
}

/// The kernels of one list (pack(problem, isa): their packed weights) give the same bits for U_m at
/// SKNet-50's SK convolutions (G = 32, M = 2, dilations 1 and 2; gw 4, 8, 16, 32; maps cut down to
/// keep the portable kernel quick), and the same channel sums where the tiles are the same (the same
/// ISA), the same up to the float rounding of the sums otherwise.
template <class Info, class Pack>
void check_same_bits_at_sknet50_shapes(const std::vector<const Info*>& kernels, Pack pack, float input_lo, unsigned seed) {
  if (kernels.size() < 2) {
    WARN("only one kernel of this list runs here: nothing to compare");
    return;
  }
  // {c, h, stride}
  const dim_t shapes[][3] = {{128, 14, 1}, {256, 14, 2}, {256, 7, 1}, {512, 14, 2}, {512, 7, 1}, {1024, 7, 1}, {1024, 8, 2}};
  for (const auto& s : shapes) {
    const SKBranchGeometry g{1, s[1], s[1], s[0], 32, 2, s[2], 0};
    const SKBranchProblem p(g, true, false, ++seed, input_lo);
    INFO(p.describe());
    const SKBranchOutputs first = run_split(*kernels[0], p, pack(p, kernels[0]->isa), p.epilogue());
    for (std::size_t i = 1; i < kernels.size(); ++i) {
      INFO(kernels[i]->name << " vs " << kernels[0]->name);
      const SKBranchOutputs o = run_split(*kernels[i], p, pack(p, kernels[i]->isa), p.epilogue());
      for (std::size_t m = 0; m < o.u.size(); ++m)
        CHECK(std::memcmp(o.u[m].data() + 16, first.u[m].data() + 16, sizeof(float) * std::size_t(o.size)) == 0);
      if (kernels[i]->isa == kernels[0]->isa) {
        CHECK(std::memcmp(o.sums.data(), first.sums.data(), sizeof(float) * o.sums.size()) == 0);
      } else {
        for (std::size_t c = 0; c < o.sums.size(); ++c)
          CHECK(std::fabs(o.sums[c] - first.sums[c]) <= 1e-5f * (1.0f + std::fabs(first.sums[c])));
      }
    }
  }
}

/// {cin, c, groups, split}: channel layouts that reach every tile kind of the packed-word kernels.
struct SKChannelCase {
  dim_t cin, c, groups;
  bool split;
};
/// The cross kind (gw 2, 4, 8; c not a multiple of 16), the broadcast kind (gw 16, 32, gwi != gwo,
/// dense), split input with a section per branch.
constexpr SKChannelCase kSKChannelCases[] = {
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
    {128, 128, 2, false}, // gw 64: 4 blocks per span
};

/// The sweep both packed-word kernels run: every channel case whose per-branch input group width is a
/// multiple of `word`, 1-3 branches, stride 1 and 2, odd maps, dense and zero-bordered inputs, batch 1
/// and 2, ReLU on and off, a residual; calls check(problem) for each.
template <class Check>
void sweep_sk_branch_problems(dim_t word, unsigned seed, float input_lo, Check check) {
  const dim_t sizes[][2] = {{7, 7}, {14, 14}, {5, 9}, {13, 11}, {1, 9}};
  for (const SKChannelCase& cc : kSKChannelCases)
    for (dim_t paths = 1; paths <= 3; ++paths) {
      if (cc.split && cc.cin % paths != 0) continue;
      if ((cc.split ? cc.cin / paths : cc.cin) % cc.groups != 0) continue;
      if ((cc.split ? cc.cin / paths : cc.cin) / cc.groups % word != 0) continue;
      for (dim_t stride = 1; stride <= 2; ++stride)
        for (const auto& hw : sizes) {
          ++seed;
          if (hw[0] == 14 && seed % 3 != 0) continue;  // keep the double reference quick
          const dim_t pad = seed % 3 == 0 ? 0 : paths + dim_t(seed % 2);
          SKBranchGeometry g{1 + dim_t(seed % 5 == 0), hw[0], hw[1], cc.c, cc.groups, paths, stride, pad};
          g.cin = cc.cin, g.split_input = cc.split;
          check(SKBranchProblem(g, seed % 4 != 1, seed % 3 == 1, seed, input_lo));
        }
    }
}

}  // namespace sknet_test
