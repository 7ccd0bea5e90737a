// The demo: one SK convolution at the SKNet-50 stage-1 shape with random (seeded) weights.
// Prints the output shape, the attention per path and the time per forward.
#include <sknet/sknet.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

int main() {
  using namespace sknet;
  using clock = std::chrono::steady_clock;
  const Index channels = 128, size = 56;
  const SKConvOptions options = SKConvOptions(channels).groups(32).reduction(16).min_width(32);
  SKConv<float, 2> sk(options, "layer1.0.conv2");
  randomize<float>(sk, 2019);

  Tensor4<float> x(1, size, size, channels);  // NHWC
  x.setRandom();
  std::printf("sknet %s (reference kernels)\n", version());
  std::printf("layer  %s\n", sk.label().c_str());
  std::printf("input  %s (NHWC)\n", shape_string(x.dimensions()).c_str());

  std::vector<double> ms;
  Tensor4<float> y;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = clock::now();
    y = sk.forward(x);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("output %s (NHWC)\n", shape_string(y.dimensions()).c_str());

  const Tensor3<float>& a = sk.last_attention();  // [N, M, C]
  for (int m = 0; m < SKConv<float, 2>::paths; ++m) {
    double mean = 0, lo = 1, hi = 0;
    for (Index c = 0; c < channels; ++c) {
      mean += a(0, m, c) / double(channels);
      lo = std::min<double>(lo, a(0, m, c));
      hi = std::max<double>(hi, a(0, m, c));
    }
    std::printf("attention path %d (3x3, dilation %d): mean %.4f  min %.4f  max %.4f\n", m + 1, m + 1, mean, lo, hi);
  }
  std::printf("time   median %.2f ms over %zu runs (reference kernels)\n", ms[ms.size() / 2], ms.size());
}
