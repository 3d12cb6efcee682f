// The device's repetition / presence / frequency penalties (penalize_rows) against the host Sampler's
// own arithmetic (penalized_logit over penalty_counts), bit for bit, on fresh random logits and
// histories: pairs the host counted plus ids sampled earlier in a chain of steps, ids out of range,
// every window.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "rocforge/sampler.h"

namespace rocforge::test {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

TEST(GpuPenalties, MatchTheHostSamplerBitForBit) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto& api = gpu->api();
  for (int n : {7, 1000, 32003, 128256}) {
    const int R = 6;
    std::vector<float> logits = random_floats(rng, size_t(R) * n, -12.f, 12.f);
    logits[0] = 0.f, logits[1 % n] = -0.f;
    // Ids sampled earlier in a chain, shared by the rows (with repeats, some also in the histories).
    std::vector<int32_t> chain(12);
    for (auto& c : chain) c = static_cast<int32_t>(rng() % std::min(n, 40));
    chain[3] = chain[1], chain[7] = n + 2;  // a repeat and an id out of range
    std::vector<rf_penalty_row> rows(R);
    std::vector<int32_t> pairs;
    std::vector<float> want = logits;
    for (int r = 0; r < R; ++r) {
      SamplingParams p;
      const float repeat[] = {1.f, 0.8f, 1.3f, 1.1f}, presence[] = {0.f, 0.5f, -0.7f}, freq[] = {0.f, 0.25f, -1.1f, 0.3f};
      p.repeat_penalty = repeat[rng() % 4];
      p.presence_penalty = presence[rng() % 3];
      p.frequency_penalty = freq[rng() % 4];
      const int32_t windows[] = {-1, 0, 16, 64};
      p.penalty_last_n = windows[rng() % 4];
      std::vector<int32_t> history(rng() % 300);
      for (auto& t : history) t = static_cast<int32_t>(rng() % std::min(n, 60));  // many repeats
      if (!history.empty()) history[0] = -3, history.back() = n + 5;            // ids out of range
      const int cb = r % 2 ? static_cast<int>(rng() % 6) : 0, ce = r % 2 ? cb + static_cast<int>(rng() % 7) : 0;
      const auto counts = penalty_counts(p, history);
      rows[r] = {p.repeat_penalty, p.presence_penalty, p.frequency_penalty, static_cast<int32_t>(pairs.size() / 2),
                 static_cast<int32_t>(counts.size()), cb, ce, 0};
      for (const auto& [id, c] : counts) pairs.push_back(id), pairs.push_back(c);
      // The host's view: the window's tokens and the chain's, counted together.
      const size_t w = p.penalty_last_n < 0 ? history.size() : std::min<size_t>(history.size(), p.penalty_last_n);
      std::vector<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(w), history.end());
      seen.insert(seen.end(), chain.begin() + cb, chain.begin() + ce);
      SamplingParams all = p;
      all.penalty_last_n = -1;
      for (const auto& [id, c] : penalty_counts(all, seen))
        if (id >= 0 && id < n) want[size_t(r) * n + id] = penalized_logit(p, want[size_t(r) * n + id], c);
    }
    pairs.push_back(0), pairs.push_back(0);  // never empty
    auto d_logits = to_device(*gpu, logits);
    auto d_rows = std::make_unique<DeviceBuffer>(*gpu, rows.size() * sizeof(rf_penalty_row));
    d_rows->upload_bytes(rows.data(), rows.size() * sizeof(rf_penalty_row));
    auto d_pairs = to_device(*gpu, pairs);
    auto d_chain = to_device(*gpu, chain);
    gpu->check(api.penalize_rows(d_logits->as<float>(), n, R, d_rows->as<rf_penalty_row>(), d_pairs->as<int32_t>(),
                                 d_chain->as<int32_t>(), nullptr),
               "penalize_rows");
    const auto got = d_logits->download<float>(logits.size());
    int bad = 0;
    for (size_t i = 0; i < got.size() && bad < 5; ++i)
      if (bits(got[i]) != bits(want[i])) {
        ADD_FAILURE() << "n " << n << " row " << i / n << " id " << i % n << ": " << got[i] << " vs host " << want[i];
        ++bad;
      }
  }
}

TEST(GpuPenalties, BadArgumentsAreErrors) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.penalize_rows(buf.as<float>(), 16, -1, buf.as<rf_penalty_row>(), buf.as<int32_t>(), nullptr, nullptr), 0);
  EXPECT_NE(api.penalize_rows(buf.as<float>(), 0, 1, buf.as<rf_penalty_row>(), buf.as<int32_t>(), nullptr, nullptr), 0);
  EXPECT_NE(api.penalize_rows(buf.as<float>(), 16, 1, nullptr, buf.as<int32_t>(), nullptr, nullptr), 0);
  EXPECT_NE(std::string(api.last_error()).find("penalize_rows"), std::string::npos) << api.last_error();
}

}  // namespace
}  // namespace rocforge::test
