// Fashion-MNIST canvas placement and normalisation, the C++ twin of tools/fashion_data.py.
//
// Every 28x28 image goes on a 64x64 black canvas (pixel 0 before normalisation):
//   size  s = floor(28 * scale + 0.5)                    (0.75 -> 21, 1.0 -> 28, 1.5 -> 42, ...)
//   the image is resized to s x s like torch.nn.functional.interpolate(mode="bilinear",
//   align_corners=False) on float32 pixels in 0..255 (no antialiasing); s == 28 is a plain copy
//   written at rows [top, top + s), columns [left, left + s):
//   top_i  = splitmix64((seed << 32) + 2 i)     % (64 - s + 1)
//   left_i = splitmix64((seed << 32) + 2 i + 1) % (64 - s + 1)     (uint64, wrapping)
// then every canvas pixel p becomes ((p / 255.0f) - MEAN) / STD in float32, in that order.
//
// At scale 1.0 this reproduces PyTorch's inputs bit for bit (no arithmetic but the
// normalisation). At the other scales resize_bilinear reproduces the arithmetic of PyTorch
// 1.13's CPU kernel (Debian python3-torch), which was checked bit for bit on all 10,000 test
// images at scales 0.75, 1.25, 1.5 and 1.75; other PyTorch versions may differ in the last bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fashion {

constexpr int kCanvas = 64;
constexpr int kImage = 28;
constexpr float kMean = 0.2860f;
constexpr float kStd = 0.3530f;
constexpr std::uint64_t kEvalSeed = 2024;
constexpr int kClasses = 10;
inline const char* const kClassNames[kClasses] = {"T-shirt/top", "Trouser",  "Pullover", "Dress", "Coat",
                                                  "Sandal",      "Shirt",    "Sneaker",  "Bag",   "Ankle boot"};

/// The splitmix64 finaliser (wrapping uint64 arithmetic).
inline std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Side of an image placed at `scale`: floor(28 * scale + 0.5), checked to fit the canvas.
inline int scaled_size(double scale) {
  const double s = std::floor(kImage * scale + 0.5);
  if (!(s >= 1 && s <= kCanvas))
    throw std::invalid_argument("scale " + std::to_string(scale) + " gives an image size outside 1.." +
                                std::to_string(kCanvas));
  return static_cast<int>(s);
}

/// (top, left) of image `index` (0-based in the evaluated array) for image size `size`.
inline void eval_offset(std::uint64_t index, int size, std::uint64_t seed, int& top, int& left) {
  const std::uint64_t span = static_cast<std::uint64_t>(kCanvas - size + 1);
  const std::uint64_t base = seed << 32;
  top = static_cast<int>(splitmix64(base + 2 * index) % span);
  left = static_cast<int>(splitmix64(base + 2 * index + 1) % span);
}

/// One output coordinate of torch's linear interpolation (align_corners=False): source indices
/// i0, i1 and float32 weights l0, l1 as PyTorch 1.13's CPU kernel computes them: ratio =
/// float(in) / float(out) in float32, the source coordinate ratio * (o + 0.5) - 0.5 in double
/// (clamped at 0), l1 = float(coordinate - i0), l0 = 1 - l1 in float32.
struct LinearTap {
  int i0, i1;
  float l0, l1;
};

inline std::vector<LinearTap> linear_taps(int in_size, int out_size) {
  std::vector<LinearTap> taps(static_cast<std::size_t>(out_size));
  const float ratio = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int o = 0; o < out_size; ++o) {
    LinearTap& t = taps[static_cast<std::size_t>(o)];
    if (in_size == out_size) {
      t = {o, o, 1.0f, 0.0f};
      continue;
    }
    double real = static_cast<double>(ratio) * (o + 0.5) - 0.5;
    if (real < 0.0) real = 0.0;
    t.i0 = static_cast<int>(real);
    t.i1 = t.i0 + (t.i0 < in_size - 1 ? 1 : 0);
    t.l1 = static_cast<float>(real - t.i0);
    t.l0 = 1.0f - t.l1;
  }
  return taps;
}

/// Bilinear resize of a `in_h` x `in_w` uint8 image to out_h x out_w float32 pixels in 0..255,
/// bit-identical to torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
/// antialias=False) of PyTorch 1.13 on CPU for a float32 [N, 1, H, W] input (its channels-last
/// kernel): the four weights are float32 products h * w, the weighted sum is accumulated in
/// double and rounded to float32 once (products of float32 weights and 8-bit pixels are exact in
/// double, so the order of the sum does not matter).
inline void resize_bilinear(const std::uint8_t* in, int in_h, int in_w, int out_h, int out_w, float* out) {
  const std::vector<LinearTap> th = linear_taps(in_h, out_h), tw = linear_taps(in_w, out_w);
  for (int y = 0; y < out_h; ++y) {
    const LinearTap& h = th[static_cast<std::size_t>(y)];
    const std::uint8_t* r0 = in + static_cast<std::size_t>(h.i0) * in_w;
    const std::uint8_t* r1 = in + static_cast<std::size_t>(h.i1) * in_w;
    for (int x = 0; x < out_w; ++x) {
      const LinearTap& w = tw[static_cast<std::size_t>(x)];
      const float w00 = h.l0 * w.l0, w01 = h.l0 * w.l1, w10 = h.l1 * w.l0, w11 = h.l1 * w.l1;
      const double sum = double(w00) * r0[w.i0] + double(w01) * r0[w.i1] + double(w10) * r1[w.i0] +
                         double(w11) * r1[w.i1];
      out[static_cast<std::size_t>(y) * out_w + x] = static_cast<float>(sum);
    }
  }
}

/// ((p / 255) - MEAN) / STD in float32, in that order (as tools/fashion_data.py normalize()).
inline float normalize_pixel(float p, float mean = kMean, float std_dev = kStd) {
  const float x = p / 255.0f;  // a division, a subtraction, a division: nothing to contract
  return (x - mean) / std_dev;
}

/// Normalisation constants (read from the model's metadata when present).
struct Normalization {
  float mean = kMean;
  float std_dev = kStd;
};

/// Places `count` 28x28 uint8 images (`images`, image i at images + i * 784) at `scale` with the
/// evaluation placement of image indices first_index .. first_index + count - 1, and writes the
/// normalised canvases to `out` ([count, 64, 64, 1], i.e. NHWC = NCHW for one channel).
inline void place(const std::uint8_t* images, std::size_t count, std::size_t first_index, double scale,
                  std::uint64_t seed, const Normalization& norm, float* out) {
  const int s = scaled_size(scale);
  const float background = normalize_pixel(0.0f, norm.mean, norm.std_dev);
  std::vector<float> resized(static_cast<std::size_t>(s) * s);
  float lut[256];
  for (int p = 0; p < 256; ++p) lut[p] = normalize_pixel(static_cast<float>(p), norm.mean, norm.std_dev);
  const std::size_t plane = static_cast<std::size_t>(kCanvas) * kCanvas;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint8_t* img = images + i * kImage * kImage;
    float* canvas = out + i * plane;
    for (std::size_t k = 0; k < plane; ++k) canvas[k] = background;
    int top = 0, left = 0;
    eval_offset(first_index + i, s, seed, top, left);
    if (s == kImage) {  // integer-offset copy, no resampling
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x) canvas[(top + y) * kCanvas + left + x] = lut[img[y * kImage + x]];
    } else {
      resize_bilinear(img, kImage, kImage, s, s, resized.data());
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          canvas[(top + y) * kCanvas + left + x] =
              normalize_pixel(resized[static_cast<std::size_t>(y) * s + x], norm.mean, norm.std_dev);
    }
  }
}

}  // namespace fashion
