// The SK branch convolution kernels (kernels/grouped_conv.hpp) against the reference conv2d_nhwc
// + bias + ReLU per branch, and the per-channel sums of U = sum_m U_m, for every kernel of the kernel
// list (kernels/kernel_list.hpp) whose ISA this CPU runs (the others are reported as skipped). Sweep: channel counts around the vector widths, every group width in {1,2,4,8,16,32}
// that divides them plus other divisors, 1-3 branches, stride 1 and 2, several map sizes, batch 1 and
// 2, pad = 0 (dense input), M and M + 1 in turn; then channel- and row-range splits against the whole, the generic tiles
// (stride 3, 4 branches), the public dispatch and the packing checks. Then the general geometries against the naive
// double-precision NCHW oracle (tests/reference/naive.hpp): input channels != output channels both ways, split
// input, dense (G = 1) and grouped convolutions with different input and output group widths, 1-3 branches,
// strides 1-3, odd map sizes, ReLU on and off, a residual (also in place), the multi-block tiles, channel and row
// ranges, NaN propagation and the invalid geometries; one path of stride 1 writing over its own input (bit for
// bit the separate-output result) and the overlaps of an output with the input that the kernel refuses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <cstdint>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>
#include <sknet/kernels/reference/conv2d.hpp>

#include "reference/naive.hpp"
#include "support/compare.hpp"
#include "support/random.hpp"

namespace {

using namespace sknet::kernels;
using sknet_test::kFloatTolerance;

struct Variant {
  std::string name;
  Isa isa;
  SKBranchKernelFn kernel;
  /// The kernel, with the default epilogue (ReLU, no residual) unless one is given.
  void fn(const SKBranchGeometry& g, const float* src, const PackedBranchWeights& w, float* const* dst,
          float* channel_sums, dim_t c_begin, dim_t c_end, dim_t oy_begin, dim_t oy_end,
          const SKBranchEpilogue& epilogue = {}) const {
    kernel(g, src, w, dst, channel_sums, c_begin, c_end, oy_begin, oy_end, epilogue);
  }
};

/// Every SK branch kernel of the kernel list that this CPU runs; one whose ISA it lacks is reported
/// (once) and skipped.
std::vector<Variant> variants() {
  std::vector<Variant> v;
  const KernelList& list = kernel_list();
  for (int i = 0; i < list.sk_branches_count; ++i) {
    const SKBranchKernelInfo& k = list.sk_branches[i];
    if (cpu_supports(k.isa)) {
      v.push_back({k.name, k.isa, k.fn});
    } else {
      static bool warned = false;
      if (!warned) WARN("skipped: this CPU lacks " << isa_name(k.isa) << " (" << k.name << ")");
      warned = true;
    }
  }
  return v;
}


constexpr float kSentinel = 1234.5f;
constexpr std::size_t kGuard = 64;  // sentinel floats after every output buffer

/// One problem: the unpadded input, its padded copy (the input itself when pad = 0), weights and biases per branch, and the expected
/// U_m and channel sums.
struct Problem {
  SKBranchGeometry g;
  std::vector<float> x, padded;
  std::vector<std::vector<float>> weights, bias, expected;
  std::vector<double> expected_sums;

  explicit Problem(const SKBranchGeometry& geom, unsigned seed) : g(geom) {
    const dim_t C = g.c, gw = g.group_width(), M = g.paths;
    x = sknet_test::uniform_floats(std::size_t(g.n * g.h * g.w * C), seed, -1.0f, 1.0f);
    padded.assign(std::size_t(g.n * g.padded_h() * g.padded_w() * C), 0.0f);
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t y = 0; y < g.h; ++y)
        std::copy_n(x.begin() + ((n * g.h + y) * g.w) * C, g.w * C,
                    padded.begin() + ((n * g.padded_h() + y + g.pad) * g.padded_w() + g.pad) * C);
    const std::size_t out = std::size_t(g.n * g.oh() * g.ow() * C);
    expected_sums.assign(std::size_t(g.n * C), 0.0);
    for (dim_t m = 0; m < M; ++m) {
      weights.push_back(sknet_test::uniform_floats(std::size_t(C * gw * 9), seed + 100 + unsigned(m), -0.5f, 0.5f));
      bias.push_back(sknet_test::uniform_floats(std::size_t(C), seed + 200 + unsigned(m), -0.5f, 0.5f));
      ConvGeometry cg;
      cg.n = g.n, cg.groups = g.groups, cg.ic = C, cg.ih = g.h, cg.iw = g.w;
      cg.oc = C, cg.oh = g.oh(), cg.ow = g.ow(), cg.kh = 3, cg.kw = 3;
      cg.sh = cg.sw = g.stride;
      cg.dh = cg.dw = cg.ph = cg.pw = m + 1;
      std::vector<float> u(out);
      reference::conv2d_nhwc(cg, x.data(), weights.back().data(), bias.back().data(), u.data());
      for (std::size_t i = 0; i < out; ++i) {
        u[i] = std::max(u[i], 0.0f);
        expected_sums[i / std::size_t(g.oh() * g.ow() * C) * std::size_t(C) + i % std::size_t(C)] += u[i];
      }
      expected.push_back(std::move(u));
    }
  }
  std::vector<const float*> weight_ptrs() const {
    std::vector<const float*> p;
    for (const auto& w : weights) p.push_back(w.data());
    return p;
  }
  std::vector<const float*> bias_ptrs() const {
    std::vector<const float*> p;
    for (const auto& b : bias) p.push_back(b.data());
    return p;
  }
  PackedBranchWeights pack(Isa isa) const {
    const auto w = weight_ptrs(), b = bias_ptrs();
    return PackedBranchWeights(g, w.data(), b.data(), isa);
  }
};

/// Output buffers (each followed by a sentinel guard) and channel sums.
struct Outputs {
  std::vector<std::vector<float>> u;
  std::vector<float> sums;
  explicit Outputs(const SKBranchGeometry& g) {
    const std::size_t out = std::size_t(g.n * g.oh() * g.ow() * g.c);
    for (dim_t m = 0; m < g.paths; ++m) u.emplace_back(out + kGuard, kSentinel);
    sums.assign(std::size_t(g.n * g.c), 0.0f);
  }
  std::vector<float*> ptrs() {
    std::vector<float*> p;
    for (auto& v : u) p.push_back(v.data());
    return p;
  }
  std::vector<float> branch(std::size_t m) const { return {u[m].begin(), u[m].end() - kGuard}; }
  bool guards_intact() const {
    for (const auto& v : u)
      if (!std::all_of(v.end() - kGuard, v.end(), [](float f) { return f == kSentinel; })) return false;
    return true;
  }
};

std::string describe(const SKBranchGeometry& g) {
  return "n=" + std::to_string(g.n) + " h=" + std::to_string(g.h) + " w=" + std::to_string(g.w) +
         " c=" + std::to_string(g.c) + " groups=" + std::to_string(g.groups) + " (gw=" +
         std::to_string(g.group_width()) + ") paths=" + std::to_string(g.paths) +
         " stride=" + std::to_string(g.stride) + " pad=" + std::to_string(g.pad) +
         " cin=" + std::to_string(g.in_channels()) + (g.split_input ? " split" : "");
}

/// Runs `v` over the whole problem and checks every branch, the sums and the guards.
void check_variant(const Problem& p, const Variant& v) {
  INFO(v.name << ": " << describe(p.g));
  const PackedBranchWeights w = p.pack(v.isa);
  Outputs o(p.g);
  const auto dst = o.ptrs();
  v.fn(p.g, p.padded.data(), w, dst.data(), o.sums.data(), 0, p.g.c, 0, p.g.oh());
  for (std::size_t m = 0; m < p.expected.size(); ++m) {
    const auto u = o.branch(m);
    SKNET_CHECK_CLOSE(u, p.expected[m], kFloatTolerance, "U_" + std::to_string(m + 1));
  }
  SKNET_CHECK_CLOSE(o.sums, p.expected_sums, kFloatTolerance, "channel sums");
  CHECK(o.guards_intact());
}

std::vector<dim_t> group_widths(dim_t c) {
  std::vector<dim_t> gws;
  for (dim_t gw : {1, 2, 4, 8, 16, 32})
    if (c % gw == 0) gws.push_back(gw);
  if (c <= 48)  // every other divisor too: the broadcast kernel over spans that straddle blocks
    for (dim_t gw = 3; gw <= c; ++gw)
      if (c % gw == 0 && std::find(gws.begin(), gws.end(), gw) == gws.end()) gws.push_back(gw);
  return gws;
}

}  // namespace

TEST_CASE("sk_branches_conv3x3 matches the reference over the sweep", "[kernels][grouped_conv]") {
  const dim_t c = GENERATE(4, 8, 12, 16, 17, 32, 48, 64, 128);
  const auto gws = group_widths(c);
  const auto vs = variants();
  const dim_t sizes[][2] = {{1, 1}, {2, 3}, {7, 9}, {13, 11}, {14, 14}};
  unsigned seed = unsigned(c) * 1000;
  for (const dim_t gw : gws)
    for (dim_t paths = 1; paths <= 3; ++paths)
      for (dim_t stride = 1; stride <= 2; ++stride)
        for (const auto& hw : sizes)
          for (dim_t n = 1; n <= 2; ++n) {
            // Big shapes only for a subset, to keep the double-precision reference quick.
            if (c >= 64 && hw[0] >= 13 && (paths == 1 || n == 2)) continue;
            const dim_t pad = seed % 3 == 0 ? 0 : paths + dim_t(seed % 3) - 1;  // dense, M, M + 1 in turn
            SKBranchGeometry g{n, hw[0], hw[1], c, c / gw, paths, stride, pad};
            const Problem p(g, ++seed);
            for (const auto& v : vs) check_variant(p, v);
          }
}

TEST_CASE("sk_branches_conv3x3 depthwise (G = C) at SK-ShuffleNetV2's channel counts", "[kernels][grouped_conv]") {
  // The vertical kind with its stride- and dilation-specialised tiles: 58, 116 (partial last blocks on
  // every ISA) and 24 channels, maps from 1x1 to 28x28 (full 14-pixel tiles, 2-row tiles and row ends),
  // strides 1 and 2, M = 1..3, dense and padded input.
  // 232 channels (M = 2 only): several block groups per call (the depthwise ring is kept L1-sized),
  // whole and partial blocks (plain and masked stores).
  const auto vs = variants();
  const dim_t sizes[][2] = {{1, 1}, {7, 7}, {14, 14}, {15, 13}, {28, 28}};
  unsigned seed = 50000;
  for (const dim_t c : {24, 58, 116, 232})
    for (dim_t paths = 1; paths <= 3; ++paths)
      for (dim_t stride = 1; stride <= 2; ++stride)
        for (const auto& hw : sizes) {
          ++seed;
          if (c == 116 && hw[0] == 28 && paths != 2) continue;  // keep the double reference quick
          if (c == 232 && (hw[0] == 28 || paths != 2)) continue;
          const dim_t pad = seed % 3 == 0 ? 0 : paths + dim_t(seed % 3) - 1;
          SKBranchGeometry g{1 + dim_t(seed % 4 == 0), hw[0], hw[1], c, c, paths, stride, pad};
          const Problem p(g, seed);
          for (const auto& v : vs) check_variant(p, v);
        }
}

TEST_CASE("sk_branches_conv3x3 generic tiles: stride 3, four branches, 7 and 16 wide", "[kernels][grouped_conv]") {
  const auto vs = variants();
  unsigned seed = 77;
  for (const dim_t c : {16, 32, 48})
    for (const dim_t gw : {1, 4, 8, 16})
      for (const auto& sp : {std::pair<dim_t, dim_t>{3, 2}, {1, 4}, {2, 4}, {3, 4}})
        for (const dim_t w : {7, 16}) {  // 7: the 2-row avx512 tiles
          SKBranchGeometry g{1, 11, w * sp.first - sp.first + 1, c, c / gw, sp.second, sp.first, sp.second};
          const Problem p(g, ++seed);
          for (const auto& v : vs) check_variant(p, v);
        }
}

TEST_CASE("sk_branches_conv3x3 on power-of-two widths (avx512: tiles of 16 and 8 pixels, 2 blocks x 8)",
          "[kernels][grouped_conv]") {
  // Output rows 8, 16 and 32 wide (CIFAR's maps), strides 1 and 2, M = 2 and 3 (dilations 1-3), every
  // group width kind, one or several blocks per span.
  const auto vs = variants();
  unsigned seed = 300;
  for (const dim_t c : {32, 128})
    for (const dim_t gw : {1, 4, 8, 16, 32, 64})
      for (const dim_t stride : {1, 2})
        for (const dim_t paths : {2, 3})
          for (const dim_t ow : {8, 16, 32}) {
            if (gw > c) continue;
            SKBranchGeometry g{1, 3 * stride, ow * stride - stride + 1, c, c / gw, paths, stride, paths};
            const Problem p(g, ++seed);
            for (const auto& v : vs) check_variant(p, v);
          }
}

TEST_CASE("sk_branches_conv3x3 on wide rows (several tiles per kernel call)", "[kernels][grouped_conv]") {
  // A kernel call runs every tile of one width in a row (SKTile::span), on both rows of a pair
  // (span_rows): rows of 3-4 widest tiles plus narrower ends, odd heights (a last single row), batch 2,
  // depthwise (58 channels: a partial last block), in-lane, and wide groups (2 blocks per tile), against
  // the reference; the channel sums also per block of 16 channels, which must equal the whole bit for bit.
  const auto vs = variants();
  unsigned seed = 900;
  for (const dim_t c : {58, 64})
    for (const dim_t gw : {1, 4, 32})
      for (const dim_t stride : {1, 2})
        for (const dim_t ow : {42, 47, 56}) {
          if (c % gw) continue;
          SKBranchGeometry g{2, 2 * stride + 1, ow * stride - stride + 1, c, c / gw, 2, stride, dim_t(seed % 2) * 2};
          const Problem p(g, ++seed);
          for (const auto& v : vs) {
            check_variant(p, v);
            INFO(v.name << ": " << describe(g));
            const PackedBranchWeights w = p.pack(v.isa);
            Outputs whole(g), by_channels(g);
            auto d0 = whole.ptrs(), d1 = by_channels.ptrs();
            v.fn(g, p.padded.data(), w, d0.data(), whole.sums.data(), 0, c, 0, g.oh());
            for (dim_t c0 = 0; c0 < c; c0 += 16)
              v.fn(g, p.padded.data(), w, d1.data(), by_channels.sums.data(), c0, std::min(c0 + 16, c), 0, g.oh());
            CHECK(by_channels.u == whole.u);
            CHECK(by_channels.sums == whole.sums);
          }
        }
}

TEST_CASE("sk_branches_conv3x3 channel and row splits equal the whole", "[kernels][grouped_conv]") {
  const auto vs = variants();
  unsigned seed = 500;
  for (const dim_t c : {48, 64, 128})
    for (const dim_t gw : {1, 4, 8, 16, 32, 3})
      for (const dim_t stride : {1, 2}) {
        if (c % gw) continue;
        SKBranchGeometry g{2, 13, 14, c, c / gw, 2, stride, 2};
        const Problem p(g, ++seed);
        for (const auto& v : vs) {
          INFO(v.name << ": " << describe(g));
          const PackedBranchWeights w = p.pack(v.isa);
          Outputs whole(g), by_channels(g), by_rows(g);
          auto d0 = whole.ptrs(), d1 = by_channels.ptrs(), d2 = by_rows.ptrs();
          v.fn(g, p.padded.data(), w, d0.data(), whole.sums.data(), 0, c, 0, g.oh());
          // Channel blocks of 16, in reverse order, sharing one channel_sums.
          for (dim_t c0 = (c - 1) / 16 * 16; c0 >= 0; c0 -= 16)
            v.fn(g, p.padded.data(), w, d1.data(), by_channels.sums.data(), c0, std::min(c0 + 16, c), 0, g.oh());
          // Rows in three uneven parts, each with its own channel_sums.
          const dim_t cut[] = {0, 1, g.oh() / 2 + 1, g.oh()};
          std::vector<float> row_sums(std::size_t(g.n * c), 0.0f);
          for (int r = 0; r < 3; ++r) {
            std::fill(by_rows.sums.begin(), by_rows.sums.end(), 0.0f);
            v.fn(g, p.padded.data(), w, d2.data(), by_rows.sums.data(), 0, c, cut[r], cut[r + 1]);
            for (std::size_t i = 0; i < row_sums.size(); ++i) row_sums[i] += by_rows.sums[i];
          }
          for (std::size_t m = 0; m < 2; ++m) {
            CHECK(by_channels.u[m] == whole.u[m]);
            CHECK(by_rows.u[m] == whole.u[m]);
            SKNET_CHECK_CLOSE(whole.branch(m), p.expected[m], kFloatTolerance, "U_" + std::to_string(m + 1));
          }
          CHECK(by_channels.sums == whole.sums);
          SKNET_CHECK_CLOSE(row_sums, p.expected_sums, kFloatTolerance, "row-split channel sums");
        }
      }
}

TEST_CASE("sk_branches_conv3x3 public dispatch and null channel sums", "[kernels][grouped_conv]") {
  SKBranchGeometry g{1, 9, 10, 64, 8, 2, 1, 2};
  const Problem p(g, 9);
  const auto wp = p.weight_ptrs(), bp = p.bias_ptrs();
  const PackedBranchWeights w(g, wp.data(), bp.data());
  CHECK(w.isa() == active_isa());
  INFO(isa_name(w.isa()));
  Outputs o(g);
  auto d = o.ptrs();
  sk_branches_conv3x3(g, p.padded.data(), w, d.data(), o.sums.data());
  SKNET_CHECK_CLOSE(o.branch(0), p.expected[0], kFloatTolerance, "U_1");
  SKNET_CHECK_CLOSE(o.branch(1), p.expected[1], kFloatTolerance, "U_2");
  SKNET_CHECK_CLOSE(o.sums, p.expected_sums, kFloatTolerance, "channel sums");
  Outputs o2(g);
  auto d2 = o2.ptrs();
  sk_branches_conv3x3(g, p.padded.data(), w, d2.data(), nullptr, 0, 32);
  sk_branches_conv3x3(g, p.padded.data(), w, d2.data(), nullptr, 32, 64);
  CHECK(o2.u == o.u);
  CHECK(std::all_of(o2.sums.begin(), o2.sums.end(), [](float f) { return f == 0.0f; }));

  const PackedBranchWeights copy = w;
  CHECK(copy.size() == w.size());
  CHECK(std::equal(copy.weights(0, 0), copy.weights(0, 0) + copy.size(), w.weights(0, 0)));
}

TEST_CASE("PackedBranchWeights rejects invalid geometries", "[kernels][grouped_conv]") {
  const std::vector<float> wt(16 * 16 * 9), b(16);
  const float* wp[] = {wt.data(), wt.data(), wt.data()};
  const float* bp[] = {b.data(), b.data(), b.data()};
  CHECK_THROWS_AS(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 3, 2, 1, 2}, wp, bp), KernelError);
  CHECK_THROWS_AS(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 1, 2, 1, 1}, wp, bp), KernelError);
  CHECK_NOTHROW(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 1, 2, 1, 0}, wp, bp));  // pad 0: dense input
  CHECK_THROWS_AS(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 1, 0, 1, 1}, wp, bp), KernelError);
  CHECK_THROWS_AS(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 1, 2, 0, 2}, wp, bp), KernelError);
  CHECK_THROWS_AS(PackedBranchWeights(SKBranchGeometry{1, 0, 4, 16, 1, 2, 1, 2}, wp, bp), KernelError);
  CHECK_NOTHROW(PackedBranchWeights(SKBranchGeometry{1, 4, 4, 16, 16, 3, 2, 3}, wp, bp));
}

TEST_CASE("sk_branches_conv3x3 propagates NaN through the ReLU", "[kernels][grouped_conv]") {
  // PyTorch: relu(NaN) = NaN. A NaN input value reaches every output of its group whose window holds it.
  SKBranchGeometry g{1, 6, 7, 32, 4, 2, 1, 0};
  Problem p(g, 11);
  const dim_t y = 2, x = 3, k = 9;  // channel 9: group 1 (channels 8..15 with gw = 8)
  p.padded[std::size_t((y * g.w + x) * g.c + k)] = std::numeric_limits<float>::quiet_NaN();
  for (const Variant& v : variants()) {
    INFO(v.name);
    const PackedBranchWeights w = p.pack(v.isa);
    Outputs o(g);
    auto d = o.ptrs();
    v.fn(g, p.padded.data(), w, d.data(), o.sums.data(), 0, g.c, 0, g.oh());
    for (dim_t m = 0; m < g.paths; ++m) {
      const auto u = o.branch(m);
      for (dim_t c = 0; c < g.c; ++c) {
        const bool same_group = c / 8 == k / 8;
        CHECK(std::isnan(u[std::size_t((y * g.w + x) * g.c + c)]) == same_group);
      }
    }
    CHECK(std::isnan(o.sums[std::size_t(k)]));
    CHECK(std::isfinite(o.sums[0]));
  }
}

namespace {

/// A general problem (any cin, split input, per-branch kernel sizes and dilations, epilogue) with its
/// expected outputs from the naive double oracle: per branch, conv2d of the branch's input channels
/// (NCHW) + bias, + residual, ReLU. With in_offset > 0 the branches read channels from in_offset on
/// (the kernel gets input() = the buffer + in_offset; for geometries with path_cin).
struct GeneralProblem {
  SKBranchGeometry g;
  dim_t in_offset = 0;
  SKBranchEpilogue epilogue;
  std::vector<float> padded, residual;
  std::vector<std::vector<float>> weights, bias;
  std::vector<std::vector<double>> expected;  // NHWC per branch
  std::vector<double> expected_sums;

  GeneralProblem(const SKBranchGeometry& geom, bool relu, bool with_residual, unsigned seed, dim_t offset = 0)
      : g(geom), in_offset(offset) {
    namespace naive = sknet_test::naive;
    const dim_t C = g.c, Cin = g.in_channels(), M = g.paths, OH = g.oh(), OW = g.ow();
    const dim_t cin = g.path_in_channels(), gwi = g.in_group_width();
    const std::vector<float> x = sknet_test::uniform_floats(std::size_t(g.n * g.h * g.w * Cin), seed, -1.0f, 1.0f);
    padded.assign(std::size_t(g.n * g.padded_h() * g.padded_w() * Cin), 0.0f);
    for (dim_t n = 0; n < g.n; ++n)
      for (dim_t y = 0; y < g.h; ++y)
        std::copy_n(x.begin() + ((n * g.h + y) * g.w) * Cin, g.w * Cin,
                    padded.begin() + ((n * g.padded_h() + y + g.pad) * g.padded_w() + g.pad) * Cin);
    const std::size_t out = std::size_t(g.n * OH * OW * C);
    if (with_residual) residual = sknet_test::uniform_floats(out, seed + 300, -1.0f, 1.0f);
    epilogue.relu = relu;
    epilogue.residual = with_residual ? residual.data() : nullptr;
    expected_sums.assign(std::size_t(g.n * C), 0.0);
    for (dim_t m = 0; m < M; ++m) {
      // Weights shrink with the reduction length, so outputs stay about 1 whatever gwi (the float
      // rounding of a K-term sum grows with its terms).
      const float range = 0.5f * std::min(1.0f, float(std::sqrt(8.0 / double(gwi))));
      const dim_t kk = g.path_kernel(m);
      weights.push_back(sknet_test::uniform_floats(std::size_t(C * gwi * kk * kk), seed + 100 + unsigned(m), -range * 3.0f / float(kk),
                                range * 3.0f / float(kk)));
      bias.push_back(sknet_test::uniform_floats(std::size_t(C), seed + 200 + unsigned(m), -0.5f, 0.5f));
      naive::Array in({g.n, cin, g.h, g.w}), wt({C, gwi, kk, kk}), b({C});
      for (dim_t n = 0; n < g.n; ++n)
        for (dim_t k = 0; k < cin; ++k)
          for (dim_t y = 0; y < g.h; ++y)
            for (dim_t xx = 0; xx < g.w; ++xx)
              in.at(n, k, y, xx) =
                  x[std::size_t(((n * g.h + y) * g.w + xx) * Cin + in_offset + g.path_in_begin(m) + k)];
      for (std::size_t i = 0; i < wt.data.size(); ++i) wt.data[i] = weights.back()[i];
      for (dim_t k = 0; k < C; ++k) b.data[std::size_t(k)] = bias.back()[std::size_t(k)];
      const int d = int(g.path_dilation(m)), r = int(g.path_reach(m)), s = int(g.stride);
      const naive::Array u = naive::conv2d(in, wt, &b, s, s, r, r, d, d, int(g.groups));
      std::vector<double> e(out);
      for (dim_t n = 0; n < g.n; ++n)
        for (dim_t y = 0; y < OH; ++y)
          for (dim_t xx = 0; xx < OW; ++xx)
            for (dim_t k = 0; k < C; ++k) {
              const std::size_t i = std::size_t(((n * OH + y) * OW + xx) * C + k);
              double v = u.at(n, k, y, xx) + (with_residual ? double(residual[i]) : 0.0);
              if (relu) v = v > 0.0 ? v : (v == v ? 0.0 : v);
              e[i] = v;
              expected_sums[std::size_t(n * C + k)] += v;
            }
      expected.push_back(std::move(e));
    }
  }
  PackedBranchWeights pack(Isa isa) const {
    std::vector<const float*> w, b;
    for (const auto& v : weights) w.push_back(v.data());
    for (const auto& v : bias) b.push_back(v.data());
    return PackedBranchWeights(g, w.data(), b.data(), isa);
  }
  /// What the kernel reads: the padded input from the branches' first channel.
  const float* input() const { return padded.data() + in_offset; }
};

std::string describe(const GeneralProblem& p) {
  std::string paths;
  for (dim_t m = 0; m < p.g.paths; ++m)
    paths += " " + std::to_string(p.g.path_kernel(m)) + "x" + std::to_string(p.g.path_kernel(m)) + "/D" +
             std::to_string(p.g.path_dilation(m));
  if (p.g.path_cin) paths += " path_cin=" + std::to_string(p.g.path_cin) + "@" + std::to_string(p.in_offset);
  return describe(p.g) + paths + (p.epilogue.relu ? " relu" : " no-relu") + (p.epilogue.residual ? " residual" : "");
}

/// Channel sums add up to 2 x 13 x 14 outputs of either sign without the ReLU: the float rounding of
/// that sum is about its count x the outputs' size x 2^-24, beyond kFloatTolerance where they cancel.
constexpr sknet_test::Tolerance kSumTolerance{1e-4, 1e-4};

/// Runs `v` over the whole general problem and checks every branch, the sums and the guards.
void check_general(const GeneralProblem& p, const Variant& v) {
  INFO(v.name << ": " << describe(p));
  const PackedBranchWeights w = p.pack(v.isa);
  Outputs o(p.g);
  const auto dst = o.ptrs();
  v.fn(p.g, p.input(), w, dst.data(), o.sums.data(), 0, p.g.c, 0, p.g.oh(), p.epilogue);
  for (std::size_t m = 0; m < p.expected.size(); ++m)
    SKNET_CHECK_CLOSE(o.branch(m), p.expected[m], kFloatTolerance, "U_" + std::to_string(m + 1));
  SKNET_CHECK_CLOSE(o.sums, p.expected_sums, kSumTolerance, "channel sums");
  CHECK(o.guards_intact());
}

/// {cin, c, groups, split}: dense and grouped, cin below and above c, group widths gwi != gwo, c not a
/// multiple of 8 or 16.
struct ChannelCase {
  dim_t cin, c, groups;
  bool split;
};
constexpr ChannelCase kChannelCases[] = {
    {3, 32, 1, false},   // a deep stem's first conv
    {32, 64, 1, false},  // cin < c, dense
    {64, 16, 1, false},  // cin > c, dense
    {24, 17, 1, false},  // c not a multiple of 8
    {64, 64, 1, true},   // split, dense: 32 -> 64 per branch (skresnet18 layer 1, halved)
    {48, 36, 1, true},   // split, c not a multiple of 8 or 16
    {8, 32, 4, false},   // grouped, gwi = 2 -> gwo = 8
    {64, 20, 2, false},  // grouped, gwi = 32 -> gwo = 10
    {48, 32, 2, true},   // split and grouped: gwi = 24 / M -> gwo = 16
    {64, 32, 8, true},   // split, gwi == gwo = 4 with two branches (in-lane kind, one section per branch)
    {64, 32, 32, true},  // split depthwise (vertical kind)
    {32, 16, 2, true},   // split, gwi == gwo = 8 with two branches (cross kind on avx512)
};

}  // namespace

TEST_CASE("sk_branches_conv3x3 general geometries match the naive double oracle", "[kernels][grouped_conv]") {
  const auto vs = variants();
  const dim_t sizes[][2] = {{1, 9}, {9, 1}, {5, 7}, {7, 14}, {13, 11}};
  unsigned seed = 9000;
  for (const ChannelCase& cc : kChannelCases)
    for (dim_t paths = 1; paths <= 3; ++paths) {
      if (cc.split && cc.cin % paths != 0) continue;
      if ((cc.split ? cc.cin / paths : cc.cin) % cc.groups != 0) continue;
      for (dim_t stride = 1; stride <= 3; ++stride)
        for (const auto& hw : sizes) {
          ++seed;
          if (stride == 3 && hw[0] * hw[1] > 50) continue;  // stride 3: the generic tiles, small maps
          const dim_t pad = seed % 3 == 0 ? 0 : paths + dim_t(seed % 3) - 1;
          SKBranchGeometry g{1 + dim_t(seed % 5 == 0), hw[0], hw[1], cc.c, cc.groups, paths, stride, pad};
          g.cin = cc.cin, g.split_input = cc.split;
          const GeneralProblem p(g, seed % 2 == 0, seed % 4 < 2, seed);
          for (const auto& v : vs) check_general(p, v);
        }
    }
}

TEST_CASE("sk_branches_conv3x3 per-branch kernel sizes and dilations match the naive double oracle",
          "[kernels][grouped_conv][ablations]") {
  // The paper's ablations: true 5x5 and 7x7 branches (specialised tiles at stride 1 and 2), other
  // dilations, M = 3 with {3, 5, 7}, 1x1 and dilated 5x5 branches (generic tiles), over every
  // input-vector kind (in-lane, cross, vertical, broadcast with shared and straddling spans), split
  // input, dense and padded inputs, odd maps, ReLU on and off, a residual, and channel / row ranges.
  const auto vs = variants();
  struct Paths {
    std::vector<dim_t> kernel, dilation;
  };
  const Paths path_sets[] = {{{3, 5}, {1, 1}},       {{3, 7}, {1, 1}}, {{3, 5, 7}, {1, 1, 1}}, {{3, 3}, {1, 3}},
                             {{3, 3, 3}, {1, 2, 3}}, {{1, 5}, {1, 2}}, {{7}, {1}},             {{5, 3}, {1, 4}}};
  struct Channels {
    dim_t cin, c, groups;
    bool split;
  };
  const Channels channel_cases[] = {
      {32, 32, 8, false},   // gw = 4: in-lane
      {32, 32, 4, false},   // gw = 8: cross on avx512, broadcast on avx2
      {48, 48, 48, false},  // depthwise: vertical
      {64, 64, 4, false},   // gw = 16: broadcast
      {24, 36, 6, false},   // gwi = 4 -> gwo = 6: broadcast over straddling spans
      {32, 64, 1, false},   // dense: multi-block tiles
      {48, 32, 4, true},    // split input
  };
  const dim_t sizes[][2] = {{1, 9}, {5, 7}, {7, 14}, {13, 11}, {16, 15}};
  unsigned seed = 31000;
  for (const Paths& ps : path_sets)
    for (const Channels& cc : channel_cases) {
      const dim_t paths = dim_t(ps.kernel.size());
      if (cc.split && (cc.cin % paths != 0 || (cc.cin / paths) % cc.groups != 0)) continue;
      for (dim_t stride = 1; stride <= 2; ++stride)
        for (const auto& hw : sizes) {
          ++seed;
          SKBranchGeometry g{1 + dim_t(seed % 3 == 0), hw[0], hw[1], cc.c, cc.groups, paths, stride, 0};
          g.cin = cc.cin, g.split_input = cc.split;
          for (dim_t m = 0; m < paths; ++m)
            g.kernel[std::size_t(m)] = ps.kernel[std::size_t(m)], g.dilation[std::size_t(m)] = ps.dilation[std::size_t(m)];
          g.pad = seed % 3 == 0 ? 0 : g.max_reach() + dim_t(seed % 3) - 1;
          const GeneralProblem p(g, seed % 2 == 0, seed % 4 < 2, seed);
          for (const auto& v : vs) {
            check_general(p, v);
            if (hw[0] != 13) continue;
            // Channel blocks of 16 and uneven row ranges give the very same floats as the whole call.
            INFO(v.name << ": " << describe(p) << ", ranges");
            const PackedBranchWeights w = p.pack(v.isa);
            Outputs whole(g), parts(g);
            auto d0 = whole.ptrs(), d1 = parts.ptrs();
            v.fn(g, p.input(), w, d0.data(), nullptr, 0, g.c, 0, g.oh(), p.epilogue);
            const dim_t cut[] = {0, 1, g.oh() / 2 + 1, g.oh()};
            for (dim_t c0 = (g.c - 1) / 16 * 16; c0 >= 0; c0 -= 16)
              for (int r = 0; r < 3; ++r)
                v.fn(g, p.input(), w, d1.data(), nullptr, c0, std::min(c0 + 16, g.c), cut[r], cut[r + 1], p.epilogue);
            for (std::size_t m = 0; m < std::size_t(paths); ++m) CHECK(parts.u[m] == whole.u[m]);
          }
        }
    }
}

TEST_CASE("sk_branches_conv3x3 runs one branch of a wider input (path_cin)", "[kernels][grouped_conv][ablations]") {
  // One branch at a time, as an SK convolution whose branches have different groups runs them: the
  // branch reads path_cin channels from the caller's offset into pixels of cin channels.
  const auto vs = variants();
  unsigned seed = 32000;
  for (const dim_t offset : {0, 16, 32})
    for (const dim_t kernel : {3, 5, 7}) {
      SKBranchGeometry g{2, 9, 11, 32, 8, 1, 1 + dim_t(kernel == 5), 0};
      g.cin = 48, g.path_cin = 16, g.kernel[0] = kernel, g.dilation[0] = kernel == 3 ? 2 : 1;
      const GeneralProblem p(g, true, false, ++seed, offset);
      for (const auto& v : vs) check_general(p, v);
    }
}

TEST_CASE("sk_branches_conv3x3 dense convolutions: multi-block tiles, ranges equal the whole",
          "[kernels][grouped_conv]") {
  // Dense convolutions whose blocks share one input span: the multi-block tiles (with one-block tiles
  // over the same pixels for a block left over, and the tiles that finish their rows), wide inputs on
  // small maps. Channel ranges of 16 (which split the multi-block tiles) and row ranges must give the
  // very same floats as the whole call, channel sums included.
  const auto vs = variants();
  struct Case {
    dim_t cin, c, paths, stride, h, w;
    bool split;
  };
  const Case cases[] = {
      {32, 64, 2, 1, 14, 14, true},    // skresnet18 layer 1, halved
      {32, 96, 2, 2, 13, 15, true},    // stride 2, odd map
      {64, 64, 1, 1, 9, 23, false},    // a basic block's conv2
      {512, 64, 1, 1, 7, 7, false},    // a wide input on a small map
      {1024, 48, 2, 1, 5, 7, true},    // the same with two sections, c = 3 blocks of 16
      {40, 80, 1, 2, 11, 16, false},   // stride 2, c = 5 blocks of 16
      {72, 32, 1, 2, 9, 11, false},    // stride 2, 4 whole chunks of input and a partial one (pixel-major copy)
  };
  unsigned seed = 700;
  for (const Case& k : cases)
    for (const bool residual : {false, true}) {
      SKBranchGeometry g{2, k.h, k.w, k.c, 1, k.paths, k.stride, 0};
      g.cin = k.cin, g.split_input = k.split;
      const GeneralProblem p(g, !residual, residual, ++seed);
      for (const auto& v : vs) {
        INFO(v.name << ": " << describe(p));
        const PackedBranchWeights w = p.pack(v.isa);
        Outputs whole(g), by_channels(g), by_rows(g);
        auto d0 = whole.ptrs(), d1 = by_channels.ptrs(), d2 = by_rows.ptrs();
        v.fn(g, p.padded.data(), w, d0.data(), whole.sums.data(), 0, g.c, 0, g.oh(), p.epilogue);
        for (dim_t c0 = (g.c - 1) / 16 * 16; c0 >= 0; c0 -= 16)
          v.fn(g, p.padded.data(), w, d1.data(), by_channels.sums.data(), c0, std::min(c0 + 16, g.c), 0, g.oh(),
               p.epilogue);
        const dim_t cut[] = {0, 1, g.oh() / 2 + 1, g.oh()};
        std::vector<float> row_sums(std::size_t(g.n * g.c), 0.0f);
        for (int r = 0; r < 3; ++r) {
          std::fill(by_rows.sums.begin(), by_rows.sums.end(), 0.0f);
          v.fn(g, p.padded.data(), w, d2.data(), by_rows.sums.data(), 0, g.c, cut[r], cut[r + 1], p.epilogue);
          for (std::size_t i = 0; i < row_sums.size(); ++i) row_sums[i] += by_rows.sums[i];
        }
        for (std::size_t m = 0; m < std::size_t(g.paths); ++m) {
          CHECK(by_channels.u[m] == whole.u[m]);
          CHECK(by_rows.u[m] == whole.u[m]);
          SKNET_CHECK_CLOSE(whole.branch(m), p.expected[m], kFloatTolerance, "U_" + std::to_string(m + 1));
        }
        CHECK(by_channels.sums == whole.sums);
        SKNET_CHECK_CLOSE(whole.sums, p.expected_sums, kSumTolerance, "channel sums");
        SKNET_CHECK_CLOSE(row_sums, p.expected_sums, kSumTolerance, "row-split channel sums");
        CHECK(whole.guards_intact());
      }
    }
}

TEST_CASE("sk_branches_conv3x3 residual in place (dst == residual, one branch)", "[kernels][grouped_conv]") {
  SKBranchGeometry g{1, 7, 14, 64, 1, 1, 1, 0};
  g.cin = 32;
  const GeneralProblem p(g, true, true, 4242);
  for (const auto& v : variants()) {
    INFO(v.name);
    const PackedBranchWeights w = p.pack(v.isa);
    std::vector<float> inout = p.residual;
    float* dst[] = {inout.data()};
    SKBranchEpilogue e;
    e.residual = inout.data();
    v.fn(g, p.padded.data(), w, dst, nullptr, 0, g.c, 0, g.oh(), e);
    SKNET_CHECK_CLOSE(inout, p.expected[0], kFloatTolerance, "U_1 in place");
  }
}

TEST_CASE("sk_branches_conv3x3 writes one path of stride 1 over its dense input", "[kernels][grouped_conv]") {
  // {c, groups, h, w, n}: in-lane, cross, broadcast, 2-block broadcast and depthwise kinds; 1024 x 7x7
  // takes several block groups; narrow and odd maps take the 2-row and short tiles.
  const std::vector<std::array<dim_t, 5>> shapes = {{128, 32, 14, 14, 1}, {256, 32, 9, 30, 1}, {512, 32, 7, 7, 2},
                                                    {1024, 32, 7, 7, 1}, {48, 48, 5, 11, 1},  {64, 4, 6, 3, 2},
                                                    {96, 12, 13, 17, 1}};
  for (const auto& s : shapes) {
    SKBranchGeometry g{s[4], s[2], s[3], s[0], s[1], 1, 1, 0};
    const Problem p(g, 77 + unsigned(s[0] + s[2]));
    const dim_t gw = g.group_width();
    const dim_t cut = std::max<dim_t>(kSKBranchChannelStep, gw) * (g.c / std::max<dim_t>(kSKBranchChannelStep, gw) / 2);
    for (const auto& v : variants()) {
      INFO(v.name << ": " << describe(g));
      const PackedBranchWeights w = p.pack(v.isa);
      Outputs separate(g);
      auto d = separate.ptrs();
      v.fn(g, p.padded.data(), w, d.data(), nullptr, 0, g.c, 0, g.oh());
      // Whole, then in two channel ranges cut on a group boundary (one after the other, as two
      // threads would run them: each reads only its own channels).
      std::vector<float> inout(p.x.size() + kGuard, kSentinel);
      std::copy(p.x.begin(), p.x.end(), inout.begin());
      float* self[] = {inout.data()};
      REQUIRE(sk_branches_in_place_ok(g, 0, g.c, 0, g.oh(), {}));
      v.fn(g, inout.data(), w, self, nullptr, 0, g.c, 0, g.oh());
      CHECK(std::equal(separate.u[0].begin(), separate.u[0].end() - kGuard, inout.begin()));
      SKNET_CHECK_CLOSE(std::vector<float>(inout.begin(), inout.end() - kGuard), p.expected[0], kFloatTolerance, "U_1 in place");
      CHECK(std::all_of(inout.end() - kGuard, inout.end(), [](float f) { return f == kSentinel; }));
      if (cut > 0 && cut < g.c) {
        std::copy(p.x.begin(), p.x.end(), inout.begin());
        REQUIRE(sk_branches_in_place_ok(g, 0, cut, 0, g.oh(), {}));
        v.fn(g, inout.data(), w, self, nullptr, 0, cut, 0, g.oh());
        v.fn(g, inout.data(), w, self, nullptr, cut, g.c, 0, g.oh());
        CHECK(std::equal(separate.u[0].begin(), separate.u[0].end() - kGuard, inout.begin()));
      }
    }
  }
}

TEST_CASE("sk_branches_conv3x3 refuses outputs that overlap its input otherwise", "[kernels][grouped_conv]") {
  SKBranchGeometry g{1, 6, 6, 64, 16, 1, 1, 0};  // gw = 4
  const Problem p(g, 31);
  const auto wp = p.weight_ptrs(), bp = p.bias_ptrs();
  const PackedBranchWeights w(g, wp.data(), bp.data());
  std::vector<float> buf(p.x.size() * 2 + 64);
  std::copy(p.x.begin(), p.x.end(), buf.begin());
  float* self[] = {buf.data()};
  CHECK_NOTHROW(sk_branches_conv3x3(g, buf.data(), w, self, nullptr, 0, 64, 0, g.oh()));
  float* shifted[] = {buf.data() + 16};  // overlaps, but not exactly
  CHECK_THROWS_AS(sk_branches_conv3x3(g, buf.data(), w, shifted, nullptr, 0, 64, 0, g.oh()), KernelError);
  CHECK_THROWS_AS(sk_branches_conv3x3(g, buf.data(), w, self, nullptr, 0, 64, 0, 3), KernelError);  // some rows
  SKBranchEpilogue with_residual;
  with_residual.residual = buf.data() + p.x.size();
  CHECK_THROWS_AS(sk_branches_conv3x3(g, buf.data(), w, self, nullptr, 0, 64, 0, g.oh(), with_residual), KernelError);
  float* after[] = {buf.data() + p.x.size()};  // no overlap
  CHECK_NOTHROW(sk_branches_conv3x3(g, buf.data(), w, after, nullptr, 0, 64, 0, g.oh(), with_residual));

  CHECK(sk_branches_in_place_ok(g, 0, 64, 0, g.oh(), {}));
  CHECK(sk_branches_in_place_ok(g, 16, 48, 0, g.oh(), {}));
  SKBranchGeometry wide = g;  // gw = 32: a range must not cut a group
  wide.groups = 2;
  CHECK(!sk_branches_in_place_ok(wide, 0, 16, 0, g.oh(), {}));
  CHECK(sk_branches_in_place_ok(wide, 32, 64, 0, g.oh(), {}));
  SKBranchGeometry strided = g;
  strided.stride = 2;
  CHECK(!sk_branches_in_place_ok(strided, 0, 64, 0, strided.oh(), {}));
  const Problem ps(strided, 32);
  const auto wps = ps.weight_ptrs(), bps = ps.bias_ptrs();
  const PackedBranchWeights ws(strided, wps.data(), bps.data());
  CHECK_THROWS_AS(sk_branches_conv3x3(strided, buf.data(), ws, self, nullptr, 0, 64, 0, strided.oh()), KernelError);
  SKBranchGeometry padded = g;
  padded.pad = 1;
  CHECK(!sk_branches_in_place_ok(padded, 0, 64, 0, g.oh(), {}));
  SKBranchGeometry two = g;
  two.paths = 2;
  CHECK(!sk_branches_in_place_ok(two, 0, 64, 0, g.oh(), {}));
  SKBranchGeometry narrower = g;
  narrower.cin = 32;
  CHECK(!sk_branches_in_place_ok(narrower, 0, 64, 0, g.oh(), {}));
  SKBranchGeometry straddling{1, 6, 6, 96, 4, 1, 1, 0};  // gw = 24: a block's groups straddle blocks
  CHECK(!sk_branches_may_run_in_place(straddling));
  CHECK(sk_branches_may_run_in_place(g));
}

TEST_CASE("sk_branches_conv3x3 propagates NaN with split input, ReLU off and a residual", "[kernels][grouped_conv]") {
  // Split input, dense: a NaN in branch 2's slice reaches only U_2, at every output channel whose
  // dilation-2 window holds it; a NaN in the residual reaches exactly its element of every branch.
  SKBranchGeometry g{1, 6, 9, 32, 1, 2, 1, 0};
  g.cin = 32, g.split_input = true;
  for (const bool relu : {false, true}) {
    GeneralProblem p(g, relu, true, 77);
    const dim_t y = 2, x = 4, k = 20;  // input channel 20: branch 2's slice [16, 32)
    p.padded[std::size_t((y * g.w + x) * g.in_channels() + k)] = std::numeric_limits<float>::quiet_NaN();
    const dim_t ry = 5, rx = 0, rk = 3;
    p.residual[std::size_t((ry * g.ow() + rx) * g.c + rk)] = std::numeric_limits<float>::quiet_NaN();
    for (const Variant& v : variants()) {
      INFO(v.name << (relu ? " relu" : " no relu"));
      const PackedBranchWeights w = p.pack(v.isa);
      Outputs o(g);
      auto d = o.ptrs();
      v.fn(g, p.padded.data(), w, d.data(), o.sums.data(), 0, g.c, 0, g.oh(), p.epilogue);
      const auto u1 = o.branch(0), u2 = o.branch(1);
      for (dim_t oy = 0; oy < g.oh(); ++oy)
        for (dim_t ox = 0; ox < g.ow(); ++ox)
          for (dim_t c = 0; c < g.c; ++c) {
            const std::size_t i = std::size_t((oy * g.ow() + ox) * g.c + c);
            const bool in_residual = oy == ry && ox == rx && c == rk;
            const bool in_window =
                (y - oy) % 2 == 0 && std::abs(y - oy) <= 2 && (x - ox) % 2 == 0 && std::abs(x - ox) <= 2;
            CHECK(std::isnan(u1[i]) == in_residual);
            CHECK(std::isnan(u2[i]) == (in_residual || in_window));
          }
      for (dim_t c = 0; c < g.c; ++c) CHECK(std::isnan(o.sums[std::size_t(c)]));
    }
  }
}

TEST_CASE("PackedBranchWeights rejects invalid general geometries", "[kernels][grouped_conv]") {
  const std::vector<float> wt(64 * 64 * 9), b(64);
  const float* wp[] = {wt.data(), wt.data(), wt.data()};
  const float* bp[] = {b.data(), b.data(), b.data()};
  const auto geometry = [](dim_t cin, dim_t c, dim_t groups, dim_t paths, bool split) {
    SKBranchGeometry g{1, 4, 4, c, groups, paths, 1, 0};
    g.cin = cin, g.split_input = split;
    return g;
  };
  CHECK_THROWS_AS(PackedBranchWeights(geometry(33, 32, 1, 2, true), wp, bp), KernelError);   // paths must divide cin
  CHECK_THROWS_AS(PackedBranchWeights(geometry(32, 32, 1, 3, true), wp, bp), KernelError);
  CHECK_THROWS_AS(PackedBranchWeights(geometry(30, 32, 2, 2, true), wp, bp), KernelError);   // 15 per branch, 2 groups
  CHECK_THROWS_AS(PackedBranchWeights(geometry(10, 32, 4, 1, false), wp, bp), KernelError);  // groups must divide cin
  CHECK_THROWS_AS(PackedBranchWeights(geometry(-1, 32, 1, 1, false), wp, bp), KernelError);
  CHECK_THROWS_AS(PackedBranchWeights(geometry(32, 30, 4, 1, false), wp, bp), KernelError);  // groups must divide c
  CHECK_NOTHROW(PackedBranchWeights(geometry(3, 32, 1, 1, false), wp, bp));
  CHECK_NOTHROW(PackedBranchWeights(geometry(64, 32, 2, 2, true), wp, bp));
  CHECK_NOTHROW(PackedBranchWeights(geometry(0, 32, 4, 2, false), wp, bp));  // cin = 0: c
  SKBranchGeometry k = geometry(32, 32, 4, 2, false);
  k.kernel = {3, 4};  // even kernel
  CHECK_THROWS_AS(PackedBranchWeights(k, wp, bp), KernelError);
  k.kernel = {3, 17};  // beyond kSKMaxKernel
  CHECK_THROWS_AS(PackedBranchWeights(k, wp, bp), KernelError);
  k.kernel = {3, 5}, k.dilation = {1, 1}, k.pad = 1;  // the 5x5 branch reaches 2
  CHECK_THROWS_AS(PackedBranchWeights(k, wp, bp), KernelError);
  k.pad = 2;
  CHECK_NOTHROW(PackedBranchWeights(k, wp, bp));
  k.path_cin = 40;  // more than cin
  CHECK_THROWS_AS(PackedBranchWeights(k, wp, bp), KernelError);
  const PackedBranchWeights w(geometry(0, 32, 4, 2, false), wp, bp);
  CHECK(w.in_channels() == 32);
  CHECK_FALSE(w.split_input());
  const PackedBranchWeights ws(geometry(64, 32, 1, 2, true), wp, bp);
  CHECK(ws.in_channels() == 64);
  CHECK(ws.split_input());
}

TEST_CASE("sk_select kernels compute V = sum_m a_m U_m over channel counts around the vector widths",
          "[kernels][grouped_conv]") {
  const KernelList& list = kernel_list();
  REQUIRE(list.sk_select_count >= 1);
  for (int i = 0; i < list.sk_select_count; ++i) {
    const SKSelectKernelInfo& k = list.sk_select[i];
    if (!cpu_supports(k.isa)) {
      WARN("skipped: this CPU lacks " << isa_name(k.isa) << " (" << k.name << ")");
      continue;
    }
    for (const dim_t c : {1, 7, 8, 9, 15, 16, 17, 33, 128})
      for (const dim_t paths : {1, 2, 3, 4})
        for (const dim_t rows : {1, 5}) {
          INFO(k.name << ": c=" << c << " paths=" << paths << " rows=" << rows);
          const auto a = sknet_test::uniform_floats(std::size_t(paths * c), 5, 0.0f, 1.0f);
          std::vector<std::vector<float>> u;
          std::vector<const float*> up;
          for (dim_t m = 0; m < paths; ++m) {
            u.push_back(sknet_test::uniform_floats(std::size_t(rows * c), 6 + unsigned(m), -2.0f, 2.0f));
            up.push_back(u.back().data());
          }
          std::vector<float> v(std::size_t(rows * c) + kGuard, kSentinel);
          k.fn(rows, c, paths, a.data(), up.data(), v.data());
          std::vector<double> want(std::size_t(rows * c), 0.0);
          for (dim_t r = 0; r < rows; ++r)
            for (dim_t ch = 0; ch < c; ++ch)
              for (dim_t m = 0; m < paths; ++m)
                want[std::size_t(r * c + ch)] += double(a[std::size_t(m * c + ch)]) * double(u[std::size_t(m)][std::size_t(r * c + ch)]);
          SKNET_CHECK_CLOSE(std::vector<float>(v.begin(), v.end() - kGuard), want, kFloatTolerance, "V");
          CHECK(std::all_of(v.end() - kGuard, v.end(), [](float f) { return f == kSentinel; }));
        }
  }
}
