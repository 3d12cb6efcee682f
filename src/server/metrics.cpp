#include "server/metrics.h"

#include <cstdio>

namespace rocforge::server {
namespace {

// Prometheus wants plain decimal floats; %.17g round-trips.
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

void line(std::string& out, const std::string& name, const std::string& type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

constexpr double kWindowSeconds = 10.0;  // tokens/s is averaged over this sliding window

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++n_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  line(out, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum_) + "\n";
  out += name + "_count " + std::to_string(n_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      request_({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}),
      step_({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lk(m_);
  ++requests_[{endpoint, status}];
}

void Metrics::count_finished(const std::string& reason) {
  std::lock_guard lk(m_);
  ++finished_[reason];
}

void Metrics::add_prompt_tokens(int64_t n) {
  std::lock_guard lk(m_);
  prompt_tokens_ += n;
}

void Metrics::add_generated_tokens(int64_t n, Clock::time_point when) {
  std::lock_guard lk(m_);
  generated_tokens_ += n;
  recent_.emplace_back(when, n);
  while (!recent_.empty() && std::chrono::duration<double>(when - recent_.front().first).count() > kWindowSeconds)
    recent_.pop_front();
}

void Metrics::observe_ttft(double s) {
  std::lock_guard lk(m_);
  ttft_.observe(s);
}
void Metrics::observe_inter_token(double s) {
  std::lock_guard lk(m_);
  itl_.observe(s);
}
void Metrics::observe_request(double s) {
  std::lock_guard lk(m_);
  request_.observe(s);
}
void Metrics::observe_step(double s, int64_t batch_tokens) {
  std::lock_guard lk(m_);
  step_.observe(s);
  batch_tokens_ += batch_tokens;
}

std::string Metrics::render(const SchedulerStats& s, bool ready) const {
  std::lock_guard lk(m_);
  std::string out;
  line(out, "rocforge_ready", "gauge", "1 once the model is loaded");
  out += "rocforge_ready " + std::to_string(ready ? 1 : 0) + "\n";
  line(out, "rocforge_requests_total", "counter", "HTTP requests by endpoint and status code");
  for (const auto& [k, v] : requests_)
    out += "rocforge_requests_total{endpoint=\"" + k.first + "\",status=\"" + std::to_string(k.second) + "\"} " +
           std::to_string(v) + "\n";
  line(out, "rocforge_requests_finished_total", "counter", "generation requests finished, by finish reason");
  for (const auto& [k, v] : finished_)
    out += "rocforge_requests_finished_total{reason=\"" + k + "\"} " + std::to_string(v) + "\n";
  line(out, "rocforge_requests_cancelled_total", "counter", "generation requests cancelled (client gone)");
  {
    auto it = finished_.find("cancelled");
    out += "rocforge_requests_cancelled_total " + std::to_string(it == finished_.end() ? 0 : it->second) + "\n";
  }
  line(out, "rocforge_prompt_tokens_total", "counter", "prompt tokens submitted");
  out += "rocforge_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  line(out, "rocforge_generated_tokens_total", "counter", "tokens generated");
  out += "rocforge_generated_tokens_total " + std::to_string(generated_tokens_) + "\n";
  line(out, "rocforge_batch_tokens_total", "counter", "tokens run through batched forward steps (prompt + decode)");
  out += "rocforge_batch_tokens_total " + std::to_string(batch_tokens_) + "\n";

  double tps = 0;
  if (!recent_.empty()) {
    int64_t n = 0;
    for (const auto& r : recent_) n += r.second;
    const double age = std::chrono::duration<double>(Clock::now() - recent_.front().first).count();
    tps = age < kWindowSeconds ? n / kWindowSeconds : 0;  // window fully in the past: idle
  }
  line(out, "rocforge_tokens_per_second", "gauge", "generated tokens per second over the last 10 s");
  out += "rocforge_tokens_per_second " + num(tps) + "\n";

  line(out, "rocforge_queue_depth", "gauge", "requests waiting to be admitted");
  out += "rocforge_queue_depth " + std::to_string(s.queue_depth) + "\n";
  line(out, "rocforge_active_sequences", "gauge", "sequences being prefilled or decoded");
  out += "rocforge_active_sequences " + std::to_string(s.active) + "\n";
  line(out, "rocforge_kv_blocks_total", "gauge", "KV cache blocks in the pool");
  out += "rocforge_kv_blocks_total " + std::to_string(s.kv_blocks_total) + "\n";
  line(out, "rocforge_kv_blocks_used", "gauge", "KV cache blocks referenced by a sequence");
  out += "rocforge_kv_blocks_used " + std::to_string(s.kv_blocks_used) + "\n";
  line(out, "rocforge_kv_blocks_free", "gauge", "KV cache blocks free (including cached prefixes no sequence holds)");
  out += "rocforge_kv_blocks_free " + std::to_string(s.kv_blocks_free) + "\n";
  line(out, "rocforge_prefix_cache_hits_total", "counter", "KV blocks reused from the prefix cache");
  out += "rocforge_prefix_cache_hits_total " + std::to_string(s.prefix_cache_hits) + "\n";
  line(out, "rocforge_preemptions_total", "counter", "sequences preempted for lack of KV blocks (resumed by recomputation)");
  out += "rocforge_preemptions_total " + std::to_string(s.preemptions) + "\n";
  line(out, "rocforge_steps_total", "counter", "batched forward steps");
  out += "rocforge_steps_total " + std::to_string(s.steps) + "\n";

  ttft_.render(out, "rocforge_time_to_first_token_seconds", "time from submission to the first generated token");
  itl_.render(out, "rocforge_inter_token_latency_seconds", "time between consecutive generated tokens of a request");
  request_.render(out, "rocforge_request_duration_seconds", "time from submission to the last token");
  step_.render(out, "rocforge_step_duration_seconds", "duration of one batched forward step");
  return out;
}

}  // namespace rocforge::server
