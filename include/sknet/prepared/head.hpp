// sknet prepared engine: the head, global average pool + fully connected classifier.
#pragma once

#include <algorithm>

#include "sknet/ops/linear.hpp"
#include "sknet/prepared/pointwise_conv.hpp"
#include "sknet/prepared/workspace.hpp"

namespace sknet {

class PreparedHead {
 public:
  using dim_t = kernels::dim_t;
  PreparedHead() = default;
  PreparedHead(const Linear<float>& fc, kernels::Isa isa)
      : fc_(fc.weight().data(), fc.bias().data(), fc.options().out_features(), fc.options().in_features(), isa) {}

  dim_t features() const { return fc_.cin(); }
  dim_t classes() const { return fc_.cout(); }
  void add_needs(dim_t images, int threads, WorkspaceNeeds& needs) const {
    needs.need(Slot::pooled, std::size_t(images * features()));
    needs.need(Slot::head_sums, std::size_t(threads) * std::size_t(features()));
  }

  /// logits [n, classes] from the last activation `last` [n, pixels, features]; for a single image the
  /// per-thread channel sums the last block's epilogue left in Slot::head_sums are used instead.
  void run(ThreadPool& pool, const Workspace& ws, dim_t n, dim_t pixels, const float* last, float* logits) const {
    const int threads = pool.size();
    const dim_t f = features();
    float* pooled = ws.get(Slot::pooled);
    std::fill(pooled, pooled + n * f, 0.0f);
    if (n == 1) {
      const float* sums = ws.get(Slot::head_sums);
      for (int t = 0; t < threads; ++t)
        for (dim_t ch = 0; ch < f; ++ch) pooled[ch] += sums[std::size_t(t * f + ch)];
    } else {
      for (dim_t img = 0; img < n; ++img)
        for (dim_t p = 0; p < pixels; ++p) {
          const float* row = last + (img * pixels + p) * f;
          float* dst = pooled + img * f;
          for (dim_t ch = 0; ch < f; ++ch) dst[ch] += row[ch];
        }
    }
    for (dim_t i = 0; i < n * f; ++i) pooled[i] /= float(pixels);
    // The classes split over the threads (the weights dominate).
    const kernels::PointwiseGeometry g{n, f, classes(), f, classes()};
    kernels::PointwiseEpilogue ep;
    ep.bias = fc_.bias();
    pool.run([&](int t) {
      const auto r = split_range(classes(), threads, t, 16);
      if (r.first < r.second) kernels::pointwise_conv(g, pooled, fc_.weights(), ep, logits, 0, n, r.first, r.second);
    });
  }

 private:
  PreparedPointwise fc_;
};

}  // namespace sknet
