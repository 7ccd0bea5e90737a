// The README's usage example: one SK convolution on an NHWC tensor.
#include <sknet/sknet.hpp>

#include <iostream>

int main() {
  using namespace sknet;
  // SK[M=2, G=32, r=16], L=32 on 64 channels, stride 1.
  SKConv<float, 2> sk(SKConvOptions(64, 64).groups(32).reduction(16).min_width(32), "sk");
  randomize<float>(sk, /*seed=*/1);  // or: load_state_dict(sk, weights) with timm names

  Tensor4<float> x(1, 56, 56, 64);  // NHWC: [N, H, W, C]
  x.setRandom();
  Tensor4<float> y = sk.forward(x);                    // [1, 56, 56, 64]
  const Tensor3<float>& a = sk.last_attention();       // [1, 2, 64], sums to 1 over the paths
  std::cout << "output " << shape_string(y.dimensions()) << ", attention " << shape_string(a.dimensions())
            << ", a[0, :, 0] = " << a(0, 0, 0) << " " << a(0, 1, 0) << "\n";
}
