// sknet/runtime/thread_pool.hpp: regions, exceptions, no allocation per region, and a clean
// failure when a worker thread cannot be started.
#include <catch2/catch.hpp>

#include <sknet/runtime/thread_pool.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/replaced_operator_new.hpp"
#include "support/sanitizers.hpp"

// Counts every operator new of the program while `g_counting` is set.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

void sknet_test_on_allocation(std::size_t, std::size_t) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
}

using namespace sknet;
using Catch::Matchers::Contains;

TEST_CASE("ThreadPool runs fn(t) once per thread and rethrows the first exception", "[thread_pool]") {
  const int threads = GENERATE(1, 2, 5);
  ThreadPool pool(threads);
  REQUIRE(pool.size() == threads);
  std::vector<std::atomic<int>> calls(static_cast<std::size_t>(threads));
  for (int region = 0; region < 20; ++region) pool.run([&](int t) { calls[static_cast<std::size_t>(t)]++; });
  for (const auto& c : calls) CHECK(c.load() == 20);
  // Const and non-const lvalue callables both work; the pool never copies them.
  const auto add = [&](int t) { calls[static_cast<std::size_t>(t)] += 1; };
  pool.run(add);
  auto add_again = [&](int t) { calls[static_cast<std::size_t>(t)] += 1; };
  pool.run(add_again);
  for (const auto& c : calls) CHECK(c.load() == 22);
  CHECK_THROWS_WITH(pool.run([&](int t) {
                      if (t == threads - 1) throw std::runtime_error("boom in the last thread");
                    }),
                    Contains("boom in the last thread"));
  pool.run([&](int t) { calls[static_cast<std::size_t>(t)]++; });  // usable after an exception
  for (const auto& c : calls) CHECK(c.load() == 23);
  CHECK_THROWS_AS(ThreadPool(0), ConfigError);
}

TEST_CASE("ThreadPool::run allocates nothing", "[thread_pool]") {
  ThreadPool pool(2);
  std::array<double, 8> big{};  // a capture far larger than std::function's small buffer
  std::atomic<long> seen{0};
  const auto region = [&, big](int t) { seen += t + static_cast<long>(big[0]); };
  pool.run(region);  // warm-up
  g_allocations = 0;
  g_counting = true;
  for (int i = 0; i < 100; ++i) pool.run([&, big](int t) { seen += t + static_cast<long>(big[1]); });
  g_counting = false;
  CHECK(seen.load() == 101);
  CHECK(g_allocations.load() == 0);
}

TEST_CASE("ThreadPool that cannot start a thread joins the started ones and throws", "[thread_pool][errors]") {
  // Run in a child process whose address space is limited, so thread stacks (8 MiB each) cannot
  // all be mapped. Before the fix the condition variable was destroyed while the started workers
  // waited on it: the child hung (the alarm then kills it) or crashed.
  if (SKNET_TEST_TSAN) {
    WARN("skipped: ThreadSanitizer's own allocator fails under the address-space limit");
    return;
  }
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(20);
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    const rlim_t limit = static_cast<rlim_t>(pages) * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (256u << 20);
    const struct rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(10);
    try {
      ThreadPool pool(200);
      ::_exit(11);  // 200 threads fitted: the limit did not bite
    } catch (const RuntimeError& e) {
      const std::string what = e.what();
      const bool ok = what.find("ThreadPool: could not start thread ") == 0 && what.find(" of 200: ") != std::string::npos;
      if (!ok) std::fprintf(stderr, "unexpected message: %s\n", e.what());
      ::_exit(ok ? 0 : 12);
    } catch (...) {
      ::_exit(13);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child status " << status << (WIFSIGNALED(status) ? " (killed by a signal: hung or crashed)" : ""));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
