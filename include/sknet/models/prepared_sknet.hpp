// sknet: PreparedSKNet, the fast float inference form of an SKNet.
//
// prepare() folds every BN into its convolution, packs the weights for the SIMD kernels once and
// keeps a workspace sized for the last input shape, so a forward allocates nothing unless the
// input shape changes. Activations stay NHWC from the stem to the head. A batch runs image by
// image (one image's activations stay in cache between layers): with at least as many images as
// threads each thread of the persistent pool runs whole images on its own workspace, otherwise
// each layer of an image is one parallel region on the pool.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sknet/kernels/grouped_conv.hpp"
#include "sknet/kernels/pointwise.hpp"
#include "sknet/init.hpp"
#include "sknet/models/sknet.hpp"
#include "sknet/state_dict.hpp"
#include "sknet/runtime/thread_pool.hpp"
#include "sknet/sk/prepared_sk_conv.hpp"

namespace sknet {

/// Options of prepare(): the number of threads of the pool that runs every layer, and whether
/// forward() accumulates time per phase (see PreparedSKNet::profile()).
struct PrepareOptions {
  int threads = 1;
  bool profile = false;
};

/// Milliseconds spent per phase over all forwards since the last reset (when profiling is on).
struct ForwardProfile {
  static constexpr int kPhases = 7;
  static constexpr const char* kNames[kPhases] = {"stem+pool", "conv1",        "branches", "attention",
                                                  "downsample", "select+conv3", "head"};
  double ms[kPhases] = {};
  int forwards = 0;
};

/// An SKNet with M paths, ready for fast float inference: BN folded into the convolutions,
/// weights packed for the compiled instruction set (AVX-512, AVX2+FMA or portable C++), NHWC
/// activations in a workspace reused across calls; threads split the images of a batch, or the
/// layers of an image when there are fewer images than threads.
/// forward() is not re-entrant (it owns the workspace): use one PreparedSKNet per calling thread.
/// Results match SKNet::forward within float rounding (reassociated sums) and do not depend on the
/// thread count beyond that.
template <int M>
class PreparedSKNet {
  using dim_t = kernels::dim_t;

 public:
  /// Folds and packs the weights of `net` (which may be destroyed afterwards).
  PreparedSKNet(const SKNet<float, M>& net, const PrepareOptions& options)
      : config_(net.config()), pool_(std::make_unique<ThreadPool>(options.threads)), profiling_(options.profile) {
    prepare_stem(net.stem());
    for (std::size_t i = 0; i < net.num_units(); ++i) units_.push_back(prepare_unit(net.unit(i)));
    prepare_head(net.fc());
  }

  /// Builds the network piece by piece without ever holding the whole unpacked model: each layer
  /// (stem ConvBnAct, every SKUnit, the fc Linear) is made, given its parameters by
  /// fill(layer, state_dict_prefix), packed and dropped. See prepare_from_state_dict.
  template <class Fill>
  PreparedSKNet(const SKNetConfig& config, Fill&& fill, const PrepareOptions& options)
      : config_(config), pool_(std::make_unique<ThreadPool>(options.threads)), profiling_(options.profile) {
    SKNet<float, M>::validate_config(config);
    {
      ConvBnAct<float> stem(SKNet<float, M>::stem_options(config), true, "", "conv1", "bn1");
      fill(stem, "");
      prepare_stem(stem);
    }
    const auto plan = SKNet<float, M>::unit_plan(config);
    units_.reserve(plan.size());
    for (const auto& entry : plan) {
      SKUnit<float, M> unit(entry.second, entry.first);
      fill(unit, entry.first);
      units_.push_back(prepare_unit(unit));
    }
    Linear<float> fc(SKNet<float, M>::head_options(config), "fc");
    fill(fc, "fc");
    prepare_head(fc);
  }

  const SKNetConfig& config() const { return config_; }
  int threads() const { return pool_->size(); }
  const ForwardProfile& profile() const { return profile_; }
  void reset_profile() { profile_ = ForwardProfile{}; }

  /// requires: input NHWC [N, H, W, in_channels]. ensures: returns logits [N, num_classes] and
  /// keeps every unit's attention for attention_maps().
  Tensor2<float> forward(const ConstTensorMap4<float>& input) {
    Tensor2<float> logits(input.dimension(0), fc_out_);
    forward(input, TensorMap<float, 2>(logits.data(), logits.dimensions()));
    return logits;
  }
  Tensor2<float> forward(const Tensor4<float>& input) { return forward(view(input)); }
  Tensor2<float> forward_nchw(const ConstTensorMap4<float>& input) { return forward(to_nhwc<float>(input)); }

  void forward(const ConstTensorMap4<float>& input, TensorMap<float, 2> logits) {
    const DenormalsAreZero daz;
    detail::require<ShapeError>(input.dimension(3) == config_.in_channels, "PreparedSKNet",
                                "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) +
                                    ")",
                                config_.in_channels, input.dimension(3));
    detail::require<ShapeError>(logits.dimension(0) == input.dimension(0) && logits.dimension(1) == fc_out_,
                                "PreparedSKNet", "logits dimensions",
                                shape_string(std::array<Index, 2>{input.dimension(0), fc_out_}),
                                shape_string(logits.dimensions()));
    const dim_t n = input.dimension(0), h = input.dimension(1), w = input.dimension(2);
    const dim_t image_floats = h * w * config_.in_channels;
    // A batch runs a few images at a time (as many as keep the largest activation within about
    // kChunkBytes, so it stays in cache from layer to layer; one image at 224x224). With at
    // least as many images as threads, each thread runs its own images on its own workspace
    // (no synchronisation inside the network); otherwise every layer is split over the pool.
    // Profiling always splits layers, so the per-phase times are meaningful.
    const int threads = pool_->size();
    const bool by_images = threads > 1 && !profiling_ && n >= threads && (n % threads == 0 || n >= 4 * threads);
    plan(input.dimensions(), by_images ? threads : 1);
    const auto run_range = [&](Workspace& ws, dim_t begin, dim_t end) {
      for (dim_t img = begin; img < end; img += chunk_) {
        const dim_t count = std::min(chunk_, end - img);
        run_images(ws, input.data() + img * image_floats, count, h, w, img, logits.data() + img * fc_out_);
      }
    };
    if (!by_images) {
      run_range(workspaces_[0], 0, n);
    } else {
      pool_->run([&](int t) {
        const auto images = split_range(n, threads, t);
        run_range(workspaces_[std::size_t(t)], images.first, images.second);
      });
    }
    profile_.forwards += profiling_ ? 1 : 0;
  }

  const AttentionMaps<float>& attention_maps() const { return attention_; }

 private:
  struct Dims {
    dim_t n, h, w, c;
  };
  struct Pointwise {
    kernels::PackedPointwiseWeights weights;
    std::vector<float> bias;
    dim_t cin = 0, cout = 0, stride = 1;
  };
  struct Unit {
    std::string name;
    Pointwise conv1, conv3;
    std::optional<Pointwise> downsample;
    PreparedSKConv<M> sk;
  };
  /// Everything one image's forward writes: the activations of one image, and the thread pool
  /// that splits its layers (the network's pool, or a one-thread pool when whole images run in
  /// parallel, one workspace per thread).
  struct Workspace {
    ThreadPool* pool = nullptr;
    std::unique_ptr<ThreadPool> own_pool;
    bool timed = false;  // adds to the profile (layer-split forwards only)
    std::vector<float> act_a, act_b, stem_buf, mid, v, gathered, sums, head_sums, im2col, pooled, scratch;
    std::array<std::vector<float>, M> branches;
  };

  void prepare_head(const Linear<float>& fc) {
    fc_in_ = fc.options().in_features();
    fc_out_ = fc.options().out_features();
    fc_ = kernels::PackedPointwiseWeights(fc.weight().data(), fc_out_, fc_in_);
    fc_bias_.assign(fc.bias().data(), fc.bias().data() + fc.bias().size());
  }

  static Pointwise pack_pointwise(const ConvBnAct<float>& layer) {
    Pointwise p;
    std::vector<float> w;
    fold_conv_bn(layer.conv(), layer.bn(), w, p.bias);
    p.cout = layer.conv().options().out_channels();
    p.cin = layer.conv().options().in_channels();
    p.stride = layer.conv().options().stride()[0];
    p.weights = kernels::PackedPointwiseWeights(w.data(), p.cout, p.cin);
    return p;
  }

  void prepare_stem(const ConvBnAct<float>& stem) {
    const auto& o = stem.conv().options();
    stem_kernel_ = o.kernel_size()[0];
    stem_stride_ = o.stride()[0];
    stem_pad_ = o.padding()[0];
    stem_cin_ = o.in_channels();
    stem_cout_ = o.out_channels();
    std::vector<float> w, bias;
    fold_conv_bn(stem.conv(), stem.bn(), w, bias);
    // PyTorch [oc][ic][ky][kx] -> im2col order [oc][ky][kx][ic], the order of an NHWC patch.
    const dim_t k = stem_kernel_, taps = k * k * stem_cin_;
    std::vector<float> reordered(std::size_t(stem_cout_ * taps));
    for (dim_t oc = 0; oc < stem_cout_; ++oc)
      for (dim_t ic = 0; ic < stem_cin_; ++ic)
        for (dim_t t = 0; t < k * k; ++t)
          reordered[std::size_t(oc * taps + t * stem_cin_ + ic)] = w[std::size_t((oc * stem_cin_ + ic) * k * k + t)];
    stem_.weights = kernels::PackedPointwiseWeights(reordered.data(), stem_cout_, taps);
    stem_.bias = std::move(bias);
    stem_.cin = taps;
    stem_.cout = stem_cout_;
  }

  Unit prepare_unit(const SKUnit<float, M>& unit) {
    Unit u;
    u.name = unit.name();
    u.conv1 = pack_pointwise(unit.conv1());
    u.conv3 = pack_pointwise(unit.conv3());
    if (unit.downsample()) u.downsample = pack_pointwise(*unit.downsample());
    u.sk = PreparedSKConv<M>(unit.conv2());
    return u;
  }

  /// The whole network on `count` <= chunk_ images: input NHWC [count, h, w, in_channels] ->
  /// logits [count, classes]; the attention of every unit goes to rows first.. of attention_maps().
  void run_images(Workspace& ws, const float* input, dim_t count, dim_t h, dim_t w, dim_t first, float* logits) {
    if (ws.timed) last_mark_ = std::chrono::steady_clock::now();
    Dims dims = run_stem(ws, input, count, h, w);
    mark(ws, 0);
    float* x = ws.act_a.data();
    float* y = ws.act_b.data();
    for (std::size_t u = 0; u < units_.size(); ++u) {
      const bool last = u + 1 == units_.size();
      float* attention = attention_[u].second.data() + first * M * units_[u].sk.channels();
      dims = run_unit(ws, units_[u], x, dims, y, last && count == 1 ? ws.head_sums.data() : nullptr, attention);
      std::swap(x, y);
    }
    run_head(ws, count, dims.h * dims.w, x, logits);
    mark(ws, 6);
  }

  // ---- workspace -------------------------------------------------------------------------------
  /// Floats of each workspace buffer for a chunk of n images.
  struct BufferSizes {
    std::size_t act = 0, branch = 0, mid = 0, gathered = 0, widest = 0, scratch = 0;
    std::size_t stem_patch = 0, stem_ring = 0;  ///< per thread: one im2col row; the pool's ring of stem rows
  };
  BufferSizes buffer_sizes(const std::array<Index, 4>& input_dims, dim_t n) const {
    BufferSizes b;
    dim_t h = out_extent(input_dims[1], stem_kernel_, stem_stride_, stem_pad_, 1);
    dim_t w = out_extent(input_dims[2], stem_kernel_, stem_stride_, stem_pad_, 1);
    detail::require<ShapeError>(h >= 1 && w >= 1, "PreparedSKNet", "input size " + shape_string(input_dims),
                                "large enough for the stem", "too small");
    b.stem_patch = std::size_t(w * stem_.cin);
    if (config_.stem == Stem::imagenet) {
      b.stem_ring = std::size_t(4 * w * stem_cout_);
      h = out_extent(h, 3, 2, 1, 1);
      w = out_extent(w, 3, 2, 1, 1);
    }
    b.act = std::size_t(n * h * w * stem_cout_);
    for (const auto& u : units_) {
      const dim_t c = u.sk.channels(), oh = u.sk.out_extent(h), ow = u.sk.out_extent(w);
      b.mid = std::max<std::size_t>(b.mid, std::size_t(n * h * w * c));
      b.widest = std::max<std::size_t>(b.widest, std::size_t(c));
      b.scratch = std::max<std::size_t>(b.scratch, std::size_t(u.sk.scratch_size()));
      b.branch = std::max<std::size_t>(b.branch, std::size_t(n * oh * ow * c));
      if (u.downsample && u.sk.stride() != 1)
        b.gathered = std::max<std::size_t>(b.gathered, std::size_t(n * oh * ow * u.downsample->cin));
      b.act = std::max<std::size_t>(b.act, std::size_t(n * oh * ow * u.conv3.cout));
      h = oh;
      w = ow;
    }
    return b;
  }

  /// Sizes `count` workspaces (one per thread running its own images, or one) for chunks of
  /// chunk_ images, and the attention maps for the whole batch; nothing happens when the input
  /// shape and count are unchanged since the last call.
  void plan(const std::array<Index, 4>& input_dims, int count) {
    if (planned_ && input_dims == planned_dims_ && workspaces_.size() == std::size_t(count)) return;
    const dim_t per_workspace = (input_dims[0] + count - 1) / count;
    const BufferSizes one = buffer_sizes(input_dims, 1);
    chunk_ = std::clamp<dim_t>(dim_t(kChunkBytes / (sizeof(float) * one.act)), 1, per_workspace);
    const BufferSizes b = chunk_ == 1 ? one : buffer_sizes(input_dims, chunk_);
    const dim_t n = chunk_;
    const std::size_t act = b.act, mid = b.mid, branch = b.branch,
                      gathered = b.gathered, widest = b.widest, scratch = b.scratch;
    workspaces_.clear();
    workspaces_.resize(std::size_t(count));
    for (Workspace& ws : workspaces_) {
      if (count == 1) {
        ws.pool = pool_.get();
        ws.timed = profiling_;
      } else {
        ws.own_pool = std::make_unique<ThreadPool>(1);
        ws.pool = ws.own_pool.get();
      }
      const std::size_t threads = std::size_t(ws.pool->size());
      ws.act_a.assign(act, 0.0f);
      ws.act_b.assign(act, 0.0f);
      ws.stem_buf.assign(threads * b.stem_ring, 0.0f);
      ws.mid.assign(mid, 0.0f);
      for (auto& b : ws.branches) b.assign(branch, 0.0f);
      ws.v.assign(threads * kBlockRows * widest, 0.0f);
      ws.gathered.assign(gathered, 0.0f);
      ws.sums.assign(std::size_t(n) * widest * threads, 0.0f);
      ws.head_sums.assign(std::size_t(fc_in_) * threads, 0.0f);
      ws.im2col.assign(threads * b.stem_patch, 0.0f);
      ws.pooled.assign(std::size_t(n * fc_in_), 0.0f);
      ws.scratch.assign(scratch, 0.0f);
    }
    attention_.clear();
    for (const auto& u : units_) attention_.emplace_back(u.name, Tensor3<float>(input_dims[0], M, u.sk.channels()));
    planned_dims_ = input_dims;
    planned_ = true;
  }

  // ---- stem ------------------------------------------------------------------------------------
  /// The stem runs one output row at a time: im2col of the row (ow x k*k*cin, in L2), one GEMM
  /// with bias + ReLU. With the ImageNet stem the 3x3/2 max pool follows row by row from a ring of
  /// the last stem rows, so the full-resolution stem output never leaves the cache.

  /// im2col of stem output row oy of image img: patch[ox][ky][kx][ic] (zero outside the input).
  void stem_patch_row(const float* input, dim_t img, dim_t oy, dim_t ih, dim_t iw, dim_t ow, float* patch) const {
    const dim_t k = stem_kernel_, s = stem_stride_, p = stem_pad_, cin = stem_cin_, kc = k * cin, taps = k * kc;
    for (dim_t ky = 0; ky < k; ++ky) {
      const dim_t iy = oy * s - p + ky;
      if (iy < 0 || iy >= ih) {
        for (dim_t ox = 0; ox < ow; ++ox) std::fill_n(patch + ox * taps + ky * kc, kc, 0.0f);
        continue;
      }
      const float* src_row = input + (img * ih + iy) * iw * cin;
      for (dim_t ox = 0; ox < ow; ++ox) {
        float* dst = patch + ox * taps + ky * kc;
        const dim_t ix0 = ox * s - p;
        if (ix0 >= 0 && ix0 + k <= iw) {  // the k taps of a kernel row are k adjacent NHWC pixels
          const float* src = src_row + ix0 * cin;
          for (dim_t j = 0; j < kc; ++j) dst[j] = src[j];
          continue;
        }
        for (dim_t kx = 0; kx < k; ++kx) {
          const dim_t ix = ix0 + kx;
          if (ix < 0 || ix >= iw) {
            std::fill_n(dst + kx * cin, cin, 0.0f);
          } else {
            for (dim_t ic = 0; ic < cin; ++ic) dst[kx * cin + ic] = src_row[ix * cin + ic];
          }
        }
      }
    }
  }

  /// Stem output row oy of image img (conv + folded BN + ReLU) into out[ow][cout].
  void stem_row(const float* input, dim_t img, dim_t oy, dim_t ih, dim_t iw, dim_t ow, float* patch,
                float* out) const {
    stem_patch_row(input, img, oy, ih, iw, ow, patch);
    kernels::PointwiseGeometry g{ow, stem_.cin, stem_cout_, stem_.cin, stem_cout_};
    kernels::PointwiseEpilogue ep;
    ep.bias = stem_.bias.data();
    ep.relu = true;
    kernels::pointwise_conv(g, patch, stem_.weights, ep, out, 0, ow, 0, stem_cout_);
  }

  Dims run_stem(Workspace& ws, const float* input, dim_t n, dim_t ih, dim_t iw) {
    const dim_t k = stem_kernel_, s = stem_stride_, p = stem_pad_, c = stem_cout_;
    const dim_t oh = out_extent(ih, k, s, p, 1), ow = out_extent(iw, k, s, p, 1);
    const std::size_t patch_floats = std::size_t(ow * stem_.cin), ring_floats = std::size_t(4 * ow * c);
    const int threads = ws.pool->size();
    if (config_.stem != Stem::imagenet) {
      float* out = ws.act_a.data();
      ws.pool->run([&](int t) {
        float* patch = ws.im2col.data() + std::size_t(t) * patch_floats;
        const auto rows = split_range(n * oh, threads, t);
        for (dim_t r = rows.first; r < rows.second; ++r)
          stem_row(input, r / oh, r % oh, ih, iw, ow, patch, out + r * ow * c);
      });
      return {n, oh, ow, c};
    }
    // 3x3 stride-2 max pool, padding 1 (padding never wins). Pool row py reads stem rows 2py-1..2py+1,
    // kept in ring slots y % 3; slot 3 holds their vertical maximum.
    const dim_t ph = out_extent(oh, 3, 2, 1, 1), pw = out_extent(ow, 3, 2, 1, 1);
    float* dst = ws.act_a.data();
    ws.pool->run([&](int t) {
      float* patch = ws.im2col.data() + std::size_t(t) * patch_floats;
      float* ring = ws.stem_buf.data() + std::size_t(t) * ring_floats;
      float* vmax = ring + 3 * ow * c;
      const auto rows = split_range(n * ph, threads, t);
      dim_t have_img = -1, have_row = -1;  // the last stem row in the ring
      for (dim_t r = rows.first; r < rows.second; ++r) {
        const dim_t img = r / ph, py = r % ph;
        const dim_t y0 = std::max<dim_t>(0, 2 * py - 1), y1 = std::min<dim_t>(oh - 1, 2 * py + 1);
        for (dim_t y = img == have_img ? std::max(y0, have_row + 1) : y0; y <= y1; ++y)
          stem_row(input, img, y, ih, iw, ow, patch, ring + (y % 3) * ow * c);
        have_img = img, have_row = y1;
        const float* first = ring + (y0 % 3) * ow * c;
        std::copy_n(first, ow * c, vmax);
        for (dim_t y = y0 + 1; y <= y1; ++y) {
          const float* row = ring + (y % 3) * ow * c;
          for (dim_t i = 0; i < ow * c; ++i) vmax[i] = std::max(vmax[i], row[i]);
        }
        float* o = dst + r * pw * c;
        for (dim_t px = 0; px < pw; ++px, o += c) {
          const dim_t x0 = std::max<dim_t>(0, 2 * px - 1), x1 = std::min<dim_t>(ow - 1, 2 * px + 1);
          std::copy_n(vmax + x0 * c, c, o);
          for (dim_t x = x0 + 1; x <= x1; ++x) {
            const float* in = vmax + x * c;
            for (dim_t ch = 0; ch < c; ++ch) o[ch] = std::max(o[ch], in[ch]);
          }
        }
      }
    });
    return {n, ph, pw, c};
  }

  // ---- one SK unit -----------------------------------------------------------------------------
  /// Splits a pointwise convolution over the pool: by pixels when there are many, else by Cout.
  static void pointwise_parallel(ThreadPool& pool, const kernels::PointwiseGeometry& g, const float* src,
                                 const Pointwise& layer, kernels::PointwiseEpilogue ep, float* dst,
                                 float* per_thread_sums) {
    const int threads = pool.size();
    const bool by_pixels = g.pixels >= 96 * threads || g.cout < 32 * threads;
    pool.run([&](int t) {
      kernels::PointwiseEpilogue mine = ep;
      if (ep.channel_sums) mine.channel_sums = per_thread_sums + std::size_t(t) * std::size_t(g.cout);
      if (by_pixels) {
        const auto r = split_range(g.pixels, threads, t);
        if (r.first < r.second) kernels::pointwise_conv(g, src, layer.weights, mine, dst, r.first, r.second, 0, g.cout);
      } else {
        const auto r = split_range(g.cout, threads, t, 16);
        if (r.first < r.second) kernels::pointwise_conv(g, src, layer.weights, mine, dst, 0, g.pixels, r.first, r.second);
      }
    });
  }

  static constexpr dim_t kBlockRows = 192;
  /// Images per pass through the network: as many as keep the largest activation within this.
  static constexpr std::size_t kChunkBytes = std::size_t(1) << 20;

  Dims run_unit(Workspace& ws, const Unit& u, const float* x, const Dims& in, float* y, float* head_sums,
                float* attention) {
    const dim_t n = in.n, h = in.h, w = in.w, c = u.sk.channels(), stride = u.sk.stride();
    const dim_t oh = u.sk.out_extent(h), ow = u.sk.out_extent(w), opix = oh * ow;
    ThreadPool& pool = *ws.pool;
    const int threads = pool.size();

    // conv1 (+BN, ReLU), dense: the branch kernel adds the zero border in its own row copies.
    {
      kernels::PointwiseGeometry g{n * h * w, u.conv1.cin, c, u.conv1.cin, c};
      kernels::PointwiseEpilogue ep;
      ep.bias = u.conv1.bias.data();
      ep.relu = true;
      pointwise_parallel(pool, g, x, u.conv1, ep, ws.mid.data(), nullptr);
      mark(ws, 1);
    }

    // Split: the M branch convolutions (+BN, ReLU) in one pass, with the channel sums of U.
    std::array<float*, M> branches{};
    for (int m = 0; m < M; ++m) branches[std::size_t(m)] = ws.branches[std::size_t(m)].data();
    u.sk.split(pool, u.sk.geometry(n, h, w), ws.mid.data(), branches.data(), ws.sums.data());
    mark(ws, 2);
    // Fuse and the softmax of Select: the attention a [n][M][C].
    u.sk.attend(ws.sums.data(), threads, n, opix, attention, ws.scratch.data());
    mark(ws, 3);
    // Shortcut: identity, or the projection (1x1 conv with stride + BN) written into y first.
    const dim_t cout = u.conv3.cout;
    const float* residual = x;
    if (u.downsample) {
      const float* src = x;
      if (stride != 1) {
        const dim_t cin = u.downsample->cin;
        pool.run([&](int t) {
          const auto r = split_range(n * opix, threads, t);
          for (dim_t px = r.first; px < r.second; ++px) {
            const dim_t img = px / opix, oy = px / ow % oh, ox = px % ow;
            std::memcpy(ws.gathered.data() + px * cin, x + ((img * h + oy * stride) * w + ox * stride) * cin,
                        sizeof(float) * std::size_t(cin));
          }
        });
        src = ws.gathered.data();
      }
      kernels::PointwiseGeometry g{n * opix, u.downsample->cin, cout, u.downsample->cin, cout};
      kernels::PointwiseEpilogue ep;
      ep.bias = u.downsample->bias.data();
      pointwise_parallel(pool, g, src, *u.downsample, ep, y, nullptr);
      residual = y;
      mark(ws, 4);
    }

    // conv3 (+BN) + shortcut, ReLU, with V = sum_m a_m U_m built block by block just before it
    // (V never goes to memory as a whole); the last unit also sums its output per channel.
    {
      const dim_t pixels = n * opix;
      kernels::PointwiseEpilogue ep;
      ep.bias = u.conv3.bias.data();
      ep.residual_stride = cout;
      ep.relu = true;
      if (head_sums) std::fill(head_sums, head_sums + std::size_t(threads * cout), 0.0f);
      const bool by_pixels = pixels >= 96 * threads || cout < 32 * threads;
      pool.run([&](int t) {
        float* v = ws.v.data() + std::size_t(t) * std::size_t(kBlockRows * c);
        kernels::PointwiseEpilogue mine = ep;
        if (head_sums) mine.channel_sums = head_sums + std::size_t(t) * std::size_t(cout);
        const auto rows = by_pixels ? split_range(pixels, threads, t) : std::pair<long, long>{0, pixels};
        const auto cols = by_pixels ? std::pair<long, long>{0, cout} : split_range(cout, threads, t, 16);
        if (cols.first >= cols.second) return;
        for (dim_t p0 = rows.first; p0 < rows.second; p0 += kBlockRows) {
          const dim_t p1 = std::min<dim_t>(rows.second, p0 + kBlockRows);
          u.sk.select(attention, branches.data(), opix, p0, p1, v);
          kernels::PointwiseGeometry g{p1 - p0, c, cout, c, cout};
          mine.residual = residual + p0 * cout;
          kernels::pointwise_conv(g, v, u.conv3.weights, mine, y + p0 * cout, 0, p1 - p0, cols.first, cols.second);
        }
      });
      mark(ws, 5);
    }
    return {n, oh, ow, cout};
  }

  // ---- head ------------------------------------------------------------------------------------
  /// Global average pool (the per-thread channel sums of the last conv3 epilogue) and the FC.
  void run_head(Workspace& ws, dim_t n, dim_t pixels, const float* last, float* logits) const {
    const int threads = ws.pool->size();
    float* pooled = ws.pooled.data();
    std::fill(pooled, pooled + n * fc_in_, 0.0f);
    if (n == 1) {  // the per-thread channel sums of the last conv3 epilogue
      for (int t = 0; t < threads; ++t)
        for (dim_t ch = 0; ch < fc_in_; ++ch) pooled[ch] += ws.head_sums[std::size_t(t * fc_in_ + ch)];
    } else {  // one pass over the last activation (`last`, [n, pixels, fc_in])
      for (dim_t img = 0; img < n; ++img)
        for (dim_t p = 0; p < pixels; ++p) {
          const float* row = last + (img * pixels + p) * fc_in_;
          float* dst = pooled + img * fc_in_;
          for (dim_t ch = 0; ch < fc_in_; ++ch) dst[ch] += row[ch];
        }
    }
    for (dim_t i = 0; i < n * fc_in_; ++i) pooled[i] /= float(pixels);
    // FC as a pointwise GEMM over the n pooled rows, output classes split over the threads.
    kernels::PointwiseGeometry g{n, fc_in_, fc_out_, fc_in_, fc_out_};
    kernels::PointwiseEpilogue ep;
    ep.bias = fc_bias_.data();
    ws.pool->run([&](int t) {
      const auto r = split_range(fc_out_, threads, t, 16);
      if (r.first < r.second) kernels::pointwise_conv(g, pooled, fc_, ep, logits, 0, n, r.first, r.second);
    });
  }

  /// Adds the time since the last mark to phase `phase` (when profiling).
  void mark(const Workspace& ws, int phase) {
    if (!ws.timed) return;
    const auto now = std::chrono::steady_clock::now();
    profile_.ms[phase] += std::chrono::duration<double, std::milli>(now - last_mark_).count();
    last_mark_ = now;
  }

  SKNetConfig config_;
  std::unique_ptr<ThreadPool> pool_;
  bool profiling_ = false;
  ForwardProfile profile_;
  std::chrono::steady_clock::time_point last_mark_;
  Pointwise stem_;
  dim_t stem_kernel_ = 0, stem_stride_ = 1, stem_pad_ = 0, stem_cin_ = 0, stem_cout_ = 0;
  std::vector<Unit> units_;
  dim_t fc_in_ = 0, fc_out_ = 0;
  kernels::PackedPointwiseWeights fc_;
  std::vector<float> fc_bias_;

  bool planned_ = false;
  std::array<Index, 4> planned_dims_{};
  std::vector<Workspace> workspaces_;
  dim_t chunk_ = 1;
  AttentionMaps<float> attention_;
};

/// The fast float inference form of `net` (see PreparedSKNet).
template <int M>
PreparedSKNet<M> prepare(const SKNet<float, M>& net, const PrepareOptions& options = {}) {
  return PreparedSKNet<M>(net, options);
}

/// The fast form straight from a checkpoint, consuming `dict` as it goes so the weights are held
/// about once in memory. strict: throws StateDictError listing every missing, unexpected and
/// mis-shaped key (as load_state_dict does).
template <int M>
PreparedSKNet<M> prepare_from_state_dict(const SKNetConfig& config, StateDict<float>&& dict,
                                         const PrepareOptions& options = {}, bool strict = true) {
  ConsumingLoader<float> loader(std::move(dict));
  PreparedSKNet<M> net(config, loader, options);
  loader.finish(strict);
  return net;
}

/// The fast form with seeded random weights (non-trivial BN statistics), for benchmarks.
template <int M>
PreparedSKNet<M> prepare_random(const SKNetConfig& config, std::uint64_t seed, const PrepareOptions& options = {}) {
  auto fill = [seed](auto& layer, const std::string& prefix) {
    randomize<float>(layer, seed ^ std::hash<std::string>{}(prefix));
  };
  return PreparedSKNet<M>(config, fill, options);
}

}  // namespace sknet
