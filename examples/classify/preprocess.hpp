// ImageNet evaluation preprocessing, the C++ twin of timm's eval transform for skresnext50_32x4d:
//
//   img = PIL.Image.open(path).convert("RGB")
//   Resize(256, InterpolationMode.BICUBIC)   # shorter side 256 = floor(224 / 0.875), PIL resample
//   CenterCrop(224)
//   ToTensor()                               # float32 pixel / 255
//   Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
//
// resize_bicubic reproduces Pillow's Image.resize(size, BICUBIC) on 8-bit images step by step, so
// the resized bytes equal PIL's (checked against Pillow 9.4 / torchvision 0.14 in
// tests/test_classify.cpp):
// - separable: a horizontal pass first (only when the width changes), then a vertical pass (only
//   when the height changes); the intermediate image is 8-bit, rounded and clipped like the output;
// - per output index i: scale = in / out, center = (i + 0.5) * scale, filter scale
//   s = max(scale, 1) (antialiasing when shrinking), support = 2 s, taps in
//   [int(center - support + 0.5), int(center + support + 0.5)) clipped to the image, weight of tap
//   x = cubic((x - center + 0.5) / s) with a = -0.5, computed in double and divided by their sum;
// - the weights become integers round(w * 2^22) (half away from zero); a pass sums
//   pixel * weight + 2^21 in integers, shifts right by 22 and clips to 0..255.
// The output size follows torchvision: the shorter side becomes `size`, the longer side
// int(size * long / short) (truncated); the crop offsets are round((extent - crop) / 2) with
// Python's round half to even.
//
// decode_image reads PNG, JPEG, BMP, GIF (first frame), TGA, PSD, HDR (tone-mapped) and PNM
// with stb_image and returns RGB. Grey images are replicated to three channels and alpha is
// dropped, as PIL's convert("RGB") does; 16-bit PNGs keep their high byte (as PIL). stb_image's
// JPEG decoder is not libjpeg's, so JPEG pixels may differ from PIL's by a few levels.
// The including program must define STB_IMAGE_IMPLEMENTATION in exactly one translation unit.
#pragma once

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace classify {

/// An 8-bit image, rows top to bottom, channels interleaved: pixels[(y * width + x) * channels + c].
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int c) : width(w), height(h), channels(c), pixels(std::size_t(w) * h * c, 0) {}
  std::uint8_t* row(int y) { return pixels.data() + std::size_t(y) * width * channels; }
  const std::uint8_t* row(int y) const { return pixels.data() + std::size_t(y) * width * channels; }
};

/// An image file that cannot be read or decoded; the message names the file.
struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The parameters of the evaluation transform; the defaults are timm's for skresnext50_32x4d
/// (input 224, crop_pct 0.875, bicubic, ImageNet mean and standard deviation).
struct EvalTransform {
  int resize = 256;  ///< the shorter side after resizing: floor(crop / crop_pct)
  int crop = 224;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std_dev{0.229f, 0.224f, 0.225f};
};

namespace detail {
[[noreturn]] inline void throw_image_error(const std::string& path) {
  const char* reason = stbi_failure_reason();
  std::FILE* probe = std::fopen(path.c_str(), "rb");
  const bool exists = probe != nullptr;
  if (probe) std::fclose(probe);
  throw ImageError(path + ": " +
                   (exists ? std::string("cannot decode the image (") + (reason ? reason : "unknown error") +
                                 "; expected PNG, JPEG, BMP, GIF, TGA, PSD, HDR or PNM)"
                           : std::string("cannot open the file")));
}
}  // namespace detail

/// Reads only the header of an image file: {width, height}. Throws ImageError naming `path` when
/// the file cannot be opened or is not an image stb_image knows (a damaged body goes unnoticed).
inline std::array<int, 2> probe_image(const std::string& path) {
  int w = 0, h = 0, channels_in_file = 0;
  if (!stbi_info(path.c_str(), &w, &h, &channels_in_file)) detail::throw_image_error(path);
  return {w, h};
}

/// Reads an image file as 8-bit RGB. Throws ImageError naming `path` and stb_image's reason.
inline Image decode_image(const std::string& path) {
  int w = 0, h = 0, channels_in_file = 0;
  stbi_uc* data = stbi_load(path.c_str(), &w, &h, &channels_in_file, 3);
  if (!data) detail::throw_image_error(path);
  Image image(w, h, 3);
  std::copy(data, data + image.pixels.size(), image.pixels.begin());
  stbi_image_free(data);
  return image;
}

/// torchvision's Resize(size) output for an int `size`: the shorter side becomes `size`, the
/// longer int(size * long / short). Returns {width, height}.
inline std::array<int, 2> resized_size(int width, int height, int size) {
  if (width < 1 || height < 1 || size < 1)
    throw std::invalid_argument("resized_size: expected positive sizes, got " + std::to_string(width) + "x" +
                                std::to_string(height) + " -> " + std::to_string(size));
  const bool wide = width > height;
  const int shorter = wide ? height : width, longer = wide ? width : height;
  // Python: int(size * long / short), a correctly rounded double quotient, then truncated.
  const int new_long = static_cast<int>(static_cast<double>(std::int64_t(size) * longer) / shorter);
  return wide ? std::array<int, 2>{new_long, size} : std::array<int, 2>{size, new_long};
}

namespace detail {

constexpr int kPrecisionBits = 22;  // Pillow: 32 - 8 (pixel) - 2 (headroom for negative lobes)

/// Keys' cubic convolution kernel with a = -0.5 (Pillow's bicubic), support 2.
inline double cubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

/// The taps of one resampling pass from `in_size` to `out_size` samples: for output i, the inputs
/// first[i] .. first[i] + count[i] - 1 with fixed-point weights weights[i * stride + j].
struct Taps {
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
  int stride = 0;
};

inline Taps bicubic_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 2.0 * filter_scale;
  Taps t;
  t.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(std::size_t(out_size));
  t.count.resize(std::size_t(out_size));
  t.weights.assign(std::size_t(out_size) * t.stride, 0);
  std::vector<double> w(std::size_t(t.stride));
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    // C casts truncate toward zero, as Pillow's (int)(...) does.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int j = 0; j < n; ++j) {
      w[j] = cubic((j + lo - center + 0.5) * (1.0 / filter_scale));
      sum += w[j];
    }
    std::int32_t* dst = t.weights.data() + std::size_t(i) * t.stride;
    for (int j = 0; j < n; ++j) {
      const double normalised = sum != 0.0 ? w[j] / sum : w[j];
      const double fixed = normalised * (1 << kPrecisionBits);
      dst[j] = static_cast<std::int32_t>(normalised < 0 ? fixed - 0.5 : fixed + 0.5);
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

/// sum(pixel * weight) + 2^21, shifted right by 22 and clipped to 0..255.
inline std::uint8_t clip8(std::int64_t acc) {
  const std::int64_t v = acc >> kPrecisionBits;  // arithmetic shift, like Pillow's on int
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace detail

/// Pillow's Image.resize((out_width, out_height), Image.BICUBIC) on an 8-bit image with any
/// number of channels (each channel on its own). Returns a copy when the size does not change.
inline Image resize_bicubic(const Image& input, int out_width, int out_height) {
  if (out_width < 1 || out_height < 1)
    throw std::invalid_argument("resize_bicubic: expected a positive output size, got " + std::to_string(out_width) +
                                "x" + std::to_string(out_height));
  if (input.width < 1 || input.height < 1) throw std::invalid_argument("resize_bicubic: empty input image");
  const int c = input.channels;
  constexpr std::int64_t half = std::int64_t(1) << (detail::kPrecisionBits - 1);
  Image current = input;
  if (out_width != input.width) {  // horizontal pass
    const detail::Taps t = detail::bicubic_taps(input.width, out_width);
    Image out(out_width, current.height, c);
    for (int y = 0; y < current.height; ++y) {
      const std::uint8_t* src = current.row(y);
      std::uint8_t* dst = out.row(y);
      for (int x = 0; x < out_width; ++x) {
        const std::int32_t* k = t.weights.data() + std::size_t(x) * t.stride;
        const std::uint8_t* s = src + std::size_t(t.first[x]) * c;
        for (int ch = 0; ch < c; ++ch) {
          std::int64_t acc = half;
          for (int j = 0; j < t.count[x]; ++j) acc += std::int64_t(s[j * c + ch]) * k[j];
          dst[x * c + ch] = detail::clip8(acc);
        }
      }
    }
    current = std::move(out);
  }
  if (out_height != input.height) {  // vertical pass, on the 8-bit result of the first
    const detail::Taps t = detail::bicubic_taps(input.height, out_height);
    Image out(current.width, out_height, c);
    const std::size_t row = std::size_t(current.width) * c;
    std::vector<std::int64_t> acc(row);
    for (int y = 0; y < out_height; ++y) {
      const std::int32_t* k = t.weights.data() + std::size_t(y) * t.stride;
      std::fill(acc.begin(), acc.end(), half);
      for (int j = 0; j < t.count[y]; ++j) {
        const std::uint8_t* src = current.row(t.first[y] + j);
        for (std::size_t i = 0; i < row; ++i) acc[i] += std::int64_t(src[i]) * k[j];
      }
      std::uint8_t* dst = out.row(y);
      for (std::size_t i = 0; i < row; ++i) dst[i] = detail::clip8(acc[i]);
    }
    current = std::move(out);
  }
  return current;
}

/// torchvision's Resize(size, BICUBIC) on a PIL image: the shorter side becomes `size`.
inline Image resize_shorter_side(const Image& input, int size) {
  const auto wh = resized_size(input.width, input.height, size);
  return resize_bicubic(input, wh[0], wh[1]);
}

/// Python's round(x / 2) for an integer x >= 0: halves go to the even neighbour.
inline int half_round_even(int x) {
  const int q = x / 2;
  return (x % 2 != 0 && q % 2 != 0) ? q + 1 : q;
}

/// torchvision's CenterCrop((crop_height, crop_width)): zero-pads a side shorter than the crop
/// (left/top (crop - extent) // 2), then cuts at round((extent - crop) / 2), half to even.
inline Image center_crop(const Image& input, int crop_width, int crop_height) {
  if (crop_width < 1 || crop_height < 1)
    throw std::invalid_argument("center_crop: expected a positive crop, got " + std::to_string(crop_width) + "x" +
                                std::to_string(crop_height));
  // Offset of crop pixel (0, 0) in the input; negative when padding.
  const auto offset = [](int extent, int crop) {
    return crop > extent ? -((crop - extent) / 2) : half_round_even(extent - crop);
  };
  const int left = offset(input.width, crop_width), top = offset(input.height, crop_height);
  const int c = input.channels;
  Image out(crop_width, crop_height, c);
  for (int y = 0; y < crop_height; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= input.height) continue;
    for (int x = 0; x < crop_width; ++x) {
      const int sx = x + left;
      if (sx < 0 || sx >= input.width) continue;
      std::copy_n(input.row(sy) + std::size_t(sx) * c, c, out.row(y) + std::size_t(x) * c);
    }
  }
  return out;
}

/// ToTensor + Normalize on an RGB image, in float32 exactly as PyTorch computes it:
/// (float(p) / 255 - mean[c]) / std[c]. Returns NHWC [1, H, W, 3] values (channels interleaved).
inline std::vector<float> normalize(const Image& rgb, const EvalTransform& t = {}) {
  if (rgb.channels != 3)
    throw std::invalid_argument("normalize: expected an RGB image, got " + std::to_string(rgb.channels) +
                                " channels");
  std::vector<float> out(rgb.pixels.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::size_t ch = i % 3;
    const float x = static_cast<float>(rgb.pixels[i]) / 255.0f;
    out[i] = (x - t.mean[ch]) / t.std_dev[ch];
  }
  return out;
}

/// The whole eval transform: resize (shorter side t.resize, PIL bicubic), center crop t.crop,
/// normalise. Returns NHWC [1, crop, crop, 3] values.
inline std::vector<float> eval_transform(const Image& rgb, const EvalTransform& t = {}) {
  return normalize(center_crop(resize_shorter_side(rgb, t.resize), t.crop, t.crop), t);
}

}  // namespace classify
