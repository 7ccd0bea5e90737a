// sknet prepared engine: the workspace of one forward, carved from one arena into named slots.
//
// Every prepared block states what it needs for an input shape (WorkspaceNeeds: floats per slot; the
// planner keeps the largest request per slot, since blocks run one after another and reuse the same
// memory), and runs on the views of a workspace it is given. Nothing here knows about any block.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "sknet/error.hpp"
#include "sknet/kernels/aligned.hpp"

namespace sknet {

/// The NHWC shape of a batch of activations between blocks.
struct FeatureShape {
  std::int64_t n = 0, h = 0, w = 0, c = 0;
};

/// Milliseconds spent per phase over all forwards since the last reset (when profiling is on).
struct ForwardProfile {
  static constexpr int kPhases = 7;
  static constexpr const char* kNames[kPhases] = {"stem+pool", "conv1",        "branches", "attention",
                                                  "downsample", "select+conv3", "head"};
  double ms[kPhases] = {};
  int forwards = 0;
};

/// Adds wall time to the phases of a ForwardProfile; a null Profiler* means "not profiling".
class Profiler {
 public:
  explicit Profiler(ForwardProfile& profile) : profile_(profile), last_(std::chrono::steady_clock::now()) {}
  /// Adds the time since the previous mark to `phase`.
  void mark(int phase) {
    const auto now = std::chrono::steady_clock::now();
    profile_.ms[phase] += std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
  }
  static void mark(Profiler* p, int phase) {
    if (p) p->mark(phase);
  }

 private:
  ForwardProfile& profile_;
  std::chrono::steady_clock::time_point last_;
};

/// The named regions of a workspace.
enum class Slot : int {
  activation_a,  ///< block inputs / outputs, ping-ponged
  activation_b,
  mid,           ///< conv1's output (a grouped middle of stride 1 writes its U_1 over it)
  branches,      ///< the middle's outputs U_m, `paths` consecutive buffers of branch_floats each
  gathered,      ///< a strided (or average-pooled) downsample's input rows
  shortcut,      ///< the projection shortcut when the block's output is gated (SE) before the add
  gated,         ///< bf16 blocks: an SE block's last conv output before the gate, a basic block's widened input
  quantized,     ///< int8 blocks: u8 codes of a 1x1 convolution's input rows, and a flag per row
  v,             ///< per thread: a block of V rows (the select prologue of conv3)
  sums,          ///< per thread: channel sums of U
  scratch,       ///< the attention's small vectors
  stem_ring,     ///< per thread: the stem rows of the fused max pool
  im2col,        ///< per thread: one im2col row of the stem
  pooled,        ///< the global average pool
  head_sums,     ///< per thread: channel sums of the last block's output
  count
};
inline constexpr int kSlotCount = int(Slot::count);

/// Floats a forward needs per slot (each already multiplied by the threads that use it).
struct WorkspaceNeeds {
  std::array<std::size_t, kSlotCount> floats{};
  void need(Slot s, std::size_t n) { floats[std::size_t(s)] = std::max(floats[std::size_t(s)], n); }
  std::size_t operator[](Slot s) const { return floats[std::size_t(s)]; }
  std::size_t total() const {
    std::size_t t = 0;
    for (std::size_t f : floats) t += (f + 15) / 16 * 16;
    return t;
  }
};

/// One arena, 64-byte aligned slots. allocate() builds the new arena before releasing the old one,
/// so a failed allocation (std::bad_alloc) leaves the workspace as it was.
class Workspace {
 public:
  Workspace() = default;
  void allocate(const WorkspaceNeeds& needs) {
    const std::size_t total = std::max<std::size_t>(needs.total(), 16);
    kernels::AlignedArray<float> arena = kernels::allocate_aligned<float>(total);
    std::fill_n(arena.get(), total, 0.0f);  // commit the pages now, never during a forward
    std::size_t offset = 0;
    for (int s = 0; s < kSlotCount; ++s) {
      offsets_[std::size_t(s)] = offset;
      offset += (needs.floats[std::size_t(s)] + 15) / 16 * 16;
    }
    arena_ = std::move(arena);
    needs_ = needs;
  }
  float* get(Slot s) const { return arena_.get() + offsets_[std::size_t(s)]; }
  std::size_t floats(Slot s) const { return needs_[s]; }
  std::size_t bytes() const { return sizeof(float) * needs_.total(); }

 private:
  kernels::AlignedArray<float> arena_;
  std::array<std::size_t, kSlotCount> offsets_{};
  WorkspaceNeeds needs_;
};

namespace detail {
/// Floats of workspace that hold `bytes` bytes.
inline std::size_t floats_for_bytes(std::size_t bytes) { return (bytes + sizeof(float) - 1) / sizeof(float); }

/// The M branch outputs U_m of an SK convolution in Slot::branches, one after the other, `pixels` rows
/// of `channels` floats each.
template <int M>
std::array<float*, M> branch_outputs(const Workspace& ws, std::int64_t pixels, std::int64_t channels) {
  std::array<float*, M> u{};
  for (int m = 0; m < M; ++m) u[std::size_t(m)] = ws.get(Slot::branches) + std::size_t(m * pixels * channels);
  return u;
}

}  // namespace detail

}  // namespace sknet
