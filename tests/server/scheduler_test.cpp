// The scheduler without HTTP: what goes into each batched step.
#include <map>

#include "engine/gpu_engine_support.h"
#include "engine/kv_pool.h"
#include "rocforge/engine.h"
#include "server/scheduler.h"
#include "test_support.h"

namespace rocforge::server {
namespace {

std::unique_ptr<Engine> load(const std::filesystem::path& model, int n_batch) {
  EngineOptions o;
  o.model_path = model.string();
  o.device = "cpu";  // batched and solo decoding compared token for token (server_fixture.h says why)
  o.n_threads = 1;
  o.ctx_size = 512;
  o.n_parallel = 4;
  o.n_batch = n_batch;
  return Engine::load(o);
}

std::shared_ptr<RequestState> request(std::vector<int32_t> prompt, int max_tokens) {
  auto r = std::make_shared<RequestState>();
  r->prompt = std::move(prompt);
  r->params.sampling = SamplingParams::greedy();
  r->params.max_tokens = max_tokens;
  r->params.ignore_eos = true;
  return r;
}

std::vector<int32_t> long_prompt(const Tokenizer& tok) {
  std::string text;
  for (int i = 0; i < 12; ++i) text += "The little dog ran to the park and played with a ball. ";
  return tok.encode(text, true);
}

TEST(Scheduler, LongPromptIsChunkedAndInterleavedWithDecoding) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  constexpr int kBatch = 16;
  auto e = load(model, kBatch);
  const auto a_prompt = e->tokenizer().encode("Once upon a time", true);
  const auto b_prompt = long_prompt(e->tokenizer());
  ASSERT_GT(b_prompt.size(), 8u * kBatch);

  // Solo references (on their own engine: a shared one would serve B's prompt from the prefix cache).
  std::string a_ref, b_ref;
  {
    auto e_ref = load(model, kBatch);
    Metrics m;
    Scheduler s(*e_ref, m, {});
    auto a = request(a_prompt, 150), b = request(b_prompt, 20);
    ASSERT_TRUE(s.submit(a));
    a_ref = a->wait_all();
    ASSERT_TRUE(s.submit(b));
    b_ref = b->wait_all();
  }

  // Together: B arrives while A decodes.
  std::mutex mu;
  std::vector<std::map<const RequestState*, int32_t>> steps;
  SchedulerOptions so;
  so.on_step = [&](const auto& items) {
    std::lock_guard lk(mu);
    steps.emplace_back(items.begin(), items.end());
  };
  Metrics m;
  Scheduler s(*e, m, so);
  auto a = request(a_prompt, 150), b = request(b_prompt, 20);
  ASSERT_TRUE(s.submit(a));
  for (;;) {  // wait until A is decoding
    std::lock_guard lk(a->m);
    if (a->n_generated >= 2) break;
  }
  ASSERT_TRUE(s.submit(b));
  const std::string b_text = b->wait_all();
  const std::string a_text = a->wait_all();
  EXPECT_EQ(a_text, a_ref);
  EXPECT_EQ(b_text, b_ref);

  int b_prefill_steps = 0, shared = 0;
  size_t b_prefilled = 0;
  for (const auto& st : steps) {
    int32_t total = 0;
    for (const auto& [r, n] : st) total += n;
    EXPECT_LE(total, kBatch);  // the token budget holds
    auto ib = st.find(b.get());
    if (ib != st.end() && ib->second > 1) {
      ++b_prefill_steps;
      b_prefilled += ib->second;
      // A's decode token rides in the same step: streams do not stall during a long prefill.
      auto ia = st.find(a.get());
      if (ia != st.end() && ia->second == 1) ++shared;
    }
  }
  EXPECT_EQ(b_prefilled, b_prompt.size());  // the whole prompt, in chunks
  EXPECT_GE(b_prefill_steps, static_cast<int>(b_prompt.size() / kBatch));
  EXPECT_EQ(shared, b_prefill_steps);
  EXPECT_EQ(e->kv_pool().n_used(), 0);
}

TEST(Scheduler, CancelledRequestReleasesItsBlocks) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto e = load(model, 64);
  Metrics m;
  SchedulerOptions so;
  Scheduler s(*e, m, so);
  const auto p = e->tokenizer().encode("Once upon a time", true);
  auto a = request(p, 100000);  // runs until the context is full unless cancelled
  ASSERT_TRUE(s.submit(a));
  for (;;) {
    std::lock_guard lk(a->m);
    if (a->n_generated >= 3) break;
  }
  EXPECT_GT(e->kv_pool().n_used(), 0);  // read racily, but blocks are certainly held now
  a->cancelled = true;
  s.notify();
  a->wait_all();
  {
    std::lock_guard lk(a->m);
    EXPECT_EQ(a->finish_reason, "cancelled");
    EXPECT_LT(a->n_generated, 500);
  }
  // The scheduler updates its stats after the step in which it dropped the request.
  for (int i = 0; i < 1000 && s.stats().kv_blocks_used != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(s.stats().kv_blocks_used, 0);
  EXPECT_EQ(s.stats().kv_blocks_free, s.stats().kv_blocks_total);
}

// A lone stream on a GPU chains decode steps (--chain-decode: Engine::step_sample_chain, 8 a launch): the same
// text, finish reason and token count as one step at a time (ROCFORGE_GPU_CHAIN=1), greedy,
// seeded and seeded with penalties, with a token budget that is no multiple of the chain and a stop string inside one; and
// fewer scheduler steps. SKIPPED without a GPU.
TEST(Scheduler, LoneStreamChainsDecodeStepsOnGpu) {
  std::string why;
  if (!test::have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  struct Out {
    std::vector<std::string> text, reason;
    std::vector<int32_t> n;
    uint64_t steps = 0;
  };
  auto run = [&](const char* chain) {
    auto e = test::load_gpu_chained(model, chain, 512, 4);
    Out out;
    Metrics m;
    SchedulerOptions so;
    so.chain_decode = true;
    Scheduler s(*e, m, so);
    auto greedy = request(e->tokenizer().encode("Once upon a time", true), 45);
    auto seeded = request(e->tokenizer().encode("The little dog", true), 45);
    seeded->params.sampling.temperature = 0.9f;
    seeded->params.sampling.top_k = 40;
    seeded->params.sampling.seed = 5;
    auto stopped = request(e->tokenizer().encode("Lily wanted to", true), 60);
    stopped->params.stop = {"."};
    auto penalized = request(e->tokenizer().encode("The little dog", true), 45);  // counted on the device
    penalized->params.sampling = seeded->params.sampling;
    penalized->params.sampling.frequency_penalty = 0.5f;
    penalized->params.sampling.presence_penalty = 0.3f;
    for (const auto& r : {greedy, seeded, stopped, penalized}) {
      EXPECT_TRUE(s.submit(r));
      out.text.push_back(r->wait_all());
      out.reason.push_back(r->finish_reason);
      out.n.push_back(r->n_generated);
    }
    out.steps = s.stats().steps;
    return out;
  };
  const Out single = run("1"), chained = run("8");
  EXPECT_EQ(chained.text, single.text);
  EXPECT_EQ(chained.reason, single.reason);
  EXPECT_EQ(chained.n, single.n);
  EXPECT_EQ(single.n[0], 45);
  EXPECT_EQ(single.reason[2], "stop");
  EXPECT_NE(single.text[3], single.text[1]) << "the penalties changed nothing";
  EXPECT_LT(chained.steps + 60, single.steps) << single.steps << " steps one at a time";
}

}  // namespace
}  // namespace rocforge::server
