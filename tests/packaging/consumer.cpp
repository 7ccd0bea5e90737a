// A user program of an installed (or vendored) sknet: it must compile, link and run.
#include <sknet/sknet.hpp>

#include <iostream>

int main() {
  sknet::SKConv<float, 2> sk(sknet::SKConvOptions(64).groups(32), "sk");
  sknet::randomize<float>(sk, 1);
  sknet::Tensor4<float> x(1, 8, 8, 64);
  x.setConstant(0.5f);
  const auto y = sk.forward(x);
  const bool ok = y.dimension(1) == 8 && y.dimension(3) == 64 && sk.last_attention().dimension(1) == 2;
  std::cout << "sknet " << sknet::version() << " consumer: " << (ok ? "ok" : "WRONG SHAPE") << "\n";
  return ok ? 0 : 1;
}
