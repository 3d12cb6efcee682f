// request.h - one generation request as seen by both sides: the HTTP thread that submitted it
// (and waits for text) and the scheduler thread that runs it. Everything mutable is behind `m`,
// except the cancel flag, which the HTTP side sets without waiting for the scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "rocforge/sampler.h"

namespace rocforge::server {

using Clock = std::chrono::steady_clock;

struct GenParams {
  SamplingParams sampling;
  int32_t max_tokens = -1;         // < 0: until end-of-generation or the context is full
  std::vector<std::string> stop;   // stop strings (cut from the output)
  bool ignore_eos = false;
};

// Why a request ended, as OpenAI spells it ("stop", "length"), plus our own "cancelled"/"error".
struct RequestState {
  // Set at submission, read-only afterwards.
  std::vector<int32_t> prompt;
  GenParams params;
  Clock::time_point t_submit = Clock::now();

  std::atomic<bool> cancelled{false};

  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> pending;  // text pieces (about one per token) not yet taken by the HTTP side
  int32_t n_generated = 0;           // tokens sampled so far (excluding the end-of-generation token)
  int32_t n_cached_prompt = 0;       // prompt positions reused from the prefix cache (first admission)
  bool done = false;
  std::string finish_reason;         // when done: "stop" | "length" | "cancelled" | "error"
  std::string error;                 // when finish_reason == "error"
  Clock::time_point t_first_token{}; // when the first token was sampled

  // HTTP side: waits until there is text or the request is done (or `timeout` passes), and moves
  // the pending pieces into `out`. Returns done.
  bool take(std::vector<std::string>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lk(m);
    cv.wait_for(lk, timeout, [&] { return done || !pending.empty(); });
    out.clear();
    out.swap(pending);
    return done;
  }
  // Blocks until the request is done and returns all remaining text.
  std::string wait_all() {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return done; });
    std::string out;
    for (const auto& p : pending) out += p;
    pending.clear();
    return out;
  }
};

}  // namespace rocforge::server
