// rocforge bench-serve - load test of the HTTP server: streaming completions from C concurrent
// clients, reporting aggregate generated tokens/s and p50/p99 time-to-first-token and
// inter-token latency per concurrency level. Starts an in-process server on a free port unless
// --url points at a running one.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "server/server.h"

namespace rocforge::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Sample {
  double ttft = -1;              // seconds to the first text chunk
  double total = 0;              // seconds to the end of the response
  std::vector<double> gaps;     // seconds between consecutive text chunks
  int completion_tokens = 0;
  bool ok = false;
  std::string error;
};

std::string prompt_for(int i) {
  static const char* who[] = {"a little girl", "a big dog", "a small bird", "a brave boy", "an old cat", "a happy frog"};
  static const char* where[] = {"in the park", "near the sea", "at school", "in a big house", "under a tree"};
  std::ostringstream p;
  p << "Once upon a time there was " << who[i % 6] << " " << where[(i / 6) % 5] << ". Story number " << i << ".";
  return p.str();
}

// sampling: the request's sampling fields (temperature, top_p, penalties).
Sample run_one(const std::string& host, int port, const std::string& api_key, const std::string& prompt, int max_tokens,
               const json& sampling) {
  Sample s;
  httplib::Client cli(host, port);
  cli.set_read_timeout(600, 0);
  json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"ignore_eos", true},
               {"stream", true},   {"stream_options", {{"include_usage", true}}}};
  body.update(sampling);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!api_key.empty()) req.set_header("Authorization", "Bearer " + api_key);
  std::string buf;
  Clock::time_point t0 = Clock::now(), last{};
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    size_t at;
    while ((at = buf.find("\n\n")) != std::string::npos) {
      const std::string ev = buf.substr(0, at);
      buf.erase(0, at + 2);
      if (ev.rfind("data: ", 0) != 0 || ev == "data: [DONE]") continue;
      const json j = json::parse(ev.substr(6), nullptr, false);
      if (!j.is_object()) continue;
      if (j.contains("usage") && j["usage"].is_object()) s.completion_tokens = j["usage"]["completion_tokens"].get<int>();
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const auto& text = j["choices"][0]["text"];
      if (!text.is_string() || text.get_ref<const std::string&>().empty()) continue;
      const auto now = Clock::now();
      if (s.ttft < 0) s.ttft = std::chrono::duration<double>(now - t0).count();
      else s.gaps.push_back(std::chrono::duration<double>(now - last).count());
      last = now;
    }
    return true;
  };
  t0 = Clock::now();
  auto res = cli.send(req);
  s.total = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!res) s.error = httplib::to_string(res.error());
  else if (res->status != 200) s.error = "HTTP " + std::to_string(res->status);
  else s.ok = s.ttft >= 0;
  return s;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = static_cast<size_t>(std::ceil(p * v.size()));
  return v[std::min(v.size() - 1, k == 0 ? 0 : k - 1)];
}

}  // namespace

int run_bench_serve(int argc, char** argv) {
  CLI::App app{"Benchmark the HTTP server: aggregate tokens/s, TTFT and inter-token latency", "rocforge bench-serve"};
  EngineFlags ef;
  ef.opts.n_threads = 0;
  std::vector<int> levels = {1, 8, 32};
  int per_client = 4, max_tokens = 64;
  double temperature = 0.0, top_p = 1.0, frequency_penalty = 0.0, presence_penalty = 0.0;
  std::string url, api_key;
  bool as_json = false, chain_decode = false;
  add_engine_flags(app, ef, false);
  app.add_option("--concurrency", levels, "concurrent clients per run (space or comma separated)")->delimiter(',');
  app.add_option("--requests-per-client", per_client, "requests each client sends in a run")->check(CLI::Range(1, 10000));
  app.add_option("--max-tokens", max_tokens, "tokens generated per request (ignore_eos)")->check(CLI::Range(1, 1 << 20));
  app.add_option("--temperature", temperature, "sampling temperature of every request (0: greedy; OpenAI's other "
                 "defaults: top_p 1, no top-k)")->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", top_p, "OpenAI's top_p of every request")->check(CLI::Range(0.0, 1.0));
  app.add_option("--frequency-penalty", frequency_penalty, "OpenAI's frequency_penalty of every request")
      ->check(CLI::Range(-2.0, 2.0));
  app.add_option("--presence-penalty", presence_penalty, "OpenAI's presence_penalty of every request")
      ->check(CLI::Range(-2.0, 2.0));
  app.add_option("--url", url, "benchmark a running server (http://host:port) instead of starting one");
  app.add_option("--api-key", api_key, "bearer token for --url");
  app.add_flag("--json", as_json, "print one JSON object per run instead of a table");
  app.add_flag("--chain-decode", chain_decode, "the in-process server's --chain-decode");
  CLI11_PARSE(app, argc, argv);
  for (int c : levels)
    if (c < 1 || c > 4096) throw Error("--concurrency values must be in 1..4096");

  std::string host = "127.0.0.1";
  int port = 0;
  std::unique_ptr<server::Server> srv;
  if (url.empty()) {
    server::ServerOptions so;
    so.engine = finish_engine_flags(ef);
    so.engine.n_parallel = *std::max_element(levels.begin(), levels.end());
    so.port = 0;
    so.max_queue = 4096;
    so.chain_decode = chain_decode;
    srv = std::make_unique<server::Server>(so);
    srv->start();
    if (!srv->wait_loaded()) throw Error("cannot load the model: " + srv->load_error());
    port = srv->port();
    std::fprintf(stderr, "bench-serve: in-process server on port %d, model %s, parallel %d\n", port,
                 so.engine.model_path.c_str(), so.engine.n_parallel);
  } else {
    const std::string prefix = "http://";
    if (url.rfind(prefix, 0) != 0) throw Error("--url must look like http://host:port");
    const std::string hp = url.substr(prefix.size());
    const size_t colon = hp.rfind(':');
    if (colon == std::string::npos) throw Error("--url must include a port");
    host = hp.substr(0, colon);
    port = std::stoi(hp.substr(colon + 1));
  }

  json sampling = {{"temperature", temperature}};
  if (top_p != 1) sampling["top_p"] = top_p;
  if (frequency_penalty != 0) sampling["frequency_penalty"] = frequency_penalty;
  if (presence_penalty != 0) sampling["presence_penalty"] = presence_penalty;
  run_one(host, port, api_key, prompt_for(9999), 8, sampling);  // warm-up (first-touch of weights, threads)

  if (!as_json)
    std::printf("%6s %9s %9s %9s %12s %10s %10s %10s %10s %10s %10s\n", "conc", "requests", "tokens", "wall_s",
                "agg_tok/s", "ttft_p50", "ttft_p99", "itl_p50", "itl_p99", "tpot_p50", "tpot_p99");
  for (int c : levels) {
    std::vector<Sample> samples;
    std::mutex m;
    const auto t0 = Clock::now();
    std::vector<std::thread> clients;
    for (int k = 0; k < c; ++k)
      clients.emplace_back([&, k] {
        for (int r = 0; r < per_client; ++r) {
          Sample s = run_one(host, port, api_key, prompt_for(k * per_client + r), max_tokens, sampling);
          std::lock_guard lk(m);
          samples.push_back(std::move(s));
        }
      });
    for (auto& t : clients) t.join();
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    // itl: gaps between streamed chunks as the client saw them (chunks written together arrive
    // together); tpot: per request, (end - first token) / (tokens - 1), which such bunching
    // does not distort.
    std::vector<double> ttft, itl, tpot;
    int64_t tokens = 0;
    int failed = 0;
    std::string first_error;
    for (const auto& s : samples) {
      if (!s.ok) {
        if (failed++ == 0) first_error = s.error;
        continue;
      }
      ttft.push_back(s.ttft);
      itl.insert(itl.end(), s.gaps.begin(), s.gaps.end());
      if (s.completion_tokens > 1) tpot.push_back((s.total - s.ttft) / (s.completion_tokens - 1));
      tokens += s.completion_tokens;
    }
    const double tps = tokens / wall;
    if (as_json) {
      std::printf("%s\n", json{{"concurrency", c},
                               {"requests", samples.size()},
                               {"failed", failed},
                               {"generated_tokens", tokens},
                               {"wall_s", wall},
                               {"aggregate_tok_s", tps},
                               {"ttft_p50_ms", 1e3 * percentile(ttft, 0.5)},
                               {"ttft_p99_ms", 1e3 * percentile(ttft, 0.99)},
                               {"itl_p50_ms", 1e3 * percentile(itl, 0.5)},
                               {"itl_p99_ms", 1e3 * percentile(itl, 0.99)},
                               {"tpot_p50_ms", 1e3 * percentile(tpot, 0.5)},
                               {"tpot_p99_ms", 1e3 * percentile(tpot, 0.99)}}
                              .dump()
                              .c_str());
    } else {
      std::printf("%6d %9zu %9lld %9.2f %12.1f %8.1fms %8.1fms %8.2fms %8.2fms %8.2fms %8.2fms\n", c, samples.size(),
                  static_cast<long long>(tokens), wall, tps, 1e3 * percentile(ttft, 0.5), 1e3 * percentile(ttft, 0.99),
                  1e3 * percentile(itl, 0.5), 1e3 * percentile(itl, 0.99), 1e3 * percentile(tpot, 0.5),
                  1e3 * percentile(tpot, 0.99));
    }
    if (failed) std::fprintf(stderr, "bench-serve: %d of %zu requests failed (first: %s)\n", failed, samples.size(),
                             first_error.c_str());
    std::fflush(stdout);
  }
  if (srv) srv->stop();
  return 0;
}

}  // namespace rocforge::cli
