// rocforge/sampler.h - turning logits into the next token.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <utility>
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

// The penalties, defined once for the host Sampler and the GPU executor (which counts a history
// for its penalize_rows kernel); inline because the model library, below the engine's, uses them.
//
// Whether p penalizes tokens already seen (a repeat, presence or frequency penalty).
inline bool has_penalties(const SamplingParams& p) {
  return p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
}
// What the penalties count in a history (prompt + generated): each distinct id among its last
// penalty_last_n tokens (-1: all) with its number of occurrences, by increasing id.
inline std::vector<std::pair<int32_t, int32_t>> penalty_counts(const SamplingParams& p,
                                                               std::span<const int32_t> history) {
  const size_t n = p.penalty_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p.penalty_last_n);
  std::vector<int32_t> ids(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  std::sort(ids.begin(), ids.end());
  std::vector<std::pair<int32_t, int32_t>> counts;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    counts.emplace_back(ids[i], static_cast<int32_t>(j - i));
    i = j;
  }
  return counts;
}
// A logit after p's penalties for an id seen `count` times: l / repeat where l > 0, else l * repeat
// (repeat != 1), then minus fma(frequency, count, presence): one fused multiply-add, as the GPU's
// penalize_rows rounds it (a contraction left to the compiler could round differently either side).
inline float penalized_logit(const SamplingParams& p, float l, int32_t count) {
  if (p.repeat_penalty != 1.0f) l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
  return l - std::fma(p.frequency_penalty, static_cast<float>(count), p.presence_penalty);
}

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
