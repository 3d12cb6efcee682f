// The host Sampler (lazily ordered candidates) against a scalar reference that sorts the whole
// vocabulary first, on fresh random logits: peaked and flat distributions, ties, every filter
// combination. Same seed -> same draws, so the ids must agree (the two sum the unfiltered softmax in
// different orders; a draw landing within rounding of a boundary could differ, ~1e-15 per draw).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "model/executor.h"
#include "rocforge/sampler.h"

namespace rocforge {
namespace {

// The chain of sampler.h with a full sort: top-k -> top-p -> min-p on the softmax at temperature 1,
// then the draw over exp((l - top) / T) in logit order.
class ReferenceSampler {
 public:
  explicit ReferenceSampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  int32_t sample(const std::vector<float>& logits) {
    struct Cand {
      int32_t id;
      float logit;
    };
    std::vector<Cand> c(logits.size());
    for (size_t i = 0; i < c.size(); ++i) c[i] = {static_cast<int32_t>(i), logits[i]};
    std::sort(c.begin(), c.end(), [](const Cand& a, const Cand& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
    size_t n = c.size();
    if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) n = p_.top_k;
    std::vector<double> prob(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += prob[i] = std::exp(static_cast<double>(c[i].logit - c[0].logit));
    for (auto& q : prob) q /= sum;
    if (p_.top_p < 1.0f) {
      double cum = 0;
      for (size_t i = 0; i < n; ++i)
        if ((cum += prob[i]) >= p_.top_p) {
          n = i + 1;
          break;
        }
    }
    if (p_.min_p > 0) {
      size_t keep = 1;
      while (keep < n && prob[keep] >= p_.min_p * prob[0]) ++keep;
      n = keep;
    }
    double total = 0;
    std::vector<double> w(n);
    for (size_t i = 0; i < n; ++i) total += w[i] = std::exp(static_cast<double>(c[i].logit - c[0].logit) / p_.temperature);
    std::uniform_real_distribution<double> uni(0.0, total);
    double r = uni(rng_);
    for (size_t i = 0; i < n; ++i) {
      if (r < w[i]) return c[i].id;
      r -= w[i];
    }
    return c[n - 1].id;
  }

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

TEST(Sampler, LazyOrderDrawsWhatAFullSortDraws) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  int draws = 0;
  for (int vocab : {7, 1000, 32000}) {
    for (float spread : {0.3f, 3.0f, 12.0f}) {  // flat ... peaked
      std::normal_distribution<float> nd(0.f, spread);
      std::vector<float> logits(vocab);
      for (auto& l : logits) l = nd(rng);
      logits[vocab / 2] = logits[vocab / 3];  // a tie
      for (float temp : {0.5f, 1.0f, 1.7f}) {
        for (int top_k : {0, 1, 40, vocab + 5}) {
          for (float top_p : {1.0f, 0.9f, 0.3f}) {
            for (float min_p : {0.0f, 0.05f}) {
              SamplingParams p;
              p.temperature = temp, p.top_k = top_k, p.top_p = top_p, p.min_p = min_p;
              p.seed = rng();
              SCOPED_TRACE("vocab " + std::to_string(vocab) + " spread " + std::to_string(spread) + " T " +
                           std::to_string(temp) + " top_k " + std::to_string(top_k) + " top_p " +
                           std::to_string(top_p) + " min_p " + std::to_string(min_p));
              Sampler s(p);
              ReferenceSampler ref(p);
              for (int k = 0; k < 8; ++k, ++draws) {
                std::vector<float> l = logits;  // sample() may modify its input
                ASSERT_EQ(s.sample(l.data(), vocab, {}), ref.sample(logits)) << "draw " << k;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(draws, 5000);
}

}  // namespace
}  // namespace rocforge

namespace rocforge {
namespace {

// penalty_counts: distinct ids of the last penalty_last_n tokens (-1: all, 0: none) with their counts.
TEST(SamplerPenalties, CountsTheWindow) {
  SamplingParams p;
  const std::vector<int32_t> h = {5, 9, 5, 2, 9, 9, 7};
  using C = std::vector<std::pair<int32_t, int32_t>>;
  p.penalty_last_n = -1;
  EXPECT_EQ(penalty_counts(p, h), (C{{2, 1}, {5, 2}, {7, 1}, {9, 3}}));
  p.penalty_last_n = 3;
  EXPECT_EQ(penalty_counts(p, h), (C{{7, 1}, {9, 2}}));
  p.penalty_last_n = 0;
  EXPECT_TRUE(penalty_counts(p, h).empty());
  p.penalty_last_n = 100;
  EXPECT_EQ(penalty_counts(p, h).size(), 4u);
  EXPECT_TRUE(penalty_counts(p, {}).empty());
}

// penalized_logit: repeat divides positive logits and multiplies the others, then presence once and
// frequency per occurrence are subtracted.
TEST(SamplerPenalties, PenalizedLogitFollowsTheDefinition) {
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  EXPECT_EQ(penalized_logit(p, 3.0f, 1), 1.5f);
  EXPECT_EQ(penalized_logit(p, -3.0f, 1), -6.0f);
  EXPECT_EQ(penalized_logit(p, 0.0f, 4), 0.0f);
  p.repeat_penalty = 1.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  EXPECT_EQ(penalized_logit(p, 3.0f, 1), 2.25f);
  EXPECT_EQ(penalized_logit(p, 3.0f, 4), 1.5f);
  EXPECT_FALSE(has_penalties(SamplingParams{}));
  EXPECT_TRUE(has_penalties(p));
}

// The Sampler applies them before choosing: greedy moves off a repeated token, only within the window.
TEST(SamplerPenalties, GreedyAvoidsRepeatsInTheWindow) {
  SamplingParams p = SamplingParams::greedy();
  p.repeat_penalty = 1.5f;  // 2.0 / 1.5 = 1.33 < 1.9
  p.penalty_last_n = 2;
  std::vector<float> l = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 2}), 1);
  l = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 2, 2}), 0);  // 0 is out of the window
  l = {2.0f, 1.9f, -1.0f};
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.06f;  // 2.0 - 2 * 0.06 = 1.88 < 1.9 only for two occurrences
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {1, 0}), 0);
  l = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 0}), 1);
  l = {2.0f, 1.9f, -1.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0, 0, 99, -4}), 0);  // the window holds only ids out of range
}

}  // namespace
}  // namespace rocforge

namespace rocforge {
namespace {

// A chain's step k (GPU forward_sample_steps): the part of the starting history and of the chain's
// own k ids that the penalty window holds, against the window cut from the whole sequence.
TEST(SamplerPenalties, ChainStepWindowsMatchTheWholeSequence) {
  for (int32_t last_n : {-1, 0, 1, 3, 6, 8, 64}) {
    SamplingParams p;
    p.penalty_last_n = last_n;
    for (size_t h : {size_t{0}, size_t{2}, size_t{5}, size_t{100}}) {
      for (int k = 0; k < 16; ++k) {
        // The sequence: h history tokens (ids 0 ..), then chain ids (1000 + j).
        std::vector<int32_t> seq;
        for (size_t i = 0; i < h; ++i) seq.push_back(static_cast<int32_t>(i));
        for (int j = 0; j < k; ++j) seq.push_back(1000 + j);
        const size_t n = last_n < 0 ? seq.size() : std::min<size_t>(seq.size(), last_n);
        size_t want_keep = 0;
        int want_begin = k;
        for (size_t i = seq.size() - n; i < seq.size(); ++i)
          if (seq[i] < 1000) ++want_keep;
          else want_begin = std::min(want_begin, seq[i] - 1000);
        const ChainPenaltyWindow w = chain_penalty_window(p, h, k);
        EXPECT_EQ(w.history_keep, want_keep) << "last_n " << last_n << " history " << h << " step " << k;
        EXPECT_EQ(w.chain_begin, want_begin) << "last_n " << last_n << " history " << h << " step " << k;
      }
    }
  }
}

}  // namespace
}  // namespace rocforge

namespace rocforge {
namespace {

// Penalties that would turn logits into NaN or infinities are refused with the parameter's name.
TEST(SamplerPenalties, NonFiniteOrNonPositivePenaltiesAreErrors) {
  auto message = [](SamplingParams p) {
    try {
      Sampler s(p);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingParams p;
  p.presence_penalty = NAN;
  EXPECT_NE(message(p).find("presence_penalty"), std::string::npos);
  p = {};
  p.frequency_penalty = INFINITY;
  EXPECT_NE(message(p).find("frequency_penalty"), std::string::npos);
  p = {};
  p.repeat_penalty = INFINITY;
  EXPECT_NE(message(p).find("repeat_penalty"), std::string::npos);
  p.repeat_penalty = 0.0f;
  EXPECT_NE(message(p).find("repeat_penalty"), std::string::npos);
  p = {};
  p.frequency_penalty = -1.5f;  // negative penalties are allowed (they favour repeats)
  EXPECT_EQ(message(p), "");
}

}  // namespace
}  // namespace rocforge
