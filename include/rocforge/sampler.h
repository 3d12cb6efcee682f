// rocforge/sampler.h - turning logits into the next token.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace rocforge {

struct SamplingParams {
  float temperature = 0.8f;        // <= 0: greedy
  int32_t top_k = 40;              // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off
  float repeat_penalty = 1.0f;     // 1: off (divides positive logits, multiplies negative ones)
  float presence_penalty = 0.0f;   // subtracted once from every token already seen
  float frequency_penalty = 0.0f;  // subtracted per occurrence
  int32_t penalty_last_n = 64;     // how many recent tokens the penalties look at (-1: all)
  uint64_t seed = 0xC0FFEE;

  static SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0;
    return p;
  }
};

// The chain, in order: penalties -> (greedy, or) top-k -> top-p -> min-p -> temperature -> draw.
// Deterministic for a given seed and history.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // logits: [n_vocab], modified in place. history: tokens so far (prompt + generated).
  int32_t sample(float* logits, int32_t n_vocab, const std::vector<int32_t>& history);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  struct Cand {
    int32_t id;
    float logit;
  };
  std::vector<Cand> cands_;
};

}  // namespace rocforge
