// rocforge logits - the top next-token logits after a prompt (for comparing with other engines).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "rocforge/engine.h"

namespace rocforge::cli {

int run_logits(int argc, char** argv) {
  CLI::App app{"Print the prompt ids and the top next-token logits", "rocforge logits"};
  EngineFlags ef;
  std::string prompt;
  int top = 10;
  app.add_option("-p,--prompt", prompt, "prompt (default: BOS alone)");
  app.add_option("--top", top, "how many tokens to list")->check(CLI::PositiveNumber);
  add_engine_flags(app, ef, false);
  CLI11_PARSE(app, argc, argv);
  ef.opts.n_parallel = 1;
  auto engine = Engine::load(finish_engine_flags(ef));
  const Tokenizer& tok = engine->tokenizer();
  std::vector<int32_t> ids = tok.encode(prompt, true);
  if (ids.empty()) ids.push_back(tok.bos_id() >= 0 ? tok.bos_id() : 0);
  Generator gen(*engine, SamplingParams::greedy());
  const std::vector<float> logits = gen.feed(ids);

  std::printf("prompt_ids:");
  for (int32_t id : ids) std::printf(" %d", id);
  std::printf("\n");
  // log-softmax, so the figures line up with engines that only expose probabilities.
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  const double lse = mx + std::log(sum);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(top, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::printf("id logit logprob gap_from_top\n");
  for (size_t i = 0; i < k; ++i) {
    const int32_t id = order[i];
    std::printf("%d %.6f %.6f %.6f\n", id, logits[id], logits[id] - lse, logits[id] - mx);
  }
  return 0;
}

}  // namespace rocforge::cli
