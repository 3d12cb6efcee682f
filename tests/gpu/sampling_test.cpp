// On-device sampling (greedy, temperature, top-k, top-p, min-p) against a sort-based CPU reference
// with the same definition (backend_api.h: candidates are the logits at or above every threshold,
// set on the model's distribution, drawn at the temperature by inverse CDF in index order with the
// caller's u).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "gpu_test_support.h"

namespace rocforge::test {
namespace {

// Masses as the kernel forms them: fixed point floor(exp(l - max) * 2^40) of the float scaled
// logit, summed exactly (an entry equal to an infinite maximum weighs 1).
uint64_t mass_of(float l, float mx) {
  const float d = l - mx;
  if (!(d >= -28.f)) return l == mx ? (uint64_t{1} << 40) : 0;
  return static_cast<uint64_t>(std::exp(d) * 1099511627776.f);
}

// The host Sampler's chain: filters on the logits as they are, the temperature on the draw.
int sample_ref(const std::vector<float>& logits, float temp, int top_k, float top_p, float min_p, float u) {
  const int n = static_cast<int>(logits.size());
  if (temp <= 0.f) return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const std::vector<float>& l = logits;
  std::vector<float> sorted = l;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float mx = sorted[0];
  float thr = -INFINITY;
  if (top_k > 0 && top_k < n) thr = sorted[top_k - 1];
  if (top_p < 1.f) {
    uint64_t z1 = 0;
    for (float v : sorted)
      if (v >= thr) z1 += mass_of(v, mx);
    const auto need = static_cast<uint64_t>(std::ceil(static_cast<double>(top_p) * static_cast<double>(z1)));
    uint64_t cum = 0;
    for (float v : sorted) {  // smallest top set reaching top_p of the top-k mass
      cum += mass_of(v, mx);
      if (cum >= need) {
        thr = std::max(thr, v);
        break;
      }
    }
  }
  if (min_p > 0.f) thr = std::max(thr, mx + std::log(min_p));
  const float inv_t = 1.f / temp;  // the kernel scales by the reciprocal, rounded the same way
  const float mxt = mx * inv_t;
  uint64_t total = 0;
  for (float v : l)
    if (v >= thr) total += mass_of(v * inv_t, mxt);
  const auto target = static_cast<uint64_t>(static_cast<double>(u) * static_cast<double>(total));
  uint64_t run = 0;
  for (int i = 0; i < n; ++i) {
    if (l[i] < thr) continue;
    run += mass_of(l[i] * inv_t, mxt);
    if (run > target) return i;
  }
  return -1;  // no candidate with weight: not reached (the maximum always has some)
}

// A zeroed sampler workspace for `rows` rows of n logits.
std::unique_ptr<DeviceBuffer> workspace(const device::GpuBackend& gpu, int rows, int n) {
  auto ws = std::make_unique<DeviceBuffer>(gpu, gpu.api().sample_workspace(rows, n));
  ws->zero();
  return ws;
}

TEST(GpuSampling, GreedyIsArgmaxWithLowestIndexOnTies) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  DeviceBuffer tok(*gpu, sizeof(int32_t));
  auto ws = workspace(*gpu, 1, 128256);
  for (int n : {1, 5, 1000, 32003, 128256}) {
    for (int offset : {0, 1}) {  // a 16-byte aligned row (vector loads) and one that is not
      for (bool in_tail : {false, true}) {
        std::vector<float> logits = random_floats(rng, n + offset, -20.f, 20.f);
        const int at = in_tail && n > 4 ? n - 1 - static_cast<int>(rng() % 3) : static_cast<int>(rng() % n);
        logits[offset + at] = 25.f;
        if (at + 1 < n) logits[offset + n - 1] = 25.f;  // a tie later in the vocabulary loses
        auto dl = to_device(*gpu, logits);
        gpu->check(gpu->api().sample(dl->as<float>() + offset, n, 0.f, 0, 1.f, 0.f, 0.5f, tok.as<int32_t>(), ws->get(),
                                     ws->bytes(), nullptr),
                   "sample");
        EXPECT_EQ(tok.download<int32_t>(1)[0], at) << "n " << n << " offset " << offset;
      }
    }
  }
}

TEST(GpuSampling, FilteredSamplingMatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  struct Params { float temp; int top_k; float top_p; float min_p; };
  const Params params[] = {{1.f, 0, 1.f, 0.f},  {0.7f, 40, 1.f, 0.f},   {1.f, 0, 0.9f, 0.f},
                           {0.8f, 0, 1.f, 0.05f}, {0.9f, 50, 0.95f, 0.02f}, {1.3f, 1, 1.f, 0.f},
                           {2.f, 1000, 0.5f, 0.f}, {1.f, 5000, 0.8f, 0.f}, {0.8f, 40, 0.95f, 0.05f},
                           {1.7f, 0, 0.85f, 0.f},  {0.6f, 0, 0.95f, 0.05f}};
  DeviceBuffer tok(*gpu, sizeof(int32_t));
  auto ws = workspace(*gpu, 1, 128256);
  int distinct_checks = 0;
  for (int n : {7, 1001, 128256}) {
    // Peaked logits like a language model's: a few large, a long tail.
    std::vector<float> logits = random_floats(rng, n, -6.f, 4.f);
    for (int i = 0; i < std::min(n, 20); ++i) logits[rng() % n] += 6.f;
    auto dl = to_device(*gpu, logits);
    for (const Params& p : params) {
      for (int rep = 0; rep < 8; ++rep) {
        const float u = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
        gpu->check(gpu->api().sample(dl->as<float>(), n, p.temp, p.top_k, p.top_p, p.min_p, u, tok.as<int32_t>(),
                                     ws->get(), ws->bytes(), nullptr),
                   "sample");
        const int got = tok.download<int32_t>(1)[0];
        const int want = sample_ref(logits, p.temp, p.top_k, p.top_p, p.min_p, u);
        EXPECT_EQ(got, want) << "n " << n << " T " << p.temp << " k " << p.top_k << " p " << p.top_p << " min_p "
                             << p.min_p << " u " << u;
        ++distinct_checks;
      }
    }
  }
  EXPECT_GT(distinct_checks, 100);
}

// sample_rows: every row of a [rows][n] batch, each with its own parameters, against the sort-based
// reference on that row (a batched decode step's sampling in one launch).
// The mix with a top-k beyond the scan's (2000) takes the separate launches for all its other rows;
// without it those rows take sampling_whole.hip's one launch, at each of its sizes where forced.
TEST(GpuSampling, RowsEachMatchTheReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  struct Mix { int rows; bool wide_top_k; const char* whole; };
  for (const Mix mix : {Mix{13, true, ""}, Mix{13, false, ""}, Mix{13, false, "0"}, Mix{13, false, "16"},
                        Mix{40, false, "32"}})
  for (int n : {7, 32003}) {
    SCOPED_TRACE(std::string("ROCFORGE_GPU_SAMPLE_WHOLE=") + mix.whole + (mix.wide_top_k ? ", top-k 2000 rows" : ""));
    if (*mix.whole) setenv("ROCFORGE_GPU_SAMPLE_WHOLE", mix.whole, 1);
    else unsetenv("ROCFORGE_GPU_SAMPLE_WHOLE");
    const int rows = mix.rows;
    std::vector<float> logits = random_floats(rng, static_cast<size_t>(rows) * n, -6.f, 4.f);
    for (int i = 0; i < 20 * rows; ++i) logits[rng() % logits.size()] += 6.f;
    std::vector<rf_sample_row> params(rows);
    for (int r = 0; r < rows; ++r) {
      const float u = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
      switch (r % 6) {
        case 0: params[r] = {0.f, 0, 1.f, 0.f, u}; break;        // greedy
        case 1: params[r] = {1.f, 0, 0.9f, 0.f, u}; break;       // top-p over the vocabulary
        case 2: params[r] = {0.8f, 40, 1.f, 0.05f, u}; break;    // top-k + min-p
        case 3: params[r] = {1.f, mix.wide_top_k ? 2000 : 0, 0.7f, 0.f, u}; break;  // top-k beyond the fast path
        case 4: params[r] = {0.9f, 50, 0.95f, 0.f, u}; break;    // top-k + top-p
        default: params[r] = {1.3f, 0, 1.f, 0.f, u}; break;      // plain temperature
      }
    }
    auto dl = to_device(*gpu, logits);
    auto dp = to_device(*gpu, params);
    auto ws = workspace(*gpu, rows, n);
    DeviceBuffer tok(*gpu, rows * sizeof(int32_t));
    // With the host copy of the parameters (launches no row needs skipped) and without (all run).
    for (const rf_sample_row* h_rows : {static_cast<const rf_sample_row*>(params.data()),
                                        static_cast<const rf_sample_row*>(nullptr)}) {
      tok.poison();
      gpu->check(gpu->api().sample_rows(dl->as<float>(), n, rows, dp->as<rf_sample_row>(), h_rows, tok.as<int32_t>(),
                                        ws->get(), ws->bytes(), nullptr),
                 "sample_rows");
      const auto got = tok.download<int32_t>(rows);
      for (int r = 0; r < rows; ++r) {
        const std::vector<float> row(logits.begin() + static_cast<size_t>(r) * n,
                                     logits.begin() + static_cast<size_t>(r + 1) * n);
        const rf_sample_row& p = params[r];
        const int want = p.temperature <= 0.f ? static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin())
                                              : sample_ref(row, p.temperature, p.top_k, p.top_p, p.min_p, p.u);
        EXPECT_EQ(got[r], want) << "n " << n << " row " << r << (h_rows ? " (host rows)" : "");
      }
    }
  }
  unsetenv("ROCFORGE_GPU_SAMPLE_WHOLE");
}

struct LogitsCase {
  const char* what;
  std::vector<float> logits;
};
struct FilterParams {
  float temp;
  int top_k;
  float top_p;
  float min_p;
};

// Every case under every parameter set, `reps` fresh u each: the device's token is the reference's.
void expect_cases_match_reference(const device::GpuBackend& gpu, std::mt19937& rng, const std::vector<LogitsCase>& cases,
                                  const std::vector<FilterParams>& params, int reps) {
  const int n = static_cast<int>(cases.front().logits.size());
  DeviceBuffer tok(gpu, sizeof(int32_t));
  auto ws = workspace(gpu, 1, n);
  for (const LogitsCase& c : cases) {
    auto dl = to_device(gpu, c.logits);
    for (const FilterParams& p : params) {
      for (int rep = 0; rep < reps; ++rep) {
        const float u = std::uniform_real_distribution<float>(0.f, 1.f)(rng);
        gpu.check(gpu.api().sample(dl->as<float>(), n, p.temp, p.top_k, p.top_p, p.min_p, u, tok.as<int32_t>(),
                                   ws->get(), ws->bytes(), nullptr),
                  "sample");
        EXPECT_EQ(tok.download<int32_t>(1)[0], sample_ref(c.logits, p.temp, p.top_k, p.top_p, p.min_p, u))
            << c.what << " T " << p.temp << " k " << p.top_k << " p " << p.top_p << " min_p " << p.min_p << " u " << u;
      }
    }
  }
}

// Logits a grammar mask or a flat model produce: most entries -inf (ties at the k-th value with no
// mass), coarse values with thousands of equal ones (ties with mass beyond the shared-memory finish),
// and a spread where candidates without mass at temperature 1 still carry weight at a higher one.
TEST(GpuSampling, TiesAndMaskedLogitsMatchTheReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n = 50021;
  std::vector<LogitsCase> cases;
  {
    std::vector<float> l = random_floats(rng, n, -3.f, 3.f);
    for (float& v : l)
      if (rng() % 100 < 97) v = -INFINITY;
    cases.push_back({"masked", l});
  }
  {
    std::vector<float> l = random_floats(rng, n, -2.f, 2.f);
    for (float& v : l) v = std::round(v * 2.f) / 2.f;  // 9 distinct values
    cases.push_back({"coarse", l});
  }
  cases.push_back({"flat", std::vector<float>(n, 1.5f)});
  // Spread so wide that much of the top-k set has no mass at temperature 1 but weight at 3.
  cases.push_back({"wide", random_floats(rng, n, -80.f, 10.f)});
  expect_cases_match_reference(*gpu, rng, cases,
                               {{1.f, 40, 1.f, 0.f}, {0.7f, 40, 0.9f, 0.f}, {1.f, 1500, 0.8f, 0.f},
                                {1.f, 0, 0.6f, 0.f}, {1.f, 0, 1.f, 0.3f}, {0.5f, 3, 1.f, 0.f},
                                {3.f, 300, 1.f, 0.f}, {3.f, 0, 1.f, 0.f}, {2.f, 2000, 0.99f, 0.f}},
                               3);
}

// Rows without a top-k (OpenAI-style requests: temperature, top-p, min-p) in sampling_whole.hip's
// one launch with 8, 16 and 32 entries a thread, and in the separate launches it replaces: a peaked
// row, one whose nucleus is most of the vocabulary, ties, masked entries, a threshold bin too full
// to gather, and sizes that leave the last block or thread partly empty.
TEST(GpuSampling, RowsWithoutTopKMatchTheReferenceOnEitherPath) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int n : {1, 2049, 128256}) {
    std::vector<LogitsCase> cases;
    {
      std::vector<float> l = random_floats(rng, n, -6.f, 4.f);
      for (int i = 0; i < std::min(n, 20); ++i) l[rng() % n] += 6.f;
      cases.push_back({"peaked", l});
    }
    cases.push_back({"noise", random_floats(rng, n, -0.05f, 0.05f)});
    {
      std::vector<float> l = random_floats(rng, n, -2.f, 2.f);
      for (float& v : l) v = rng() % 10 < 3 ? -INFINITY : std::round(v * 4.f) / 4.f;
      cases.push_back({"coarse, masked", l});
    }
    {
      // Most entries distinct within 0.01 at the top, the rest 27 below: the threshold's distance
      // bin holds far more than the gather takes, so key bins narrow it.
      std::vector<float> l(n, -27.f);
      for (int i = 0; i < n * 4 / 5; ++i) l[rng() % n] = 0.01f * std::uniform_real_distribution<float>(0.f, 1.f)(rng);
      cases.push_back({"dense at the top", l});
    }
    for (const char* whole : {"0", "8", "16", "32"}) {
      SCOPED_TRACE(std::string("n ") + std::to_string(n) + ", ROCFORGE_GPU_SAMPLE_WHOLE=" + whole);
      setenv("ROCFORGE_GPU_SAMPLE_WHOLE", whole, 1);
      expect_cases_match_reference(*gpu, rng, cases,
                                   {{1.f, 0, 0.9f, 0.f}, {0.7f, 0, 0.95f, 0.f}, {1.f, 0, 1.f, 0.f},
                                    {1.3f, 0, 1.f, 0.05f}, {0.8f, 0, 0.5f, 0.1f}, {2.f, 0, 0.99f, 0.f},
                                    {1.f, 0, 0.01f, 0.f}},
                                   3);
    }
  }
  unsetenv("ROCFORGE_GPU_SAMPLE_WHOLE");
}

// Top-k around the one-wave finish and the per-thread bound's limits (k = 64 / 65, 256 / 257),
// with the row's largest entries packed into one 2048-entry chunk (a block holding most of the
// top-k set, as a vocabulary's frequent low ids do) and with ties at the k-th value.
TEST(GpuSampling, TopKAtTheFastPathsLimitsMatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n = 128256;
  std::vector<LogitsCase> cases;
  {
    std::vector<float> l = random_floats(rng, n, -6.f, 4.f);
    const int at = 2048 * static_cast<int>(rng() % 60);
    for (int i = 0; i < 300; ++i) l[at + static_cast<int>(rng() % 2048)] += 6.f + 0.01f * static_cast<float>(i);
    cases.push_back({"clustered", l});
  }
  {
    std::vector<float> l = random_floats(rng, n, -6.f, 4.f);
    std::vector<float> sorted = l;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const float v = sorted[49];  // 30 more entries equal to the 50th largest: ties across k = 40..79
    for (int i = 0; i < 30; ++i) l[rng() % n] = v;
    cases.push_back({"tied", l});
  }
  expect_cases_match_reference(*gpu, rng, cases,
                               {{0.8f, 40, 0.95f, 0.05f}, {1.f, 1, 1.f, 0.f}, {1.f, 2, 0.9f, 0.f},
                                {0.7f, 50, 1.f, 0.f}, {1.f, 63, 0.95f, 0.f}, {1.f, 64, 0.9f, 0.f},
                                {1.2f, 65, 0.95f, 0.f}, {1.f, 100, 0.9f, 0.f}, {2.f, 256, 1.f, 0.f},
                                {2.f, 257, 0.99f, 0.f}, {0.8f, 40, 1.f, 0.3f}},
                               4);
}

// Two streams sampling rows without a top-k at the same moment, each call sized so its blocks
// fill most of the device: the one-launch sampler's blocks wait for each other, so two of its
// launches sharing the device could wait forever on blocks that never become resident. One stream
// a device may run it (whole_claim: here the first lane; the legacy null stream the other tests use
// needs no claim); both streams' tokens must be the reference's, and the calls must finish (a
// watchdog fails the test instead of hanging it).
TEST(GpuSampling, TwoStreamsAtOnceFinishWithTheReferenceTokens) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  unsetenv("ROCFORGE_GPU_SAMPLE_WHOLE");
  const auto& api = gpu->api();
  const int n = 128256;
  // The most rows one launch of the widest entries-a-thread still takes in one go.
  int rows = 1;
  while (rows < 256) {
    std::vector<rf_sample_row> probe(rows * 2, rf_sample_row{1.f, 0, 0.9f, 0.f, 0.5f});
    if ((api.sample_launches(probe.data(), rows * 2, n) >> 5) == 0) break;
    rows *= 2;
  }
  SCOPED_TRACE("rows a call " + std::to_string(rows));
  struct Lane {
    rf_stream s = nullptr;
    std::vector<float> logits;
    std::vector<rf_sample_row> params;
    std::unique_ptr<DeviceBuffer> dl, dp, ws;
    std::unique_ptr<DeviceBuffer> tok;
  };
  Lane lanes[2];
  for (Lane& L : lanes) {
    gpu->check(api.stream_create(&L.s), "stream");
    L.logits = random_floats(rng, static_cast<size_t>(rows) * n, -6.f, 4.f);
    for (int i = 0; i < 20 * rows; ++i) L.logits[rng() % L.logits.size()] += 6.f;
    for (int r = 0; r < rows; ++r)
      L.params.push_back({r % 2 ? 0.8f : 1.f, 0, r % 3 ? 0.9f : 1.f, 0.f,
                          std::uniform_real_distribution<float>(0.f, 1.f)(rng)});
    L.dl = to_device(*gpu, L.logits);
    L.dp = to_device(*gpu, L.params);
    L.ws = workspace(*gpu, rows, n);
    L.tok = std::make_unique<DeviceBuffer>(*gpu, rows * sizeof(int32_t));
    L.tok->poison();
  }
  // Calls alternate between the streams without waiting, so they overlap on the device.
  constexpr int kCalls = 24;
  for (int c = 0; c < kCalls; ++c)
    for (Lane& L : lanes)
      gpu->check(api.sample_rows(L.dl->as<float>(), n, rows, L.dp->as<rf_sample_row>(), L.params.data(),
                                 L.tok->as<int32_t>(), L.ws->get(), L.ws->bytes(), L.s),
                 "sample_rows");
  auto done = std::async(std::launch::async, [&] {
    int rc = 0;
    for (Lane& L : lanes) rc |= api.stream_sync(L.s);
    return rc;
  });
  if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    ADD_FAILURE() << "two streams' sampling calls did not finish within 60 s (blocks waiting on each other)";
    std::fflush(nullptr);
    std::_Exit(1);  // the device is stuck: nothing after this could run
  }
  ASSERT_EQ(done.get(), 0) << api.last_error();
  for (Lane& L : lanes) {
    const auto got = L.tok->download<int32_t>(rows);
    for (int r = 0; r < rows; ++r) {
      const std::vector<float> row(L.logits.begin() + static_cast<size_t>(r) * n,
                                   L.logits.begin() + static_cast<size_t>(r + 1) * n);
      const rf_sample_row& p = L.params[r];
      EXPECT_EQ(got[r], sample_ref(row, p.temperature, p.top_k, p.top_p, p.min_p, p.u)) << "row " << r;
    }
    gpu->check(api.stream_destroy(L.s), "stream destroy");
  }
}

TEST(GpuSampling, BadParametersAreErrors) {
  ROCFORGE_REQUIRE_GPU(gpu);
  DeviceBuffer buf(*gpu, 64);
  auto ws = workspace(*gpu, 1, 4);
  EXPECT_NE(gpu->api().sample(buf.as<float>(), 4, 1.f, 0, 1.f, 0.f, 1.5f, buf.as<int32_t>(), ws->get(), ws->bytes(),
                              nullptr),
            0);
  EXPECT_NE(std::string(gpu->api().last_error()).find("u ="), std::string::npos);
  EXPECT_NE(gpu->api().sample(buf.as<float>(), 0, 1.f, 0, 1.f, 0.f, 0.5f, buf.as<int32_t>(), ws->get(), ws->bytes(),
                              nullptr),
            0);
  // A workspace too small for the vocabulary is named, not overrun.
  EXPECT_NE(gpu->api().sample(buf.as<float>(), 100000, 1.f, 0, 1.f, 0.f, 0.5f, buf.as<int32_t>(), ws->get(),
                              ws->bytes(), nullptr),
            0);
  EXPECT_NE(std::string(gpu->api().last_error()).find("workspace"), std::string::npos);
}

}  // namespace
}  // namespace rocforge::test
