// thread_pool.h - a persistent pool of worker threads (no thread creation per op).
//
// parallel_for(n, fn) runs fn(begin, end, thread) over contiguous chunks of [0, n); the calling
// thread takes part. Work is split by output index only, never along a reduction, so results are
// bit-identical for any thread count (same seed => same text).
//
// Wake-up latency matters: decoding one token of a 1B model runs ~70 parallel sections. Workers
// spin (with pause) for a short while after each job before they sleep on a condition variable,
// so back-to-back sections start within a microsecond; idle pools still sleep.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rocforge::cpu {

class ThreadPool {
 public:
  // n_threads <= 0: all hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Below this much work (multiply-adds) a job runs on the calling thread: waking a worker costs
  // more than it saves (stories260K decodes 60x faster that way on a busy 2-core machine).
  static constexpr int64_t kMinParallelWork = int64_t(1) << 17;
  static bool worth_splitting(int64_t work) { return work >= kMinParallelWork; }

  using RangeFn = std::function<void(int64_t begin, int64_t end, int thread)>;
  // Splits [0, n) into size() contiguous chunks whose boundaries are multiples of `grain`.
  void parallel_for(int64_t n, const RangeFn& fn, int64_t grain = 1);
  // Runs fn(task, thread) for every task in [0, n_tasks), handed out dynamically.
  void for_each_task(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

 private:
  void worker(int index);
  void run_job(const std::function<void(int thread)>& job);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace rocforge::cpu
