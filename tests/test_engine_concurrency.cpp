// PreparedNetwork from several threads at once: one model, forwards on the one-line form (the model's
// per-thread contexts) and on caller-owned contexts, two input shapes mixed, every result equal bit for
// bit to the single-threaded one; one context used by two threads at once throws RuntimeError; a forward
// whose planning fails (std::bad_alloc, ShapeError) leaves the model and the context as they were.
// Also runs under ThreadSanitizer in ./scripts/test.
#include <catch2/catch.hpp>

#include <sknet/models/prepared_network.hpp>
#include <sknet/sknet.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "support/replaced_operator_new.hpp"
#include "support/tiny_sknet.hpp"

// Test hooks in the global operator new, armed per thread: hold the thread inside its next 64-byte
// aligned allocation (a workspace arena, made while a forward plans) until released, so a forward is
// deterministically in flight; or throw std::bad_alloc from its fail_at-th allocation (from 1). Every
// form is replaced, so every delete matches (AddressSanitizer checks).
namespace {
thread_local bool t_hold_next = false;
thread_local long t_fail_at = 0;
thread_local long t_allocations = 0;
std::atomic<int> g_hold{0};  // 1: a thread is held inside operator new; 2: released

}  // namespace

void sknet_test_on_allocation(std::size_t, std::size_t align) {
  ++t_allocations;
  if (t_fail_at > 0 && t_allocations == t_fail_at) throw std::bad_alloc();
  if (t_hold_next && align == 64) {
    t_hold_next = false;
    g_hold.store(1);
    while (g_hold.load() != 2) std::this_thread::yield();
  }
}


using namespace sknet;
using sknet_test::EngineResult;
using Catch::Matchers::Contains;

namespace {

PreparedNetwork tiny_model(int threads) {
  SKNet<float, 2> net(sknet_test::tiny_sknet26_config());
  randomize<float>(net, 26);
  return prepare(net, PrepareOptions{threads});
}

EngineResult run_on(const PreparedNetwork& model, ExecutionContext& ctx, const Tensor4<float>& x) {
  EngineResult r;
  r.logits = Tensor2<float>(x.dimension(0), model.config().num_classes);
  model.forward(ctx, view(x), TensorMap<float, 2>(r.logits.data(), r.logits.dimensions()));
  r.attention = ctx.attention_maps();
  return r;
}

EngineResult run_one_line(const PreparedNetwork& model, const Tensor4<float>& x) {
  EngineResult r;
  r.logits = model.forward(x);
  r.attention = model.attention_maps();
  return r;
}

}  // namespace

TEST_CASE("One prepared model forwarded from 4 threads at once gives the single-threaded results bit for bit",
          "[engine][concurrency]") {
  const int pool_threads = GENERATE(1, 2);
  const PreparedNetwork model = tiny_model(pool_threads);
  const std::vector<Tensor4<float>> inputs = {sknet_test::seeded_input(1, 40, 40, 3, 1),
                                              sknet_test::seeded_input(2, 33, 37, 3, 2)};
  std::vector<EngineResult> expected;
  {
    ExecutionContext ctx(pool_threads);
    for (const auto& x : inputs) expected.push_back(run_on(model, ctx, x));
  }
  REQUIRE(expected[0].attention.size() == 8);
  REQUIRE(expected[1].logits.dimension(0) == 2);

  constexpr int kThreads = 4, kForwards = 50;
  std::atomic<int> mismatches{0}, done{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        ExecutionContext own(pool_threads);
        for (int i = 0; i < kForwards; ++i) {
          // Both shapes and both forms on every thread, in a different order on each.
          const std::size_t shape = std::size_t((i + t) % 2);
          const bool one_line = (i / 2 + t) % 2 == 0;
          const EngineResult got = one_line ? run_one_line(model, inputs[shape]) : run_on(model, own, inputs[shape]);
          if (!sknet_test::bit_equal(got, expected[shape])) mismatches++;
          done++;
        }
      } catch (const std::exception& e) {
        errors[std::size_t(t)] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  INFO("pool threads " << pool_threads);
  for (const auto& e : errors) CHECK(e.empty());
  CHECK(done.load() == kThreads * kForwards);
  CHECK(mismatches.load() == 0);
  // The calling thread's own one-line context still agrees afterwards.
  CHECK(sknet_test::bit_equal(run_one_line(model, inputs[1]), expected[1]));
}

TEST_CASE("One execution context used by two threads at once throws RuntimeError, never a wrong result",
          "[engine][concurrency][errors]") {
  const PreparedNetwork model = tiny_model(1);
  const Tensor4<float> x = sknet_test::seeded_input(1, 40, 40, 3, 3);
  EngineResult expected;
  {
    ExecutionContext ctx;
    expected = run_on(model, ctx, x);
  }

  // Thread A starts a forward on a fresh context and is held inside it (its first allocation, while it
  // plans); the main thread then runs a forward on the same context.
  ExecutionContext shared;
  EngineResult from_a;
  std::string a_error;
  std::atomic<bool> a_finished{false};
  std::thread a([&] {
    try {
      t_hold_next = true;
      from_a = run_on(model, shared, x);
    } catch (const std::exception& e) {
      a_error = e.what();
    }
    t_hold_next = false;
    a_finished = true;
  });
  while (g_hold.load() != 1 && !a_finished.load()) std::this_thread::yield();
  const bool held = g_hold.load() == 1;
  std::string second;
  bool second_threw_runtime_error = false;
  try {
    Tensor2<float> logits(1, model.config().num_classes);
    model.forward(shared, view(x), TensorMap<float, 2>(logits.data(), logits.dimensions()));
  } catch (const RuntimeError& e) {
    second_threw_runtime_error = true;
    second = e.what();
  } catch (const std::exception& e) {
    second = std::string("another exception: ") + e.what();
  }
  g_hold.store(2);
  a.join();
  g_hold.store(0);

  REQUIRE(held);  // A was inside its forward while the second one ran
  INFO("second forward: " << second);
  CHECK(second_threw_runtime_error);
  CHECK_THAT(second, Contains("execution context") && Contains("one context per thread"));
  // The rejected call neither disturbed A's forward nor released A's claim on the context.
  CHECK(a_error.empty());
  CHECK(sknet_test::bit_equal(from_a, expected));
  // Free again once A is done.
  CHECK(sknet_test::bit_equal(run_on(model, shared, x), expected));
}

TEST_CASE("A forward that fails while planning leaves the model and the context usable", "[engine][errors]") {
  const int pool_threads = GENERATE(1, 2);
  INFO("pool threads " << pool_threads);
  const PreparedNetwork model = tiny_model(pool_threads);
  const Tensor4<float> old_x = sknet_test::seeded_input(1, 40, 40, 3, 4);
  const Tensor4<float> new_x = sknet_test::seeded_input(2, 33, 37, 3, 5);
  EngineResult want_old, want_new;
  {
    ExecutionContext a(pool_threads), b(pool_threads);
    want_old = run_on(model, a, old_x);
    want_new = run_on(model, b, new_x);
  }

  SECTION("std::bad_alloc from each allocation of the new shape's plan in turn") {
    ExecutionContext ctx(pool_threads);
    REQUIRE(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
    const std::size_t old_bytes = ctx.workspace_bytes();
    Tensor2<float> logits(new_x.dimension(0), model.config().num_classes);
    // Whether the forward of new_x on ctx (planned for old_x) succeeds when its k-th allocation fails.
    const auto forward_failing_at = [&](long k) {
      t_allocations = 0;
      t_fail_at = k;
      bool ok = true;
      try {
        model.forward(ctx, view(new_x), TensorMap<float, 2>(logits.data(), logits.dimensions()));
      } catch (const std::bad_alloc&) {
        ok = false;
      }
      t_fail_at = 0;
      return ok;
    };
    int failures = 0;
    bool succeeded = false;
    for (long k = 1; k <= 1000 && !succeeded; ++k) {
      succeeded = forward_failing_at(k);
      if (succeeded) break;
      ++failures;
      INFO("allocation " << k << " failed");
      if (k == 1) REQUIRE(ctx.workspace_bytes() == old_bytes);  // failed inside the plan: nothing swapped in
      // Next the old shape (the context must not believe in buffers it lost) ...
      REQUIRE(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
      REQUIRE(sknet_test::bit_equal(run_one_line(model, old_x), want_old));
      // ... or, after the same failure, the new shape again (nor in a plan it never finished).
      REQUIRE_FALSE(forward_failing_at(k));
      REQUIRE(sknet_test::bit_equal(run_on(model, ctx, new_x), want_new));
      REQUIRE(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
    }
    CHECK(failures >= 1);  // the plan allocates, so at least its first allocation was made to fail
    REQUIRE(succeeded);
    CHECK(sknet_test::bit_equal(run_on(model, ctx, new_x), want_new));
    CHECK(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
  }

  SECTION("ShapeError for an input the model cannot take") {
    ExecutionContext ctx(pool_threads);
    REQUIRE(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
    REQUIRE(sknet_test::bit_equal(run_one_line(model, old_x), want_old));
    const Tensor4<float> wrong_channels = sknet_test::seeded_input(1, 40, 40, 4, 6);
    const Tensor4<float> empty_batch(0, 40, 40, 3);
    for (const Tensor4<float>* bad : {&wrong_channels, &empty_batch}) {
      Tensor2<float> logits(bad->dimension(0), model.config().num_classes);
      CHECK_THROWS_AS(model.forward(ctx, view(*bad), TensorMap<float, 2>(logits.data(), logits.dimensions())), ShapeError);
      CHECK_THROWS_AS(model.forward(*bad), ShapeError);
      CHECK(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
      CHECK(sknet_test::bit_equal(run_one_line(model, old_x), want_old));
    }
    Tensor2<float> wrong_logits(1, model.config().num_classes + 1);
    CHECK_THROWS_AS(model.forward(ctx, view(old_x), TensorMap<float, 2>(wrong_logits.data(), wrong_logits.dimensions())),
                    ShapeError);
    CHECK(sknet_test::bit_equal(run_on(model, ctx, new_x), want_new));
    CHECK(sknet_test::bit_equal(run_on(model, ctx, old_x), want_old));
  }
}
