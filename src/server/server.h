// server.h - the OpenAI-compatible HTTP server (rocforge serve).
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (stream or not), GET /v1/models,
// POST /tokenize, POST /detokenize, GET /health, GET /metrics.
//
// The listener starts before the model loads, so GET /health can answer 503 while loading and 200
// once ready. Generation requests go to the Scheduler (continuous batching on one thread); HTTP
// worker threads only parse, validate, tokenize and relay text.
#pragma once

#include <memory>
#include <string>

#include "rocforge/engine.h"
#include "server/metrics.h"

namespace rocforge::server {

struct ServerOptions {
  EngineOptions engine;
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8080;                 // 0: any free port (see Server::port())
  std::string api_key;             // non-empty: every endpoint but /health needs "Authorization: Bearer <key>"
  std::string chat_template;       // override: a built-in template name or a Jinja file
  std::string model_name;          // id reported by /v1/models; default: the model file's stem
  int max_queue = 64;              // waiting requests beyond the running ones; more get 503
  int max_kv_blocks = 0;           // 0: the whole KV pool (tests shrink it to exercise preemption)
  bool chain_decode = false;       // a lone stream chains decode steps (SchedulerOptions::chain_decode)
  size_t max_body_bytes = 4u << 20;
  int timeout_s = 20;              // socket read/write timeout (slow clients)
  int http_threads = 0;            // 0: n_parallel + max_queue + 8
  // Non-streamed requests not done after slow_response_ms get a chunked body led by a space every
  // heartbeat_ms, which notices a client that has gone (its sequence is then cancelled).
  int slow_response_ms = 2000;
  int heartbeat_ms = 1000;
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listener (throws rocforge::Error if the address cannot be bound), starts serving,
  // then loads the model on a background thread.
  void start();
  int port() const;
  // Blocks until the model is loaded (true) or failed to load (false; see load_error()).
  bool wait_loaded();
  bool ready() const;
  std::string load_error() const;
  // Blocks until stop() is called from another thread (or the listener fails).
  void wait();
  // Finishes running requests with an error, stops the listener, joins every thread. Idempotent.
  void stop();

  SchedulerStats stats() const;  // zeros until loaded
  std::string metrics_text() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rocforge::server
