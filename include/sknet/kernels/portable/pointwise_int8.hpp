// sknet kernels, portable: the int8 1x1 convolution (kernels/pointwise_int8.hpp) in scalar C++: exact
// int32 sums, then the float epilogue with the same fused multiply-adds as the SIMD kernels.
#pragma once

#include <cmath>
#include <cstdint>

#include "sknet/kernels/pointwise_int8.hpp"

namespace sknet {
namespace kernels {
namespace portable {
inline namespace SKNET_BASELINE_TAG {

/// n floats as u8 codes (quantize_u8 each); whether all were finite. See kernels::U8QuantizeFn.
inline bool quantize_u8_row(const float* src, u8_t* dst, std::int64_t n, float inv_scale, int zero_point) {
  bool finite = true;
  for (std::int64_t i = 0; i < n; ++i) {
    finite &= std::isfinite(src[i]);
    dst[i] = quantize_u8(src[i], inv_scale, zero_point);
  }
  return finite;
}

/// v as a u8 code, exactly as the SIMD kernels store it (quantize_u8).
inline u8_t pointwise_int8_store(float v, float inv_scale, int zero_point) { return quantize_u8(v, inv_scale, zero_point); }

inline void pointwise_int8(const PointwiseGeometry& g, const u8_t* src, const s8_t* packed,
                           const PointwiseInt8Epilogue& ep, u8_t* dst, dim_t pixel_begin, dim_t pixel_end,
                           dim_t cout_begin, dim_t cout_end) {
  using detail::kInt8Block;
  const dim_t quads = detail::int8_quads(g.cin), block_stride = quads * kInt8Block * 4;
  for (dim_t co = cout_begin; co < cout_end; ++co) {
    const s8_t* w = packed + (co / kInt8Block) * block_stride + (co % kInt8Block) * 4;
    float sum = 0.0f;
    for (dim_t p = pixel_begin; p < pixel_end; ++p) {
      const u8_t* a = src + p * g.src_stride;
      std::int32_t acc = 0;
      for (dim_t ci = 0; ci < g.cin; ++ci) acc += std::int32_t(a[ci]) * std::int32_t(w[(ci / 4) * kInt8Block * 4 + ci % 4]);
      float v = std::fma(float(acc), ep.scale[co], ep.bias ? ep.bias[co] : 0.0f);
      if (ep.residual) v = std::fma(float(ep.residual[p * ep.residual_stride + co]), ep.residual_scale, v);
      if (ep.float_residual) v += ep.float_residual[p * ep.residual_stride + co];
      if (ep.relu) v = v > 0.0f || v != v ? v : 0.0f;  // ReLU keeping NaN
      sum += v;
      if (ep.float_dst)
        ep.float_dst[p * g.dst_stride + co] = v;
      else
        dst[p * g.dst_stride + co] = pointwise_int8_store(v, ep.out_inv_scale, ep.out_zero_point);
    }
    if (ep.channel_sums) ep.channel_sums[co] += sum;
  }
}

}  // namespace SKNET_BASELINE_TAG
}  // namespace portable
}  // namespace kernels
}  // namespace sknet
