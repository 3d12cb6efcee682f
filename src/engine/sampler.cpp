#include "rocforge/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "rocforge/error.h"

namespace rocforge {

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  if (!std::isfinite(p.temperature)) throw Error("sampling: temperature must be finite");
  if (!(p.top_p > 0)) throw Error("sampling: top_p must be in (0, 1]");
  if (p.min_p < 0 || p.min_p > 1) throw Error("sampling: min_p must be in [0, 1]");
  if (!(p.repeat_penalty > 0) || !std::isfinite(p.repeat_penalty))
    throw Error("sampling: repeat_penalty must be positive and finite");
  if (!std::isfinite(p.presence_penalty)) throw Error("sampling: presence_penalty must be finite");
  if (!std::isfinite(p.frequency_penalty)) throw Error("sampling: frequency_penalty must be finite");
}

int32_t Sampler::sample(float* logits, int32_t n_vocab, const std::vector<int32_t>& history) {
  // 1. Penalties over the recent window.
  if (has_penalties(p_))
    for (const auto& [id, cnt] : penalty_counts(p_, history))
      if (id >= 0 && id < n_vocab) logits[id] = penalized_logit(p_, logits[id], cnt);

  // 2. Greedy: the highest logit, lowest id on ties.
  if (p_.temperature <= 0) {
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }

  cands_.resize(n_vocab);
  for (int32_t i = 0; i < n_vocab; ++i) cands_[i] = {i, logits[i]};
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };

  // The chain visits candidates in order of decreasing logit (lower id first on ties), but rarely
  // far: the order is made lazily. cands_[0, sorted) are final; ensure(m) extends that prefix to at
  // least m (geometrically, so a walk costs a few linear passes): sorting the whole vocabulary for
  // OpenAI's defaults (temperature 1, no top-k / top-p) took ~14 ms per token at 128K entries.
  size_t n = cands_.size();  // survivors of the filters so far: cands_[0, n)
  size_t sorted = 0;
  auto ensure = [&](size_t m) {
    if (m <= sorted) return;
    m = std::min(n, std::max(m, 2 * sorted + 64));
    const auto first = cands_.begin() + static_cast<std::ptrdiff_t>(sorted);
    const auto mid = cands_.begin() + static_cast<std::ptrdiff_t>(m);
    const auto last = cands_.begin() + static_cast<std::ptrdiff_t>(n);
    if (mid < last) std::nth_element(first, mid, last, by_logit);
    std::sort(first, mid, by_logit);
    sorted = m;
  };

  // 3. top-k.
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n) {
    std::partial_sort(cands_.begin(), cands_.begin() + p_.top_k, cands_.end(), by_logit);
    n = sorted = p_.top_k;
  }
  ensure(1);
  const float top = cands_[0].logit;
  // Sum over the survivors: in their order where it is known, else in vocabulary order.
  auto sum_of = [&](auto&& term) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += term(cands_[i].logit);
    return s;
  };

  // Softmax of the survivors (at temperature 1, as the filters are defined on the model's p); its
  // normaliser only where top-p needs it (min-p compares ratios to the top token's).
  const double norm = p_.top_p < 1.0f ? sum_of([&](float l) { return std::exp(static_cast<double>(l - top)); }) : 1.0;
  auto prob = [&](size_t i) { return std::exp(static_cast<double>(cands_[i].logit - top)) / norm; };

  // 4. top-p: the smallest prefix whose mass reaches top_p.
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      ensure(i + 1);
      cum += prob(i);
      if (cum >= p_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  // 5. min-p: drop tokens less likely than min_p * p(top).
  if (p_.min_p > 0) {
    const double p0 = prob(0);
    size_t keep = 1;
    while (keep < n) {
      ensure(keep + 1);
      if (!(prob(keep) >= p_.min_p * p0)) break;
      ++keep;
    }
    n = keep;
  }

  // 6. Temperature, then draw (walking the survivors in order).
  auto weight = [&](float l) { return std::exp(static_cast<double>(l - top) / p_.temperature); };
  const double total = sum_of(weight);
  std::uniform_real_distribution<double> uni(0.0, total);
  double r = uni(rng_);
  for (size_t i = 0; i < n; ++i) {
    ensure(i + 1);
    const double w = weight(cands_[i].logit);
    if (r < w) return cands_[i].id;
    r -= w;
  }
  ensure(n);
  return cands_[n - 1].id;
}

}  // namespace rocforge
