// Whole networks through the fast path (PreparedNetwork): SKNet-26/50/101 and the ResNeXt-50 baseline
// at 224x224, batch 1 and 8, 1 and 2 threads, random weights. Counters: images/s and GFLOPS (2 x multiply-adds of the summary).
// Run: build/native/bench/bench_sknet --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <sknet/fast.hpp>

namespace {

using namespace sknet;

void BM_SKNet(benchmark::State& state) {
  static const char* const kArch[] = {"sknet26", "sknet50", "sknet101", "resnext50"};
  const Index batch = state.range(1), threads = state.range(2), size = 224;
  const NetworkPlan plan = architecture_plan(kArch[state.range(0)]);
  const PreparedNetwork net = prepare_random(plan, 7, PrepareOptions{int(threads)});
  Tensor4<float> x(batch, size, size, 3);
  x.setRandom();
  auto ctx = net.make_context();
  Tensor2<float> logits(batch, plan.head.out_features());
  TensorMap<float, 2> out(logits.data(), logits.dimensions());
  net.forward(*ctx, view(x), out);  // plans the workspace
  for (auto _ : state) {
    net.forward(*ctx, view(x), out);
    benchmark::DoNotOptimize(logits.data());
  }
  const double macs = double(plan.summary(size, size, batch).macs);
  state.SetLabel(kArch[state.range(0)]);
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * macs, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_SKNet)
    ->ArgNames({"arch", "batch", "threads"})
    ->ArgsProduct({{0, 1, 2, 3}, {1, 8}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);
BENCHMARK_MAIN();
