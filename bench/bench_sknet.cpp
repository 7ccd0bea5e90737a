// Whole networks through the fast path (PreparedSKNet): SKNet-26/50/101 at 224x224, batch 1 and 8,
// 1 and 2 threads, random weights. Counters: images/s and GFLOPS (2 x multiply-adds of the summary).
// Run: build/native/bench/bench_sknet --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

namespace {

using namespace sknet;

void BM_SKNet(benchmark::State& state) {
  static const char* const kArch[] = {"sknet26", "sknet50", "sknet101"};
  SKNetConfig config;
  config.layers = sknet_depths(kArch[state.range(0)]);
  const Index batch = state.range(1), threads = state.range(2), size = 224;
  PreparedSKNet<2> net = prepare_random<2>(config, 7, PrepareOptions{int(threads)});
  Tensor4<float> x(batch, size, size, 3);
  x.setRandom();
  net.forward(x);  // plans the workspace
  for (auto _ : state) benchmark::DoNotOptimize(net.forward(x).data());
  SKNet<float, 2> shape_only(config);
  const double macs = double(shape_only.summary(size, size, batch).macs);
  state.SetLabel(kArch[state.range(0)]);
  state.counters["images/s"] = benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * macs, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_SKNet)
    ->ArgNames({"arch", "batch", "threads"})
    ->ArgsProduct({{0, 1, 2}, {1, 8}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(0.5);
BENCHMARK_MAIN();
