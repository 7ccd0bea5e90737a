// sknet kernels, portable: the bf16 1x1 convolution (kernels/pointwise_bf16.hpp) in scalar C++, each
// pair widened to float and added as vdpbf16ps adds it (odd product, then even; each product is exact in
// float, so a contracted or uncontracted a * b + acc rounds the same).
#pragma once

#include <cstring>

#include "sknet/kernels/pointwise_bf16.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

inline void narrow_bf16(const float* src, bf16_t* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = to_bf16(src[i]);
}
inline void widen_bf16_rows(const bf16_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = from_bf16(src[i]);
}

inline void pointwise_bf16(const PointwiseGeometry& g, const bf16_t* src, const bf16_t* packed,
                           const PointwiseBf16Epilogue& ep, bf16_t* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  using detail::kBf16Block;
  const dim_t pairs = detail::bf16_pairs(g.cin), block_stride = pairs * kBf16Block * 2;
  for (dim_t co = cout_begin; co < cout_end; ++co) {
    const bf16_t* w = packed + (co / kBf16Block) * block_stride + (co % kBf16Block) * 2;
    float sum = 0.0f;
    for (dim_t p = pixel_begin; p < pixel_end; ++p) {
      const bf16_t* a = src + p * g.src_stride;
      float acc = (ep.bias ? ep.bias[co] : 0.0f) + (ep.residual ? from_bf16(ep.residual[p * ep.residual_stride + co]) : 0.0f);
      for (dim_t k = 0; k < pairs; ++k) {
        const float odd = 2 * k + 1 < g.cin ? from_bf16(a[2 * k + 1]) : 0.0f;
        acc += odd * from_bf16(w[k * kBf16Block * 2 + 1]);
        acc += from_bf16(a[2 * k]) * from_bf16(w[k * kBf16Block * 2]);
      }
      if (ep.relu) acc = acc > 0.0f || acc != acc ? acc : 0.0f;  // ReLU keeping NaN
      sum += acc;
      if (ep.float_dst)
        ep.float_dst[p * g.dst_stride + co] = acc;
      else
        dst[p * g.dst_stride + co] = to_bf16(acc);
    }
    if (ep.channel_sums) ep.channel_sums[co] += sum;
  }
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
