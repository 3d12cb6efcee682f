// rocforge bench -m MODEL[,MODEL...] -p 512 -n 128 -t THREADS -r REPS [--device D] [-o md|json|csv]
//
// Prompt processing (ppN: N random tokens fed as one batch from an empty context, logits for the
// last) and text generation (tgN: N single-token decodes from an empty context, logits for each,
// no sampling), reported as tokens/s mean +- stddev over REPS runs, named as llama-bench names its
// tests so the two tables line up. One untimed warm-up run precedes the measured ones.
// --tg-sampled measures generation as `run` and the server's single requests do it instead (test
// "tgN sampled"): N decode steps, each token sampled greedily where the logits are (a GPU returns
// only the id, and chains steps in one graph launch) and fed to the next step.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cpu/cpu_features.h"
#include "model/executor.h"
#include "rocforge/engine.h"
#include "rocforge/gguf.h"

namespace rocforge::cli {
namespace {

struct Result {
  std::string model, test, device;
  std::string type_kv;  // the K/V cache the executor holds (a GPU keeps f16 where f32 was asked for)
  int threads = 0;
  double size_gb = 0, params_b = 0;
  std::vector<double> tps;
  double mean() const {
    double s = 0;
    for (double v : tps) s += v;
    return tps.empty() ? 0 : s / tps.size();
  }
  double stddev() const {
    if (tps.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : tps) s += (v - m) * (v - m);
    return std::sqrt(s / (tps.size() - 1));
  }
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string build_string() {
  std::string s = std::string("rocforge ") + version_string();
#if defined(__clang__)
  s += ", clang " __clang_version__;
#elif defined(__GNUC__)
  s += ", gcc " __VERSION__;
#endif
#ifdef NDEBUG
  s += ", release";
#else
  s += ", debug";
#endif
  return s;
}

std::vector<int32_t> random_tokens(int n, int n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = pick(rng);
  return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Untimed context of `depth` tokens before a run (llama-bench's -d): attention then reads depth + i
// positions, as it does deep into a conversation.
void feed_depth(Generator& g, Engine& e, int depth, std::mt19937& rng) {
  if (depth > 0) g.feed_view(random_tokens(depth, e.n_vocab(), rng));
}

// Tokens/s of one pp run: `n` tokens in one step (chunked by n_batch), after `depth` tokens of context.
double run_pp(Engine& e, int n, int depth, std::mt19937& rng) {
  Generator g(e, SamplingParams::greedy());
  feed_depth(g, e, depth, rng);
  const auto toks = random_tokens(n, e.n_vocab(), rng);
  const auto t0 = std::chrono::steady_clock::now();
  g.feed_view(toks);
  return n / seconds_since(t0);
}

// Tokens/s of one tg run: n single-token steps after `depth` tokens of context.
double run_tg(Engine& e, int n, int depth, std::mt19937& rng) {
  Generator g(e, SamplingParams::greedy());
  feed_depth(g, e, depth, rng);
  const auto toks = random_tokens(n, e.n_vocab(), rng);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) g.feed_view({toks[i]});
  return n / seconds_since(t0);
}

// Tokens/s of generation as Generator::generate runs it: a random first token, then N - 1 greedy
// tokens (each fed back, the last one too: N decode steps).
double run_tg_sampled(Engine& e, int n, int depth, std::mt19937& rng) {
  Generator g(e, SamplingParams::greedy());
  feed_depth(g, e, depth, rng);
  const auto first = random_tokens(1, e.n_vocab(), rng);
  GenerateOptions go;
  go.max_tokens = n - 1;
  go.ignore_eos = true;
  const auto t0 = std::chrono::steady_clock::now();
  const GenerateResult r = g.generate(first, go);
  const double s = seconds_since(t0);
  if (static_cast<int>(r.tokens.size()) != n - 1 || g.n_past() != depth + n)
    throw Error("bench: generation stopped after " + std::to_string(r.tokens.size()) + " of " + std::to_string(n - 1) +
                " tokens");
  return n / s;
}

// The K/V cache type gets a column only when some row is not f16 (as llama-bench shows type_k / type_v
// only off their default), so the usual table keeps its columns.
void print_md(const std::vector<Result>& rs) {
  bool kv_col = false;
  for (const auto& r : rs) kv_col = kv_col || r.type_kv != "f16";
  std::printf("| model | size | params | backend | threads |%s test | t/s |\n", kv_col ? " type_kv |" : "");
  std::printf("| --- | ---: | ---: | --- | ---: |%s ---: | ---: |\n", kv_col ? " --- |" : "");
  for (const auto& r : rs)
    std::printf("| %s | %.2f GiB | %.2f B | %s | %d |%s %s | %.2f ± %.2f |\n", r.model.c_str(), r.size_gb, r.params_b,
                r.device.c_str(), r.threads, kv_col ? (" " + r.type_kv + " |").c_str() : "", r.test.c_str(), r.mean(),
                r.stddev());
}

void print_csv(const std::vector<Result>& rs) {
  std::printf("model,size_bytes,params,backend,threads,test,avg_ts,stddev_ts,samples,type_kv\n");
  for (const auto& r : rs) {
    std::string samples;
    for (double v : r.tps) samples += (samples.empty() ? "" : ";") + std::to_string(v);
    std::printf("\"%s\",%.0f,%.0f,%s,%d,%s,%.4f,%.4f,\"%s\",%s\n", r.model.c_str(), r.size_gb * 1073741824.0,
                r.params_b * 1e9, r.device.c_str(), r.threads, r.test.c_str(), r.mean(), r.stddev(), samples.c_str(),
                r.type_kv.c_str());
  }
}

void print_json(const std::vector<Result>& rs, const nlohmann::json& machine) {
  nlohmann::json out = {{"machine", machine}, {"results", nlohmann::json::array()}};
  for (const auto& r : rs)
    out["results"].push_back({{"model", r.model}, {"size_bytes", r.size_gb * 1073741824.0}, {"params", r.params_b * 1e9},
                              {"backend", r.device}, {"threads", r.threads}, {"test", r.test}, {"avg_ts", r.mean()},
                              {"stddev_ts", r.stddev()}, {"samples_ts", r.tps}, {"type_kv", r.type_kv}});
  std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace

int run_bench(int argc, char** argv) {
  CLI::App app{"Measure prompt processing (ppN) and generation (tgN) speed, as llama-bench does"};
  std::string models, device = "cpu", output = "md", kv_type = "f16";
  int n_prompt = 512, n_gen = 128, reps = 5, n_batch = 512, depth = 0;
  bool tg_sampled = false;
  std::vector<int> threads_list;
  app.add_option("-m,--model", models, "GGUF model(s), comma separated")->required();
  app.add_option("-p,--n-prompt", n_prompt, "prompt tokens for the pp test (0: skip)")->check(CLI::NonNegativeNumber);
  app.add_option("-n,--n-gen", n_gen, "generated tokens for the tg test (0: skip)")->check(CLI::NonNegativeNumber);
  app.add_option("-d,--depth", depth, "context tokens filled (untimed) before each run (default 0)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", threads_list, "thread count(s), e.g. -t 1 -t 2 (default: all cores)");
  app.add_option("-r,--repetitions", reps, "measured runs per test (default 5)")->check(CLI::PositiveNumber);
  app.add_option("-b,--batch-size", n_batch, "max tokens per forward step (default 512)")->check(CLI::PositiveNumber);
  app.add_option("--device", device, "cpu | gpu[:N] | gpu:A,B,... | auto (default cpu)");
  app.add_flag("--tg-sampled", tg_sampled,
               "tgN as generation runs: each token sampled (greedy) and fed back, the GPU chaining steps");
  add_kv_type_flag(app, kv_type);
  app.add_option("-o,--output", output, "md | json | csv")->check(CLI::IsMember({"md", "json", "csv"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (threads_list.empty()) threads_list.push_back(0);
  if (tg_sampled && n_gen == 1) {
    std::fprintf(stderr, "error: --tg-sampled needs -n 2 or more (a first token and one generated)\n");
    return 1;
  }

  nlohmann::json machine = {{"cpu", cpu::cpu_model_name()},
                            {"cpu_features", cpu::cpu_feature_string()},
                            {"isa", cpu::isa_name(cpu::active_isa())},
                            {"build", build_string()}};
  if (output == "md") {
    std::printf("cpu: %s\ncpu features: %s\nkernels: %s (ROCFORGE_CPU lowers it)\nbuild: %s\n\n",
                cpu::cpu_model_name().c_str(), cpu::cpu_feature_string().c_str(), cpu::isa_name(cpu::active_isa()),
                build_string().c_str());
  }

  std::vector<Result> results;
  std::mt19937 rng(1234);
  for (const std::string& path : split_commas(models)) {
    for (int threads : threads_list) {
      EngineOptions o;
      o.model_path = path;
      o.n_threads = threads;
      o.ctx_size = std::max(16, depth + std::max(n_prompt, n_gen) + 8);
      o.n_batch = n_batch;
      o.device = device;
      o.kv_type = parse_kv_type(kv_type);
      auto e = Engine::load(o);
      const Model& m = e->model();
      Result base;
      base.model = std::filesystem::path(path).filename().string();
      base.device = e->executor().device_name();
      base.type_kv = kv_type_name(e->executor().kv_config().type);
      base.threads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
      base.size_gb = static_cast<double>(std::filesystem::file_size(path)) / 1073741824.0;
      uint64_t n_params = 0;
      for (const auto& ti : m.file().tensors()) n_params += ti.n_elements;
      base.params_b = static_cast<double>(n_params) / 1e9;
      // Warm-up: fault the weights in and let the thread pool and caches settle.
      if (n_prompt > 0) run_pp(*e, std::min(n_prompt, 32), 0, rng);
      if (n_gen > 0) run_tg(*e, std::min(n_gen, 4), 0, rng);
      // (at the measured depth: a GPU captures its chained steps' graph per attention length bucket)
      if (n_gen > 0 && tg_sampled) run_tg_sampled(*e, std::min(n_gen, 24), depth, rng);
      const std::string at = depth > 0 ? " @ d" + std::to_string(depth) : "";
      if (n_prompt > 0) {
        Result r = base;
        r.test = "pp" + std::to_string(n_prompt) + at;
        for (int i = 0; i < reps; ++i) r.tps.push_back(run_pp(*e, n_prompt, depth, rng));
        results.push_back(r);
      }
      if (n_gen > 0) {
        Result r = base;
        r.test = "tg" + std::to_string(n_gen) + (tg_sampled ? " sampled" : "") + at;
        for (int i = 0; i < reps; ++i)
          r.tps.push_back(tg_sampled ? run_tg_sampled(*e, n_gen, depth, rng) : run_tg(*e, n_gen, depth, rng));
        results.push_back(r);
      }
      if (output == "md") std::fprintf(stderr, "done: %s, %d threads\n", base.model.c_str(), base.threads);
    }
  }
  if (output == "md") print_md(results);
  else if (output == "csv") print_csv(results);
  else print_json(results, machine);
  return 0;
}

}  // namespace rocforge::cli
