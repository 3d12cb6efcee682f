// metrics.h - the server's counters and latency histograms, rendered in the Prometheus text
// exposition format (version 0.0.4) for GET /metrics. Thread-safe: HTTP threads and the scheduler
// both record into it.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/request.h"

namespace rocforge::server {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket/_sum/_count lines for `name`.
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

// Figures the scheduler reports about itself (sampled when /metrics is scraped).
struct SchedulerStats {
  int64_t queue_depth = 0;        // waiting to be admitted (new or preempted)
  int64_t active = 0;             // holding a slot (prefilling or decoding)
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;     // referenced by some sequence
  int64_t kv_blocks_free = 0;     // on the free list or the prefix-cache LRU
  uint64_t prefix_cache_hits = 0; // blocks reused from the prefix cache
  uint64_t preemptions = 0;
  uint64_t steps = 0;             // batched forward passes
};

class Metrics {
 public:
  Metrics();
  void count_request(const std::string& endpoint, int status);
  // A generation request ended: "stop" | "length" | "cancelled" | "error".
  void count_finished(const std::string& reason);
  void add_prompt_tokens(int64_t n);
  void add_generated_tokens(int64_t n, Clock::time_point when);
  void observe_ttft(double s);
  void observe_inter_token(double s);
  void observe_request(double s);
  void observe_step(double s, int64_t batch_tokens);

  std::string render(const SchedulerStats& s, bool ready) const;

 private:
  mutable std::mutex m_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> finished_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  std::deque<std::pair<Clock::time_point, int64_t>> recent_;  // generated tokens per step, last 10 s
  Histogram ttft_, itl_, request_, step_;
  uint64_t batch_tokens_ = 0;
};

}  // namespace rocforge::server
