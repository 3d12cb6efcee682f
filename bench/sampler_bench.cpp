// sampler_bench.cpp - the host Sampler's cost per token on a Llama 3-sized vocabulary.
//
// Usage: sampler_bench [N_VOCAB] [SPREAD]
//   N_VOCAB defaults to 128256; logits are N(0, SPREAD^2) (default 3: a flat distribution, the worst
//   case for the candidate walk; a trained model's are usually far more peaked). For each parameter
//   set (OpenAI's defaults: temperature 1 without filters; top-p 0.9; rocforge run's defaults:
//   top-k 40, top-p 0.95, min-p 0.05; greedy) prints the median of 7 runs of 50 samples, in ms per
//   sample (single thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "rocforge/sampler.h"

int main(int argc, char** argv) {
  const int n_vocab = argc > 1 ? std::atoi(argv[1]) : 128256;
  const float spread = argc > 2 ? static_cast<float>(std::atof(argv[2])) : 3.0f;
  if (n_vocab <= 0 || !(spread > 0)) {
    std::fprintf(stderr, "usage: sampler_bench [N_VOCAB > 0] [SPREAD > 0]\n");
    return 2;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, spread);
  std::vector<float> logits(n_vocab);
  for (auto& l : logits) l = nd(rng);

  struct Case {
    const char* name;
    rocforge::SamplingParams p;
  };
  auto make = [](float t, int k, float top_p, float min_p) {
    rocforge::SamplingParams p;
    p.temperature = t, p.top_k = k, p.top_p = top_p, p.min_p = min_p;
    return p;
  };
  const Case cases[] = {{"temperature 1, no filters (OpenAI defaults)", make(1.f, 0, 1.f, 0.f)},
                        {"temperature 1, top-p 0.9", make(1.f, 0, 0.9f, 0.f)},
                        {"temperature 0.8, top-k 40, top-p 0.95, min-p 0.05", make(0.8f, 40, 0.95f, 0.05f)},
                        {"greedy", rocforge::SamplingParams::greedy()}};
  std::printf("vocabulary %d, logits N(0, %.1f^2)\n", n_vocab, spread);
  for (const Case& c : cases) {
    rocforge::Sampler s(c.p);
    std::vector<float> l;
    std::vector<double> runs;
    long sink = 0;
    for (int run = 0; run < 7; ++run) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 50; ++i) {
        l = logits;  // sample() may modify its input (penalties)
        sink += s.sample(l.data(), n_vocab, {});
      }
      runs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 50);
    }
    std::sort(runs.begin(), runs.end());
    std::printf("%-52s %8.3f ms/sample  (ids sum %ld)\n", c.name, runs[runs.size() / 2], sink);
  }
  return 0;
}
