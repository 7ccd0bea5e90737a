// The SK branch convolution (kernels::sk_branches_conv3x3: M grouped 3x3 branches, dilation m, bias,
// ReLU, channel sums) at the SKNet-50 stage shapes (M = 2, G = 32), one thread, batch 1 and a few at
// batch 8; then ("<kernel>/dense") the dense convolutions of timm's skresnet18/34 at 224x224, batch 1:
// the split-input SK convs (Cin/2 -> C per branch), the basic block's conv2 with its shortcut, a deep
// stem's convs; then ("<kernel>/ablation") the paper's true-kernel ablations at SKNet-50's stage
// shapes: a 3x3 (dilation 1) and a dense 5x5 or 7x7 branch in one call (G = 32), and a 5x5 / 7x7
// branch alone at G = 64 (how PreparedSKConv runs a path whose groups differ).
// GFLOPS = 2 * MACs of all branches per second; peak_pct is against the FMA peak of
// one core measured by the same process (bench/support/fma_peak.hpp). oneDNN (PyTorch 1.13) on the same shapes:
// 38 / 87 / 171 / 115 GF/s for gw 4 / 8 / 16 / 32.
// Every SK branch kernel of the kernel list (kernels/kernel_list.hpp) runs; one whose ISA the CPU lacks
// is reported as skipped. Last, the bf16 SK branch kernels (grouped_conv3x3_sk_bf16__*, float input
// rounded in the ring copy, float outputs) at the SKNet-50 and ResNeXt-50 shapes, with peak_pct against
// the in-process vdpbf16ps peak (bench/support/fma_peak.hpp) and fma_pct against the FMA peak; and
// the int8 SK branch kernels (grouped_conv3x3_sk_int8__*, float input in [0, 1) quantized in the ring
// copy, float outputs) at the same shapes, peak_pct against the in-process vpdpbusd peak.
// Then ("<kernel>/depthwise") the depthwise SK convolutions of SK-ShuffleNetV2 1.0x at 224x224 (G = C,
// M = 2, batch 1): memory-bound (9 MACs per output and branch), so they also report bound_pct, the
// fraction of the time it takes just to move their bytes that the kernel reaches: the process times
// glibc's memchr (a read at the widest vector width) over an input-sized and a weights-sized buffer
// and memset (a write) over each of the M output buffers, at the same sizes, so at the same cache
// level (L2 for every SK-ShuffleNetV2 shape), and bound_pct = that time / the kernel's time;
// dram_bound_pct is the same fraction for the same bytes moved at main-memory bandwidth (measured once
// over 64 MB). The compute side: fma_floor_us (the useful multiply-adds at the FMA peak), roofline_pct
// = max(bound_us, fma_floor_us) / time, and l2_half_needs_pct, the share of the FMA peak that half of
// the L2 bound would take. At stride 1 the L2 bound is below the FMA floor (from L2, fp32 depthwise SK
// is compute-bound there; on Zen 5 half of the L2 bound takes 76-89% of the FMA peak, bench/RESULTS.md);
// at stride 2 the two are close.
// Run: build/release/bench/bench_grouped_conv --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "support/fma_peak.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <random>
#include <string>
#include <type_traits>
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

/// Seconds (median of 31 repetitions after warming up) to read in_bytes, write out_bytes to each of
/// `outputs` buffers and read weight_bytes once: glibc's memchr over zeroed buffers (it finds nothing,
/// so it reads all of them) and memset, both vectorised at the CPU's widest width.
double traffic_seconds(std::size_t in_bytes, std::size_t out_bytes, dim_t outputs, std::size_t weight_bytes) {
  std::vector<unsigned char> in(in_bytes, 0), weights(weight_bytes, 0);
  std::vector<std::vector<unsigned char>> out(std::size_t(outputs), std::vector<unsigned char>(out_bytes, 0));
  std::vector<double> times;
  for (int rep = 0; rep < 40; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const void* found = std::memchr(in.data(), 1, in.size());
    benchmark::DoNotOptimize(found);
    found = std::memchr(weights.data(), 1, weights.size());
    benchmark::DoNotOptimize(found);
    for (auto& o : out) {
      std::memset(o.data(), rep & 0x7F, o.size());
      benchmark::DoNotOptimize(o.data());
    }
    benchmark::ClobberMemory();
    const auto t1 = std::chrono::steady_clock::now();
    if (rep >= 9) times.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

/// Read and write bandwidth of main memory (bytes per second), measured once per process like
/// traffic_seconds over 64 MB buffers (far beyond L2 and L3 of the 2-core VMs).
std::pair<double, double> dram_bandwidth() {
  static const std::pair<double, double> bw = [] {
    const std::size_t bytes = std::size_t(64) << 20;
    std::vector<unsigned char> buf(bytes, 0);
    std::vector<double> reads, writes;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const void* found = std::memchr(buf.data(), 1, bytes);
      benchmark::DoNotOptimize(found);
      const auto t1 = std::chrono::steady_clock::now();
      std::memset(buf.data(), 0, bytes);
      benchmark::ClobberMemory();
      const auto t2 = std::chrono::steady_clock::now();
      reads.push_back(std::chrono::duration<double>(t1 - t0).count());
      writes.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
    std::sort(reads.begin(), reads.end());
    std::sort(writes.begin(), writes.end());
    const double r = double(bytes) / reads[reads.size() / 2], w = double(bytes) / writes[writes.size() / 2];
    std::fprintf(stderr, "measured main memory bandwidth: read %.1f GB/s, write %.1f GB/s (dram_bound_pct is against it)\n",
                 r * 1e-9, w * 1e-9);
    return std::make_pair(r, w);
  }();
  return bw;
}

using BranchInfo = sknet::kernels::SKBranchKernelInfo;
using BranchBf16Info = sknet::kernels::SKBranchBf16KernelInfo;
using BranchInt8Info = sknet::kernels::SKBranchInt8KernelInfo;
/// Why `kernel` does not run here ("" when it does).
std::string skip_reason(const BranchInfo& kernel) { return sknet_bench::skip_reason(kernel.isa); }
template <class Info>
std::string skip_reason(const Info& kernel) {
  return kernel.runs_here() ? std::string() : std::string("skipped: this CPU does not run ") + kernel.name;
}

/// The packed weights of kernel type Info (int8: inputs in [0, 1], quantized at 1 / 255).
template <class Info>
auto pack_for(const Info& kernel, const SKBranchGeometry& g, const float* const* w, const float* const* b) {
  if constexpr (std::is_same_v<Info, BranchBf16Info>)
    return sknet::kernels::PackedBranchWeightsBf16(g, w, b, kernel.isa);
  else if constexpr (std::is_same_v<Info, BranchInt8Info>)
    return sknet::kernels::PackedBranchWeightsInt8(g, w, b, 1.0f / 255.0f, kernel.isa);
  else
    return PackedBranchWeights(g, w, b, kernel.isa);
}

/// Runs `kernel` (float, bf16 with Info = BranchBf16Info, int8 with BranchInt8Info) on geometry g
/// (random input with a zero border of g.pad, random weights), epilogue e. bf16 kernels: peak_pct is
/// against the vdpbf16ps peak (2x the FMA peak, when the CPU has AVX512_BF16; else the FMA peak), int8
/// kernels against the vpdpbusd peak (4x, with AVX512_VNNI), fma_pct against the FMA peak.
template <class Info>
void measure(benchmark::State& state, const Info& kernel, const SKBranchGeometry& g,
             const sknet::kernels::SKBranchEpilogue& e, bool bound = false) {
  constexpr bool kBf16 = std::is_same_v<Info, BranchBf16Info>, kInt8 = std::is_same_v<Info, BranchInt8Info>;
  if (const std::string why = skip_reason(kernel); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  const dim_t n = g.n, c = g.c, cin = g.in_channels(), paths = g.paths;
  auto src = random_vector(std::size_t(n * g.padded_h() * g.padded_w() * cin), 1);
  for (dim_t i = 0; i < n * g.padded_h(); ++i)  // zero border
    for (dim_t x = 0; x < g.padded_w(); ++x) {
      const dim_t y = i % g.padded_h();
      if (y < g.pad || y >= g.pad + g.h || x < g.pad || x >= g.pad + g.w)
        std::fill_n(src.begin() + (i * g.padded_w() + x) * cin, cin, 0.0f);
    }
  std::vector<std::vector<float>> weights, bias;
  std::vector<const float*> wp, bp;
  for (dim_t m = 0; m < paths; ++m) {
    const dim_t k = g.path_kernel(m);
    weights.push_back(random_vector(std::size_t(c * g.in_group_width() * k * k), 2 + unsigned(m)));
    bias.push_back(random_vector(std::size_t(c), 10 + unsigned(m)));
    wp.push_back(weights.back().data());
    bp.push_back(bias.back().data());
  }
  if (kInt8)  // a ReLU's output in [0, 1)
    for (float& v : src) v = std::fabs(v) - std::floor(std::fabs(v));
  const auto packed = pack_for(kernel, g, wp.data(), bp.data());
  std::vector<std::vector<float>> dst;
  std::vector<float*> dp;
  for (dim_t m = 0; m < paths; ++m) dst.emplace_back(std::size_t(n * g.oh() * g.ow() * c));
  for (auto& d : dst) dp.push_back(d.data());
  std::vector<float> sums(std::size_t(n * c));
  for (auto _ : state) {
    std::fill(sums.begin(), sums.end(), 0.0f);
    kernel.fn(g, src.data(), packed, dp.data(), sums.data(), 0, c, 0, g.oh(), e);
    benchmark::DoNotOptimize(dp.data());
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(g.flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  const double fma_peak = sknet_bench::fma_peak_gflops(kernel.isa);
  if (bound) {  // the bytes a call must move: its input once, each output once, the packed weights once
    const std::size_t in_bytes = std::size_t(n * g.h * g.w * cin) * 4, out_bytes = std::size_t(n * g.oh() * g.ow() * c) * 4;
    const std::size_t weight_bytes = std::size_t(packed.size()) * 4;
    const double t = traffic_seconds(in_bytes, out_bytes, paths, weight_bytes);
    state.counters["MB"] = double(in_bytes + paths * out_bytes + weight_bytes) * 1e-6;
    state.counters["bound_us"] = t * 1e6;
    state.counters["bound_pct"] = benchmark::Counter(t * 100.0, benchmark::Counter::kIsIterationInvariantRate);
    const auto dram = dram_bandwidth();
    const double td = double(in_bytes + weight_bytes) / dram.first + double(paths * out_bytes) / dram.second;
    state.counters["dram_bound_pct"] = benchmark::Counter(td * 100.0, benchmark::Counter::kIsIterationInvariantRate);
    // The compute side of the roofline: the useful multiply-adds at the FMA peak. fma_floor_us is that
    // time; roofline_pct = max(bound_us, fma_floor_us) / the kernel's time (the fraction of what the
    // core could do at best: both limits apply at once); l2_half_needs_pct = the share of the FMA peak a
    // kernel would need to reach half of the L2 bound (above 100 it is out of reach whatever the kernel).
    const double tf = g.flops() * 1e-9 / fma_peak;
    state.counters["fma_floor_us"] = tf * 1e6;
    state.counters["roofline_pct"] =
        benchmark::Counter(std::max(t, tf) * 100.0, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["l2_half_needs_pct"] = tf / (2.0 * t) * 100.0;
  }
  double peak = fma_peak;
  if (kBf16 && sknet_bench::bf16_dot_peak_gflops() > 0) peak = sknet_bench::bf16_dot_peak_gflops();
  if (kInt8 && sknet_bench::int8_dot_peak_gops() > 0) peak = sknet_bench::int8_dot_peak_gops();
  state.counters["peak_pct"] = benchmark::Counter(g.flops() * 1e-9 / peak * 100.0, benchmark::Counter::kIsIterationInvariantRate);
  if (kBf16 || kInt8)
    state.counters["fma_pct"] =
        benchmark::Counter(g.flops() * 1e-9 / fma_peak * 100.0, benchmark::Counter::kIsIterationInvariantRate);
}

/// SKNet-50's SK convs. Args: N, C, H (= W, input), G, S; M = 2 branches, pad = 2.
template <class Info>
void run_sknet(benchmark::State& state, const Info& kernel) {
  const dim_t n = state.range(0), c = state.range(1), h = state.range(2), groups = state.range(3);
  const dim_t stride = state.range(4), paths = 2;
  measure(state, kernel, SKBranchGeometry{n, h, h, c, groups, paths, stride, paths}, {});
}

/// The dense (G = 1) convolutions of timm's skresnet18/34 and a deep stem, batch 1, dense input (pad 0).
/// Args: Cin (of the buffer), C, H (= W, input), S, M, split; ReLU, plus a residual when M = 1 and
/// Cin = C (a basic block's conv2 + shortcut).
void run_dense(benchmark::State& state, const sknet::kernels::SKBranchKernelInfo& kernel) {
  const dim_t cin = state.range(0), c = state.range(1), h = state.range(2), stride = state.range(3);
  const dim_t paths = state.range(4);
  SKBranchGeometry g{1, h, h, c, 1, paths, stride, 0};
  g.cin = cin, g.split_input = state.range(5) != 0;
  const bool residual = paths == 1 && cin == c && stride == 1;
  std::vector<float> res(residual ? std::size_t(g.oh() * g.ow() * c) : 0, 0.5f);
  sknet::kernels::SKBranchEpilogue e;
  e.relu = true;
  e.residual = residual ? res.data() : nullptr;
  measure(state, kernel, g, e);
}

/// ResNeXt-50's grouped middle: one path, dilation 1, dense input (pad 0), ReLU. Args as run_sknet.
template <class Info>
void run_resnext(benchmark::State& state, const Info& kernel) {
  const dim_t n = state.range(0), c = state.range(1), h = state.range(2), groups = state.range(3);
  sknet::kernels::SKBranchEpilogue e;
  e.relu = true;
  measure(state, kernel, SKBranchGeometry{n, h, h, c, groups, 1, state.range(4), 0}, e);
}

/// The true-kernel ablations, batch 1, pad = the largest reach. Args: C, H (= W), S, K, G, M: M = 2 is a
/// 3x3 branch of dilation 1 and a dense K x K branch, M = 1 the K x K branch alone.
void run_ablation(benchmark::State& state, const sknet::kernels::SKBranchKernelInfo& kernel) {
  const dim_t c = state.range(0), h = state.range(1), stride = state.range(2), k = state.range(3);
  const dim_t groups = state.range(4), paths = state.range(5);
  SKBranchGeometry g{1, h, h, c, groups, paths, stride, 0};
  g.kernel = {paths == 2 ? 3 : k, k}, g.dilation = {1, 1};
  g.pad = g.max_reach();
  measure(state, kernel, g, {});
}

/// SK-ShuffleNetV2's depthwise SK convs: G = C, M = 2 (dilation 1 and 2), pad = 2, batch 1, ReLU
/// (the kernel's; the network's branches have none, which costs the same). Args: C, H (= W, input), S.
void run_depthwise(benchmark::State& state, const sknet::kernels::SKBranchKernelInfo& kernel) {
  const dim_t c = state.range(0), h = state.range(1), stride = state.range(2), paths = 2;
  sknet::kernels::SKBranchEpilogue e;
  e.relu = false;
  measure(state, kernel, SKBranchGeometry{1, h, h, c, c, paths, stride, paths}, e, true);
}

// SK-ShuffleNetV2 1.0x at 224x224 {C, H_in, S}: the units' depthwise convs after the channel split
// (58, 116, 232 channels at 28, 14, 7), the downsampling units' right branch (58 at 56 -> 28, 116 at 28
// -> 14, 232 at 14 -> 7) and left branch (24 at 56 -> 28, 116 at 28 -> 14, 232 at 14 -> 7).
void depthwise_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "H", "S"});
  b->Args({58, 28, 1});
  b->Args({64, 28, 1});
  b->Args({116, 14, 1});
  b->Args({232, 7, 1});
  b->Args({58, 56, 2});
  b->Args({116, 28, 2});
  b->Args({232, 14, 2});
  b->Args({24, 56, 2});
  b->Unit(benchmark::kMicrosecond);
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

// The CIFAR networks at 32x32 {N, C, H_in, G, S}: stages 1-3 and the strided first units of stages 2-3,
// with G = 32 (SKNet-29's paths: gw 16 / 32 / 64) or G = 16 (ResNeXt-29 16x32d: gw 32 / 64 / 128).
template <int G>
void cifar_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "H", "G", "S"});
  b->Args({1, 512, 32, G, 1});
  b->Args({1, 1024, 16, G, 1});
  b->Args({1, 2048, 8, G, 1});
  b->Args({1, 1024, 32, G, 2});
  b->Args({1, 2048, 16, G, 2});
  b->Unit(benchmark::kMicrosecond);
}

// skresnet18/34 at 224x224 {Cin, C, H_in, S, M, split}: the SK convs (two split branches, Cin/2 -> C
// each, dilation 1 and 2) of stages 1-4 and of the strided first units of stages 2-4; the plain
// conv2 (C -> C, + shortcut); a deep stem's convs (3 -> 32 at stride 2, 32 -> 32, 32 -> 64).
void dense_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"Cin", "C", "H", "S", "M", "split"});
  b->Args({64, 64, 56, 1, 2, 1});
  b->Args({128, 128, 28, 1, 2, 1});
  b->Args({256, 256, 14, 1, 2, 1});
  b->Args({512, 512, 7, 1, 2, 1});
  b->Args({64, 128, 56, 2, 2, 1});
  b->Args({128, 256, 28, 2, 2, 1});
  b->Args({256, 512, 14, 2, 2, 1});
  b->Args({64, 64, 56, 1, 1, 0});
  b->Args({128, 128, 28, 1, 1, 0});
  b->Args({256, 256, 14, 1, 1, 0});
  b->Args({512, 512, 7, 1, 1, 0});
  b->Args({3, 32, 224, 2, 1, 0});
  b->Args({32, 32, 112, 1, 1, 0});
  b->Args({32, 64, 112, 1, 1, 0});
  b->Unit(benchmark::kMicrosecond);
}

// The ablations {C, H_in, S, K, G, M} at SKNet-50's stage shapes: 3x3 + 5x5 and 3x3 + 7x7 (G = 32)
// at stages 1-4 and a strided first unit; the 5x5 / 7x7 branch alone at G = 64 (stage 1).
void ablation_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "H", "S", "K", "G", "M"});
  for (const int k : {5, 7}) {
    b->Args({128, 56, 1, k, 32, 2});
    b->Args({256, 28, 1, k, 32, 2});
    b->Args({512, 14, 1, k, 32, 2});
    b->Args({1024, 7, 1, k, 32, 2});
    b->Args({512, 28, 2, k, 32, 2});
    b->Args({128, 56, 1, k, 64, 1});
  }
  b->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
  const auto& list = sknet::kernels::kernel_list();
  for (int i = 0; i < list.sk_branches_count; ++i) {
    const auto& kernel = list.sk_branches[i];
    benchmark::RegisterBenchmark(kernel.name, [&kernel](benchmark::State& s) { run_sknet(s, kernel); })->Apply(shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/dense").c_str(),
                                 [&kernel](benchmark::State& s) { run_dense(s, kernel); })
        ->Apply(dense_shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/resnext").c_str(),
                                 [&kernel](benchmark::State& s) { run_resnext(s, kernel); })
        ->Apply(shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/sknet29").c_str(),
                                 [&kernel](benchmark::State& s) { run_sknet(s, kernel); })
        ->Apply(cifar_shapes<32>);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/resnext29").c_str(),
                                 [&kernel](benchmark::State& s) { run_resnext(s, kernel); })
        ->Apply(cifar_shapes<16>);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/ablation").c_str(),
                                 [&kernel](benchmark::State& s) { run_ablation(s, kernel); })
        ->Apply(ablation_shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/depthwise").c_str(),
                                 [&kernel](benchmark::State& s) { run_depthwise(s, kernel); })
        ->Apply(depthwise_shapes);
  }
  for (int i = 0; i < list.sk_branches_bf16_count; ++i) {  // bf16: SKNet-50's and ResNeXt-50's shapes
    const auto& kernel = list.sk_branches_bf16[i];
    benchmark::RegisterBenchmark(kernel.name, [&kernel](benchmark::State& s) { run_sknet(s, kernel); })->Apply(shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/resnext").c_str(),
                                 [&kernel](benchmark::State& s) { run_resnext(s, kernel); })
        ->Apply(shapes);
  }
  for (int i = 0; i < list.sk_branches_int8_count; ++i) {  // int8: SKNet-50's and ResNeXt-50's shapes
    const auto& kernel = list.sk_branches_int8[i];
    benchmark::RegisterBenchmark(kernel.name, [&kernel](benchmark::State& s) { run_sknet(s, kernel); })->Apply(shapes);
    benchmark::RegisterBenchmark((std::string(kernel.name) + "/resnext").c_str(),
                                 [&kernel](benchmark::State& s) { run_resnext(s, kernel); })
        ->Apply(shapes);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
