// The 1x1 convolution kernel (kernels::pointwise_conv) at every SKNet-50 1x1 shape, batch 1 (and a few
// at batch 8), one thread, against Eigen's tensor contraction on RowMajor maps as the baseline.
// GFLOPS = 2 * P * Cin * Cout per second; peak_pct is against the FMA peak of one core
// measured by the same process (bench/support/fma_peak.hpp). The kernel runs with a bias + ReLU epilogue,
// Eigen with none.
// Run: build/pw/bench/bench_pointwise --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "support/fma_peak.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <random>
#include <vector>

// g++ 12 -march=native: false -Wmaybe-uninitialized in Eigen's AVX-512 packet code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <unsupported/Eigen/CXX11/Tensor>
#pragma GCC diagnostic pop

#include <sknet/kernels/kernel_list.hpp>

namespace {

using sknet::kernels::dim_t;
using sknet::kernels::PointwiseEpilogue;
using sknet::kernels::PointwiseGeometry;

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

void set_counters(benchmark::State& state, double flops,
                  sknet::kernels::Isa isa = sknet::kernels::active_isa()) {
  state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_pct"] =
      benchmark::Counter(flops * 1e-9 / sknet_bench::fma_peak_gflops(isa) * 100.0, benchmark::Counter::kIsIterationInvariantRate);
}

using KernelFn = void (*)(const PointwiseGeometry&, const float*, const float*, const PointwiseEpilogue&, float*,
                          dim_t, dim_t, dim_t, dim_t);

/// Args: Cin, Cout, P. `block` is the kernel's packed column block.
void run_kernel(benchmark::State& state, KernelFn kernel, dim_t block, sknet::kernels::Isa isa) {
  if (!sknet::kernels::cpu_supports(isa)) {
    state.SkipWithError(sknet_bench::skip_reason(isa).c_str());
    return;
  }
  const dim_t cin = state.range(0), cout = state.range(1), pixels = state.range(2);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto src = random_vector(std::size_t(pixels * cin), 1);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  const auto bias = random_vector(std::size_t(cout), 3);
  std::vector<float> packed(std::size_t(sknet::kernels::detail::pointwise_packed_size(cout, cin, block)));
  sknet::kernels::detail::pack_pointwise(weight.data(), cout, cin, block, packed.data());
  std::vector<float> dst(std::size_t(pixels * cout));
  PointwiseEpilogue ep;
  ep.bias = bias.data();
  ep.relu = true;
  for (auto _ : state) {
    kernel(g, src.data(), packed.data(), ep, dst.data(), 0, pixels, 0, cout);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, g.flops(), isa);
}

/// The public entry point (compile-time ISA) through PackedPointwiseWeights, cycling over `copies`
/// copies of the packed weights (1: always the same, cached). Args: Cin, Cout, P.
void time_public_kernel(benchmark::State& state, std::size_t copies) {
  const dim_t cin = state.range(0), cout = state.range(1), pixels = state.range(2);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto src = random_vector(std::size_t(pixels * cin), 1);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  const auto bias = random_vector(std::size_t(cout), 3);
  std::vector<sknet::kernels::PackedPointwiseWeights> packed;
  for (std::size_t i = 0; i < copies; ++i) packed.emplace_back(weight.data(), cout, cin);
  std::vector<float> dst(std::size_t(pixels * cout));
  PointwiseEpilogue ep;
  ep.bias = bias.data();
  ep.relu = true;
  std::size_t next = 0;
  for (auto _ : state) {
    sknet::kernels::pointwise_conv(g, src.data(), packed[next], ep, dst.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(sknet::kernels::isa_name(sknet::kernels::active_isa()));
  set_counters(state, g.flops());
}

void BM_Pointwise(benchmark::State& state) { time_public_kernel(state, 1); }

/// The same with the weights cold, as in a network at batch 1: each call reads another of enough copies
/// of the packed weights (>= 192 MB in all) that none is still cached, so they stream from DRAM
/// (ResNeXt-50's 1x1 weights are 90 MB per forward). weight_GBps: the weights' bytes per second.
void BM_PointwiseColdWeights(benchmark::State& state) {
  const std::size_t bytes = std::size_t(state.range(0) * state.range(1)) * sizeof(float);
  time_public_kernel(state, std::max<std::size_t>(4, (std::size_t(192) << 20) / bytes));
  state.counters["weight_GBps"] =
      benchmark::Counter(double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// The stride-2 downsample as a caller must run it with this API: one call per output row
/// (src_stride = 2 * Cin skips every other input pixel). Args: Cin, Cout, output width.
void BM_PointwiseDownsample(benchmark::State& state) {
  const dim_t cin = state.range(0), cout = state.range(1), ow = state.range(2), iw = 2 * ow;
  const auto src = random_vector(std::size_t(iw * iw * cin), 1);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  const auto bias = random_vector(std::size_t(cout), 3);
  const sknet::kernels::PackedPointwiseWeights packed(weight.data(), cout, cin);
  std::vector<float> dst(std::size_t(ow * ow * cout));
  PointwiseEpilogue ep;
  ep.bias = bias.data();
  const PointwiseGeometry g{ow, cin, cout, 2 * cin, cout};
  for (auto _ : state) {
    for (dim_t y = 0; y < ow; ++y)
      sknet::kernels::pointwise_conv(g, src.data() + 2 * y * iw * cin, packed, ep, dst.data() + y * ow * cout);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * double(ow * ow) * double(cin) * double(cout));
}

/// A bf16 kernel of the kernel list (kernels/pointwise_bf16.hpp) with a bias + ReLU epilogue and bf16
/// output. peak_pct is against the vdpbf16ps peak (the native kernel's limit, 2x the FMA peak) when the
/// CPU has AVX512_BF16, else against the FMA peak; fma_pct is against the FMA peak. Args: Cin, Cout, P.
void run_bf16_kernel(benchmark::State& state, const sknet::kernels::PointwiseBf16KernelInfo& k) {
  if (!k.runs_here()) {
    state.SkipWithError((std::string("skipped: this CPU does not run ") + k.name).c_str());
    return;
  }
  using sknet::kernels::bf16_t;
  const dim_t cin = state.range(0), cout = state.range(1), pixels = state.range(2);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto src32 = random_vector(std::size_t(pixels * cin), 1);
  std::vector<bf16_t> src(src32.size());
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = sknet::kernels::to_bf16(src32[i]);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  const auto bias = random_vector(std::size_t(cout), 3);
  const sknet::kernels::PackedPointwiseBf16Weights packed(weight.data(), cout, cin, k.isa);
  std::vector<bf16_t> dst(std::size_t(pixels * cout));
  sknet::kernels::PointwiseBf16Epilogue ep;
  ep.bias = bias.data();
  ep.relu = true;
  for (auto _ : state) {
    k.fn(g, src.data(), packed.data(), ep, dst.data(), 0, pixels, 0, cout);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double peak = sknet_bench::bf16_dot_peak_gflops() > 0 ? sknet_bench::bf16_dot_peak_gflops()
                                                               : sknet_bench::fma_peak_gflops(k.isa);
  state.counters["GFLOPS"] = benchmark::Counter(g.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_pct"] =
      benchmark::Counter(g.flops() * 1e-9 / peak * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["fma_pct"] = benchmark::Counter(g.flops() * 1e-9 / sknet_bench::fma_peak_gflops(k.isa) * 100.0,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

/// An int8 kernel of the kernel list (kernels/pointwise_int8.hpp) with a scale + bias + ReLU epilogue
/// and u8 output. peak_pct is against the vpdpbusd peak (the native kernel's limit, 4x the FMA peak)
/// when the CPU has AVX512_VNNI, else against the FMA peak; fma_pct is against the FMA peak (GOP/s
/// counted as 2 per multiply-add). Args: Cin, Cout, P.
void run_int8_kernel(benchmark::State& state, const sknet::kernels::PointwiseInt8KernelInfo& k) {
  if (!k.runs_here()) {
    state.SkipWithError((std::string("skipped: this CPU does not run ") + k.name).c_str());
    return;
  }
  using sknet::kernels::u8_t;
  const dim_t cin = state.range(0), cout = state.range(1), pixels = state.range(2);
  const PointwiseGeometry g{pixels, cin, cout, cin, cout};
  const auto src32 = random_vector(std::size_t(pixels * cin), 1);
  std::vector<u8_t> src(src32.size());
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = u8_t(std::fabs(src32[i]) * 255.0f);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  const auto bias = random_vector(std::size_t(cout), 3);
  const sknet::kernels::PackedPointwiseInt8Weights packed(weight.data(), cout, cin, k.isa);
  std::vector<float> scale(packed.weight_scales());
  for (float& s : scale) s *= 1.0f / 255.0f;
  std::vector<u8_t> dst(std::size_t(pixels * cout));
  sknet::kernels::PointwiseInt8Epilogue ep;
  ep.scale = scale.data();
  ep.bias = bias.data();
  ep.relu = true;
  ep.out_inv_scale = 64.0f;
  for (auto _ : state) {
    k.fn(g, src.data(), packed.data(), ep, dst.data(), 0, pixels, 0, cout);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double peak = sknet_bench::int8_dot_peak_gops() > 0 ? sknet_bench::int8_dot_peak_gops()
                                                             : sknet_bench::fma_peak_gflops(k.isa);
  state.counters["GOPS"] = benchmark::Counter(g.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_pct"] =
      benchmark::Counter(g.flops() * 1e-9 / peak * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["fma_pct"] = benchmark::Counter(g.flops() * 1e-9 / sknet_bench::fma_peak_gflops(k.isa) * 100.0,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

/// Baseline: Eigen's single-threaded tensor contraction C[P, Cout] = A[P, Cin] . W[Cout, Cin]^T.
void BM_Eigen(benchmark::State& state) {
  const Eigen::Index cin = state.range(0), cout = state.range(1), pixels = state.range(2);
  const auto src = random_vector(std::size_t(pixels * cin), 1);
  const auto weight = random_vector(std::size_t(cout * cin), 2);
  std::vector<float> dst(std::size_t(pixels * cout));
  using ConstMap = Eigen::TensorMap<const Eigen::Tensor<const float, 2, Eigen::RowMajor>>;
  const ConstMap a(src.data(), pixels, cin), w(weight.data(), cout, cin);
  Eigen::TensorMap<Eigen::Tensor<float, 2, Eigen::RowMajor>> c(dst.data(), pixels, cout);
  const Eigen::array<Eigen::IndexPair<int>, 1> dims{Eigen::IndexPair<int>(1, 1)};
  for (auto _ : state) {
    c = a.contract(w, dims);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * double(pixels) * double(cin) * double(cout));
}

// SKNet-50 1x1 shapes {Cin, Cout, P}: stage 1 (56x56), 2 (28x28), 3 (14x14), 4 (7x7), the stem as a
// GEMM (7x7x3 = 147 -> 64 at 112x112), then batch 8 (P x 8) for three of them.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"Cin", "Cout", "P"});
  for (const auto& s : std::vector<std::vector<int64_t>>{
           {64, 128, 3136}, {64, 256, 3136}, {256, 128, 3136}, {128, 256, 3136},         // stage 1
           {256, 256, 784}, {512, 256, 784}, {256, 512, 784},                             // stage 2
           {512, 512, 196}, {1024, 512, 196}, {512, 1024, 196},                           // stage 3
           {1024, 1024, 49}, {2048, 1024, 49}, {1024, 2048, 49},                          // stage 4
           {147, 64, 12544},                                                              // stem
           {256, 128, 3136 * 8}, {512, 1024, 196 * 8}, {1024, 2048, 49 * 8}})             // batch 8
    b->Args(s);
}
void small_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"Cin", "Cout", "P"});
  for (const auto& s : std::vector<std::vector<int64_t>>{
           {512, 512, 196}, {1024, 512, 196}, {512, 1024, 196}, {1024, 1024, 49}, {2048, 1024, 49}, {1024, 2048, 49}})
    b->Args(s);
}

}  // namespace

BENCHMARK(BM_Pointwise)->Apply(shapes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PointwiseColdWeights)->Apply(small_shapes)->Unit(benchmark::kMicrosecond);
// The classifier at batch 1 (ImageNet, 2048 features): a matrix-vector product, weights from DRAM.
BENCHMARK(BM_PointwiseColdWeights)->ArgNames({"Cin", "Cout", "P"})->Args({2048, 1000, 1})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PointwiseDownsample)->ArgNames({"Cin", "Cout", "OW"})->Args({256, 512, 28})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Eigen)->Apply(shapes)->Unit(benchmark::kMicrosecond);

int main(int argc, char** argv) {
  // Every pointwise kernel of the kernel list on the small-map shapes (the full sweep for the
  // per-ISA dispatchers); kernels whose ISA the CPU lacks are reported as skipped.
  const auto& list = sknet::kernels::kernel_list();
  for (int i = 0; i < list.pointwise_count; ++i) {
    const auto& k = list.pointwise[i];
    auto* b = benchmark::RegisterBenchmark(k.name, [&k](benchmark::State& s) {
      run_kernel(s, k.fn, sknet::kernels::pointwise_block(k.isa), k.isa);
    });
    (k.blocking ? b->Apply(small_shapes) : b->Apply(shapes))->Unit(benchmark::kMicrosecond);
  }
  for (int i = 0; i < list.pointwise_bf16_count; ++i) {
    const auto& k = list.pointwise_bf16[i];
    benchmark::RegisterBenchmark(k.name, [&k](benchmark::State& s) { run_bf16_kernel(s, k); })
        ->Apply(k.isa == sknet::kernels::Isa::portable ? small_shapes : shapes)
        ->Unit(benchmark::kMicrosecond);
  }
  for (int i = 0; i < list.pointwise_int8_count; ++i) {
    const auto& k = list.pointwise_int8[i];
    benchmark::RegisterBenchmark(k.name, [&k](benchmark::State& s) { run_int8_kernel(s, k); })
        ->Apply(k.isa == sknet::kernels::Isa::portable ? small_shapes : shapes)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
