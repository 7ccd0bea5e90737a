// A user program of an installed (or vendored) sknet: it must compile, link and run. It uses both the
// reference layers and the prepared fast path (runtime-dispatched SIMD kernels).
#include <sknet/fast.hpp>  // sknet.hpp + the prepared fast path

#include <cmath>
#include <iostream>

int main() {
  sknet::SKConv<float, 2> sk(sknet::SKConvOptions(64).groups(32), "sk");
  sknet::randomize<float>(sk, 1);
  sknet::Tensor4<float> x(1, 8, 8, 64);
  x.setConstant(0.5f);
  const auto y = sk.forward(x);
  bool ok = y.dimension(1) == 8 && y.dimension(3) == 64 && sk.last_attention().dimension(1) == 2;

  // A reduced SKNet-26 on the fast path against the reference path.
  sknet::SKNetConfig config;
  config.layers = {1, 1, 1, 1};
  config.planes = {4, 8, 16, 32};
  config.base_width = 32;
  config.groups = 4;
  config.reduction = 4;
  config.min_width = 8;
  config.stem_width = 8;
  config.num_classes = 10;
  sknet::SKNet<float, 2> net(config);
  sknet::randomize<float>(net, 2);
  sknet::Tensor4<float> image(1, 40, 40, 3);
  image.setRandom();
  const auto want = net.forward(image);
  auto fast = sknet::prepare(net);
  const auto got = fast.forward(image);
  for (int k = 0; k < 10; ++k) ok = ok && std::abs(got(0, k) - want(0, k)) <= 1e-3f * (1 + std::abs(want(0, k)));
  std::cout << "sknet " << sknet::version() << " (" << sknet::kernels::isa_name(sknet::kernels::active_isa())
            << ") consumer: " << (ok ? "ok" : "WRONG RESULT") << "\n";
  return ok ? 0 : 1;
}
