// sknet prepared engine: the blocks of SK-ShuffleNetV2.
//
//   PreparedShuffleUnit<M>  a ShuffleNetV2 unit whose branch2 depthwise 3x3 is a depthwise SK
//                           convolution (see BlockPlan): branch2's first 1x1 reads its half of the
//                           input in place (row stride = all input channels), the SK convolution runs
//                           as in the bottleneck (SKMiddle<M>), and the last 1x1 runs on V a block of
//                           rows at a time; the channel shuffle is fused into the write of those rows:
//                           each output pixel gets its left half (the passed-through x1, or branch1's
//                           output) at the even channels and the block's rows at the odd ones while
//                           they are still in cache, so neither the concatenation nor the shuffled
//                           tensor is formed separately.
//   PreparedPointwiseBlock  1x1 conv + BN + ReLU (conv5), with the head's channel sums in its epilogue.
//
// Both run on float or bf16 activations (Act). In bf16 the 1x1 convolutions run the bf16 pointwise
// kernels on bf16 rows, while the depthwise convolutions (the SK one and branch1's) stay float (the bf16
// SK branch kernel needs pairs of input channels per group): branch2's first 1x1 writes float rows for
// the SK convolution, V's float rows are rounded block by block for the last 1x1, and branch1 widens the
// unit's input for its depthwise 3x3 and rounds that convolution's output for its 1x1. The attention
// stays float.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <type_traits>

#include "sknet/models/shuffle_unit.hpp"
#include "sknet/prepared/bottleneck.hpp"

namespace sknet {

template <int M, class Act = float>
class PreparedShuffleUnit final : public PreparedBlock {
  static constexpr bool kBf16 = std::is_same_v<Act, kernels::bf16_t>;
  using Pointwise = PreparedPointwiseOf<Act>;

 public:
  using dim_t = kernels::dim_t;
  PreparedShuffleUnit(const ShuffleUnit<float, M>& u, kernels::Isa isa)
      : name_(u.name()),
        in_(u.plan().in),
        width_(u.plan().width),
        isa_(isa),
        first_(Pointwise::from(u.branch2_first(), isa)),
        sk_(u.branch2_sk(), isa),
        last_(Pointwise::from(u.branch2_last(), isa)) {
    if (u.branch1_depthwise()) {
      depthwise_.emplace(*u.branch1_depthwise(), isa);
      left_.emplace(Pointwise::from(*u.branch1_pointwise(), isa));
    }
  }

  const std::string& name() const override { return name_; }
  FeatureShape out_shape(const FeatureShape& in) const override {
    return {in.n, sk_.out_extent(in.h), sk_.out_extent(in.w), 2 * width_};
  }
  dim_t attention_paths() const override { return M; }
  dim_t attention_channels() const override { return width_; }

  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const override {
    const FeatureShape out = out_shape(in);
    const std::size_t w = std::size_t(width_), t = std::size_t(threads);
    const std::size_t pix = std::size_t(in.n * in.h * in.w), opix = std::size_t(out.n * out.h * out.w);
    needs.need(Slot::mid, pix * w);
    needs.need(Slot::branches, std::size_t(M) * opix * w);
    // Per thread: V's float rows, then the last 1x1's rows (bf16: V's rows rounded, then the last 1x1's).
    needs.need(Slot::v, t * std::size_t(kRows) * 2 * w);
    needs.need(Slot::sums, t * std::size_t(in.n) * w);
    needs.need(Slot::scratch, sk_.scratch_floats());
    if (depthwise_) {
      needs.need(Slot::gathered, opix * std::size_t(in_));
      needs.need(Slot::shortcut, opix * w);
      if (kBf16) needs.need(Slot::gated, pix * std::size_t(in_));  // the widened input, then the rounded depthwise output
    }
    needs.need(Slot::activation_a, std::max(pix * std::size_t(in.c), opix * std::size_t(out.c)));
    needs.need(Slot::activation_b, std::max(pix * std::size_t(in.c), opix * std::size_t(out.c)));
    needs.need(Slot::head_sums, t * std::size_t(out.c));
  }

  FeatureShape run(const BlockRun& r) const override {
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = r.in.n, h = r.in.h, w = r.in.w, c = width_, cout = 2 * width_;
    const dim_t oh = sk_.out_extent(h), ow = sk_.out_extent(w), opix = oh * ow, pixels = n * opix;
    const Act* x = reinterpret_cast<const Act*>(r.x);
    Act* y = reinterpret_cast<Act*>(r.y);
    PointwiseEpilogueOf<Act> relu;
    relu.relu = true;

    // The left half: x1 in place (every in_ values), or branch1 (depthwise 3x3 + BN, 1x1 + BN + ReLU).
    const Act* left = x;
    dim_t left_stride = in_;
    if (depthwise_) {
      float* dw = ws.get(Slot::gathered);
      Act* left_rows = reinterpret_cast<Act*>(ws.get(Slot::shortcut));
      if constexpr (kBf16) {  // the depthwise convolution in float, its output rounded for the 1x1
        float* wide = ws.get(Slot::gated);
        detail::widen_rows(pool, isa_, x, wide, n * h * w * in_);
        depthwise_->run(pool, n, h, w, wide, dw);
        auto* rounded = reinterpret_cast<kernels::bf16_t*>(wide);  // the widened input is spent
        detail::narrow_rows(pool, isa_, dw, rounded, pixels * in_);
        left_->run(pool, pixels, rounded, relu, left_rows);
      } else {
        depthwise_->run(pool, n, h, w, x, dw);
        left_->run(pool, pixels, dw, relu, left_rows);
      }
      left = left_rows, left_stride = c;
      Profiler::mark(r.profiler, 4);
    }
    // branch2: the first 1x1 on its input channels (all of them with branch1, else the second half),
    // float rows for the SK convolution.
    {
      PointwiseEpilogueOf<Act> ep = relu;
      if constexpr (kBf16) ep.float_dst = ws.get(Slot::mid);
      first_.run(pool, n * h * w, depthwise_ ? x : x + c, ep, reinterpret_cast<Act*>(ws.get(Slot::mid)), nullptr, in_);
    }
    Profiler::mark(r.profiler, 1);
    const std::array<float*, M> u = detail::branch_outputs<M>(ws, pixels, c);
    sk_.split(pool, n, h, w, ws.get(Slot::mid), u.data(), ws.get(Slot::sums));
    Profiler::mark(r.profiler, 2);
    sk_.attend(ws.get(Slot::sums), threads, n, opix, r.attention, ws.get(Slot::scratch));
    Profiler::mark(r.profiler, 3);

    // The last 1x1 (+BN, ReLU) on V a block of rows at a time, each block written out shuffled.
    float* head_sums = r.head_sums ? ws.get(Slot::head_sums) : nullptr;
    if (head_sums) std::fill(head_sums, head_sums + std::size_t(threads * cout), 0.0f);
    const kernels::Bf16NarrowFn narrow = kernels::bf16_narrow_kernel(isa_);
    pool.run([&](int t) {
      float* v = ws.get(Slot::v) + std::size_t(t) * std::size_t(kRows * 2 * c);
      float* sums = head_sums ? head_sums + std::size_t(t) * std::size_t(cout) : nullptr;
      PointwiseEpilogueOf<Act> ep;
      ep.bias = last_.bias();
      ep.relu = true;
      const auto rows = split_range(pixels, threads, t);
      for (dim_t p0 = rows.first; p0 < rows.second; p0 += kRows) {
        const dim_t p1 = std::min<dim_t>(rows.second, p0 + kRows);
        const float* vrows = sk_.select(r.attention, u.data(), opix, p0, p1, v);
        const kernels::PointwiseGeometry g{p1 - p0, c, c, c, c};
        Act* right;
        if constexpr (kBf16) {
          auto* vb = reinterpret_cast<kernels::bf16_t*>(v + kRows * c);
          right = vb + kRows * c;
          narrow(vrows, vb, (p1 - p0) * c);
          kernels::pointwise_conv_bf16(g, vb, last_.weights(), ep, right, 0, p1 - p0, 0, c);
        } else {
          (void)narrow;
          right = v + kRows * c;
          kernels::pointwise_conv(g, vrows, last_.weights(), ep, right, 0, p1 - p0, 0, c);
        }
        interleave(left + p0 * left_stride, left_stride, right, p1 - p0, c, y + p0 * cout, sums);
      }
    });
    Profiler::mark(r.profiler, 5);
    return {n, oh, ow, cout};
  }

 private:
  static constexpr dim_t kRows = 96;  ///< rows of V (and of the last 1x1's output) at a time: stay in L1/L2

  /// dst[p][2k] = left[p][k], dst[p][2k + 1] = right[p][k] for `rows` pixels (the channel shuffle of
  /// [left | right] with 2 groups); sums (or null) += each output channel's sum.
  static void interleave(const Act* left, dim_t left_stride, const Act* right, dim_t rows, dim_t c, Act* dst,
                         float* sums) {
    for (dim_t p = 0; p < rows; ++p) {
      const Act* l = left + p * left_stride;
      const Act* rr = right + p * c;
      Act* o = dst + p * 2 * c;
      for (dim_t k = 0; k < c; ++k) o[2 * k] = l[k], o[2 * k + 1] = rr[k];
      if (sums)
        for (dim_t k = 0; k < 2 * c; ++k) sums[k] += as_float(o[k]);
    }
  }
  static float as_float(float v) { return v; }
  static float as_float(kernels::bf16_t v) { return kernels::from_bf16(v); }

  std::string name_;
  dim_t in_, width_;
  kernels::Isa isa_;
  std::optional<PreparedConv3x3> depthwise_;
  std::optional<Pointwise> left_;
  Pointwise first_;
  SKMiddle<M> sk_;
  Pointwise last_;
};

/// 1x1 conv + BN + ReLU as a block (ShuffleNetV2's conv5), on float or bf16 activations (Act; bf16: the
/// bf16 pointwise kernel); as the last block of a single image it leaves its output's channel sums (of
/// the float outputs) for the head in its epilogue.
template <class Act = float>
class PreparedPointwiseBlock final : public PreparedBlock {
 public:
  using dim_t = kernels::dim_t;
  PreparedPointwiseBlock(const PointwiseBlock<float>& b, kernels::Isa isa)
      : name_(b.name()), conv_(PreparedPointwiseOf<Act>::from(b.conv(), isa)) {}

  const std::string& name() const override { return name_; }
  FeatureShape out_shape(const FeatureShape& in) const override { return {in.n, in.h, in.w, conv_.cout()}; }
  dim_t attention_paths() const override { return 0; }
  dim_t attention_channels() const override { return 0; }
  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const override {
    const std::size_t pix = std::size_t(in.n * in.h * in.w);
    needs.need(Slot::activation_a, pix * std::size_t(std::max(in.c, conv_.cout())));
    needs.need(Slot::activation_b, pix * std::size_t(std::max(in.c, conv_.cout())));
    needs.need(Slot::head_sums, std::size_t(threads) * std::size_t(conv_.cout()));
  }
  FeatureShape run(const BlockRun& r) const override {
    const dim_t pixels = r.in.n * r.in.h * r.in.w;
    PointwiseEpilogueOf<Act> ep;
    ep.relu = true;
    float* sums = nullptr;
    if (r.head_sums) {
      sums = r.ws->get(Slot::head_sums);
      std::fill(sums, sums + std::size_t(r.pool->size()) * std::size_t(conv_.cout()), 0.0f);
      ep.channel_sums = sums;
    }
    conv_.run(*r.pool, pixels, reinterpret_cast<const Act*>(r.x), ep, reinterpret_cast<Act*>(r.y), sums);
    Profiler::mark(r.profiler, 5);
    return out_shape(r.in);
  }

 private:
  std::string name_;
  PreparedPointwiseOf<Act> conv_;
};

}  // namespace sknet
