// The 1x1 convolution kernels (kernels/pointwise.hpp) against the reference conv2d_nhwc: every kernel
// of the kernel list whose ISA this CPU runs (kernels/kernel_list.hpp; the others are reported as
// skipped), a shape sweep (channel counts around the vector widths, pixel
// counts around the tile heights, k-block splits), every epilogue, strided rows and split ranges.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>
#include <sknet/kernels/reference/conv2d.hpp>

#include "support/compare.hpp"
#include "support/random.hpp"

namespace {

using namespace sknet::kernels;
using sknet_test::kFloatTolerance;

struct Variant {
  std::string name;
  Isa isa;
  PointwiseKernelFn fn;                                  // the kernel as listed, or null:
  const detail::PointwiseBlocking* blocking = nullptr;   // ... its tiling with tiny cache blocks
  detail::PointwiseTileFn (*tile)(int, int) = nullptr;
  bool exact_splits = true;  // splitting the ranges gives bitwise-identical outputs
  dim_t block() const { return pointwise_block(isa); }
  void operator()(const PointwiseGeometry& g, const float* src, const float* packed, const PointwiseEpilogue& ep,
                  float* dst, dim_t pixel_begin, dim_t pixel_end, dim_t cout_begin, dim_t cout_end) const {
    if (fn) return fn(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end);
    // k-blocks of <= 64 channels and pixel blocks of <= 2 tiles, so that the sweep's shapes exercise
    // the partial sums across k-blocks and the pixel-block edges.
    detail::PointwiseBlocking blk = *blocking;
    blk.kc_max = 64;
    blk.mb_max = 2 * blk.mr[blk.nv_max];
    detail::pointwise_blocked(g, src, packed, ep, dst, pixel_begin, pixel_end, cout_begin, cout_end, blk, tile);
  }
};

/// Every pointwise kernel of the kernel list that this CPU runs, plus each tiled one with tiny cache
/// blocks; a kernel whose ISA the CPU lacks is reported (once) and skipped.
std::vector<Variant> variants() {
  std::vector<Variant> v;
  const KernelList& list = kernel_list();
  for (int i = 0; i < list.pointwise_count; ++i) {
    const PointwiseKernelInfo& k = list.pointwise[i];
    if (!cpu_supports(k.isa)) {
      static bool warned = false;
      if (!warned) WARN("skipped: this CPU lacks " << isa_name(k.isa) << " (" << k.name << ")");
      warned = true;
      continue;
    }
    // The intrinsic kernels compute each output in the same order whatever the ranges; the portable
    // one leaves FMA contraction to the compiler, which may differ between tile shapes.
    const bool exact = k.isa != Isa::portable;
    v.push_back({k.name, k.isa, k.fn, nullptr, nullptr, exact});
    if (k.blocking) v.push_back({std::string(k.name) + " small blocks", k.isa, nullptr, k.blocking, k.tile, exact});
  }
  return v;
}


constexpr float kSentinel = 1234.5f;

/// One problem: strided source inside a wider tensor, weights, bias, residual and the
/// reference result (no epilogue) from conv2d_nhwc.
struct Problem {
  dim_t pixels, cin, cout, src_stride, src_offset, dst_stride;
  std::vector<float> src, weight, bias, residual, raw;  // raw: reference [pixels x cout], no epilogue

  Problem(dim_t p, dim_t ci, dim_t co, bool strided)
      : pixels(p), cin(ci), cout(co), src_stride(strided ? ci + 7 : ci), src_offset(strided ? 3 : 0),
        dst_stride(strided ? co + 9 : co) {
    src = sknet_test::uniform_floats(std::size_t(pixels * src_stride + src_offset), 1, -1.0f, 1.0f);
    const float scale = 1.0f / std::sqrt(float(cin));
    weight = sknet_test::uniform_floats(std::size_t(cout * cin), 2, -scale, scale);
    bias = sknet_test::uniform_floats(std::size_t(cout), 3, -0.5f, 0.5f);
    residual = sknet_test::uniform_floats(std::size_t(pixels * dst_stride), 4, -1.0f, 1.0f);
    std::vector<float> dense(std::size_t(pixels * cin));
    for (dim_t i = 0; i < pixels; ++i)
      std::copy_n(src.data() + src_offset + i * src_stride, cin, dense.data() + i * cin);
    ConvGeometry g;
    g.ic = cin, g.ih = 1, g.iw = pixels, g.oc = cout, g.oh = 1, g.ow = pixels;
    raw.resize(std::size_t(pixels * cout));
    reference::conv2d_nhwc<float>(g, dense.data(), weight.data(), nullptr, raw.data());
  }
  PointwiseGeometry geometry() const { return {pixels, cin, cout, src_stride, dst_stride}; }
  const float* src_data() const { return src.data() + src_offset; }
};

struct Options {
  bool bias = false, residual = false, relu = false, sums = false, in_place = false;
};

std::string describe(const Options& o) {
  return std::string("bias=") + (o.bias ? "1" : "0") + " residual=" + (o.residual ? "1" : "0") +
         " relu=" + (o.relu ? "1" : "0") + " sums=" + (o.sums ? "1" : "0") + " in_place=" + (o.in_place ? "1" : "0");
}

/// Expected outputs [pixels x cout] and channel sums (double).
void expected(const Problem& pb, const Options& o, std::vector<double>& out, std::vector<double>& sums) {
  out.assign(std::size_t(pb.pixels * pb.cout), 0.0);
  sums.assign(std::size_t(pb.cout), 0.0);
  for (dim_t i = 0; i < pb.pixels; ++i)
    for (dim_t c = 0; c < pb.cout; ++c) {
      double v = pb.raw[std::size_t(i * pb.cout + c)];
      if (o.bias) v += pb.bias[std::size_t(c)];
      if (o.residual) v += pb.residual[std::size_t(i * pb.dst_stride + c)];
      if (o.relu) v = std::max(v, 0.0);
      out[std::size_t(i * pb.cout + c)] = v;
      sums[std::size_t(c)] += v;
    }
}

struct Result {
  std::vector<float> dst;   // [pixels x dst_stride], padding columns must keep the sentinel
  std::vector<float> sums;  // [cout], summed over the per-pixel-range buffers
};

/// Runs `fn` over a grid of pixel x channel ranges (split points in pixel_cuts / cout_cuts), each
/// pixel range with its own channel-sums buffer, as two threads would.
Result run(const Variant& var, const std::vector<float>& packed, const Problem& pb, const Options& o,
           const std::vector<dim_t>& pixel_cuts, const std::vector<dim_t>& cout_cuts) {
  Result r;
  r.dst.assign(std::size_t(pb.pixels * pb.dst_stride), kSentinel);
  if (o.in_place) r.dst = pb.residual;  // residual == dst
  if (o.in_place)
    for (dim_t i = 0; i < pb.pixels; ++i)
      std::fill(r.dst.begin() + i * pb.dst_stride + pb.cout, r.dst.begin() + (i + 1) * pb.dst_stride, kSentinel);
  r.sums.assign(std::size_t(pb.cout), 0.0f);
  for (std::size_t pi = 0; pi + 1 < pixel_cuts.size(); ++pi) {
    std::vector<float> sums(std::size_t(pb.cout), 0.0f);
    for (std::size_t ci = 0; ci + 1 < cout_cuts.size(); ++ci) {
      PointwiseEpilogue ep;
      ep.bias = o.bias ? pb.bias.data() : nullptr;
      if (o.residual) {
        ep.residual = o.in_place ? r.dst.data() : pb.residual.data();
        ep.residual_stride = pb.dst_stride;
      }
      ep.relu = o.relu;
      ep.channel_sums = o.sums ? sums.data() : nullptr;
      var(pb.geometry(), pb.src_data(), packed.data(), ep, r.dst.data(), pixel_cuts[pi], pixel_cuts[pi + 1],
             cout_cuts[ci], cout_cuts[ci + 1]);
    }
    for (dim_t c = 0; c < pb.cout; ++c) r.sums[std::size_t(c)] += sums[std::size_t(c)];
  }
  return r;
}

/// Checks outputs, the untouched padding columns and (when requested) the channel sums.
void check(const Result& r, const Problem& pb, const Options& o, const std::string& what) {
  std::vector<double> want, want_sums;
  expected(pb, o, want, want_sums);
  std::vector<float> got(std::size_t(pb.pixels * pb.cout));
  bool padding_ok = true;
  for (dim_t i = 0; i < pb.pixels; ++i) {
    std::copy_n(r.dst.data() + i * pb.dst_stride, pb.cout, got.data() + i * pb.cout);
    for (dim_t c = pb.cout; c < pb.dst_stride; ++c) padding_ok &= r.dst[std::size_t(i * pb.dst_stride + c)] == kSentinel;
  }
  SKNET_CHECK_CLOSE(got, want, kFloatTolerance, what + " output");
  INFO(what);
  CHECK(padding_ok);
  if (o.sums) {
    // A float sum over `pixels` outputs: allow the accumulated rounding of that many additions.
    const sknet_test::Tolerance tol{1e-5 * double(pb.pixels), 1e-4};
    SKNET_CHECK_CLOSE(r.sums, want_sums, tol, what + " channel sums");
  } else {
    CHECK(std::all_of(r.sums.begin(), r.sums.end(), [](float s) { return s == 0.0f; }));
  }
}

/// The valid region of two results is bitwise identical.
bool same_outputs(const Result& a, const Result& b, const Problem& pb) {
  for (dim_t i = 0; i < pb.pixels; ++i)
    if (std::memcmp(a.dst.data() + i * pb.dst_stride, b.dst.data() + i * pb.dst_stride, sizeof(float) * pb.cout))
      return false;
  return true;
}

}  // namespace

TEST_CASE("pointwise kernels match the reference conv over a shape sweep", "[kernels][pointwise]") {
  const dim_t cin = GENERATE(1, 3, 15, 16, 17, 64, 147, 300);
  const dim_t cout = GENERATE(1, 15, 16, 17, 48, 64, 65, 128, 200);
  const dim_t pixels = GENERATE(1, 5, 6, 7, 13, 49, 196, 200);
  const bool strided = (cin + cout + pixels) % 2 == 1;
  CAPTURE(cin, cout, pixels, strided);
  const Problem pb(pixels, cin, cout, strided);

  const std::vector<Options> epilogues = {
      {}, {true, false, false, false, false}, {true, false, true, true, false},
      {true, true, true, true, false}, {false, true, false, true, true}, {true, true, true, false, true}};
  // Split points: pixel halves, and channel halves at a multiple of 16 (when there are two).
  const dim_t pixel_mid = pixels / 2, cout_mid = cout > 16 ? std::max<dim_t>(16, cout / 2 / 16 * 16) : cout;
  const std::vector<dim_t> whole_p{0, pixels}, whole_c{0, cout};
  const std::vector<dim_t> split_p{0, pixel_mid, pixels}, split_c{0, cout_mid, cout};

  for (const Variant& var : variants()) {
    std::vector<float> packed(std::size_t(detail::pointwise_packed_size(cout, cin, var.block())));
    detail::pack_pointwise(pb.weight.data(), cout, cin, var.block(), packed.data());
    for (const Options& o : epilogues) {
      const std::string what = var.name + " " + describe(o);
      const Result whole = run(var, packed, pb, o, whole_p, whole_c);
      check(whole, pb, o, what);
      if (o.bias && o.residual && o.relu) {
        for (const auto& cuts : {std::make_pair(split_p, whole_c), std::make_pair(whole_p, split_c),
                                 std::make_pair(split_p, split_c)}) {
          const Result part = run(var, packed, pb, o, cuts.first, cuts.second);
          INFO(what << " split at pixel " << pixel_mid << ", channel " << cout_mid);
          if (var.exact_splits) CHECK(same_outputs(part, whole, pb));
          check(part, pb, o, what + " split");
        }
      }
    }
  }
}

TEST_CASE("pointwise kernels split long reductions into k-blocks", "[kernels][pointwise]") {
  // Production blocking (k-blocks of up to 1024 channels): cin = 2100 runs three k-blocks, with the
  // residual read before dst receives partial sums (in place too).
  const dim_t cin = GENERATE(1100, 2100);
  const dim_t cout = GENERATE(40, 64);
  const dim_t pixels = GENERATE(7, 49);
  CAPTURE(cin, cout, pixels);
  const Problem pb(pixels, cin, cout, true);
  for (const Variant& var : variants()) {
    std::vector<float> packed(std::size_t(detail::pointwise_packed_size(cout, cin, var.block())));
    detail::pack_pointwise(pb.weight.data(), cout, cin, var.block(), packed.data());
    for (const Options& o : {Options{true, true, true, true, false}, Options{true, true, false, true, true}})
      check(run(var, packed, pb, o, {0, pixels}, {0, cout}), pb, o, var.name + " " + describe(o));
  }
}

TEST_CASE("PackedPointwiseWeights packs [cout][cin] into zero-padded column blocks", "[kernels][pointwise]") {
  const dim_t cout = 37, cin = 5;
  const auto weight = sknet_test::uniform_floats(std::size_t(cout * cin), 7, -1.0f, 1.0f);
  for (int i = 0; i <= int(cpu_isa()); ++i) {
    const Isa isa = Isa(i);
    INFO(isa_name(isa));
    PackedPointwiseWeights w(weight.data(), cout, cin, isa);
    const dim_t nr = w.block();
    REQUIRE(w.isa() == isa);
    REQUIRE(nr == pointwise_block(isa));
    REQUIRE(w.cout() == cout);
    REQUIRE(w.cin() == cin);
    REQUIRE(w.size() == (cout + nr - 1) / nr * nr * cin);
    REQUIRE(reinterpret_cast<std::uintptr_t>(w.data()) % 64 == 0);
    for (dim_t co = 0; co < (cout + nr - 1) / nr * nr; ++co)
      for (dim_t k = 0; k < cin; ++k) {
        const float want = co < cout ? weight[std::size_t(co * cin + k)] : 0.0f;
        REQUIRE(w.data()[(co / nr * cin + k) * nr + co % nr] == want);
      }
    const PackedPointwiseWeights copy = w;
    REQUIRE(copy.data() != w.data());
    REQUIRE(copy.isa() == isa);
    REQUIRE(std::equal(copy.data(), copy.data() + copy.size(), w.data()));
    const PackedPointwiseWeights moved = std::move(w);
    REQUIRE(w.empty());
    REQUIRE(moved.size() == copy.size());
  }
  REQUIRE(PackedPointwiseWeights().empty());
  REQUIRE_THROWS_AS(PackedPointwiseWeights(weight.data(), 0, cin), KernelError);
}

TEST_CASE("pointwise_conv runs the kernel of the ISA the weights were packed for", "[kernels][pointwise]") {
  REQUIRE(int(active_isa()) <= int(cpu_isa()));
  REQUIRE(PackedPointwiseWeights(std::vector<float>(6, 1.0f).data(), 2, 3).isa() == active_isa());
  // The public entry point on a channel slice of a wider tensor, with every epilogue at once.
  const Problem pb(50, 70, 96, true);
  const Options o{true, true, true, true, false};
  for (int i = 0; i <= int(cpu_isa()); ++i) {
    const PackedPointwiseWeights w(pb.weight.data(), pb.cout, pb.cin, Isa(i));
    Result r;
    r.dst.assign(std::size_t(pb.pixels * pb.dst_stride), kSentinel);
    r.sums.assign(std::size_t(pb.cout), 0.0f);
    PointwiseEpilogue ep;
    ep.bias = pb.bias.data();
    ep.residual = pb.residual.data();
    ep.residual_stride = pb.dst_stride;
    ep.relu = true;
    ep.channel_sums = r.sums.data();
    pointwise_conv(pb.geometry(), pb.src_data(), w, ep, r.dst.data());
    check(r, pb, o, isa_name(Isa(i)));
  }
}

TEST_CASE("pointwise kernels propagate NaN and infinity through the ReLU epilogue", "[kernels][pointwise]") {
  // PyTorch: relu(NaN) = NaN. A NaN input pixel makes that output row NaN; +inf stays +inf.
  const dim_t pixels = 13, cin = 20, cout = 40;
  Problem pb(pixels, cin, cout, false);
  pb.src[std::size_t(3 * cin + 5)] = std::numeric_limits<float>::quiet_NaN();
  std::fill_n(pb.src.begin() + 7 * cin, cin, 1e30f);
  for (const Variant& var : variants()) {
    INFO(var.name);
    std::vector<float> packed(std::size_t(detail::pointwise_packed_size(cout, cin, var.block())));
    detail::pack_pointwise(pb.weight.data(), cout, cin, var.block(), packed.data());
    std::vector<float> dst(std::size_t(pixels * cout));
    std::vector<float> sums(std::size_t(cout), 0.0f);
    PointwiseEpilogue ep;
    ep.bias = pb.bias.data();
    ep.relu = true;
    ep.channel_sums = sums.data();
    var(pb.geometry(), pb.src_data(), packed.data(), ep, dst.data(), 0, pixels, 0, cout);
    for (dim_t c = 0; c < cout; ++c) {
      CHECK(std::isnan(dst[std::size_t(3 * cout + c)]));
      CHECK(std::isnan(sums[std::size_t(c)]));
      CHECK(std::isfinite(dst[std::size_t(2 * cout + c)]));
    }
  }
}
