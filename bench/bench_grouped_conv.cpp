// The SK branch convolution (kernels::sk_branches_conv3x3: M grouped 3x3 branches, dilation m, bias,
// ReLU, channel sums) at the SKNet-50 stage shapes (M = 2, G = 32), one thread, batch 1 and a few at
// batch 8. GFLOPS = 2 * MACs of all branches per second; peak_pct is against the FMA peak of
// one core measured by the same process (bench/support/fma_peak.hpp). oneDNN (PyTorch 1.13) on the same shapes:
// 38 / 87 / 171 / 115 GF/s for gw 4 / 8 / 16 / 32.
// Every SK branch kernel of the kernel list (kernels/kernel_list.hpp) runs; one whose ISA the CPU lacks
// is reported as skipped.
// Run: build/release/bench/bench_grouped_conv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "support/fma_peak.hpp"

#include <random>
#include <vector>

#include <sknet/kernels/kernel_list.hpp>

namespace {

using sknet::kernels::dim_t;
using sknet::kernels::Isa;
using sknet::kernels::PackedBranchWeights;
using sknet::kernels::SKBranchGeometry;

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

/// Args: N, C, H (= W, input), G, S; M = 2 branches, pad = 2.
void run(benchmark::State& state, const sknet::kernels::SKBranchKernelInfo& kernel) {
  if (!sknet::kernels::cpu_supports(kernel.isa)) {
    state.SkipWithError(sknet_bench::skip_reason(kernel.isa).c_str());
    return;
  }
  const dim_t n = state.range(0), c = state.range(1), h = state.range(2), groups = state.range(3);
  const dim_t stride = state.range(4), paths = 2;
  const SKBranchGeometry g{n, h, h, c, groups, paths, stride, paths};
  auto src = random_vector(std::size_t(n * g.padded_h() * g.padded_w() * c), 1);
  for (dim_t i = 0; i < n * g.padded_h(); ++i)  // zero border
    for (dim_t x = 0; x < g.padded_w(); ++x) {
      const dim_t y = i % g.padded_h();
      if (y < g.pad || y >= g.pad + h || x < g.pad || x >= g.pad + h)
        std::fill_n(src.begin() + (i * g.padded_w() + x) * c, c, 0.0f);
    }
  std::vector<std::vector<float>> weights, bias;
  std::vector<const float*> wp, bp;
  for (dim_t m = 0; m < paths; ++m) {
    weights.push_back(random_vector(std::size_t(c * g.group_width() * 9), 2 + unsigned(m)));
    bias.push_back(random_vector(std::size_t(c), 10 + unsigned(m)));
    wp.push_back(weights.back().data());
    bp.push_back(bias.back().data());
  }
  const PackedBranchWeights packed(g, wp.data(), bp.data(), kernel.isa);
  std::vector<std::vector<float>> dst;
  std::vector<float*> dp;
  for (dim_t m = 0; m < paths; ++m) dst.emplace_back(std::size_t(n * g.oh() * g.ow() * c));
  for (auto& d : dst) dp.push_back(d.data());
  std::vector<float> sums(std::size_t(n * c));
  for (auto _ : state) {
    std::fill(sums.begin(), sums.end(), 0.0f);
    kernel.fn(g, src.data(), packed, dp.data(), sums.data(), 0, c, 0, g.oh());
    benchmark::DoNotOptimize(dp.data());
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(g.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_pct"] =
      benchmark::Counter(g.flops() * 1e-9 / sknet_bench::fma_peak_gflops(kernel.isa) * 100.0, benchmark::Counter::kIsIterationInvariantRate);
}

// SKNet-50 SK convs {N, C, H_in, G, S}: stages 1-4 (gw 4 / 8 / 16 / 32), then the strided first units.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "H", "G", "S"});
  b->Args({1, 128, 56, 32, 1});
  b->Args({1, 256, 28, 32, 1});
  b->Args({1, 512, 14, 32, 1});
  b->Args({1, 1024, 7, 32, 1});
  b->Args({1, 256, 56, 32, 2});
  b->Args({1, 512, 28, 32, 2});
  b->Args({1, 1024, 14, 32, 2});
  b->Args({8, 128, 56, 32, 1});
  b->Args({8, 1024, 7, 32, 1});
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  const auto& list = sknet::kernels::kernel_list();
  for (int i = 0; i < list.sk_branches_count; ++i) {
    const auto& kernel = list.sk_branches[i];
    benchmark::RegisterBenchmark(kernel.name, [&kernel](benchmark::State& s) { run(s, kernel); })->Apply(shapes);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
