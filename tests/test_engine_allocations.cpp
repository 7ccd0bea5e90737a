// After a warm-up call, PreparedNetwork forwards of the same shape allocate nothing: counted with a
// replaced global operator new (every form) over every thread of the program, on a caller-owned context
// and on the one-line form (the model's context for the calling thread), with 1 and 2 pool threads.
// Eigen tensors use malloc, not operator new: the forms that return a Tensor2 allocate their logits
// (see README, "Threads"); the forms tested here write into logits the caller owns.
#include <catch2/catch.hpp>

#include <sknet/models/prepared_network.hpp>
#include <sknet/sknet.hpp>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>

#include "support/replaced_operator_new.hpp"
#include "support/tiny_sknet.hpp"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

/// Operator new calls (on any thread) while fn() runs.
template <class F>
long allocations_during(F&& fn) {
  g_allocations = 0;
  g_counting = true;
  fn();
  g_counting = false;
  return g_allocations.load();
}
}  // namespace

void sknet_test_on_allocation(std::size_t, std::size_t) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}

using namespace sknet;

TEST_CASE("The allocation counter sees operator new on every thread", "[engine][allocations]") {
  CHECK(allocations_during([] { delete new int(1); }) == 1);
  CHECK(allocations_during([] { std::make_unique<float[]>(3); }) == 1);
  CHECK(allocations_during([] { std::thread([] { delete new int(2); }).join(); }) >= 2);  // the thread's state + int
  // A forward on a fresh context plans its workspace: counted.
  SKNet<float, 2> net(sknet_test::tiny_sknet26_config());
  randomize<float>(net, 8);
  const PreparedNetwork model = prepare(net);
  const Tensor4<float> x = sknet_test::seeded_input(1, 40, 40, 3, 8);
  Tensor2<float> logits(1, model.config().num_classes);
  ExecutionContext ctx;
  CHECK(allocations_during([&] { model.forward(ctx, view(x), TensorMap<float, 2>(logits.data(), logits.dimensions())); }) > 0);
}

TEST_CASE("After a warm-up call, forwards of the same shape allocate nothing", "[engine][allocations]") {
  const int threads = GENERATE(1, 2);
  const int shape = GENERATE(0, 1);
  const Tensor4<float> x = shape == 0 ? sknet_test::seeded_input(1, 40, 40, 3, 9) : sknet_test::seeded_input(2, 33, 37, 3, 9);
  INFO("pool threads " << threads << ", input " << shape_string(x.dimensions()));
  SKNet<float, 2> net(sknet_test::tiny_sknet26_config());
  randomize<float>(net, 9);
  const PreparedNetwork model = prepare(net, PrepareOptions{threads});
  Tensor2<float> logits(x.dimension(0), model.config().num_classes);
  const TensorMap<float, 2> out(logits.data(), logits.dimensions());
  constexpr int kForwards = 20;

  SECTION("caller-owned context") {
    ExecutionContext ctx(threads);
    model.forward(ctx, view(x), out);  // warm-up: plans the workspace
    const Tensor2<float> first = logits;
    CHECK(allocations_during([&] {
            for (int i = 0; i < kForwards; ++i) model.forward(ctx, view(x), out);
          }) == 0);
    CHECK(sknet_test::bit_equal({logits, {}}, {first, {}}));
    CHECK(ctx.attention_maps().size() == 8);
  }
  SECTION("one-line form") {
    model.forward(view(x), out);  // warm-up: creates this thread's context and plans it
    const Tensor2<float> first = logits;
    CHECK(allocations_during([&] {
            for (int i = 0; i < kForwards; ++i) model.forward(view(x), out);
          }) == 0);
    CHECK(sknet_test::bit_equal({logits, {}}, {first, {}}));
    CHECK(model.attention_maps().size() == 8);
  }
  SECTION("profiling context") {
    ExecutionContext ctx(threads, /*profile=*/true);
    model.forward(ctx, view(x), out);
    CHECK(allocations_during([&] {
            for (int i = 0; i < kForwards; ++i) model.forward(ctx, view(x), out);
          }) == 0);
    CHECK(ctx.profile().forwards == kForwards + 1);
  }
}
