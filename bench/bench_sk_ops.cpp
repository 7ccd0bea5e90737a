// SKConv (the reference layer and its prepared fast form) and 1x1 convolution at the four SKNet-50
// stage shapes (batch 1), GFLOP/s as a counter. FLOP = 2 x multiply-adds.
// Run: build/native/bench/bench_sk_ops (tools/compare_pytorch.py --sk-conv times PyTorch's SK
// convolution at the same shapes for the side-by-side ratio).
#include <benchmark/benchmark.h>

#include <sknet/sknet.hpp>
#include <sknet/sk/prepared_sk_conv.hpp>

namespace {

using namespace sknet;

// SKNet-50 stage shapes: SK width C and map size at the SK conv (stride-1 units).
constexpr int kStages[4][2] = {{128, 56}, {256, 28}, {512, 14}, {1024, 7}};

double sk_conv_macs(const SKConvOptions& o, Index h, Index w) {
  const double pixels = double(h) * double(w);
  const double c = double(o.out_channels()), d = double(o.attention_width());
  const double branch = pixels * c * double(o.in_channels() / o.groups()) * 9.0;
  return 2 * branch + c * d + d * 2 * c + pixels * c * 2;  // branches, fc_reduce, fc_select, weighted sum
}

void BM_SKConv(benchmark::State& state) {
  const Index c = state.range(0), hw = state.range(1);
  const SKConvOptions options = SKConvOptions(c).groups(32).reduction(16).min_width(32);
  SKConv<float, 2> sk(options);
  randomize<float>(sk, 1);
  Tensor4<float> x(1, hw, hw, c);
  x.setRandom();
  Tensor3<float> attention;
  for (auto _ : state) benchmark::DoNotOptimize(sk.forward(view(x), attention).data());
  state.counters["GFLOPS"] =
      benchmark::Counter(2e-9 * sk_conv_macs(options, hw, hw), benchmark::Counter::kIsIterationInvariantRate);
}

// PreparedSKConv::forward: the whole SK convolution (both branches with folded BN and ReLU, the
// channel sums, attention, softmax, V = sum_m a_m U_m written out), args C, HW, threads.
void BM_PreparedSKConv(benchmark::State& state) {
  const Index c = state.range(0), hw = state.range(1);
  const SKConvOptions options = SKConvOptions(c).groups(32).reduction(16).min_width(32);
  SKConv<float, 2> sk(options);
  randomize<float>(sk, 1);
  PreparedSKConv<2> fast(sk);
  ThreadPool pool(int(state.range(2)));
  Tensor4<float> x(1, hw, hw, c), v(1, hw, hw, c);
  x.setRandom();
  Tensor3<float> attention;
  PreparedSKConv<2>::ForwardBuffers buffers;  // reused: the loop times the convolution, not allocation
  const DenormalsAreZero daz;
  for (auto _ : state) {
    fast.forward(pool, view(x), TensorMap4<float>(v.data(), v.dimensions()), attention, buffers);
    benchmark::DoNotOptimize(v.data());
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(2e-9 * sk_conv_macs(options, hw, hw), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Conv1x1(benchmark::State& state) {
  const Index cin = state.range(0), cout = state.range(1), hw = state.range(2);
  Conv2d<float> conv(Conv2dOptions(cin, cout, 1).bias(false));
  randomize<float>(conv, 2);
  Tensor4<float> x(1, hw, hw, cin);
  x.setRandom();
  Tensor4<float> y(conv.output_dims(x.dimensions()));
  for (auto _ : state) {
    conv.forward(view(x), TensorMap4<float>(y.data(), y.dimensions()));
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(cin * cout * hw * hw),
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void sk_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "HW"});
  for (const auto& s : kStages) b->Args({s[0], s[1]});
}

void prepared_sk_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "HW", "threads"});
  for (int threads : {1, 2})
    for (const auto& s : kStages) b->Args({s[0], s[1], threads});
}

// The SK unit's 1x1 convs at each stage (inner units): conv1 2C -> C and conv3 C -> 2C,
// i.e. 256->128 and 128->256 at 56x56, ..., 2048->1024 and 1024->2048 at 7x7.
void conv1x1_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"Cin", "Cout", "HW"});
  for (const auto& s : kStages) {
    b->Args({2 * s[0], s[0], s[1]});
    b->Args({s[0], 2 * s[0], s[1]});
  }
}

}  // namespace

BENCHMARK(BM_SKConv)->Apply(sk_args)->Unit(benchmark::kMillisecond)->MinTime(0.2);
BENCHMARK(BM_PreparedSKConv)->Apply(prepared_sk_args)->Unit(benchmark::kMicrosecond)->MinTime(0.2)->UseRealTime();
BENCHMARK(BM_Conv1x1)->Apply(conv1x1_args)->Unit(benchmark::kMillisecond)->MinTime(0.2);
BENCHMARK_MAIN();
