#include "cpu/thread_pool.h"

#include <algorithm>

namespace rocforge::cpu {

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency());
  for (int k = 1; k < n_threads_; ++k) workers_.emplace_back([this, k] { worker(k); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    (*job)(index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_job(const std::function<void(int)>& job) {
  if (n_threads_ == 1) {
    job(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  cv_start_.notify_all();
  job(0);
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return pending_ == 0; });
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t n_grains = (n + grain - 1) / grain;
  const int used = static_cast<int>(std::min<int64_t>(n_threads_, n_grains));
  if (used <= 1) {
    fn(0, n, 0);
    return;
  }
  run_job([&](int t) {
    if (t >= used) return;
    const int64_t g0 = n_grains * t / used, g1 = n_grains * (t + 1) / used;
    const int64_t b = g0 * grain, e = std::min(n, g1 * grain);
    if (b < e) fn(b, e, t);
  });
}

void ThreadPool::for_each_task(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  std::atomic<int64_t> next{0};
  run_job([&](int t) {
    for (int64_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < n_tasks;) fn(k, t);
  });
}

}  // namespace rocforge::cpu
