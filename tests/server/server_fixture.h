// server_fixture.h - an in-process rocforge server on a free port with stories260K, and small
// HTTP helpers (plain and SSE) for the server tests.
#pragma once

#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"
#include "test_support.h"

namespace rocforge::test {

using nlohmann::json;

inline server::ServerOptions stories_options(const std::filesystem::path& model, int parallel, int ctx = 256) {
  server::ServerOptions o;
  o.engine.model_path = model.string();
  // The CPU backend even where a GPU is: these tests compare streams decoded in one batch with solo
  // runs token for token, and only the CPU's kernels give a row the same bits in any batch (a GPU's
  // several-sequence matvecs sum in another order; tests/engine's GpuEngine tests check them).
  o.engine.device = "cpu";
  o.engine.n_threads = 1;  // a 260K model gains nothing from threads; the machine is shared
  o.engine.n_parallel = parallel;
  o.engine.ctx_size = ctx;
  o.port = 0;  // any free port: tests never collide
  o.timeout_s = 5;
  return o;
}

// Starts the server; stop() runs in the destructor even when an assertion fails.
struct LiveServer {
  std::unique_ptr<server::Server> srv;
  explicit LiveServer(const server::ServerOptions& o) : srv(std::make_unique<server::Server>(o)) {
    srv->start();
  }
  ~LiveServer() { srv->stop(); }
  bool wait() { return srv->wait_loaded(); }
  int port() const { return srv->port(); }
  std::unique_ptr<httplib::Client> client(int timeout_s = 60) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port());
    c->set_read_timeout(timeout_s, 0);
    c->set_write_timeout(timeout_s, 0);
    c->set_connection_timeout(5, 0);
    return c;
  }
  // Polls until the scheduler is idle with every KV block back on the free list.
  bool wait_idle(std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      const auto s = srv->stats();
      if (s.active == 0 && s.queue_depth == 0 && s.kv_blocks_used == 0 && s.kv_blocks_free == s.kv_blocks_total) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

struct HttpResult {
  int status = -1;  // -1: transport error
  std::string body;
  httplib::Headers headers;
  json j;  // parsed body (discarded if not JSON)
};

inline HttpResult post(httplib::Client& c, const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
  HttpResult r;
  auto res = c.Post(path.c_str(), headers, body, "application/json");
  if (!res) return r;
  r.status = res->status;
  r.body = res->body;
  r.headers = res->headers;
  r.j = json::parse(r.body, nullptr, false);
  return r;
}

inline HttpResult get(httplib::Client& c, const std::string& path, const httplib::Headers& headers = {}) {
  HttpResult r;
  auto res = c.Get(path.c_str(), headers);
  if (!res) return r;
  r.status = res->status;
  r.body = res->body;
  r.headers = res->headers;
  r.j = json::parse(r.body, nullptr, false);
  return r;
}

// A streamed (SSE) completion: the concatenated text, every data event, and whether [DONE] came.
struct StreamResult {
  int status = -1;
  std::string text;
  std::string finish_reason;
  std::vector<json> events;
  bool done = false;
  bool transport_ok = false;
  std::string transport_error;
};

// on_event may return false to hang up (simulating a client disconnect).
template <class OnEvent>
StreamResult post_stream(httplib::Client& c, const std::string& path, const json& body, OnEvent on_event) {
  StreamResult out;
  std::string buf;
  bool keep_going = true;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t at;
    while ((at = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, at);
      buf.erase(0, at + 2);
      if (ev.rfind("data: ", 0) != 0) continue;  // SSE comments (keep-alive)
      const std::string payload = ev.substr(6);
      if (payload == "[DONE]") {
        out.done = true;
        continue;
      }
      json j = json::parse(payload, nullptr, false);
      out.events.push_back(j);
      if (j.is_object() && j.contains("choices") && !j["choices"].empty()) {
        const json& ch = j["choices"][0];
        if (ch.contains("text")) out.text += ch["text"].get<std::string>();
        if (ch.contains("delta") && ch["delta"].contains("content")) out.text += ch["delta"]["content"].get<std::string>();
        if (!ch["finish_reason"].is_null()) out.finish_reason = ch["finish_reason"].get<std::string>();
      }
      if (!on_event(j)) keep_going = false;
    }
    return keep_going;
  };
  auto res = c.send(req);
  out.transport_ok = static_cast<bool>(res);
  if (res) out.status = res->status;
  else out.transport_error = httplib::to_string(res.error());
  return out;
}

inline StreamResult post_stream(httplib::Client& c, const std::string& path, const json& body) {
  return post_stream(c, path, body, [](const json&) { return true; });
}

}  // namespace rocforge::test
