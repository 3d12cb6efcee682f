#include "server/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "core/log.h"
#include "rocforge/chat_template.h"
#include "server/api.h"
#include "server/scheduler.h"

namespace rocforge::server {

using nlohmann::json;

// httplib listens with a backlog of 5, so a burst of connections (32 clients at once) overflows
// the accept queue and clients wait for SYN retransmits (1 s, 3 s, ...). listen() again on the
// bound socket raises the backlog.
struct HttpServer : httplib::Server {
  void raise_backlog(int n) { ::listen(svr_sock_, n); }
};

struct Server::Impl {
  ServerOptions opts;
  HttpServer http;
  int port = 0;
  std::thread http_thread, load_thread;
  Metrics metrics;

  // Loading state: engine/scheduler are written once by the load thread before `ready` is set.
  std::atomic<bool> ready{false}, failed{false}, stopped{false}, http_done{false};
  mutable std::mutex load_m;
  std::condition_variable load_cv;
  std::string load_error;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Scheduler> scheduler;
  std::string chat_template;
  std::string model_name;

  std::mutex id_m;
  std::mt19937_64 id_rng{std::random_device{}()};

  std::mutex stop_m;
  std::condition_variable stop_cv;
  std::mutex stop_call_m;  // a second stop() waits until the first has finished

  explicit Impl(ServerOptions o) : opts(std::move(o)) {}

  std::string new_id(const char* prefix) {
    std::lock_guard lk(id_m);
    static const char* hex = "0123456789abcdef";
    std::string id = prefix;
    for (int i = 0; i < 24; ++i) id += hex[id_rng() & 15];
    return id;
  }

  static void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(dump(j), "application/json");
  }
  static void send_error(httplib::Response& res, const ApiError& e) {
    send_json(res, e.status, error_json(e));
    if (e.status == 503) res.set_header("Retry-After", "1");
  }

  // Runs a handler, turning ApiError / rocforge::Error / anything else into OpenAI error JSON.
  template <class F>
  void guarded(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const Error& e) {
      send_error(res, bad_request(e.what()));
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, "server_error", std::string("internal error: ") + e.what()));
    }
  }

  void require_ready() {
    if (failed.load()) throw ApiError(500, "server_error", "model failed to load: " + load_error);
    if (!ready.load()) throw ApiError(503, "server_error", "model is loading", "", "model_loading");
  }

  // ---------------------------------------------------------------------------------------------
  void load() {
    try {
      auto e = Engine::load(opts.engine);
      std::string tmpl = resolve_chat_template(e->tokenizer(), opts.chat_template);
      SchedulerOptions so;
      so.max_queue = opts.max_queue;
      so.max_kv_blocks = opts.max_kv_blocks;
      so.chain_decode = opts.chain_decode;
      auto s = std::make_unique<Scheduler>(*e, metrics, so);
      std::lock_guard lk(load_m);
      engine = std::move(e);
      scheduler = std::move(s);
      chat_template = std::move(tmpl);
      ready = true;
    } catch (const std::exception& e) {
      std::lock_guard lk(load_m);
      load_error = e.what();
      failed = true;
      log::error("serve: loading {} failed: {}", opts.engine.model_path, e.what());
    }
    load_cv.notify_all();
  }

  // ---------------------------------------------------------------------------------------------
  std::vector<int32_t> prompt_tokens(const ParsedRequest& pr) {
    const Tokenizer& tok = engine->tokenizer();
    std::vector<int32_t> ids;
    if (pr.endpoint == Endpoint::Chat) {
      const std::string bos = tok.bos_id() >= 0 ? tok.token_to_piece(tok.bos_id()) : "";
      const std::string eos = tok.eos_id() >= 0 ? tok.token_to_piece(tok.eos_id()) : "";
      std::string text;
      try {
        text = render_chat_template(chat_template, pr.messages, true, bos, eos);
      } catch (const Error& e) {
        throw bad_request(std::string("chat template: ") + e.what(), "messages");
      }
      // Templates that write the BOS token themselves must not get a second one.
      const bool has_bos = !bos.empty() && text.rfind(bos, 0) == 0;
      ids = tok.encode(text, tok.add_bos() && !has_bos, /*parse_special=*/true);
    } else if (pr.prompt_is_tokens) {
      ids = pr.prompt_tokens;
    } else {
      ids = tok.encode(pr.prompt_text, /*add_special=*/true, /*parse_special=*/true);
    }
    if (ids.empty()) ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
    if (static_cast<int64_t>(ids.size()) >= engine->ctx_size())
      throw ApiError(400, "invalid_request_error",
                     "the prompt has " + std::to_string(ids.size()) + " tokens; the context holds " +
                         std::to_string(engine->ctx_size()) + " (prompt + completion)",
                     pr.endpoint == Endpoint::Chat ? "messages" : "prompt", "context_length_exceeded");
    return ids;
  }

  void handle_generate(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
    require_ready();
    const json body = parse_body(req.body);
    ParsedRequest pr = parse_generation_request(body, ep, engine->n_vocab());
    auto st = std::make_shared<RequestState>();
    st->prompt = prompt_tokens(pr);
    st->params = pr.gen;
    if (!scheduler->submit(st))
      throw ApiError(503, "server_error", "the server is overloaded (request queue full); retry later", "", "overloaded");

    ResponseInfo info;
    info.id = new_id(ep == Endpoint::Chat ? "chatcmpl-" : "cmpl-");
    info.model = model_name;
    info.created = static_cast<int64_t>(std::time(nullptr));
    info.prompt_tokens = static_cast<int32_t>(st->prompt.size());

    if (!pr.stream) {
      // Most requests finish quickly and get a plain response with the right status. A long one
      // switches to a chunked body that starts with a space every second (JSON allows leading
      // whitespace): writing is the only way to notice a client that has given up, whose
      // sequence is then cancelled instead of running to max_tokens.
      auto body_of = [ep, info](RequestState& r, std::string text) mutable {
        info.completion_tokens = r.n_generated;
        info.cached_tokens = r.n_cached_prompt;
        if (r.finish_reason == "error")
          return std::make_pair(500, error_json(ApiError(500, "server_error", "generation failed: " + r.error)));
        return std::make_pair(200, completion_response(ep, info, text, r.finish_reason));
      };
      {
        std::unique_lock lk(st->m);
        if (st->cv.wait_for(lk, std::chrono::milliseconds(opts.slow_response_ms), [&] { return st->done; })) {
          std::string text;
          for (const auto& p : st->pending) text += p;
          auto [status, j] = body_of(*st, std::move(text));
          send_json(res, status, j);
          return;
        }
      }
      Scheduler* sched = scheduler.get();
      auto text = std::make_shared<std::string>();
      auto last_write = std::make_shared<Clock::time_point>(Clock::now() - std::chrono::hours(1));
      const auto beat = std::chrono::milliseconds(opts.heartbeat_ms);
      res.set_chunked_content_provider(
          "application/json",
          [st, sched, text, last_write, beat, body_of](size_t, httplib::DataSink& sink) mutable -> bool {
            std::vector<std::string> pieces;
            const bool done = st->take(pieces, beat);
            for (const auto& p : pieces) *text += p;
            if (!done) {
              if (Clock::now() - *last_write < beat) return true;
              *last_write = Clock::now();
              if (sink.write(" ", 1)) return true;
              st->cancelled = true;
              sched->notify();
              return false;
            }
            std::string out;
            {
              std::lock_guard lk(st->m);
              out = dump(body_of(*st, std::move(*text)).second);
            }
            sink.write(out.data(), out.size());
            sink.done();
            return true;
          },
          [st, sched](bool) {
            std::lock_guard lk(st->m);
            if (!st->done) {
              st->cancelled = true;
              sched->notify();
            }
          });
      return;
    }

    struct Stream {
      std::shared_ptr<RequestState> st;
      ResponseInfo info;
      Endpoint ep;
      bool include_usage;
      bool first = true;
    };
    auto ctx = std::make_shared<Stream>(Stream{st, info, ep, pr.include_usage});
    Scheduler* sched = scheduler.get();
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [ctx, sched](size_t, httplib::DataSink& sink) -> bool {
          auto send = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
          auto cancel = [&] {
            ctx->st->cancelled = true;
            sched->notify();
            return false;
          };
          std::vector<std::string> pieces;
          const bool done = ctx->st->take(pieces, std::chrono::milliseconds(1000));
          if (!pieces.empty()) {
            // One event per piece (about one per token), written together.
            std::string events;
            for (const auto& p : pieces) {
              events += "data: " + dump(stream_chunk(ctx->ep, ctx->info, p, "", ctx->first)) + "\n\n";
              ctx->first = false;
            }
            if (!send(events)) return cancel();
          } else if (!done) {
            // Nothing yet (queued or a long prompt): an SSE comment keeps proxies from timing out
            // and tells us promptly when the client has gone.
            return send(": keep-alive\n\n") ? true : cancel();
          }
          if (!done) return true;
          std::string reason, error;
          {
            std::lock_guard lk(ctx->st->m);
            reason = ctx->st->finish_reason;
            error = ctx->st->error;
            ctx->info.completion_tokens = ctx->st->n_generated;
            ctx->info.cached_tokens = ctx->st->n_cached_prompt;
          }
          if (reason == "error") {
            send("data: " + dump(error_json(ApiError(500, "server_error", "generation failed: " + error))) + "\n\n");
          } else {
            send("data: " + dump(stream_chunk(ctx->ep, ctx->info, "", reason, ctx->first)) + "\n\n");
            if (ctx->include_usage) send("data: " + dump(usage_chunk(ctx->ep, ctx->info)) + "\n\n");
          }
          send("data: [DONE]\n\n");
          sink.done();
          return true;
        },
        [ctx, sched](bool) {
          // Runs when the response ends for any reason; if generation is still going the client
          // is gone, so its KV blocks are released at the scheduler's next step.
          std::lock_guard lk(ctx->st->m);
          if (!ctx->st->done) {
            ctx->st->cancelled = true;
            sched->notify();
          }
        });
  }

  void handle_tokenize(const httplib::Request& req, httplib::Response& res) {
    require_ready();
    const json body = parse_body(req.body);
    auto c = body.find("content");
    if (c == body.end() || !c->is_string()) throw bad_request("'content' must be a string", "content");
    bool add_special = false, parse_special = true;
    if (auto a = body.find("add_special"); a != body.end()) {
      if (!a->is_boolean()) throw bad_request("'add_special' must be a boolean", "add_special");
      add_special = a->get<bool>();
    }
    if (auto a = body.find("parse_special"); a != body.end()) {
      if (!a->is_boolean()) throw bad_request("'parse_special' must be a boolean", "parse_special");
      parse_special = a->get<bool>();
    }
    const auto ids = engine->tokenizer().encode(c->get<std::string>(), add_special, parse_special);
    send_json(res, 200, json{{"tokens", ids}});
  }

  void handle_detokenize(const httplib::Request& req, httplib::Response& res) {
    require_ready();
    const json body = parse_body(req.body);
    auto t = body.find("tokens");
    if (t == body.end() || !t->is_array()) throw bad_request("'tokens' must be an array of token ids", "tokens");
    std::vector<int32_t> ids;
    const int32_t V = engine->tokenizer().n_vocab();
    for (const auto& x : *t) {
      if (!x.is_number_integer()) throw bad_request("'tokens' must be an array of token ids", "tokens");
      const int64_t id = x.get<int64_t>();
      if (id < 0 || id >= V) throw bad_request("token id " + std::to_string(id) + " is outside the vocabulary", "tokens");
      ids.push_back(static_cast<int32_t>(id));
    }
    send_json(res, 200, json{{"content", engine->tokenizer().decode(ids)}});
  }

  // ---------------------------------------------------------------------------------------------
  void setup_routes() {
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (failed.load()) send_json(res, 500, json{{"status", "error"}, {"error", load_error}});
      else if (!ready.load()) send_json(res, 503, json{{"status", "loading"}});
      else send_json(res, 200, json{{"status", "ok"}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_text(), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] {
        require_ready();
        json m = {{"id", model_name}, {"object", "model"}, {"created", 0}, {"owned_by", "rocforge"},
                  {"meta", {{"n_ctx", engine->ctx_size()}, {"n_vocab", engine->n_vocab()},
                            {"n_parallel", engine->options().n_parallel}}}};
        send_json(res, 200, json{{"object", "list"}, {"data", json::array({m})}});
      });
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { handle_generate(req, res, Endpoint::Chat); });
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { handle_generate(req, res, Endpoint::Completion); });
    });
    http.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { handle_tokenize(req, res); });
    });
    http.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { handle_detokenize(req, res); });
    });

    // API key: everything but /health (load balancers probe it) needs the bearer token.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
      if (opts.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      const std::string h = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      const std::string presented = h.rfind(prefix, 0) == 0 ? h.substr(prefix.size()) : std::string();
      if (secure_equals(presented, opts.api_key)) return httplib::Server::HandlerResponse::Unhandled;
      send_error(res, ApiError(401, "authentication_error", "invalid or missing API key (Authorization: Bearer <key>)",
                               "", "invalid_api_key"));
      res.set_header("WWW-Authenticate", "Bearer");
      return httplib::Server::HandlerResponse::Handled;
    });
    // Errors httplib produces itself (404, 413 body too large, 400 bad request line, ...) get an
    // OpenAI error body too; responses that already have one are left alone.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string msg = "HTTP " + std::to_string(res.status);
      if (res.status == 400) msg = "malformed HTTP request, or its body did not arrive in time";
      std::string type = "invalid_request_error";
      if (res.status == 404) {
        msg = "no such endpoint: " + req.method + " " + req.path;
        type = "not_found_error";
      } else if (res.status == 413) {
        msg = "request body too large";
      } else if (res.status >= 500) {
        type = "server_error";
      }
      res.set_content(dump(error_json(ApiError(res.status, type, msg))), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_json(res, 500, error_json(ApiError(500, "server_error", "internal error: " + what)));
    });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      static const char* known[] = {"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions",
                                    "/tokenize", "/detokenize"};
      std::string ep = "other";  // bounded label set: arbitrary paths must not create series
      for (const char* k : known)
        if (req.path == k) ep = k;
      metrics.count_request(ep, res.status);
    });
  }

  std::string metrics_text() const {
    SchedulerStats s;
    if (ready.load()) s = scheduler->stats();
    return metrics.render(s, ready.load());
  }
};

Server::Server(ServerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

Server::~Server() { stop(); }

void Server::start() {
  Impl& I = *impl_;
  const ServerOptions& o = I.opts;
  I.model_name = !o.model_name.empty() ? o.model_name : std::filesystem::path(o.engine.model_path).stem().string();
  const size_t threads = o.http_threads > 0 ? o.http_threads : static_cast<size_t>(o.engine.n_parallel + o.max_queue + 8);
  I.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  I.http.set_payload_max_length(o.max_body_bytes);
  I.http.set_read_timeout(o.timeout_s, 0);
  I.http.set_write_timeout(o.timeout_s, 0);
  I.http.set_keep_alive_timeout(std::min(5, o.timeout_s));
  I.setup_routes();

  if (o.port == 0) {
    I.port = I.http.bind_to_any_port(o.host);
    if (I.port <= 0) throw Error("serve: cannot listen on " + o.host + " (any port)");
  } else {
    if (o.port < 0 || o.port > 65535) throw Error("serve: --port must be in 0..65535");
    if (!I.http.bind_to_port(o.host, o.port))
      throw Error("serve: cannot listen on " + o.host + ":" + std::to_string(o.port) + " (address in use or not local?)");
    I.port = o.port;
  }
  I.http.raise_backlog(1024);
  I.http_thread = std::thread([&I] {
    I.http.listen_after_bind();
    {
      std::lock_guard lk(I.stop_m);
      I.http_done = true;
    }
    I.stop_cv.notify_all();
  });
  I.load_thread = std::thread([&I] { I.load(); });
}

int Server::port() const { return impl_->port; }
bool Server::ready() const { return impl_->ready.load(); }

bool Server::wait_loaded() {
  std::unique_lock lk(impl_->load_m);
  impl_->load_cv.wait(lk, [&] { return impl_->ready.load() || impl_->failed.load(); });
  return impl_->ready.load();
}

std::string Server::load_error() const {
  std::lock_guard lk(impl_->load_m);
  return impl_->load_error;
}

void Server::wait() {
  std::unique_lock lk(impl_->stop_m);
  impl_->stop_cv.wait(lk, [&] { return impl_->stopped.load() || impl_->http_done.load(); });
}

void Server::stop() {
  Impl& I = *impl_;
  std::lock_guard call(I.stop_call_m);
  {
    std::lock_guard lk(I.stop_m);
    if (I.stopped.exchange(true)) return;
  }
  I.stop_cv.notify_all();
  if (I.load_thread.joinable()) I.load_thread.join();
  // Finish every request first so HTTP workers blocked on them return, then stop the listener
  // (which joins the workers).
  if (I.scheduler) I.scheduler->shutdown();
  I.http.stop();
  if (I.http_thread.joinable()) I.http_thread.join();
  {
    std::lock_guard lk(I.stop_m);
    I.stop_cv.notify_all();
  }
  I.scheduler.reset();
  I.engine.reset();
}

SchedulerStats Server::stats() const { return impl_->ready.load() ? impl_->scheduler->stats() : SchedulerStats{}; }

std::string Server::metrics_text() const { return impl_->metrics_text(); }

}  // namespace rocforge::server
