// sknet: PreparedSKConv, the fast float inference form of one SK convolution (Split, Fuse, Select).
//
// prepare folds every branch BN into its grouped convolution and the attention BN into fc_reduce,
// and packs the branch weights and both attention FCs (run as matrix-vector products on the 1x1
// kernels) for the chosen instruction set. Every option of the SK spec runs
// here: per-path kernel sizes and dilations (one call of the SK branch kernel for all paths), per-path
// groups (one call per path, each with its own packing), and sum aggregation (attention all ones). The three steps are exposed
// separately so a network can fuse them with its neighbours (PreparedSKNet feeds conv1's output
// straight to split() and builds V with select() block by block just before conv3); forward() runs them back to back for a standalone SK convolution.
// With Precision::bf16 the branch convolutions run the bf16 SK branch kernels (kernels/sk_branches_bf16.hpp:
// the folded weights rounded to bf16, the input rounded as it is read, float accumulation and float
// U_m) wherever they support the geometry (even input channels per group), the float kernels
// elsewhere; with Precision::int8 the int8 SK branch kernels (kernels/sk_branches_int8.hpp: s8 weights
// per branch and channel, the input quantized to u8 at zero point 0 as it is read, at the calibrated
// maximum the caller gives; exact int32 sums, float U_m) where the input channels per group are a
// multiple of 4, the float kernels elsewhere. The attention and Select stay float.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/pointwise.hpp"
#include "sknet/kernels/sk_branches_bf16.hpp"
#include "sknet/kernels/sk_branches_int8.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/runtime/thread_pool.hpp"
#include "sknet/sk/sk_conv.hpp"
#include "sknet/tensor.hpp"

namespace sknet {

/// One SK convolution with M branches (k_m x k_m, dilation D_m, G_m groups: SKConvOptions), from Cin to
/// C channels (every branch reading the whole input, or with split_input its own M-th of it), ready
/// for fast float inference. Immutable once built: split(), attend(), select()
/// and forward() only read the object (several threads may share it); forward() writes into the
/// caller's ForwardBuffers.
template <int M>
class PreparedSKConv {
 public:
  using dim_t = kernels::dim_t;

  PreparedSKConv() = default;

  /// Folds and packs the parameters of `sk` (which may be destroyed afterwards) for `isa`, the branch
  /// convolutions in `precision` (f32, or bf16 / int8 where those kernels support them; int8 quantizes
  /// the input, a ReLU's output, over [0, int8_input_max], the calibrated maximum).
  /// Throws ConfigError for a branch kernel larger than kernels::kSKMaxKernel (15).
  explicit PreparedSKConv(const SKConv<float, M>& sk, kernels::Isa isa = kernels::active_isa(),
                          kernels::Precision precision = kernels::Precision::f32, float int8_input_max = 0.0f)
      : isa_(isa) {
    const SKConvOptions& o = sk.options();
    label_ = sk.label();
    width_ = o.out_channels();
    in_channels_ = o.in_channels();
    split_input_ = o.split_input();
    groups_ = o.groups_of(0);
    stride_ = o.stride();
    attention_ = o.has_attention();
    attn_width_ = attention_ ? o.attention_width() : 0;
    for (int m = 0; m < M; ++m) {
      detail::require<ConfigError>(o.kernel_of(m) <= kernels::kSKMaxKernel, "prepare",
                                   "kernel size of path " + std::to_string(m) + " of " + label_ +
                                       " (the fast path's limit)",
                                   "<= " + std::to_string(kernels::kSKMaxKernel), o.kernel_of(m));
      kernel_[std::size_t(m)] = o.kernel_of(m), dilation_[std::size_t(m)] = o.dilation_of(m);
      path_groups_[std::size_t(m)] = o.groups_of(m);
      if (o.groups_of(m) != groups_) one_call_per_path_ = true;
    }
    std::array<std::vector<float>, M> weights, biases;
    std::array<const float*, M> wp{}, bp{};
    for (int m = 0; m < M; ++m) {
      fold_conv_bn(sk.split().conv(m), sk.split().bn(m), weights[m], biases[m]);
      wp[m] = weights[m].data();
      bp[m] = biases[m].data();
    }
    bf16_ = precision == kernels::Precision::bf16;
    int8_ = precision == kernels::Precision::int8;
    for (dim_t call = 0; call < calls(); ++call) {
      bf16_ = bf16_ && kernels::sk_branches_bf16_unsupported(call_geometry(call, 1, 1, 1)).empty();
      int8_ = int8_ && kernels::sk_branches_int8_unsupported(call_geometry(call, 1, 1, 1)).empty();
    }
    const float input_scale = kernels::U8Quantization::for_range(0.0f, int8_input_max).scale;
    for (dim_t call = 0; call < calls(); ++call) {
      const dim_t first = one_call_per_path_ ? call : 0;
      const kernels::SKBranchGeometry g = call_geometry(call, 1, 1, 1);
      if (int8_)
        branches_int8_[std::size_t(call)] =
            kernels::PackedBranchWeightsInt8(g, wp.data() + first, bp.data() + first, input_scale, isa);
      else if (bf16_)
        branches_bf16_[std::size_t(call)] = kernels::PackedBranchWeightsBf16(g, wp.data() + first, bp.data() + first, isa);
      else
        branches_[std::size_t(call)] = kernels::PackedBranchWeights(g, wp.data() + first, bp.data() + first, isa);
    }
    if (!attention_) return;
    std::vector<float> reduce_weight;
    fold_conv_bn(sk.fuse().fc_reduce(), sk.fuse().bn(), reduce_weight, reduce_bias_);
    reduce_ = kernels::PackedPointwiseWeights(reduce_weight.data(), attn_width_, width_, isa);
    select_ = kernels::PackedPointwiseWeights(sk.select().fc_select().weight().data(), M * width_, attn_width_, isa);
  }

  const std::string& label() const { return label_; }
  /// Output channels C.
  dim_t channels() const { return width_; }
  /// Input channels Cin (split over the paths with split_input()).
  dim_t in_channels() const { return in_channels_; }
  bool split_input() const { return split_input_; }
  /// G of path 0 (path_groups(m): of path m).
  dim_t groups() const { return groups_; }
  dim_t path_groups(dim_t m) const { return path_groups_[std::size_t(m)]; }
  dim_t stride() const { return stride_; }
  /// d (0 with sum aggregation).
  dim_t attention_width() const { return attn_width_; }
  /// Whether V is attention-weighted (otherwise the plain sum of the paths, attention all ones).
  bool has_attention() const { return attention_; }
  kernels::Isa isa() const { return isa_; }
  /// The precision the branch convolutions run in (bf16 or int8 only where requested and supported).
  kernels::Precision branch_precision() const {
    return int8_ ? kernels::Precision::int8 : bf16_ ? kernels::Precision::bf16 : kernels::Precision::f32;
  }
  dim_t out_extent(dim_t in) const { return (in - 1) / stride_ + 1; }
  /// int8: the step of the input codes (zero point 0) split() reads or makes; 1 otherwise.
  float int8_input_scale() const { return int8_ ? branches_int8_[0].input_scale() : 1.0f; }
  /// Floats of scratch memory attend() needs.
  dim_t scratch_size() const { return width_ + attn_width_; }

  /// The branch-kernel geometry of all paths for a dense input [n, h, w, in_channels()] (the kernel pads
  /// it itself; with per-path groups split() runs each path as a call_geometry() of its own).
  kernels::SKBranchGeometry geometry(dim_t n, dim_t h, dim_t w) const {
    kernels::SKBranchGeometry g;
    g.n = n, g.h = h, g.w = w, g.c = width_, g.groups = groups_, g.paths = M, g.stride = stride_, g.pad = 0;
    g.cin = in_channels_, g.split_input = split_input_;
    for (int m = 0; m < M; ++m) g.kernel[std::size_t(m)] = kernel_[std::size_t(m)], g.dilation[std::size_t(m)] = dilation_[std::size_t(m)];
    return g;
  }
  /// Calls of the SK branch kernel per split(): 1, or M when the paths' groups differ.
  dim_t calls() const { return one_call_per_path_ ? M : 1; }
  /// The geometry of call `call` (see calls()): all paths, or path `call` alone reading its input
  /// channels from call_input_offset(call) on.
  kernels::SKBranchGeometry call_geometry(dim_t call, dim_t n, dim_t h, dim_t w) const {
    kernels::SKBranchGeometry g = geometry(n, h, w);
    if (!one_call_per_path_) return g;
    const std::size_t m = std::size_t(call);
    g.paths = 1, g.groups = path_groups_[m], g.split_input = false;
    g.kernel = {}, g.dilation = {};
    g.kernel[0] = kernel_[m], g.dilation[0] = dilation_[m];
    g.path_cin = split_input_ ? in_channels_ / M : in_channels_;
    return g;
  }
  /// The first input channel of call `call`.
  dim_t call_input_offset(dim_t call) const {
    return one_call_per_path_ && split_input_ ? call * (in_channels_ / M) : 0;
  }

  /// Split: U_m = ReLU(BN(conv_m(X))) for every branch m, channels split over the pool.
  /// x: [g.n, g.h, g.w, Cin] (g from geometry(); only its n, h, w are read); branches[m]: [g.n, oh, ow, C];
  /// per_thread_sums: [pool.size()][g.n][C], overwritten with each thread's channel sums of
  /// U = sum_m U_m (the global average pool of the Fuse step, without re-reading U).
  /// When branch_precision() is bf16, x may hold bf16 values (Src = kernels::bf16_t) and, with
  /// bf16_out, branches[m] receive bf16 values (the sums stay those of the float outputs; read them
  /// with select_bf16). When it is int8, x may hold u8 codes at int8_input_scale() (Src = kernels::u8_t),
  /// and a NaN or infinite float input has no code and reads as 0: callers mark such images
  /// (mark_non_finite).
  template <class Src>
  void split(ThreadPool& pool, const kernels::SKBranchGeometry& g, const Src* x, float* const* branches,
             float* per_thread_sums, bool bf16_out = false) const {
    constexpr bool kBf16Input = std::is_same_v<Src, kernels::bf16_t>, kCodes = std::is_same_v<Src, kernels::u8_t>;
    if ((kBf16Input || bf16_out) && !bf16_)
      detail::fail<ConfigError>(label_.empty() ? "PreparedSKConv" : label_, "input and output precision",
                                "f32 (float branches)", "bf16");
    if (kCodes && !int8_)
      detail::fail<ConfigError>(label_.empty() ? "PreparedSKConv" : label_, "input precision",
                                "f32 (float branches)", "u8 codes");
    kernels::SKBranchEpilogue ep;
    ep.bf16_out = bf16_out;
    const int threads = pool.size();
    std::fill(per_thread_sums, per_thread_sums + std::size_t(threads) * std::size_t(g.n * width_), 0.0f);
    pool.run([&](int t) {
      const auto r = split_range(width_, threads, t, kernels::kSKBranchChannelStep);
      if (r.first >= r.second) return;
      for (dim_t call = 0; call < calls(); ++call) {
        const kernels::SKBranchGeometry cg = call_geometry(call, g.n, g.h, g.w);
        float* const* dst = branches + (one_call_per_path_ ? call : 0);
        float* sums = per_thread_sums + std::size_t(t * g.n * width_);
        if (int8_) {
          if constexpr (!kBf16Input)  // float rows or u8 codes
            kernels::sk_branches_conv3x3_int8(cg, x + call_input_offset(call), branches_int8_[std::size_t(call)], dst,
                                              sums, r.first, r.second, 0, cg.oh(), ep);
        } else if (bf16_) {
          if constexpr (!kCodes)
            kernels::sk_branches_conv3x3_bf16(cg, x + call_input_offset(call), branches_bf16_[std::size_t(call)], dst,
                                              sums, r.first, r.second, 0, cg.oh(), ep);
        } else if constexpr (!kBf16Input && !kCodes)
          kernels::sk_branches_conv3x3(cg, x + call_input_offset(call), branches_[std::size_t(call)], dst, sums, r.first,
                                       r.second);
      }
    });
  }

  /// Makes image img's attention, and so its V, NaN (an int8 split() whose input held a NaN or an
  /// infinity for that image): its channel sums in thread 0's part of per_thread_sums (of split())
  /// become NaN.
  void mark_non_finite(float* per_thread_sums, dim_t img) const {
    std::fill_n(per_thread_sums + img * width_, width_, std::numeric_limits<float>::quiet_NaN());
  }

  /// Fuse and the softmax of Select: for each image, s = (sum of the threads' channel sums) /
  /// pixels_per_image, z = ReLU(BN(W_reduce s)), logits = W_select z [M, C], softmax over the M
  /// paths per channel, written to attention [n][M][C] (with sum aggregation: all ones, or NaN for an
  /// image that mark_non_finite() marked).
  /// scratch: at least scratch_size() floats.
  void attend(const float* per_thread_sums, int threads, dim_t n, dim_t pixels_per_image, float* attention,
              float* scratch) const {
    const dim_t c = width_;
    if (!attention_) {  // ones (NaN for an image whose sums mark_non_finite() poisoned)
      for (dim_t img = 0; img < n; ++img) {
        const float one = std::isnan(per_thread_sums[img * c]) ? per_thread_sums[img * c] : 1.0f;
        std::fill(attention + img * M * c, attention + (img + 1) * M * c, one);
      }
      return;
    }
    float* s = scratch;      // [C] the pooled U
    float* z = scratch + c;  // [attention_width()]
    for (dim_t img = 0; img < n; ++img) {
      std::fill(s, s + c, 0.0f);
      for (int t = 0; t < threads; ++t) {
        const float* sums = per_thread_sums + (t * n + img) * c;
        for (dim_t ch = 0; ch < c; ++ch) s[ch] += sums[ch];
      }
      for (dim_t ch = 0; ch < c; ++ch) s[ch] /= float(pixels_per_image);
      // z = ReLU(fc_reduce s + b) (BN folded, NaN kept), logits = fc_select z: matrix-vector products
      // (one pixel) on the 1x1 kernels.
      kernels::pointwise_matvec(reduce_, s, reduce_bias_.data(), /*relu=*/true, z);
      float* a = attention + img * M * c;
      kernels::pointwise_matvec(select_, z, nullptr, /*relu=*/false, a);
      for (dim_t ch = 0; ch < c; ++ch) {
        float top = a[ch];
        for (int m = 1; m < M; ++m) top = std::max(top, a[m * c + ch]);
        float total = 0;
        for (int m = 0; m < M; ++m) total += (a[m * c + ch] = std::exp(a[m * c + ch] - top));
        for (int m = 0; m < M; ++m) a[m * c + ch] /= total;
      }
    }
  }

  /// Select: v[p - p0, :] = sum_m a[image(p), m, :] * U_m[p, :] for output pixels p in [p0, p1)
  /// (counted over the whole batch; pixels_per_image = oh * ow), v: [p1 - p0, C].
  void select(const float* attention, const float* const* branches, dim_t pixels_per_image, dim_t p0, dim_t p1,
              float* v) const {
    const dim_t c = width_;
    const kernels::SKSelectKernelFn kernel = kernels::sk_select_kernel(isa());
    for (dim_t px = p0; px < p1;) {  // runs of rows of one image
      const dim_t img = px / pixels_per_image, end = std::min(p1, (img + 1) * pixels_per_image);
      std::array<const float*, M> u{};
      for (int m = 0; m < M; ++m) u[std::size_t(m)] = branches[m] + px * c;
      kernel(end - px, c, M, attention + img * M * c, u.data(), v + (px - p0) * c);
      px = end;
    }
  }

  /// select() on bf16 branch outputs (split() with bf16_out) into bf16 V rows.
  void select_bf16(const float* attention, const kernels::bf16_t* const* branches, dim_t pixels_per_image, dim_t p0,
                   dim_t p1, kernels::bf16_t* v) const {
    const dim_t c = width_;
    const kernels::SKSelectBf16KernelFn kernel = kernels::sk_select_bf16_kernel(isa());
    for (dim_t px = p0; px < p1;) {  // runs of rows of one image
      const dim_t img = px / pixels_per_image, end = std::min(p1, (img + 1) * pixels_per_image);
      std::array<const kernels::bf16_t*, M> u{};
      for (int m = 0; m < M; ++m) u[std::size_t(m)] = branches[m] + px * c;
      kernel(end - px, c, M, attention + img * M * c, u.data(), v + (px - p0) * c);
      px = end;
    }
  }

  /// What one forward() writes besides its outputs: the M branch outputs, the channel sums and the
  /// attention's scratch. Keep one per thread to reuse it across calls of the same shape.
  struct ForwardBuffers {
    std::array<Index, 4> dims{};
    std::vector<float> sums, scratch;
    std::array<std::vector<float>, M> branches;
  };

  /// The whole SK convolution. requires: x NHWC [N, H, W, in_channels()], v [N, OH, OW, channels()].
  /// ensures: v = V, attention = a [N, M, channels()]. const and re-entrant: everything it writes is
  /// the caller's (`buffers` is resized when the shape or the thread count changes).
  void forward(ThreadPool& pool, const ConstTensorMap4<float>& x, TensorMap4<float> v, Tensor3<float>& attention,
               ForwardBuffers& buffers) const {
    const dim_t n = x.dimension(0), h = x.dimension(1), w = x.dimension(2), c = width_;
    detail::require<ShapeError>(x.dimension(3) == in_channels_, label_.empty() ? "PreparedSKConv" : label_,
                                "input channels (last dimension of NHWC input " + shape_string(x.dimensions()) + ")",
                                in_channels_, x.dimension(3));
    const dim_t oh = out_extent(h), ow = out_extent(w);
    const std::array<Index, 4> expected{n, oh, ow, c};
    detail::require<ShapeError>(v.dimensions() == expected, label_.empty() ? "PreparedSKConv" : label_,
                                "output dimensions", shape_string(expected), shape_string(v.dimensions()));
    const int threads = pool.size();
    if (buffers.dims != std::array<Index, 4>{n, h, w, threads}) {
      for (auto& b : buffers.branches) b.assign(std::size_t(n * oh * ow * c), 0.0f);
      buffers.sums.assign(std::size_t(threads) * std::size_t(n * c), 0.0f);
      buffers.scratch.assign(std::size_t(scratch_size()), 0.0f);
      buffers.dims = {n, h, w, threads};
    }
    if (attention.dimension(0) != n || attention.dimension(1) != M || attention.dimension(2) != c)
      attention.resize(n, M, c);
    std::array<float*, M> u{};
    for (int m = 0; m < M; ++m) u[std::size_t(m)] = buffers.branches[std::size_t(m)].data();
    split(pool, geometry(n, h, w), x.data(), u.data(), buffers.sums.data());
    attend(buffers.sums.data(), threads, n, oh * ow, attention.data(), buffers.scratch.data());
    pool.run([&](int t) {
      const auto r = split_range(n * oh * ow, threads, t);
      if (r.first < r.second) select(attention.data(), u.data(), oh * ow, r.first, r.second, v.data() + r.first * c);
    });
  }
  /// The same with buffers of its own (allocated for this call).
  void forward(ThreadPool& pool, const ConstTensorMap4<float>& x, TensorMap4<float> v, Tensor3<float>& attention) const {
    ForwardBuffers buffers;
    forward(pool, x, v, attention, buffers);
  }

 private:
  std::string label_;
  dim_t width_ = 0, in_channels_ = 0, groups_ = 1, stride_ = 1, attn_width_ = 0;
  bool split_input_ = false, attention_ = true, one_call_per_path_ = false, bf16_ = false, int8_ = false;
  kernels::Isa isa_ = kernels::Isa::portable;
  std::array<dim_t, M> kernel_{}, dilation_{}, path_groups_{};
  std::array<kernels::PackedBranchWeights, M> branches_;  // [0] for all paths, or [m] for path m alone
  std::array<kernels::PackedBranchWeightsBf16, M> branches_bf16_;  // the same, bf16 (bf16_)
  std::array<kernels::PackedBranchWeightsInt8, M> branches_int8_;  // the same, int8 (int8_)
  kernels::PackedPointwiseWeights reduce_, select_;  // fc_reduce with BN folded [d][C], fc_select [M*C][d]
  std::vector<float> reduce_bias_;                   // [d]
};

}  // namespace sknet
