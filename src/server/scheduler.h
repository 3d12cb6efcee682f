// scheduler.h - continuous batching over one Engine.
//
// A single thread owns the Engine and its KV pool. Each iteration it
//   1. drops cancelled requests (their blocks go back to the pool before the next step),
//   2. admits waiting requests into free slots (up to --parallel), reusing cached prompt prefixes,
//   3. builds one batch under a token budget (n_batch): every decoding sequence's next token
//      first, then prompt chunks of prefilling sequences with what is left, so a long prompt
//      is spread over several steps and never stalls the streams already running,
//   4. runs Engine::step once and samples a token for every sequence that produced logits (a lone
//      decoding stream with nothing waiting chains several steps in one launch where the device can).
// When the KV pool runs out, a decoding sequence preempts the most recently admitted one, which
// goes back to the front of the queue and later resumes by recomputing its tokens (prefix
// caching makes that mostly free). Requests beyond `max_queue` waiting are refused (503).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "rocforge/engine.h"
#include "server/metrics.h"
#include "server/request.h"

namespace rocforge::server {

struct SchedulerOptions {
  int max_queue = 64;       // requests that may wait beyond the --parallel slots; more are refused
  int max_kv_blocks = 0;    // 0: the whole pool; else use at most this many blocks (tests)
  // A lone decoding stream with nothing waiting runs several decode steps a launch where the device
  // can (Engine::step_sample_chain; GPU: 8). Off by default: the stream's tokens then arrive in
  // bursts (8B on an H100: 8 every ~20 ms, not one every 2.4 ms) and a request arriving meanwhile
  // waits up to one chain; single-stream throughput gains 1-5% (docs/perf/gpu.md, 22nd pass).
  bool chain_decode = false;
  // Observer (tests): called on the scheduler thread before each forward step with the
  // (request, tokens in this step) pairs of the batch.
  std::function<void(const std::vector<std::pair<const RequestState*, int32_t>>&)> on_step;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, Metrics& metrics, const SchedulerOptions& opts);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request (prompt non-empty and shorter than the context: the caller validates).
  // Returns false when the queue is full.
  bool submit(const std::shared_ptr<RequestState>& req);
  SchedulerStats stats() const;
  // Wakes the scheduler (after a cancel flag was set) so it frees blocks promptly.
  void notify();
  // Stops the thread; unfinished requests end with finish_reason "error", later submits fail.
  void shutdown();

 private:
  struct Slot;
  void loop();
  void admit();
  bool build_batch(std::vector<Engine::Work>& work, std::vector<Slot*>& order);
  void preempt(Slot* s);
  void finish(Slot& s, const std::string& reason, const std::string& error = "");
  void on_token(Slot& s, int32_t id, Clock::time_point now);
  void emit(Slot& s, const std::string& text);
  bool fits(const Slot& s, int32_t n) const;
  // Decode steps chained on the device for a lone stream (Engine::step_sample_chain): the chain's
  // length for this batch (0: a single step), and the chain run (false: it was not; nothing ran).
  int chain_length(const std::vector<Engine::Work>& work, const std::vector<Slot*>& order);
  bool chain_step(Slot& s, const Engine::Work& w, int n, float first_u, std::vector<int32_t>& tokens);
  int32_t block_limit() const;
  void adjust_counts(int64_t d_queued, int64_t d_slots);

  Engine& engine_;
  Metrics& metrics_;
  SchedulerOptions opts_;

  mutable std::mutex m_;       // guards incoming_, stop_, stats_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<RequestState>> incoming_;
  bool stop_ = false;
  SchedulerStats stats_;
  // Requests submitted and not yet holding a slot (incoming_ + waiting_, preempted ones included);
  // exact at every moment, so the queue bound is neither over- nor under-enforced.
  int64_t queued_ = 0;
  int64_t in_slots_ = 0;  // sequences holding a slot, updated the moment one is freed

  // Scheduler thread only.
  std::deque<std::unique_ptr<Slot>> waiting_;
  std::vector<std::unique_ptr<Slot>> active_;
  uint64_t admit_counter_ = 0;
  std::vector<float> logits_;
  std::thread thread_;
};

}  // namespace rocforge::server
