// The README's engine example: one prepared network (immutable weights) served from several threads,
// each forward on its own execution context.
#include <sknet/fast.hpp>

#include <cstdio>
#include <thread>
#include <vector>

int main() {
  // ResNeXt-50 (the paper's baseline) with seeded random weights; a checkpoint would come through
  // sknet::prepare_from_safetensors(plan, path) (read and packed layer by layer).
  const sknet::PreparedNetwork net = sknet::prepare_random(sknet::architecture_plan("resnext50"), /*seed=*/1);
  std::printf("%s, %lld parameters, packed for %s\n", net.plan().family.c_str(), (long long)net.plan().parameters(),
              sknet::kernels::isa_name(net.isa()));

  sknet::Tensor4<float> image_nhwc(1, 96, 96, 3);
  image_nhwc.setRandom();
  std::vector<float> top(2);
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t)
    workers.emplace_back([&, t] {
      auto ctx = net.make_context();  // one per thread: workspace, attention maps, thread pool
      const sknet::Tensor2<float> logits = net.forward(*ctx, sknet::view(image_nhwc));
      top[std::size_t(t)] = logits(0, 0);
    });
  for (auto& w : workers) w.join();
  std::printf("logit 0 from two threads: %g %g (%s)\n", top[0], top[1], top[0] == top[1] ? "equal" : "DIFFERENT");
  return top[0] == top[1] ? 0 : 1;
}
