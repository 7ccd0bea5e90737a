// sknet runtime: a small persistent thread pool for one parallel region per layer.
//
// The caller is thread 0; size() - 1 workers live as long as the pool. A region wakes them
// (they spin briefly, then sleep on a condition variable), runs fn(t) on every thread
// t = 0..size()-1 and returns when all are done, so a region costs about a microsecond instead
// of a thread creation (~70 us) per layer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "sknet/error.hpp"
#include "sknet/kernels/dispatch.hpp"

namespace sknet {

/// Flush-to-zero / denormals-are-zero while alive (defined with the other CPU-specific code in
/// sknet/kernels/dispatch.hpp).
using kernels::DenormalsAreZero;

class ThreadPool {
 public:
  /// requires: threads >= 1 (threads - 1 workers are started). If a worker cannot be started
  /// (std::system_error, e.g. under a memory or process limit), the workers already running
  /// are stopped and joined and RuntimeError "ThreadPool: could not start thread t of n: ..."
  /// is thrown: a failed construction never leaves a thread behind.
  explicit ThreadPool(int threads) {
    detail::require<ConfigError>(threads >= 1, "ThreadPool", "threads", ">= 1", threads);
    workers_.reserve(static_cast<std::size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) {
      try {
        workers_.emplace_back([this, t] { worker_loop(t); });
      } catch (const std::exception& e) {
        stop_workers();
        throw RuntimeError("ThreadPool: could not start thread " + std::to_string(t + 1) + " of " +
                           std::to_string(threads) + ": " + e.what());
      }
    }
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { stop_workers(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /// Runs fn(t) for t = 0..size()-1 (t = 0 on the calling thread) and waits for all; the first
  /// exception thrown by any thread is rethrown here. Not re-entrant: one region at a time.
  /// `fn` is any callable taking an int; it is called by reference, never copied, so a region
  /// allocates nothing.
  template <class F>
  void run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_job(Job{const_cast<void*>(static_cast<const void*>(std::addressof(fn))),
                [](void* f, int t) { (*static_cast<Fn*>(f))(t); }});
  }

 private:
  /// A non-owning reference to the region's callable.
  struct Job {
    void* fn = nullptr;
    void (*call)(void*, int) = nullptr;
    void operator()(int t) const { call(fn, t); }
  };

  void run_job(const Job& job) {
    if (workers_.empty()) {
      job(0);
      return;
    }
    job_ = job;
    error_ = nullptr;
    pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    try {
      job(0);
    } catch (...) {
      record(std::current_exception());
    }
    while (pending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    job_ = Job{};
    if (error_) std::rethrow_exception(error_);
  }

  /// Wakes every started worker with the stop flag and joins it.
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void record(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = e;
  }

  void worker_loop(int t) {
    kernels::set_denormals_are_zero();
    unsigned long seen = 0;
    for (;;) {
      // Spin ~50 us for the next region before sleeping: layers follow each other closely.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      while (generation_.load(std::memory_order_acquire) == seen && std::chrono::steady_clock::now() < spin_until) {
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      try {
        job_(t);
      } catch (...) {
        record(std::current_exception());
      }
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_, error_mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> pending_{0};
  Job job_;
  std::exception_ptr error_;
  bool stop_ = false;
};

/// The half-open range [begin, end) of part t of `count` items split into `parts` nearly equal
/// pieces whose boundaries are multiples of `align` (except the last end).
inline std::pair<long, long> split_range(long count, int parts, int t, long align = 1) {
  const long units = (count + align - 1) / align;
  const long begin = std::min(count, units * t / parts * align);
  const long end = std::min(count, units * (t + 1) / parts * align);
  return {begin, end};
}

}  // namespace sknet
