// rocforge perplexity -m MODEL -f TEXT [--ctx 512] [--chunks N] [-t THREADS]
//
// The usual method (as llama.cpp's perplexity tool): tokenize the whole text, cut it into
// non-overlapping chunks of ctx tokens, put BOS first in each chunk (when the model has one),
// evaluate each chunk from an empty cache, and score only the second half of each chunk, where
// every prediction has at least ctx/2 tokens of context. PPL = exp(mean negative log-likelihood).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "rocforge/engine.h"

namespace rocforge::cli {
namespace {

// -log softmax(logits)[target], computed in double with the max subtracted.
double nll(const float* logits, int n_vocab, int32_t target) {
  float mx = logits[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return std::log(sum) - (static_cast<double>(logits[target]) - mx);
}

}  // namespace

int run_perplexity(int argc, char** argv) {
  CLI::App app{"Perplexity of a model on a text file (non-overlapping chunks, second half of each scored)"};
  std::string model, text_path, kv_type = "f16", device = "cpu";
  int ctx = 512, max_chunks = 0, threads = 0;
  app.add_option("-m,--model", model, "GGUF model")->required();
  app.add_option("-f,--file", text_path, "text file to score")->required();
  app.add_option("-c,--ctx", ctx, "tokens per chunk (default 512)")->check(CLI::Range(8, 1 << 20));
  app.add_option("--chunks", max_chunks, "score at most this many chunks (0: all)")->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  add_kv_type_flag(app, kv_type);
  app.add_option("--device", device, "cpu | gpu[:N] | gpu:A,B,... | auto (default cpu)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::ifstream in(text_path, std::ios::binary);
  if (!in) throw Error("perplexity: cannot read " + text_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();

  EngineOptions o;
  o.model_path = model;
  o.n_threads = threads;
  o.ctx_size = ctx;
  o.n_batch = ctx;
  o.kv_type = parse_kv_type(kv_type);
  o.device = device;
  auto e = Engine::load(o);
  const Tokenizer& tok = e->tokenizer();
  const std::vector<int32_t> ids = tok.encode(text, false);
  const int64_t n_chunks_all = static_cast<int64_t>(ids.size()) / ctx;
  if (n_chunks_all == 0)
    throw Error("perplexity: " + text_path + " has " + std::to_string(ids.size()) + " tokens, fewer than one chunk of " +
                std::to_string(ctx) + " (lower --ctx)");
  const int64_t n_chunks = max_chunks > 0 ? std::min<int64_t>(max_chunks, n_chunks_all) : n_chunks_all;
  const int32_t bos = tok.bos_id();
  const int V = e->n_vocab();
  std::fprintf(stderr, "perplexity: %zu tokens, %lld chunks of %d, scoring positions %d..%d of each\n", ids.size(),
               static_cast<long long>(n_chunks), ctx, ctx / 2, ctx - 1);

  Generator g(*e, SamplingParams::greedy());
  std::vector<float> logits;
  double sum = 0, sum_sq = 0;
  int64_t count = 0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(ids.begin() + c * ctx, ids.begin() + (c + 1) * ctx);
    if (bos >= 0) chunk[0] = bos;
    g.reset();
    g.feed_all_logits(chunk, logits);
    // logits[j] predicts chunk[j + 1]; score the second half.
    for (int j = ctx / 2 - 1; j < ctx - 1; ++j) {
      const double v = nll(logits.data() + static_cast<size_t>(j) * V, V, chunk[j + 1]);
      sum += v;
      sum_sq += v * v;
      ++count;
    }
    std::printf("[%lld]%.4f ", static_cast<long long>(c + 1), std::exp(sum / count));
    std::fflush(stdout);
  }
  const double mean = sum / count;
  const double var = std::max(0.0, sum_sq / count - mean * mean);
  const double ppl = std::exp(mean);
  // Standard error of exp(mean nll) by the delta method.
  std::printf("\nFinal estimate: PPL = %.4f +/- %.4f (%lld tokens scored)\n", ppl, ppl * std::sqrt(var / count),
              static_cast<long long>(count));
  return 0;
}

}  // namespace rocforge::cli
