#include "cpu/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rocforge::cpu {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle worker spins before sleeping: long enough to bridge the gap between two
// matmuls of a decode step, short enough not to burn a core between requests.
constexpr auto kSpinFor = std::chrono::microseconds(500);

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = n_threads > 0 ? n_threads : std::max(1u, std::thread::hardware_concurrency());
  for (int k = 1; k < n_threads_; ++k) workers_.emplace_back([this, k] { worker(k); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g == seen && !stop_.load(std::memory_order_acquire)) {
      const auto until = std::chrono::steady_clock::now() + kSpinFor;
      for (int spins = 0;; ++spins) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen || stop_.load(std::memory_order_acquire)) break;
        cpu_relax();
        if ((spins & 63) == 63 && std::chrono::steady_clock::now() > until) {
          // Sleep; generation_ is bumped under mu_, so the wake-up cannot be lost.
          std::unique_lock<std::mutex> lock(mu_);
          cv_start_.wait(lock, [&] {
            return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire);
          });
          g = generation_.load(std::memory_order_acquire);
          break;
        }
      }
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = g;
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_job(const std::function<void(int)>& job) {
  if (n_threads_ == 1) {
    job(0);
    return;
  }
  job_ = &job;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  job(0);
  // Workers finish within the same section; spin, yielding now and then in case one of them was
  // descheduled (the machine may be shared).
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    cpu_relax();
    if ((spins & 1023) == 1023) std::this_thread::yield();
  }
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
