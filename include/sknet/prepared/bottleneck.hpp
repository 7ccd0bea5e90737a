// sknet prepared engine: the residual blocks with a pluggable middle.
//
//   bottleneck: conv1 (1x1, BN, ReLU) -> middle (3x3, stride here) -> conv3 (1x1, BN) [-> SE] + shortcut -> ReLU
//   basic:      middle (3x3, stride here) -> conv2 (3x3, BN) + shortcut -> ReLU
//
// The middle is a small policy (the same calls for every kind): split() writes its `paths()` outputs
// U_m (and, for SK, the channel sums of U), attend() turns the sums into the attention, and select()
// hands conv3 the rows of V it reads:
//   SKMiddle<M>     the SK convolution (PreparedSKConv<M>): M branches (any kernel sizes, dilations and
//                   groups of the SK spec), attention (or all ones for sum aggregation), V = sum a_m U_m
//   GroupedMiddle   one grouped 3x3 convolution + BN + ReLU (ResNeXt): V = U_1, no attention
// Every block states its workspace needs for an input shape and runs on the workspace it is given.
//
// Activations between blocks are float, or bf16 (Act = kernels::bf16_t: the bottleneck's 1x1
// convolutions and its shortcut projection run the bf16 kernels on bf16 inputs; a middle built with
// Precision::bf16 runs the bf16 SK branch kernel and conv1 hands it bf16 rows (a float middle, where the
// bf16 kernel does not support the groups: float rows) and receives bf16 outputs U_m (rounded after
// their float channel sums), from which select_bf16 builds bf16 V rows block by block just before conv3
// (a float middle: float U_m and V, V rounded block by block); the attention stays float; conv3 writes
// the bf16 output).
//
// int8 blocks (Pointwise = PreparedPointwiseInt8) keep float activations and run their 1x1
// convolutions in int8: conv1 and the projection quantize the block input, conv3 each block of V rows,
// per tensor at the ranges a calibration pass recorded ("<block>.input", "<block>.v"; a float block
// records them, and "<block>.mid", when BlockRun::recorder is set); a middle built with Precision::int8
// runs the int8 SK branch kernel on conv1's output as u8 codes at "<block>.mid" (conv1's epilogue
// quantizes it; an image whose block input held a NaN or an infinity, which has no code, is marked NaN
// after the split: mark_non_finite).
#pragma once

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/pointwise.hpp"
#include "sknet/kernels/se_gate.hpp"
#include "sknet/ops/conv_bn.hpp"
#include "sknet/ops/shortcut.hpp"
#include "sknet/ops/squeeze_excite.hpp"
#include "sknet/prepared/activation_ranges.hpp"
#include "sknet/prepared/conv3x3.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"
#include "sknet/sk/prepared_sk_conv.hpp"

namespace sknet {

/// What a block's run() is given: the pool that splits its layers, the workspace, its input and
/// output activations, where its attention goes (null: none), whether to leave the channel sums of
/// its output in Slot::head_sums (the last block of a single image), and the profiler (or null).
struct BlockRun {  // x and y hold bf16 values for bf16 blocks
  ThreadPool* pool = nullptr;
  const Workspace* ws = nullptr;
  const float* x = nullptr;
  FeatureShape in;
  float* y = nullptr;
  float* attention = nullptr;
  bool head_sums = false;
  Profiler* profiler = nullptr;
  RangeRecorder* recorder = nullptr;  ///< calibration: float blocks record the ranges int8 blocks quantize at
};

namespace detail {
/// count bf16 values widened to float (dst), or count floats rounded to bf16 (to nearest even), split over
/// the pool, with the kernels for `isa`.
inline void widen_rows(ThreadPool& pool, kernels::Isa isa, const kernels::bf16_t* src, float* dst, kernels::dim_t count) {
  const kernels::Bf16WidenFn widen = kernels::bf16_widen_kernel(isa);
  const int threads = pool.size();
  pool.run([&](int t) {
    const auto part = split_range(count, threads, t, 16);
    if (part.first < part.second) widen(src + part.first, dst + part.first, part.second - part.first);
  });
}
inline void narrow_rows(ThreadPool& pool, kernels::Isa isa, const float* src, kernels::bf16_t* dst, kernels::dim_t count) {
  const kernels::Bf16NarrowFn narrow = kernels::bf16_narrow_kernel(isa);
  const int threads = pool.size();
  pool.run([&](int t) {
    const auto part = split_range(count, threads, t, 16);
    if (part.first < part.second) narrow(src + part.first, dst + part.first, part.second - part.first);
  });
}

/// The 1x1 convolution `layer` prepared as `Pointwise`: int8 ones quantize their input at the range
/// `ranges` holds for `tensor`.
template <class Pointwise>
Pointwise make_pointwise(const ConvBnAct<float>& layer, kernels::Isa isa, const ActivationRanges* ranges,
                         const std::string& tensor) {
  if constexpr (std::is_same_v<Pointwise, PreparedPointwiseInt8>) {
    const ActivationRanges::Range& r = calibrated_range(ranges, tensor);
    return Pointwise::from(layer, isa, r.lo, r.hi);
  } else {
    (void)ranges, (void)tensor;
    return Pointwise::from(layer, isa);
  }
}
}  // namespace detail

/// One prepared block of a network.
class PreparedBlock {
 public:
  virtual ~PreparedBlock() = default;
  virtual const std::string& name() const = 0;
  virtual FeatureShape out_shape(const FeatureShape& in) const = 0;
  /// Adds what run() needs for input `in` with `threads` threads.
  virtual void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const = 0;
  /// Paths M and channels of the attention the block writes per image ([M][C]); 0 channels: none.
  virtual kernels::dim_t attention_paths() const = 0;
  virtual kernels::dim_t attention_channels() const = 0;
  /// Whether run() may be given its input as its output (r.y == r.x): it reads each input pixel only
  /// before writing that output pixel. The network then writes the block's output over its input
  /// instead of into a second buffer (whose lines the stores would first have to fetch).
  virtual bool runs_in_place() const { return false; }
  virtual FeatureShape run(const BlockRun& r) const = 0;
};

/// The SK convolution as a bottleneck middle.
template <int M>
class SKMiddle {
 public:
  using dim_t = kernels::dim_t;
  /// precision: of the branch convolutions (bf16 or int8 where those kernels support them; int8
  /// quantizes the middle's input over [0, int8_input_max], its calibrated maximum).
  SKMiddle(const SKConv<float, M>& sk, kernels::Isa isa, kernels::Precision precision = kernels::Precision::f32,
           float int8_input_max = 0.0f)
      : sk_(sk, isa, precision, int8_input_max) {}
  dim_t channels() const { return sk_.channels(); }
  dim_t stride() const { return sk_.stride(); }
  dim_t out_extent(dim_t in) const { return sk_.out_extent(in); }
  static constexpr int paths() { return M; }
  /// select() builds V into its buffer.
  static constexpr bool reads_v_in_place() { return false; }
  /// split() writes its M outputs beside its input.
  bool splits_in_place(int) const { return false; }
  dim_t attention_channels() const { return sk_.channels(); }
  std::size_t scratch_floats() const { return std::size_t(sk_.scratch_size()); }
  /// Whether split() reads bf16 rows (its branch convolutions run in bf16).
  bool reads_bf16() const { return sk_.branch_precision() == kernels::Precision::bf16; }
  /// Whether split() reads u8 codes (its branch convolutions run in int8), at input_scale() with zero
  /// point 0; the caller marks images whose codes stand for a NaN or infinity with mark_non_finite().
  bool quantizes_input() const { return sk_.branch_precision() == kernels::Precision::int8; }
  float input_scale() const { return sk_.int8_input_scale(); }
  /// Image img of a split() (n images, opix output pixels each) becomes NaN from here on: its
  /// attention, and so V.
  void mark_non_finite(float* const*, float* per_thread_sums, dim_t, dim_t img) const {
    sk_.mark_non_finite(per_thread_sums, img);
  }
  /// With reads_bf16(), x may be bf16 rows and U_m is written as bf16 (for select_bf16).
  template <class Src>
  void split(ThreadPool& pool, dim_t n, dim_t h, dim_t w, const Src* x, float* const* u, float* per_thread_sums) const {
    sk_.split(pool, sk_.geometry(n, h, w), x, u, per_thread_sums, reads_bf16());
  }
  void attend(const float* per_thread_sums, int threads, dim_t n, dim_t opix, float* attention, float* scratch) const {
    sk_.attend(per_thread_sums, threads, n, opix, attention, scratch);
  }
  /// V rows [p0, p1) built into `v` ([p1 - p0][C]).
  const float* select(const float* attention, const float* const* u, dim_t opix, dim_t p0, dim_t p1, float* v) const {
    sk_.select(attention, u, opix, p0, p1, v);
    return v;
  }
  /// The same from bf16 U_m (reads_bf16()) into bf16 rows.
  const kernels::bf16_t* select_bf16(const float* attention, const float* const* u, dim_t opix, dim_t p0, dim_t p1,
                                     kernels::bf16_t* v) const {
    std::array<const kernels::bf16_t*, M> ub{};
    for (int m = 0; m < M; ++m) ub[std::size_t(m)] = reinterpret_cast<const kernels::bf16_t*>(u[m]);
    sk_.select_bf16(attention, ub.data(), opix, p0, p1, v);
    return v;
  }

 private:
  PreparedSKConv<M> sk_;
};

/// One grouped 3x3 convolution (padding 1, BN, ReLU) as a bottleneck middle (PreparedConv3x3: the
/// SK branch kernel with a single path).
class GroupedMiddle {
 public:
  using dim_t = kernels::dim_t;
  /// precision: of the convolution (bf16 or int8 where those SK branch kernels support its groups;
  /// int8 quantizes the input over [0, int8_input_max]).
  GroupedMiddle(const ConvBnAct<float>& conv, kernels::Isa isa, kernels::Precision precision = kernels::Precision::f32,
                float int8_input_max = 0.0f)
      : conv_(conv, isa, precision, int8_input_max) {
    detail::require<ConfigError>(conv_.in_channels() == conv_.out_channels() && conv_.relu(), "prepare",
                                 "middle convolution of " + conv.label(), "in = out channels, ReLU", "another shape");
  }
  dim_t channels() const { return conv_.out_channels(); }
  dim_t stride() const { return conv_.stride(); }
  dim_t out_extent(dim_t in) const { return conv_.out_extent(in); }
  static constexpr int paths() { return 1; }
  /// select() returns U_1's float rows themselves (V = U_1).
  static constexpr bool reads_v_in_place() { return true; }
  /// Whether split() may write U_1 over its float input with `threads` threads (stride 1, the float
  /// kernel: PreparedConv3x3::runs_in_place).
  bool splits_in_place(int threads) const { return conv_.runs_in_place(threads); }
  dim_t attention_channels() const { return 0; }
  std::size_t scratch_floats() const { return 0; }
  /// With reads_bf16(), x may be bf16 rows and U_1 is written as bf16 (for select_bf16).
  bool reads_bf16() const { return conv_.precision() == kernels::Precision::bf16; }
  /// Whether split() reads u8 codes (int8; see SKMiddle::quantizes_input).
  bool quantizes_input() const { return conv_.precision() == kernels::Precision::int8; }
  float input_scale() const { return conv_.int8_input_scale(); }
  /// Image img's U_1 (= V) becomes NaN.
  void mark_non_finite(float* const* u, float*, dim_t opix, dim_t img) const {
    std::fill_n(u[0] + img * opix * channels(), opix * channels(), std::numeric_limits<float>::quiet_NaN());
  }
  template <class Src>
  void split(ThreadPool& pool, dim_t n, dim_t h, dim_t w, const Src* x, float* const* u, float*) const {
    conv_.run(pool, n, h, w, x, u[0], static_cast<const float*>(nullptr), false, nullptr, reads_bf16());
  }
  void attend(const float*, int, dim_t, dim_t, float*, float*) const {}
  /// V = U_1: conv3 reads the rows in place.
  const float* select(const float*, const float* const* u, dim_t, dim_t p0, dim_t, float*) const {
    return u[0] + p0 * channels();
  }
  /// The same for bf16 U_1 (reads_bf16()): conv3 reads its bf16 rows in place.
  const kernels::bf16_t* select_bf16(const float*, const float* const* u, dim_t, dim_t p0, dim_t, kernels::bf16_t*) const {
    return reinterpret_cast<const kernels::bf16_t*>(u[0]) + p0 * channels();
  }

 private:
  PreparedConv3x3 conv_;
};

/// The float or bf16 form of a 1x1 convolution, by activation type.
template <class Act>
using PreparedPointwiseOf = std::conditional_t<std::is_same_v<Act, kernels::bf16_t>, PreparedPointwiseBf16, PreparedPointwise>;
template <class Act>
using PointwiseEpilogueOf =
    std::conditional_t<std::is_same_v<Act, kernels::bf16_t>, kernels::PointwiseBf16Epilogue, kernels::PointwiseEpilogue>;

/// The shortcut of a block, prepared: identity, or the projection (1x1 conv + BN) of the input's
/// strided pixels or, with avg_down, of its 2x2 average pool (ceil mode, padding not counted), on
/// float or bf16 activations (Act), in float, bf16 or int8 arithmetic (Pointwise; int8: the block
/// input's range `input_range` of `ranges`).
template <class Act = float, class Pointwise = PreparedPointwiseOf<Act>>
class PreparedShortcut {
  static constexpr bool kInt8 = std::is_same_v<Pointwise, PreparedPointwiseInt8>;

 public:
  using dim_t = kernels::dim_t;
  PreparedShortcut(const Shortcut<float>& s, kernels::Isa isa, const ActivationRanges* ranges = nullptr,
                   const std::string& input_range = "")
      : stride_(s.stride()), pools_(s.pools()) {
    if (s.projection()) projection_ = detail::make_pointwise<Pointwise>(*s.projection(), isa, ranges, input_range);
  }
  bool identity() const { return !projection_; }
  void add_needs(const FeatureShape& in, dim_t opix, WorkspaceNeeds& needs) const {
    if (projection_ && stride_ != 1) needs.need(Slot::gathered, std::size_t(in.n * opix) * std::size_t(projection_->cin()));
    if constexpr (kInt8)
      if (projection_) needs.need(Slot::quantized, detail::floats_for_bytes(projection_->scratch_bytes(in.n * opix)));
  }
  /// The projection of x ([n, h, w, cin]) at the output pixels ([n, oh, ow]) into dst [n * oh * ow][cout].
  void project(ThreadPool& pool, const Workspace& ws, const Act* x, const FeatureShape& in, dim_t oh, dim_t ow,
               Act* dst) const {
    const dim_t n = in.n, h = in.h, w = in.w, cin = projection_->cin(), opix = oh * ow, stride = stride_;
    const Act* src = x;
    if (stride != 1) {
      Act* gathered = reinterpret_cast<Act*>(ws.get(Slot::gathered));
      const int threads = pool.size();
      const bool average = pools_;
      pool.run([&](int t) {
        const auto part = split_range(n * opix, threads, t);
        for (dim_t px = part.first; px < part.second; ++px) {
          const dim_t img = px / opix, oy = px / ow % oh, ox = px % ow;
          Act* out = gathered + px * cin;
          const Act* first = x + ((img * h + oy * stride) * w + ox * stride) * cin;
          if (!average) {
            std::memcpy(out, first, sizeof(Act) * std::size_t(cin));
            continue;
          }
          // 2x2 window from (oy * stride, ox * stride), clipped to the input; mean of what is inside
          // (summed in float).
          const dim_t y1 = std::min(h, oy * stride + 2), x1 = std::min(w, ox * stride + 2);
          dim_t count = (y1 - oy * stride) * (x1 - ox * stride);
          const float scale = 1.0f / float(count);
          for (dim_t c = 0; c < cin; ++c) {
            float sum = 0.0f;
            for (dim_t iy = oy * stride; iy < y1; ++iy)
              for (dim_t ix = ox * stride; ix < x1; ++ix) sum += as_float(x[((img * h + iy) * w + ix) * cin + c]);
            out[c] = from_float(sum * scale);
          }
        }
      });
      src = gathered;
    }
    if constexpr (kInt8)
      projection_->run(pool, n * opix, src, {}, dst, reinterpret_cast<kernels::u8_t*>(ws.get(Slot::quantized)));
    else
      projection_->run(pool, n * opix, src, PointwiseEpilogueOf<Act>{}, dst);
  }

 private:
  static float as_float(float v) { return v; }
  static float as_float(kernels::bf16_t v) { return kernels::from_bf16(v); }
  static Act from_float(float v) {
    if constexpr (std::is_same_v<Act, kernels::bf16_t>) return kernels::to_bf16(v);
    else return v;
  }
  dim_t stride_ = 1;
  bool pools_ = false;
  std::optional<Pointwise> projection_;
};

/// The SE gate, prepared: g = sigmoid(fc2(ReLU(fc1(mean)))) per image, in float; both FCs run as
/// matrix-vector products (one pixel) on the pointwise kernels of the block's ISA.
class PreparedSqueezeExcite {
 public:
  using dim_t = kernels::dim_t;
  PreparedSqueezeExcite(const SqueezeExcite<float>& se, kernels::Isa isa)
      : c_(se.channels()), d_(se.width()),
        fc1_(se.fc1().weight().data(), d_, c_, isa),
        b1_(se.fc1().bias().data(), se.fc1().bias().data() + d_),
        fc2_(se.fc2().weight().data(), c_, d_, isa),
        b2_(se.fc2().bias().data(), se.fc2().bias().data() + c_) {}
  dim_t channels() const { return c_; }
  /// Floats of scratch gate() needs.
  dim_t scratch_size() const { return d_; }
  /// gate [C] of one image from its channel means `mean` [C]; scratch: scratch_size() floats.
  void gate(const float* mean, float* gate, float* scratch) const {
    kernels::pointwise_matvec(fc1_, mean, b1_.data(), /*relu=*/true, scratch);  // z, NaN kept
    kernels::pointwise_matvec(fc2_, scratch, b2_.data(), /*relu=*/false, gate);
    for (dim_t c = 0; c < c_; ++c) gate[c] = 1.0f / (1.0f + std::exp(-gate[c]));
  }

 private:
  dim_t c_, d_;
  kernels::PackedPointwiseWeights fc1_;  // [d][C]
  std::vector<float> b1_;
  kernels::PackedPointwiseWeights fc2_;  // [C][d]
  std::vector<float> b2_;
};

/// The bottleneck block over a middle (SKMiddle<M> or GroupedMiddle), on float or bf16 activations
/// (Act), its 1x1 convolutions in float, bf16 or int8 (Pointwise).
template <class Middle, class Act = float, class Pointwise = PreparedPointwiseOf<Act>>
class PreparedBottleneck final : public PreparedBlock {
  static constexpr bool kBf16 = std::is_same_v<Act, kernels::bf16_t>;
  static constexpr bool kInt8 = std::is_same_v<Pointwise, PreparedPointwiseInt8>;
  static_assert(!kInt8 || std::is_same_v<Act, float>, "int8 blocks keep float activations");

 public:
  using dim_t = kernels::dim_t;
  /// conv1, conv3: 1x1 conv + BN; the shortcut (its stride is the middle's); an SE gate or null;
  /// int8: the calibrated ranges of "<name>.input" and "<name>.v".
  PreparedBottleneck(std::string name, const ConvBnAct<float>& conv1, Middle middle, const ConvBnAct<float>& conv3,
                     const Shortcut<float>& shortcut, const SqueezeExcite<float>* se, kernels::Isa isa,
                     const ActivationRanges* ranges = nullptr)
      : name_(std::move(name)),
        conv1_(detail::make_pointwise<Pointwise>(conv1, isa, ranges, name_ + ".input")),
        middle_(std::move(middle)),
        conv3_(detail::make_pointwise<Pointwise>(conv3, isa, ranges, name_ + ".v")),
        shortcut_(shortcut, isa, ranges, name_ + ".input") {
    if (se) se_.emplace(*se, isa);
  }

  const std::string& name() const override { return name_; }
  FeatureShape out_shape(const FeatureShape& in) const override {
    return {in.n, middle_.out_extent(in.h), middle_.out_extent(in.w), conv3_.cout()};
  }
  dim_t attention_paths() const override { return Middle::paths(); }
  dim_t attention_channels() const override { return middle_.attention_channels(); }
  /// With an identity shortcut and no SE gate, x is read whole by conv1, then conv3 reads each pixel's
  /// residual just before it writes that pixel (an in-place residual add, which the float and bf16
  /// kernels allow).
  bool runs_in_place() const override { return shortcut_.identity() && !se_ && !kInt8; }
  /// Whether the middle writes its output over conv1's (float blocks whose middle allows it).
  bool splits_in_place(int threads) const {
    if constexpr (kBf16 || kInt8) return false;
    else return middle_.splits_in_place(threads);
  }

  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const override {
    const FeatureShape out = out_shape(in);
    const std::size_t c = std::size_t(middle_.channels()), t = std::size_t(threads);
    const std::size_t opix = std::size_t(out.n * out.h * out.w);
    needs.need(Slot::mid, std::size_t(in.n * in.h * in.w) * c);
    if (!splits_in_place(threads)) needs.need(Slot::branches, std::size_t(Middle::paths()) * opix * c);
    needs.need(Slot::v, t * std::size_t(kBlockRows) * c * (kBf16 ? 2 : 1));  // bf16: + the rounded rows
    needs.need(Slot::sums, t * std::size_t(in.n) * c);
    needs.need(Slot::scratch, std::max(middle_.scratch_floats(), se_ ? std::size_t(2 * se_->channels() + se_->scratch_size()) : 0));
    shortcut_.add_needs(in, out.h * out.w, needs);
    if (se_ && !shortcut_.identity()) needs.need(Slot::shortcut, opix * std::size_t(out.c));
    if (se_) needs.need(Slot::head_sums, t * std::size_t(in.n) * std::size_t(out.c));
    if (se_ && kBf16) needs.need(Slot::gated, opix * std::size_t(out.c));
    if constexpr (kInt8) {
      needs.need(Slot::quantized, detail::floats_for_bytes(conv1_.scratch_bytes(in.n * in.h * in.w)));
      needs.need(Slot::quantized, t * detail::floats_for_bytes(conv3_.scratch_bytes(kBlockRows)));
    }
    needs.need(Slot::activation_a, opix * std::size_t(out.c));
    needs.need(Slot::activation_b, opix * std::size_t(out.c));
    needs.need(Slot::head_sums, t * std::size_t(out.c));
  }

  FeatureShape run(const BlockRun& r) const override {
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = r.in.n, h = r.in.h, w = r.in.w, c = middle_.channels(), stride = middle_.stride();
    const dim_t oh = middle_.out_extent(h), ow = middle_.out_extent(w), opix = oh * ow, cout = conv3_.cout();
    const Act* x = reinterpret_cast<const Act*>(r.x);
    Act* y = reinterpret_cast<Act*>(r.y);

    // conv1 (+BN, ReLU), dense: the branch kernel adds the zero border in its own row copies. Its
    // output is what the middle reads: bf16 rows for a bf16 middle, else float rows.
    bool bf16_mid = false, codes_mid = false;
    if constexpr (kInt8) {  // u8 codes for an int8 middle, else float rows
      typename Pointwise::Epilogue relu;
      relu.relu = true;
      auto* scratch = reinterpret_cast<kernels::u8_t*>(ws.get(Slot::quantized));
      codes_mid = middle_.quantizes_input();
      if (codes_mid)
        conv1_.run_codes(pool, n * h * w, x, relu, reinterpret_cast<kernels::u8_t*>(ws.get(Slot::mid)), middle_.input_scale(),
                         scratch);
      else
        conv1_.run(pool, n * h * w, x, relu, ws.get(Slot::mid), scratch);
    } else if constexpr (kBf16) {
      PointwiseEpilogueOf<Act> relu;
      relu.relu = true;
      bf16_mid = middle_.reads_bf16();
      relu.float_dst = bf16_mid ? nullptr : ws.get(Slot::mid);
      conv1_.run(pool, n * h * w, x, relu, reinterpret_cast<kernels::bf16_t*>(ws.get(Slot::mid)));
    } else {
      detail::record_finite_range(r.recorder, name_ + ".input", pool, x, std::size_t(n * h * w * r.in.c));
      PointwiseEpilogueOf<Act> relu;
      relu.relu = true;
      conv1_.run(pool, n * h * w, x, relu, ws.get(Slot::mid));
      detail::record_finite_range(r.recorder, name_ + ".mid", pool, ws.get(Slot::mid), std::size_t(n * h * w * c));
    }
    Profiler::mark(r.profiler, 1);

    // The middle's outputs U_m (and, for SK, the channel sums of U) in one pass; a grouped middle of
    // stride 1 writes U_1 over conv1's output, which nothing reads after it (one buffer less per
    // block, whose stores would first have to fetch its lines; bench/RESULTS.md).
    std::array<float*, Middle::paths()> u = detail::branch_outputs<Middle::paths()>(ws, n * opix, c);
    if (splits_in_place(threads)) u[0] = ws.get(Slot::mid);
    if (bf16_mid)
      middle_.split(pool, n, h, w, reinterpret_cast<const kernels::bf16_t*>(ws.get(Slot::mid)), u.data(), ws.get(Slot::sums));
    else if (codes_mid)
      middle_.split(pool, n, h, w, reinterpret_cast<const kernels::u8_t*>(ws.get(Slot::mid)), u.data(), ws.get(Slot::sums));
    else
      middle_.split(pool, n, h, w, ws.get(Slot::mid), u.data(), ws.get(Slot::sums));
    if constexpr (kInt8) {  // input rows without codes (NaN, infinity) gave conv1 rows of finite codes
      if (codes_mid) {
        const auto* scratch = reinterpret_cast<const kernels::u8_t*>(ws.get(Slot::quantized));
        for (dim_t img = 0; img < n; ++img)
          if (conv1_.any_row_flagged(scratch, n * h * w, img * h * w, (img + 1) * h * w))
            middle_.mark_non_finite(u.data(), ws.get(Slot::sums), opix, img);
      }
    }
    Profiler::mark(r.profiler, 2);
    middle_.attend(ws.get(Slot::sums), threads, n, opix, r.attention, ws.get(Slot::scratch));
    Profiler::mark(r.profiler, 3);

    // Shortcut: identity, or the projection written into y first (or aside when an SE gate comes
    // between conv3 and the add).
    (void)stride;
    const Act* residual = x;
    if (!shortcut_.identity()) {
      Act* dst = se_ ? reinterpret_cast<Act*>(ws.get(Slot::shortcut)) : y;
      shortcut_.project(pool, ws, x, r.in, oh, ow, dst);
      residual = dst;
      Profiler::mark(r.profiler, 4);
    }
    if (se_) return run_gated(r, u.data(), residual, {n, oh, ow, cout});

    // conv3 (+BN) + shortcut, ReLU, on V block by block (V never goes to memory as a whole); the last
    // block of a single image also sums its output per channel for the head.
    const dim_t pixels = n * opix;
    PointwiseEpilogueOf<Act> ep;
    ep.bias = conv3_.bias();
    ep.residual_stride = cout;
    ep.relu = true;
    float* head_sums = r.head_sums ? ws.get(Slot::head_sums) : nullptr;
    if (head_sums) std::fill(head_sums, head_sums + std::size_t(threads * cout), 0.0f);
    const bool by_pixels = split_gemm_by_pixels(pixels, cout, threads);
    const kernels::Bf16NarrowFn narrow = kernels::bf16_narrow_kernel(isa_of(conv3_));
    detail::ThreadRanges v_ranges(r.recorder ? threads : 0);  // V, when calibrating
    pool.run([&](int t) {
      float* v = ws.get(Slot::v) + std::size_t(t) * std::size_t(kBlockRows * c) * (kBf16 ? 2 : 1);
      PointwiseEpilogueOf<Act> mine = ep;
      if (head_sums) mine.channel_sums = head_sums + std::size_t(t) * std::size_t(cout);
      const auto rows = by_pixels ? split_range(pixels, threads, t) : std::pair<long, long>{0, pixels};
      const auto cols = by_pixels ? std::pair<long, long>{0, cout} : split_range(cout, threads, t, 16);
      if (cols.first >= cols.second) return;
      const dim_t block = conv3_block_rows(rows.second - rows.first);
      for (dim_t p0 = rows.first; p0 < rows.second; p0 += block) {
        const dim_t p1 = std::min<dim_t>(rows.second, p0 + block);
        const kernels::PointwiseGeometry g{p1 - p0, c, cout, c, cout};
        mine.residual = residual + p0 * cout;
        if constexpr (kBf16) {
          const kernels::bf16_t* vb = bf16_rows_of_v(r.attention, u.data(), opix, p0, p1, v, narrow);
          kernels::pointwise_conv_bf16(g, vb, conv3_.weights(), mine, y + p0 * cout, 0, p1 - p0, cols.first, cols.second);
        } else {
          (void)narrow;
          const float* vrows = middle_.select(r.attention, u.data(), opix, p0, p1, v);
          v_ranges.add(t, vrows, std::size_t((p1 - p0) * c));
          if constexpr (kInt8) {
            typename Pointwise::Epilogue e8;
            e8.residual = residual + p0 * cout;
            e8.residual_stride = cout;
            e8.relu = true;
            e8.channel_sums = mine.channel_sums != nullptr;
            conv3_.run_rows(p1 - p0, vrows, c, e8, y + p0 * cout, cols.first, cols.second, quantized_rows(ws, t),
                            mine.channel_sums);
          } else {
            kernels::pointwise_conv(g, vrows, conv3_.weights(), mine, y + p0 * cout, 0, p1 - p0, cols.first, cols.second);
          }
        }
      }
    });
    if (r.recorder) detail::record_range(*r.recorder, name_ + ".v", v_ranges.merged());
    Profiler::mark(r.profiler, 5);
    return {n, oh, ow, cout};
  }

 private:
  /// conv3 (+BN) with per-image channel sums, the SE gate, then y = ReLU(gate * y + shortcut). In bf16,
  /// conv3's float outputs go to Slot::gated, are gated there and rounded into y row by row.
  FeatureShape run_gated(const BlockRun& r, const float* const* u, const Act* residual, const FeatureShape& out) const {
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = out.n, opix = out.h * out.w, c = middle_.channels(), cout = out.c;
    float* y = kBf16 ? ws.get(Slot::gated) : r.y;  // conv3's float outputs
    float* sums = ws.get(Slot::head_sums);  // [threads][n][cout]
    std::fill_n(sums, std::size_t(threads) * std::size_t(n * cout), 0.0f);
    const kernels::Bf16NarrowFn narrow = kernels::bf16_narrow_kernel(isa_of(conv3_));
    const kernels::SEGateRowsFn gate_rows = kernels::se_gate_rows_kernel(isa_of(conv3_));
    detail::ThreadRanges v_ranges(r.recorder ? threads : 0);  // V, when calibrating
    pool.run([&](int t) {
      float* v = ws.get(Slot::v) + std::size_t(t) * std::size_t(kBlockRows * c) * (kBf16 ? 2 : 1);
      const auto rows = split_range(n * opix, threads, t);
      PointwiseEpilogueOf<Act> ep;
      ep.bias = conv3_.bias();
      for (dim_t p0 = rows.first; p0 < rows.second;) {  // runs of rows of one image (per-image sums)
        const dim_t img = p0 / opix, run_end = std::min(rows.second, (img + 1) * opix);
        const dim_t p1 = std::min(run_end, p0 + conv3_block_rows(run_end - p0));
        ep.channel_sums = sums + (std::size_t(t) * std::size_t(n) + std::size_t(img)) * std::size_t(cout);
        const kernels::PointwiseGeometry g{p1 - p0, c, cout, c, cout};
        if constexpr (kBf16) {
          const kernels::bf16_t* vb = bf16_rows_of_v(r.attention, u, opix, p0, p1, v, narrow);
          ep.float_dst = y + p0 * cout;
          kernels::pointwise_conv_bf16(g, vb, conv3_.weights(), ep, nullptr, 0, p1 - p0, 0, cout);
        } else {
          const float* vrows = middle_.select(r.attention, u, opix, p0, p1, v);
          v_ranges.add(t, vrows, std::size_t((p1 - p0) * c));
          if constexpr (kInt8) {
            typename Pointwise::Epilogue e8;
            e8.channel_sums = true;
            conv3_.run_rows(p1 - p0, vrows, c, e8, y + p0 * cout, 0, cout, quantized_rows(ws, t), ep.channel_sums);
          } else {
            kernels::pointwise_conv(g, vrows, conv3_.weights(), ep, y + p0 * cout, 0, p1 - p0, 0, cout);
          }
        }
        p0 = p1;
      }
    });
    if (r.recorder) detail::record_range(*r.recorder, name_ + ".v", v_ranges.merged());
    Profiler::mark(r.profiler, 5);
    float* gates = ws.get(Slot::scratch);  // [cout] mean, [cout] gate, then the SE's own scratch
    for (dim_t img = 0; img < n; ++img) {
      float* mean = gates;
      float* g = gates + cout;
      std::fill_n(mean, cout, 0.0f);
      for (int t = 0; t < threads; ++t) {
        const float* s = sums + (std::size_t(t) * std::size_t(n) + std::size_t(img)) * std::size_t(cout);
        for (dim_t ch = 0; ch < cout; ++ch) mean[ch] += s[ch];
      }
      for (dim_t ch = 0; ch < cout; ++ch) mean[ch] /= float(opix);
      se_->gate(mean, g, gates + 2 * cout);
      // The head reads the per-thread sums of the last block's output (one image: the conv3 sums
      // above, in the same slot, are no longer needed).
      float* head = r.head_sums ? ws.get(Slot::head_sums) : nullptr;
      if (head) std::fill_n(head, std::size_t(threads) * std::size_t(cout), 0.0f);
      pool.run([&](int t) {
        const auto rows = split_range(opix, threads, t);
        float* head_t = head ? head + std::size_t(t) * std::size_t(cout) : nullptr;
        if constexpr (kBf16) {
          for (dim_t p = rows.first; p < rows.second; ++p) {
            float* o = y + (img * opix + p) * cout;
            const Act* s = residual + (img * opix + p) * cout;
            for (dim_t ch = 0; ch < cout; ++ch) {
              const float v = o[ch] * g[ch] + as_float(s[ch]);
              o[ch] = v > 0.0f || v != v ? v : 0.0f;  // ReLU keeping NaN
              if (head_t) head_t[ch] += o[ch];
            }
            narrow(o, reinterpret_cast<kernels::bf16_t*>(r.y) + (img * opix + p) * cout, cout);
          }
        } else {
          gate_rows(y + (img * opix + rows.first) * cout, residual + (img * opix + rows.first) * cout, g,
                    rows.second - rows.first, cout, head_t);
        }
      });
    }
    return out;
  }

  /// Thread t's scratch for quantizing a block of V rows.
  kernels::u8_t* quantized_rows(const Workspace& ws, int t) const {
    return reinterpret_cast<kernels::u8_t*>(ws.get(Slot::quantized)) +
           std::size_t(t) * sizeof(float) * detail::floats_for_bytes(conv3_.scratch_bytes(kBlockRows));
  }

  /// V's rows [p0, p1) as bf16 for conv3: from a bf16 middle's bf16 U directly, else V's float rows
  /// (built in this thread's v) rounded behind them.
  const kernels::bf16_t* bf16_rows_of_v(const float* attention, const float* const* u, dim_t opix, dim_t p0, dim_t p1,
                                        float* v, kernels::Bf16NarrowFn narrow) const {
    const dim_t c = middle_.channels();
    kernels::bf16_t* vb = reinterpret_cast<kernels::bf16_t*>(v + kBlockRows * c);
    if (middle_.reads_bf16()) return middle_.select_bf16(attention, u, opix, p0, p1, vb);
    narrow(middle_.select(attention, u, opix, p0, p1, v), vb, (p1 - p0) * c);
    return vb;
  }
  static kernels::Isa isa_of(const Pointwise& p) { return p.weights().isa(); }
  static float as_float(float v) { return v; }
  static float as_float(kernels::bf16_t v) { return kernels::from_bf16(v); }

  /// Rows of V per conv3 call out of `rows` left: all of them when conv3 reads V in place (a float
  /// U_1: the kernel blocks the rows itself), else the first of equal blocks of at most kBlockRows (a
  /// short last block would read all of conv3's weights again for a few rows: P = 196 ran as 192 + 4).
  static dim_t conv3_block_rows(dim_t rows) {
    if constexpr (!kBf16 && !kInt8 && Middle::reads_v_in_place()) return rows;
    const dim_t blocks = (rows + kBlockRows - 1) / kBlockRows;
    return (rows + blocks - 1) / blocks;
  }

  static constexpr dim_t kBlockRows = 192;  ///< rows of V built at a time (stay in L2 for conv3)
  std::string name_;
  Pointwise conv1_;
  Middle middle_;
  Pointwise conv3_;
  PreparedShortcut<Act, Pointwise> shortcut_;
  std::optional<PreparedSqueezeExcite> se_;
};

/// The basic block over a middle (SKMiddle<M>: timm's SelectiveKernelBasic): the middle reads the
/// block's input and carries the stride, V is built whole (conv2 is a 3x3 and reads neighbours), then
/// conv2 (3x3, BN) + shortcut, ReLU in one pass (PreparedConv3x3 with the shortcut in its epilogue).
/// With bf16 activations (Act = bf16_t) the block computes in bf16 where its kernels can (a middle built
/// with Precision::bf16 that runs the bf16 SK branch kernel, and then conv2 on it too: even input
/// channels per group): the middle reads the bf16 input rows and writes bf16 U_m (rounded after their
/// float channel sums), select_bf16 builds bf16 V, and conv2 reads it, adds the bf16 shortcut (the input,
/// or its bf16 projection written into y first) in its epilogue and writes bf16 outputs; the attention
/// stays float. Otherwise (bf16_arithmetic() false) the input is widened to float once, everything runs in
/// float (the projection rounded to bf16 once; a bf16 middle before a float conv2, whose input channels
/// per group are odd, writes bf16 U_m and its bf16 V rows are widened), and conv2's output is rounded to
/// bf16 at the end.
/// int8 blocks (Pointwise = PreparedPointwiseInt8; float activations) take a middle built with
/// Precision::int8 at the calibrated range of the block input ("<block>.input"), which quantizes the
/// input rows as it reads them, and run conv2 in int8 on V at "<block>.v" with the float shortcut (the
/// input, or its int8 projection) in its epilogue; an image whose input held a NaN or an infinity (no
/// code holds it) has its attention and its output made NaN. A float block records both ranges when
/// BlockRun::recorder is set.
template <class Middle, class Act = float, class Pointwise = PreparedPointwiseOf<Act>>
class PreparedBasicBlock final : public PreparedBlock {
  static constexpr bool kBf16 = std::is_same_v<Act, kernels::bf16_t>;
  static constexpr bool kInt8 = std::is_same_v<Pointwise, PreparedPointwiseInt8>;
  static_assert(!kInt8 || !kBf16, "int8 blocks keep float activations");

 public:
  using dim_t = kernels::dim_t;
  /// int8: `ranges` holds "<name>.input" and "<name>.v".
  PreparedBasicBlock(std::string name, Middle middle, const ConvBnAct<float>& conv2, const Shortcut<float>& shortcut,
                     kernels::Isa isa, const ActivationRanges* ranges = nullptr)
      : name_(std::move(name)),
        middle_(std::move(middle)),
        conv2_(conv2, isa,
               kInt8                              ? kernels::Precision::int8
               : kBf16 && middle_.reads_bf16() ? kernels::Precision::bf16
                                                  : kernels::Precision::f32,
               kInt8 ? detail::calibrated_range(ranges, name_ + ".v").hi : 0.0f),
        shortcut_(shortcut, isa, ranges, name_ + ".input") {}

  const std::string& name() const override { return name_; }
  FeatureShape out_shape(const FeatureShape& in) const override {
    return {in.n, middle_.out_extent(in.h), middle_.out_extent(in.w), conv2_.out_channels()};
  }
  dim_t attention_paths() const override { return Middle::paths(); }
  dim_t attention_channels() const override { return middle_.attention_channels(); }
  /// With an identity shortcut, x is read whole by the middle, then conv2 reads each pixel's residual
  /// just before it writes that pixel (as it does with a projection written into y).
  bool runs_in_place() const override { return shortcut_.identity() && !kInt8; }
  /// Whether the block runs its convolutions on bf16 rows (see the class comment).
  bool bf16_arithmetic() const {
    return kBf16 && middle_.reads_bf16() && conv2_.precision() == kernels::Precision::bf16;
  }

  void add_needs(const FeatureShape& in, int threads, WorkspaceNeeds& needs) const override {
    const FeatureShape out = out_shape(in);
    const std::size_t c = std::size_t(middle_.channels()), t = std::size_t(threads);
    const std::size_t opix = std::size_t(out.n * out.h * out.w);
    needs.need(Slot::branches, std::size_t(Middle::paths()) * opix * c);
    needs.need(Slot::mid, opix * c);
    needs.need(Slot::sums, t * std::size_t(in.n) * std::max(c, std::size_t(out.c)));
    needs.need(Slot::scratch, middle_.scratch_floats());
    shortcut_.add_needs(in, out.h * out.w, needs);
    needs.need(Slot::activation_a, opix * std::size_t(out.c));
    needs.need(Slot::activation_b, opix * std::size_t(out.c));
    needs.need(Slot::head_sums, t * std::size_t(out.c));
    if (kBf16 && !bf16_arithmetic()) {
      needs.need(Slot::gated, std::size_t(in.n * in.h * in.w * in.c));  // the widened input
      needs.need(Slot::shortcut, opix * std::size_t(out.c));          // the bf16 projection
    }
    if (!bf16_arithmetic() && middle_.reads_bf16())  // per thread: bf16 V rows before they are widened
      needs.need(Slot::v, t * detail::floats_for_bytes(sizeof(kernels::bf16_t) * std::size_t(kSelectRows) * c));
  }

  FeatureShape run(const BlockRun& r) const override {
    if constexpr (kBf16)
      if (bf16_arithmetic()) return run_bf16(r);
    if constexpr (kInt8) return run_int8(r);
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = r.in.n, h = r.in.h, w = r.in.w, c = middle_.channels();
    const dim_t oh = middle_.out_extent(h), ow = middle_.out_extent(w), opix = oh * ow, cout = conv2_.out_channels();
    const float* x = r.x;
    if constexpr (kBf16) {  // the input in float
      float* wide = ws.get(Slot::gated);
      detail::widen_rows(pool, conv2_.isa(), reinterpret_cast<const kernels::bf16_t*>(r.x), wide, n * h * w * r.in.c);
      x = wide;
    }
    detail::record_finite_range(r.recorder, name_ + ".input", pool, x, std::size_t(n * h * w * r.in.c));

    const std::array<float*, Middle::paths()> u = detail::branch_outputs<Middle::paths()>(ws, n * opix, middle_.channels());
    middle_.split(pool, n, h, w, x, u.data(), ws.get(Slot::sums));
    Profiler::mark(r.profiler, 2);
    middle_.attend(ws.get(Slot::sums), threads, n, opix, r.attention, ws.get(Slot::scratch));
    Profiler::mark(r.profiler, 3);

    const float* residual = x;
    if (!shortcut_.identity()) {  // into r.y (out.c floats per pixel), conv2 adds it in place
      if constexpr (kBf16) {  // the bf16 projection of the bf16 input, widened
        auto* projected = reinterpret_cast<kernels::bf16_t*>(ws.get(Slot::shortcut));
        shortcut_.project(pool, ws, reinterpret_cast<const kernels::bf16_t*>(r.x), r.in, oh, ow, projected);
        detail::widen_rows(pool, conv2_.isa(), projected, r.y, n * opix * cout);
      } else {
        shortcut_.project(pool, ws, x, r.in, oh, ow, r.y);
      }
      residual = r.y;
      Profiler::mark(r.profiler, 4);
    }
    // V whole, rows split over the pool (from a bf16 middle's bf16 U_m: bf16 rows, widened).
    float* v = ws.get(Slot::mid);
    if (middle_.reads_bf16()) {
      const kernels::Bf16WidenFn widen = kernels::bf16_widen_kernel(conv2_.isa());
      pool.run([&](int t) {
        const auto rows = split_range(n * opix, threads, t);
        for (dim_t p0 = rows.first; p0 < rows.second;) {
          const dim_t p1 = std::min(rows.second, p0 + kSelectRows);
          auto* vb = reinterpret_cast<kernels::bf16_t*>(ws.get(Slot::v)) + std::size_t(t) * std::size_t(kSelectRows * c);
          widen(middle_.select_bf16(r.attention, u.data(), opix, p0, p1, vb), v + p0 * c, (p1 - p0) * c);
          p0 = p1;
        }
      });
    } else {
      select_float_v(pool, r.attention, u.data(), n, opix, v);
    }
    detail::record_finite_range(r.recorder, name_ + ".v", pool, v, std::size_t(n * opix * c));
    float* sums = head_sums(r, cout);
    if constexpr (kBf16) {  // conv2 into the branches' buffer (U is spent), then rounded into y
      float* out = ws.get(Slot::branches);
      conv2_.run(pool, n, oh, ow, v, out, residual, /*force_relu=*/true, sums);
      detail::narrow_rows(pool, conv2_.isa(), out, reinterpret_cast<kernels::bf16_t*>(r.y), n * opix * cout);
    } else {
      conv2_.run(pool, n, oh, ow, v, r.y, residual, /*force_relu=*/true, sums);
    }
    Profiler::mark(r.profiler, 5);
    return {n, oh, ow, cout};
  }

 private:
  /// The bf16 block (bf16_arithmetic()): bf16 rows from the input to the output.
  FeatureShape run_bf16(const BlockRun& r) const {
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = r.in.n, h = r.in.h, w = r.in.w, c = middle_.channels();
    const dim_t oh = middle_.out_extent(h), ow = middle_.out_extent(w), opix = oh * ow, cout = conv2_.out_channels();
    const auto* x = reinterpret_cast<const kernels::bf16_t*>(r.x);
    auto* y = reinterpret_cast<kernels::bf16_t*>(r.y);

    const std::array<float*, Middle::paths()> u = detail::branch_outputs<Middle::paths()>(ws, n * opix, middle_.channels());  // bf16 U_m
    middle_.split(pool, n, h, w, x, u.data(), ws.get(Slot::sums));
    Profiler::mark(r.profiler, 2);
    middle_.attend(ws.get(Slot::sums), threads, n, opix, r.attention, ws.get(Slot::scratch));
    Profiler::mark(r.profiler, 3);

    const kernels::bf16_t* residual = x;
    if (!shortcut_.identity()) {  // into y, conv2 adds it in place
      shortcut_.project(pool, ws, x, r.in, oh, ow, y);
      residual = y;
      Profiler::mark(r.profiler, 4);
    }
    // bf16 V whole, rows split over the pool.
    auto* v = reinterpret_cast<kernels::bf16_t*>(ws.get(Slot::mid));
    pool.run([&](int t) {
      const auto rows = split_range(n * opix, threads, t);
      for (dim_t p0 = rows.first; p0 < rows.second;) {
        const dim_t p1 = std::min(rows.second, p0 + kSelectRows);
        const kernels::bf16_t* rows_v = middle_.select_bf16(r.attention, u.data(), opix, p0, p1, v + p0 * c);
        if (rows_v != v + p0 * c) std::copy_n(rows_v, (p1 - p0) * c, v + p0 * c);
        p0 = p1;
      }
    });
    conv2_.run(pool, n, oh, ow, v, r.y, residual, /*force_relu=*/true, head_sums(r, cout), /*bf16_out=*/true);
    Profiler::mark(r.profiler, 5);
    return {n, oh, ow, cout};
  }

  /// V whole (float U_m), rows split over the pool.
  void select_float_v(ThreadPool& pool, const float* attention, const float* const* u, dim_t n, dim_t opix,
                      float* v) const {
    const dim_t c = middle_.channels();
    const int threads = pool.size();
    pool.run([&](int t) {
      const auto rows = split_range(n * opix, threads, t);
      for (dim_t p0 = rows.first; p0 < rows.second;) {
        const dim_t p1 = std::min(rows.second, p0 + kSelectRows);
        const float* rows_v = middle_.select(attention, u, opix, p0, p1, v + p0 * c);
        if (rows_v != v + p0 * c) std::copy_n(rows_v, (p1 - p0) * c, v + p0 * c);
        p0 = p1;
      }
    });
  }

  /// The int8 block: the middle and conv2 quantize their float inputs as they read them.
  FeatureShape run_int8(const BlockRun& r) const {
    ThreadPool& pool = *r.pool;
    const Workspace& ws = *r.ws;
    const int threads = pool.size();
    const dim_t n = r.in.n, h = r.in.h, w = r.in.w;
    const dim_t oh = middle_.out_extent(h), ow = middle_.out_extent(w), opix = oh * ow, cout = conv2_.out_channels();
    const float* x = r.x;
    // Images with a NaN or an infinity: no code holds it, so they are marked NaN below.
    std::vector<unsigned char>& bad = bad_images_of_thread();
    bad.assign(std::size_t(n), 0);
    const dim_t image = h * w * r.in.c;
    pool.run([&](int t) {
      const auto part = split_range(n, threads, t);
      for (dim_t img = part.first; img < part.second; ++img) {
        bad[std::size_t(img)] = detail::has_non_finite(x + img * image, std::size_t(image)) ? 1 : 0;
      }
    });
    const std::array<float*, Middle::paths()> u = detail::branch_outputs<Middle::paths()>(ws, n * opix, middle_.channels());
    middle_.split(pool, n, h, w, x, u.data(), ws.get(Slot::sums));
    for (dim_t img = 0; img < n; ++img)
      if (bad[std::size_t(img)]) middle_.mark_non_finite(u.data(), ws.get(Slot::sums), opix, img);
    Profiler::mark(r.profiler, 2);
    middle_.attend(ws.get(Slot::sums), threads, n, opix, r.attention, ws.get(Slot::scratch));
    Profiler::mark(r.profiler, 3);
    const float* residual = x;
    if (!shortcut_.identity()) {  // into r.y, conv2 adds it in place
      shortcut_.project(pool, ws, x, r.in, oh, ow, r.y);
      residual = r.y;
      Profiler::mark(r.profiler, 4);
    }
    float* v = ws.get(Slot::mid);
    select_float_v(pool, r.attention, u.data(), n, opix, v);
    float* sums = head_sums(r, cout);
    conv2_.run(pool, n, oh, ow, v, r.y, residual, /*force_relu=*/true, sums);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (dim_t img = 0; img < n; ++img)
      if (bad[std::size_t(img)]) {  // V was NaN there: conv2 read it as 0
        std::fill_n(r.y + img * opix * cout, opix * cout, nan);
        if (sums) std::fill_n(sums, cout, nan);
      }
    Profiler::mark(r.profiler, 5);
    return {n, oh, ow, cout};
  }
  /// This thread's per-image flags (kept between calls: no allocation after the first forward).
  static std::vector<unsigned char>& bad_images_of_thread() {
    static thread_local std::vector<unsigned char> flags;
    return flags;
  }

  /// The head reads per-thread sums [threads][cout]: threads split conv2's channels, so the sums of a
  /// single image go to the first row and the others are zeroed. Null unless r.head_sums.
  float* head_sums(const BlockRun& r, dim_t cout) const {
    if (!r.head_sums) return nullptr;
    float* sums = r.ws->get(Slot::head_sums);
    std::fill_n(sums, std::size_t(r.pool->size()) * std::size_t(cout), 0.0f);
    return sums;
  }
  static constexpr dim_t kSelectRows = 256;
  std::string name_;
  Middle middle_;
  PreparedConv3x3 conv2_;
  PreparedShortcut<Act, Pointwise> shortcut_;
};

}  // namespace sknet
