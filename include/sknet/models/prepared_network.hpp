// sknet: PreparedNetwork, the fast float inference form of any network plan (SKNet, ResNeXt,
// SK-ShuffleNetV2, ...), as a composition of prepared blocks (prepared/): stem, blocks (bottleneck,
// basic, shuffle unit, pointwise), head.
//
// The prepared weights are immutable: forward() is const and may run on several threads at once.
// Everything a forward writes (the workspace, the attention maps, the profile, the thread pool that
// splits its layers) lives in an ExecutionContext: pass your own (one per thread), or call the
// one-line forward(input), which uses a context the model keeps for the calling thread.
// Activations stay NHWC from the stem to the head. A batch runs a few images at a time (one image's
// activations stay in cache between layers); with at least as many images as threads each thread of
// the context's pool runs whole images on its own workspace, otherwise each layer of an image is one
// parallel region on the pool.
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sknet/init.hpp"
#include "sknet/io/safetensors.hpp"
#include "sknet/kernels/dispatch.hpp"
#include "sknet/models/plan_layers.hpp"
#include "sknet/models/resnext.hpp"
#include "sknet/models/sknet.hpp"
#include "sknet/prepared/activation_ranges.hpp"
#include "sknet/prepared/bottleneck.hpp"
#include "sknet/prepared/head.hpp"
#include "sknet/prepared/shuffle_unit.hpp"
#include "sknet/prepared/stem.hpp"
#include "sknet/prepared/workspace.hpp"
#include "sknet/runtime/thread_pool.hpp"
#include "sknet/state_dict.hpp"

namespace sknet {

/// Options of prepare(): threads of each context's pool, whether forwards accumulate time per phase,
/// the instruction set to pack for (default: kernels::active_isa()) and the precision: f32; bf16
/// (bf16 weights and inputs of the 1x1 convolutions and of the 3x3 convolutions whose input channels per
/// group are even, bf16 activations between blocks, float accumulation; the attention, SE gates, the
/// stem, the head and depthwise convolutions in float); or int8 (s8 weights per channel and u8
/// activations per tensor at the calibrated `ranges`, exact int32 sums, for the stem's convolutions,
/// the 1x1 convolutions and the 3x3 convolutions whose input channels per group are a multiple of 4;
/// float activations between blocks, attention, Select and head; SK-ShuffleNetV2 and 1x1 blocks are
/// refused with a ConfigError).
struct PrepareOptions {
  PrepareOptions(int threads_ = 1, bool profile_ = false, std::optional<kernels::Isa> isa_ = std::nullopt,
                 kernels::Precision precision_ = kernels::Precision::f32,
                 std::shared_ptr<const ActivationRanges> ranges_ = nullptr)
      : threads(threads_), profile(profile_), isa(isa_), precision(precision_), ranges(std::move(ranges_)) {}
  int threads;
  bool profile;
  std::optional<kernels::Isa> isa;
  kernels::Precision precision;
  /// int8: the calibrated activation ranges (calibrate(), ActivationRanges::load); required.
  std::shared_ptr<const ActivationRanges> ranges;
};

class PreparedNetwork;

/// Everything one forward writes: the workspaces (one per thread when whole images run in parallel),
/// the attention maps of the last forward, the profile, and the thread pool. One context serves one
/// forward at a time; using it from two threads at once throws RuntimeError. A context may be used
/// with several models (it re-plans when the model or the input shape changes).
class ExecutionContext {
 public:
  /// requires: 1 <= threads (ConfigError otherwise).
  explicit ExecutionContext(int threads = 1, bool profile = false)
      : pool_(std::make_unique<ThreadPool>(threads)), profiling_(profile) {}
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  int threads() const { return pool_->size(); }
  /// (unit name, attention [N, M, C]) of every SK block of the last forward, in network order.
  const AttentionMaps<float>& attention_maps() const { return attention_; }
  const ForwardProfile& profile() const { return profile_; }
  void reset_profile() { profile_ = ForwardProfile{}; }
  /// Calibration: while set, the float bottleneck blocks of this context's forwards record the ranges an
  /// int8 network quantizes at (see calibrate()); null to stop.
  void set_range_recorder(RangeRecorder* recorder) { recorder_ = recorder; }
  /// Bytes of workspace currently held.
  std::size_t workspace_bytes() const {
    std::size_t b = 0;
    for (const auto& l : lanes_) b += l.ws.bytes();
    return b;
  }

 private:
  friend class PreparedNetwork;
  /// One workspace and the pool that splits its layers (the context's pool, or a one-thread pool
  /// when whole images run in parallel).
  struct Lane {
    Workspace ws;
    std::unique_ptr<ThreadPool> own_pool;
    ThreadPool* pool = nullptr;
  };
  std::unique_ptr<ThreadPool> pool_;
  bool profiling_ = false;
  ForwardProfile profile_;
  std::atomic<bool> busy_{false};
  RangeRecorder* recorder_ = nullptr;
  // What the lanes are planned for.
  const void* planned_for_ = nullptr;
  std::uint64_t planned_serial_ = 0;
  std::array<Index, 4> planned_dims_{};
  int planned_lanes_ = 0;
  kernels::dim_t chunk_ = 1;
  std::vector<Lane> lanes_;
  AttentionMaps<float> attention_;
};

class PreparedNetwork {
 public:
  using dim_t = kernels::dim_t;

  /// Builds the network of `plan` one layer at a time: each layer (a reference module from
  /// for_each_plan_layer) gets its parameters from fill(layer, state_dict_prefix), is packed and
  /// dropped, so the unpacked model is never held whole.
  template <class Fill>
  PreparedNetwork(const NetworkPlan& plan, Fill&& fill, const PrepareOptions& options)
      : plan_(plan), options_(checked(options)), isa_(options.isa ? *options.isa : kernels::active_isa()) {
    plan_.check_buildable();
    for_each_plan_layer<float>(plan_, [&](auto& layer, const std::string& prefix) {
      fill(layer, prefix);
      add(layer);
    });
    finish();
  }
  /// The same for a plan whose SK blocks have M paths, known at compile time (instantiates the SK
  /// block for that M only, where the constructor above instantiates every M of with_paths).
  template <int M, class Fill>
  PreparedNetwork(std::integral_constant<int, M>, const NetworkPlan& plan, Fill&& fill, const PrepareOptions& options)
      : plan_(plan), options_(checked(options)), isa_(options.isa ? *options.isa : kernels::active_isa()) {
    plan_.check_buildable();
    for_each_plan_layer<float, M>(plan_, [&](auto& layer, const std::string& prefix) {
      fill(layer, prefix);
      add(layer);
    });
    finish();
  }

  /// From a built Network (SKNet, ResNeXt, SE-ResNeXt, SK-ResNet, ...), which may be destroyed afterwards.
  template <int M>
  PreparedNetwork(const Network<float, M>& net, const PrepareOptions& options)
      : plan_(net.plan()), options_(checked(options)), isa_(options.isa ? *options.isa : kernels::active_isa()) {
    add(net.stem());
    for (std::size_t i = 0; i < net.num_blocks(); ++i) std::visit([&](const auto& b) { add(b); }, net.block(i));
    add(net.fc());
    finish();
  }

  PreparedNetwork(const PreparedNetwork&) = delete;
  PreparedNetwork& operator=(const PreparedNetwork&) = delete;
  PreparedNetwork(PreparedNetwork&& o) noexcept
      : plan_(std::move(o.plan_)), options_(o.options_), isa_(o.isa_), serial_(o.serial_), stem_(std::move(o.stem_)),
        blocks_(std::move(o.blocks_)), head_(std::move(o.head_)), contexts_(std::move(o.contexts_)) {}

  const NetworkPlan& plan() const { return plan_; }
  const SKNetConfig& config() const { return plan_.config; }
  /// The instruction set and precision the weights are packed for.
  kernels::Isa isa() const { return isa_; }
  kernels::Precision precision() const { return options_.precision; }
  /// Threads of the pools of the contexts this model hands out.
  int threads() const { return options_.threads; }
  std::size_t num_blocks() const { return blocks_.size(); }
  const PreparedBlock& block(std::size_t i) const { return *blocks_[i]; }

  /// A new context with this model's thread count and profiling setting.
  std::unique_ptr<ExecutionContext> make_context() const {
    return std::make_unique<ExecutionContext>(options_.threads, options_.profile);
  }

  /// requires: input NHWC [N, H, W, in_channels] with N >= 1; logits [N, num_classes].
  /// ensures: logits written, ctx.attention_maps() holds every SK block's attention. Re-entrant:
  /// other threads may run forwards of this model at the same time on their own contexts.
  void forward(ExecutionContext& ctx, const ConstTensorMap4<float>& input, TensorMap<float, 2> logits) const {
    if (ctx.busy_.exchange(true, std::memory_order_acquire))
      detail::fail<RuntimeError>("PreparedNetwork", "execution context",
                                 "used by one forward at a time (one context per thread)", "a second concurrent forward");
    struct Release {
      std::atomic<bool>& flag;
      ~Release() { flag.store(false, std::memory_order_release); }
    } release{ctx.busy_};
    run(ctx, input, logits);
  }
  Tensor2<float> forward(ExecutionContext& ctx, const ConstTensorMap4<float>& input) const {
    Tensor2<float> logits(input.dimension(0), head_.classes());
    forward(ctx, input, TensorMap<float, 2>(logits.data(), logits.dimensions()));
    return logits;
  }

  /// The one-line forms: run on the context this model keeps for the calling thread (created on the
  /// thread's first call, with threads() threads). Several threads may call them at once.
  Tensor2<float> forward(const ConstTensorMap4<float>& input) const { return forward(context(), input); }
  Tensor2<float> forward(const Tensor4<float>& input) const { return forward(view(input)); }
  void forward(const ConstTensorMap4<float>& input, TensorMap<float, 2> logits) const {
    forward(context(), input, logits);
  }
  /// PyTorch-ordered input [N, C, H, W] (converted once at the boundary).
  Tensor2<float> forward_nchw(const ConstTensorMap4<float>& input) const { return forward(to_nhwc<float>(input)); }
  /// The calling thread's context's attention maps and profile (see the one-line forward).
  const AttentionMaps<float>& attention_maps() const { return context().attention_maps(); }
  const ForwardProfile& profile() const { return context().profile(); }
  void reset_profile() const { context().reset_profile(); }
  /// The context the one-line forms use on the calling thread.
  ExecutionContext& context() const {
    std::lock_guard<std::mutex> lock(contexts_->mutex);
    auto& slot = contexts_->by_thread[std::this_thread::get_id()];
    if (!slot) slot = make_context();
    return *slot;
  }

 private:
  static const PrepareOptions& checked(const PrepareOptions& o) {
    detail::require<ConfigError>(o.threads >= 1, "prepare", "threads", ">= 1", o.threads);
    kernels::require_kernels(o.isa ? *o.isa : kernels::active_isa(), o.precision, "prepare");
    if (o.precision == kernels::Precision::int8 && !o.ranges)
      detail::fail<ConfigError>("prepare", "activation ranges of an int8 network",
                                "calibrated ranges (PrepareOptions::ranges: sknet::calibrate or `sknet calibrate`)",
                                "none");
    return o;
  }

  // ---- building ----------------------------------------------------------------------------------
  void add(const ResNetStem<float>& stem) { stem_ = PreparedStem(stem, isa_, int8() ? options_.ranges.get() : nullptr); }
  bool bf16() const { return options_.precision == kernels::Precision::bf16; }
  bool int8() const { return options_.precision == kernels::Precision::int8; }
  /// The precision of the bottlenecks' middles (3x3 convolutions): the model's.
  kernels::Precision middle_precision() const { return options_.precision; }
  /// The calibrated maximum of the input of block `block`'s middle (its conv1's ReLU output,
  /// "<block>.mid") in an int8 model, which its int8 middle quantizes at; 0 otherwise.
  float middle_input_max(const std::string& block) const {
    return int8() ? options_.ranges->at(block + ".mid", "prepare").hi : 0.0f;  // (int8 models have ranges)
  }
  /// ConfigError: `what` has no form in the model's precision.
  void refuse_precision(const std::string& what) const {
    detail::fail<ConfigError>("prepare", "precision of " + what, "f32", kernels::precision_name(options_.precision));
  }
  /// A bottleneck over `middle` in the model's precision.
  template <class Middle>
  void add_bottleneck(const std::string& name, const ConvBnAct<float>& conv1, Middle middle, const ConvBnAct<float>& conv3,
                      const Shortcut<float>& shortcut, const SqueezeExcite<float>* se) {
    if (bf16())
      blocks_.push_back(std::make_unique<PreparedBottleneck<Middle, kernels::bf16_t>>(name, conv1, std::move(middle), conv3,
                                                                                    shortcut, se, isa_));
    else if (int8())
      blocks_.push_back(std::make_unique<PreparedBottleneck<Middle, float, PreparedPointwiseInt8>>(
          name, conv1, std::move(middle), conv3, shortcut, se, isa_, options_.ranges.get()));
    else
      blocks_.push_back(std::make_unique<PreparedBottleneck<Middle>>(name, conv1, std::move(middle), conv3, shortcut, se, isa_));
  }
  template <int M>
  void add(const SKUnit<float, M>& u) {
    add_bottleneck(u.name(), u.conv1(), SKMiddle<M>(u.conv2(), isa_, middle_precision(), middle_input_max(u.name())),
                   u.conv3(), u.shortcut(), nullptr);
  }
  template <int M>
  void add(const SKBasicUnit<float, M>& u) {
    if (int8())  // the middle quantizes the block input at its range
      blocks_.push_back(std::make_unique<PreparedBasicBlock<SKMiddle<M>, float, PreparedPointwiseInt8>>(
          u.name(),
          SKMiddle<M>(u.conv1(), isa_, kernels::Precision::int8, options_.ranges->at(u.name() + ".input", "prepare").hi),
          u.conv2(), u.shortcut(), isa_, options_.ranges.get()));
    else if (bf16())
      blocks_.push_back(std::make_unique<PreparedBasicBlock<SKMiddle<M>, kernels::bf16_t>>(
          u.name(), SKMiddle<M>(u.conv1(), isa_, kernels::Precision::bf16), u.conv2(), u.shortcut(), isa_));
    else
      blocks_.push_back(std::make_unique<PreparedBasicBlock<SKMiddle<M>>>(u.name(), SKMiddle<M>(u.conv1(), isa_), u.conv2(),
                                                                          u.shortcut(), isa_));
  }
  void add(const ResNeXtUnit<float>& u) {
    add_bottleneck(u.name(), u.conv1(), GroupedMiddle(u.conv2(), isa_, middle_precision(), middle_input_max(u.name())),
                   u.conv3(), u.shortcut(), u.se() ? &*u.se() : nullptr);
  }
  template <int M>
  void add(const ShuffleUnit<float, M>& u) {
    if (int8()) refuse_precision(u.name() + " (an SK-ShuffleNetV2 unit)");
    if (bf16())
      blocks_.push_back(std::make_unique<PreparedShuffleUnit<M, kernels::bf16_t>>(u, isa_));
    else
      blocks_.push_back(std::make_unique<PreparedShuffleUnit<M>>(u, isa_));
  }
  void add(const PointwiseBlock<float>& b) {
    if (int8()) refuse_precision(b.name() + " (a 1x1 block)");
    if (bf16())
      blocks_.push_back(std::make_unique<PreparedPointwiseBlock<kernels::bf16_t>>(b, isa_));
    else
      blocks_.push_back(std::make_unique<PreparedPointwiseBlock<>>(b, isa_));
  }
  void add(const Linear<float>& fc) { head_ = PreparedHead(fc, isa_); }
  void finish() {
    static std::atomic<std::uint64_t> next_serial{1};
    serial_ = next_serial.fetch_add(1);
    contexts_ = std::make_unique<Contexts>();
  }

  // ---- planning ----------------------------------------------------------------------------------
  static constexpr std::size_t kChunkBytes = std::size_t(1) << 20;  ///< keep a chunk's activations in cache

  /// The workspace one lane needs for chunks of n images.
  WorkspaceNeeds needs(const std::array<Index, 4>& dims, dim_t n, int threads) const {
    WorkspaceNeeds w;
    FeatureShape shape{n, dims[1], dims[2], dims[3]};
    stem_.add_needs(shape, threads, w);
    shape = stem_.out_shape(shape);
    if (bf16()) w.need(Slot::activation_b, std::size_t(shape.n * shape.h * shape.w * shape.c));  // the float stem output
    for (const auto& b : blocks_) {
      b->add_needs(shape, threads, w);
      shape = b->out_shape(shape);
    }
    head_.add_needs(n, threads, w);
    return w;
  }

  /// Plans `ctx` for this model, the input dims and `lanes` workspaces (built aside and swapped in, so
  /// a failure, e.g. std::bad_alloc for a huge input, leaves the context as it was).
  void plan(ExecutionContext& ctx, const std::array<Index, 4>& dims, int lanes) const {
    if (ctx.planned_for_ == this && ctx.planned_serial_ == serial_ && ctx.planned_dims_ == dims &&
        ctx.planned_lanes_ == lanes)
      return;
    const dim_t per_lane = (dims[0] + lanes - 1) / lanes;
    const int threads = lanes == 1 ? ctx.pool_->size() : 1;
    // Images per pass: as many as keep the largest activation within kChunkBytes (one at 224x224).
    FeatureShape one{1, dims[1], dims[2], dims[3]};
    std::size_t largest = 0;
    one = stem_.out_shape(one);
    largest = std::size_t(one.h * one.w * one.c);
    for (const auto& b : blocks_) {
      one = b->out_shape(one);
      largest = std::max(largest, std::size_t(one.h * one.w * one.c));
    }
    const dim_t chunk = std::clamp<dim_t>(dim_t(kChunkBytes / (sizeof(float) * largest)), 1, per_lane);
    const WorkspaceNeeds w = needs(dims, chunk, threads);
    std::vector<ExecutionContext::Lane> fresh(static_cast<std::size_t>(lanes));
    for (auto& lane : fresh) {
      if (lanes == 1) {
        lane.pool = ctx.pool_.get();
      } else {
        lane.own_pool = std::make_unique<ThreadPool>(1);
        lane.pool = lane.own_pool.get();
      }
      lane.ws.allocate(w);
    }
    AttentionMaps<float> attention;
    for (const auto& b : blocks_)
      if (b->attention_channels() > 0)
        attention.emplace_back(b->name(), Tensor3<float>(dims[0], b->attention_paths(), b->attention_channels()));
    ctx.lanes_ = std::move(fresh);
    ctx.attention_ = std::move(attention);
    ctx.chunk_ = chunk;
    ctx.planned_for_ = this;
    ctx.planned_serial_ = serial_;
    ctx.planned_dims_ = dims;
    ctx.planned_lanes_ = lanes;
  }

  // ---- running -----------------------------------------------------------------------------------
  void run(ExecutionContext& ctx, const ConstTensorMap4<float>& input, TensorMap<float, 2> logits) const {
    const kernels::DenormalsAreZero daz;
    const Index in_c = plan_.config.in_channels;
    // The messages are built only on failure: a forward allocates nothing once planned.
    if (input.dimension(3) != in_c)
      detail::fail<ShapeError>("PreparedNetwork",
                               "input channels (last dimension of NHWC input " + shape_string(input.dimensions()) + ")",
                               in_c, input.dimension(3));
    if (input.dimension(0) < 1)
      detail::fail<ShapeError>("PreparedNetwork",
                               "images in the batch (first dimension of NHWC input " + shape_string(input.dimensions()) + ")",
                               ">= 1", input.dimension(0));
    if (logits.dimension(0) != input.dimension(0) || logits.dimension(1) != head_.classes())
      detail::fail<ShapeError>("PreparedNetwork", "logits dimensions",
                               shape_string(std::array<Index, 2>{input.dimension(0), head_.classes()}),
                               shape_string(logits.dimensions()));
    const dim_t n = input.dimension(0), h = input.dimension(1), w = input.dimension(2);
    const dim_t image_floats = h * w * in_c;
    // With at least as many images as threads, each thread runs its own images on its own workspace
    // (no synchronisation inside the network); otherwise every layer is split over the pool.
    // Profiling always splits layers, so the per-phase times are meaningful.
    const int threads = ctx.pool_->size();
    const bool by_images = threads > 1 && !ctx.profiling_ && n >= threads && (n % threads == 0 || n >= 4 * threads);
    plan(ctx, input.dimensions(), by_images ? threads : 1);
    const auto run_range = [&](ExecutionContext::Lane& lane, dim_t begin, dim_t end) {
      for (dim_t img = begin; img < end; img += ctx.chunk_) {
        const dim_t count = std::min(ctx.chunk_, end - img);
        run_images(ctx, lane, input.data() + img * image_floats, {count, h, w, in_c}, img, logits.data() + img * head_.classes());
      }
    };
    if (!by_images) {
      run_range(ctx.lanes_[0], 0, n);
    } else {
      ctx.pool_->run([&](int t) {
        const auto images = split_range(n, threads, t);
        run_range(ctx.lanes_[std::size_t(t)], images.first, images.second);
      });
    }
    ctx.profile_.forwards += ctx.profiling_ ? 1 : 0;
  }

  /// The whole network on one chunk of images; attention rows from image `first` on.
  void run_images(ExecutionContext& ctx, ExecutionContext::Lane& lane, const float* input, const FeatureShape& in,
                  dim_t first, float* logits) const {
    std::optional<Profiler> profiler;
    if (ctx.profiling_ && ctx.planned_lanes_ == 1) profiler.emplace(ctx.profile_);
    Profiler* prof = profiler ? &*profiler : nullptr;
    float* x = lane.ws.get(Slot::activation_a);
    float* y = lane.ws.get(Slot::activation_b);
    FeatureShape shape;
    if (bf16()) {  // the stem in float, its output rounded to bf16 for the first block
      shape = stem_.run(*lane.pool, lane.ws, input, in, y);
      detail::narrow_rows(*lane.pool, isa_, y, reinterpret_cast<kernels::bf16_t*>(x), shape.n * shape.h * shape.w * shape.c);
    } else {
      shape = stem_.run(*lane.pool, lane.ws, input, in, x, ctx.recorder_);
    }
    Profiler::mark(prof, 0);
    std::size_t a = 0;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const PreparedBlock& b = *blocks_[i];
      BlockRun r;
      r.pool = lane.pool;
      r.ws = &lane.ws;
      r.x = x;
      r.in = shape;
      const bool in_place = b.runs_in_place();
      r.y = in_place ? x : y;
      if (b.attention_channels() > 0) {
        r.attention = ctx.attention_[a].second.data() + first * b.attention_paths() * b.attention_channels();
        ++a;
      }
      r.head_sums = i + 1 == blocks_.size() && in.n == 1;
      r.profiler = prof;
      r.recorder = ctx.recorder_;
      shape = b.run(r);
      if (!in_place) std::swap(x, y);
    }
    if (bf16() && in.n > 1) {  // the head pools float rows (one image: the last block's channel sums)
      const kernels::Bf16WidenFn widen = kernels::bf16_widen_kernel(isa_);
      widen(reinterpret_cast<const kernels::bf16_t*>(x), y, shape.n * shape.h * shape.w * shape.c);
      std::swap(x, y);
    }
    head_.run(*lane.pool, lane.ws, in.n, shape.h * shape.w, x, logits);
    Profiler::mark(prof, 6);
  }

  /// The contexts of the one-line forwards, one per calling thread.
  struct Contexts {
    std::mutex mutex;
    std::map<std::thread::id, std::unique_ptr<ExecutionContext>> by_thread;
  };

  NetworkPlan plan_;
  PrepareOptions options_;
  kernels::Isa isa_;
  std::uint64_t serial_ = 0;
  PreparedStem stem_;
  std::vector<std::unique_ptr<PreparedBlock>> blocks_;
  PreparedHead head_;
  std::unique_ptr<Contexts> contexts_;
};

/// The fast form of a built network (any Network<float, M>: SKNet<float, M>, ResNeXt<float>, ...).
template <int M>
PreparedNetwork prepare(const Network<float, M>& net, const PrepareOptions& options = {}) {
  return PreparedNetwork(net, options);
}

/// The fast form of `plan` straight from a checkpoint, consuming `dict` as it goes so the weights are
/// held about once in memory. strict: throws StateDictError listing every missing, unexpected and
/// mis-shaped key (as load_state_dict does).
inline PreparedNetwork prepare_from_state_dict(const NetworkPlan& plan, StateDict<float>&& dict,
                                               const PrepareOptions& options = {}, bool strict = true) {
  ConsumingLoader<float> loader(std::move(dict));
  PreparedNetwork net(plan, loader, options);
  loader.finish(strict);
  return net;
}

/// The activation ranges an int8 form of `net`'s weights quantizes at: runs the float32 network `net`
/// over `batches` (NHWC, any sizes) and records, per bottleneck block, the smallest and largest finite
/// value of its input ("<block>.input") and of V ("<block>.v"). ConfigError unless `net` runs in f32.
inline ActivationRanges calibrate(const PreparedNetwork& net, const std::vector<Tensor4<float>>& batches) {
  if (net.precision() != kernels::Precision::f32)
    detail::fail<ConfigError>("calibrate", "precision of the network it runs", "f32",
                              kernels::precision_name(net.precision()));
  ActivationRanges ranges;
  RangeRecorder recorder(ranges);
  const std::unique_ptr<ExecutionContext> ctx = net.make_context();
  ctx->set_range_recorder(&recorder);
  for (const Tensor4<float>& batch : batches) {
    net.forward(*ctx, ConstTensorMap4<float>(batch.data(), batch.dimensions()));
    ranges.images += batch.dimension(0);
  }
  ctx->set_range_recorder(nullptr);
  return ranges;
}

/// The fast form of `plan` loaded straight from a safetensors checkpoint, layer by layer
/// (io::SafetensorsLoader): each layer is read, converted and packed before the next is read, so the
/// float32 checkpoint is never held whole (peak memory: the packed weights plus one layer). Throws
/// FormatError for a malformed file and StateDictError (strict) when it does not match `plan`.
inline PreparedNetwork prepare_from_safetensors(const NetworkPlan& plan, const std::string& path,
                                                const PrepareOptions& options = {}, bool strict = true) {
  io::SafetensorsLoader<float> loader(path);
  PreparedNetwork net(plan, loader, options);
  loader.finish(strict);
  return net;
}

/// The fast form of `plan` with seeded random weights (non-trivial BN statistics), for benchmarks.
inline PreparedNetwork prepare_random(const NetworkPlan& plan, std::uint64_t seed, const PrepareOptions& options = {}) {
  auto fill = [seed](auto& layer, const std::string& prefix) {
    randomize<float>(layer, seed ^ std::hash<std::string>{}(prefix));
  };
  return PreparedNetwork(plan, fill, options);
}

}  // namespace sknet
