// The whole model on a GPU (and split CPU+GPU) against the CPU path. SKIPPED where no GPU exists.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "model/batch.h"
#include "engine/kv_pool.h"
#include "model/executor.h"
#include "rocforge/device.h"
#include "rocforge/engine.h"
#include "gpu_engine_support.h"
#include "test_support.h"

namespace rocforge {
namespace {

using test::have_gpu;

std::unique_ptr<Engine> load(const std::filesystem::path& model, const std::string& dev, int gpu_layers) {
  return test::load_engine(model, dev, gpu_layers);
}

std::string greedy_text(Engine& e, int n) {
  Generator g(e, SamplingParams::greedy());
  GenerateOptions go;
  go.max_tokens = n;
  go.ignore_eos = true;
  return g.generate({e.tokenizer().bos_id()}, go).text;
}

TEST(GpuEngine, StoriesGreedyMatchesReferenceOnGpuAndHybrid) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  ROCFORGE_REQUIRE_FIXTURE(text_path, "models/stories260K/greedy_bos_200.txt");
  std::ifstream in(text_path);
  std::stringstream ss;
  ss << in.rdbuf();
  for (int layers : {-1, 2}) {  // all layers on the GPU; 3 on the CPU + 2 on the GPU
    auto e = load(model, "gpu", layers);
    EXPECT_EQ(greedy_text(*e, 200) + "\n", ss.str()) << "gpu_layers " << layers;
  }
}

TEST(GpuEngine, LogitsAgreeWithCpuAcrossBatchShapes) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto cpu = load(model, "cpu", 0);
  auto gpu = load(model, "gpu", -1);
  const auto prompt = cpu->tokenizer().encode("Once upon a time, there was a little dog named Max who liked to run", true);
  Generator gc(*cpu, SamplingParams::greedy()), gg(*gpu, SamplingParams::greedy());
  auto compare = [&](const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += a[i] * a[i];
    EXPECT_LT(std::sqrt(num / den), 2e-2);  // int8 activations on the GPU's decode path
  };
  compare(gc.feed(prompt), gg.feed(prompt));  // prefill (matmul + prefill attention)
  for (int32_t tok : {300, 301, 302}) compare(gc.feed({tok}), gg.feed({tok}));  // decode steps
}

// Several sequences in one step (continuous batching): a two-sequence prompt step, decode steps of
// both sequences (the graphed path: token s belongs to sequence s), and a step with the tokens in the
// other order (the direct path), each against the CPU executor on the same batches.
TEST(GpuEngine, MultiSequenceStepsAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto cpu = load(model, "cpu", 0);
  auto gpu = load(model, "gpu", -1);
  const int bs = gpu->executor().kv_config().block_size;
  ASSERT_EQ(bs, cpu->executor().kv_config().block_size);
  const auto a = cpu->tokenizer().encode("Once upon a time", true);
  const auto b = cpu->tokenizer().encode("The little cat sat on the mat and looked at the bird", true);
  const int per_seq = (static_cast<int>(b.size()) + 8) / bs + 1;
  std::vector<std::vector<int32_t>> tables(2);
  for (int s = 0; s < 2; ++s)
    for (int k = 0; k < per_seq; ++k) tables[s].push_back(s * per_seq + k);
  auto compare = [&](const Batch& batch) {
    std::vector<float> lc, lg;
    cpu->executor().forward(batch, lc);
    gpu->executor().forward(batch, lg);
    ASSERT_EQ(lc.size(), lg.size());
    ASSERT_EQ(lc.size(), static_cast<size_t>(batch.n_logits()) * cpu->n_vocab());
    double num = 0, den = 0;
    for (size_t i = 0; i < lc.size(); ++i) num += (lc[i] - lg[i]) * (lc[i] - lg[i]), den += lc[i] * lc[i];
    EXPECT_LT(std::sqrt(num / den), 2e-2);
  };
  compare(test::two_sequence_prompt(a, b, tables));
  int32_t na = static_cast<int32_t>(a.size()), nb = static_cast<int32_t>(b.size());
  for (int step = 0; step < 3; ++step) compare(test::two_sequence_decode(300 + step, na++, 310 + step, nb++, tables));
  Batch r;  // sequence 1's token first
  r.block_tables = tables;
  r.add(320, nb++, 1, true);
  r.add(321, na++, 0, true);
  compare(r);
}

// The decode step replayed as a captured graph (fixed buffers, attention sized by a length bucket)
// against the same step launched kernel by kernel: same kernels, so the same tokens, across the
// 256-position bucket boundary (the graph is re-captured there).
TEST(GpuEngine, GraphReplayMatchesDirectLaunchesAcrossBuckets) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto graphed = load(model, "gpu", -1);
  ::setenv("ROCFORGE_GPU_GRAPHS", "0", 1);
  auto direct = load(model, "gpu", -1);
  ::unsetenv("ROCFORGE_GPU_GRAPHS");
  auto run = [](Engine& e) {
    Generator g(e, SamplingParams::greedy());
    GenerateOptions go;
    go.max_tokens = 300;
    go.ignore_eos = true;
    return g.generate({e.tokenizer().bos_id()}, go).tokens;
  };
  const auto a = run(*graphed), b = run(*direct);
  ASSERT_EQ(a.size(), 300u);
  EXPECT_EQ(a, b);
}

// Steps whose logits go to the host have the head store them straight into page-locked memory where
// its kernel is an int8 one (here Q8_0); with ROCFORGE_GPU_DIRECT_LOGITS=0, and always for a plain
// F16 / BF16 / F32 head, it writes device memory and a copy follows. The direct engine runs with that
// copy left out (ROCFORGE_GPU_SKIP=32): its logits are right only if the head really stored them. Same
// kernels, so the same bits: a prompt, one- and three-sequence decode steps (graphs with host
// logits), and device-sampled steps in between (graphs of the same shape with device logits). An F16
// head (the copy) agrees with the direct path's rule turned off too.
TEST(GpuEngine, LogitsStoredInHostMemoryMatchCopiedLogits) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-bpe.gguf");
  const auto dir = test::temp_dir();
  for (const char* type : {"q8_0", "f16"}) {
    SCOPED_TRACE(type);
    const std::string path = test::synth_file(dir, std::string("tiny-") + type + ".gguf", "tiny", type, vocab);
    const bool direct_head = std::string(type) == "q8_0";
    if (direct_head) ::setenv("ROCFORGE_GPU_SKIP", "32", 1);
    auto direct = load(path, "gpu", -1);
    ::unsetenv("ROCFORGE_GPU_SKIP");
    ::setenv("ROCFORGE_GPU_DIRECT_LOGITS", "0", 1);
    auto copied = load(path, "gpu", -1);
    ::unsetenv("ROCFORGE_GPU_DIRECT_LOGITS");
    const auto prompt = direct->tokenizer().encode("Once upon a time, there was a little dog", true);
    Generator gd(*direct, SamplingParams::greedy()), gc(*copied, SamplingParams::greedy());
    auto same = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
      ASSERT_EQ(a.size(), b.size()) << what;
      ASSERT_FALSE(a.empty()) << what;
      for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << what << ", logit " << i;
    };
    same(gd.feed(prompt), gc.feed(prompt), "prompt");
    for (int32_t tok : {300, 301, 302}) same(gd.feed({tok}), gc.feed({tok}), "decode step");
    GenerateOptions go;
    go.max_tokens = 4;
    go.ignore_eos = true;
    EXPECT_EQ(gd.generate({303}, go).tokens, gc.generate({303}, go).tokens);  // device sampling between
    for (int32_t tok : {304, 305}) same(gd.feed({tok}), gc.feed({tok}), "decode step after sampling");

    // Three sequences decoding together: three rows of logits in one step.
    const int bs = direct->executor().kv_config().block_size;
    const int base = (static_cast<int>(prompt.size()) + 16) / bs + 1;  // blocks past the first sequence's
    std::vector<std::vector<int32_t>> tables(3);
    for (int s = 0; s < 3; ++s) tables[s] = {base + s};
    for (int step = 0; step < 3 && step < bs; ++step) {
      Batch d;
      d.block_tables = tables;
      for (int s = 0; s < 3; ++s) d.add(310 + 3 * step + s, step, s, true);
      std::vector<float> ld, lc;
      direct->executor().forward(d, ld);
      copied->executor().forward(d, lc);
      ASSERT_EQ(ld.size(), size_t(3) * direct->n_vocab());
      same(ld, lc, "three-sequence step");
    }
  }
}

// A prompt in several chunks whose last chunk's step samples the first token on the device
// (Generator::feed_and_sample): greedy tokens equal the CPU engine's, which samples on the host.
TEST(GpuEngine, PromptChunksWithDeviceSampledFirstTokenMatchCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto run = [&](const std::string& dev) {
    EngineOptions o;
    o.model_path = model.string();
    o.device = dev;
    o.ctx_size = 512;
    o.n_threads = 1;
    o.n_batch = 5;  // the prompt below (18 tokens) is 4 chunks, the last one partial
    auto e = Engine::load(o);
    Generator g(*e, SamplingParams::greedy());
    GenerateOptions go;
    go.max_tokens = 24;
    go.ignore_eos = true;
    const auto prompt = e->tokenizer().encode("Once upon a time there was a little girl named Lily. She loved", true);
    EXPECT_GT(prompt.size(), 15u);
    EXPECT_NE(prompt.size() % 5, 0u);
    GenerateResult r = g.generate(prompt, go);
    r.tokens.push_back(g.n_past());  // and where the sequence ends
    return r.tokens;
  };
  const auto cpu = run("cpu"), gpu = run("gpu");
  ASSERT_EQ(cpu.size(), 25u);
  EXPECT_EQ(gpu, cpu);
}

// Greedy generation with repetition, frequency and presence penalties over the last 16 tokens: the
// GPU counts them on the device (penalize_rows, inside chains of 8 steps), the CPU engine in the host
// Sampler; the same tokens, and other tokens than without the penalties.
TEST(GpuEngine, PenalizedGenerationMatchesCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto run = [&](const std::string& dev, bool penalize) {
    auto e = load(model, dev, -1);
    SamplingParams p = SamplingParams::greedy();
    if (penalize) p.repeat_penalty = 1.3f, p.frequency_penalty = 0.5f, p.presence_penalty = 0.5f, p.penalty_last_n = 16;
    Generator g(*e, p);
    GenerateOptions go;
    go.max_tokens = 48;
    go.ignore_eos = true;
    return g.generate(e->tokenizer().encode("Once upon a time", true), go).tokens;
  };
  const auto cpu = run("cpu", true), gpu = run("gpu", true), plain = run("gpu", false);
  ASSERT_EQ(cpu.size(), 48u);
  EXPECT_EQ(gpu, cpu);
  EXPECT_NE(gpu, plain);
}

// Sampling on the device (temperature, top-k, top-p, min-p): the same seed gives the same tokens,
// another seed other tokens, and every token is a valid id.
TEST(GpuEngine, DeviceSamplingIsDeterministicPerSeed) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto e = load(model, "gpu", -1);
  auto run = [&](uint64_t seed) {
    SamplingParams p;
    p.temperature = 1.0f;
    p.seed = seed;
    Generator g(*e, p);
    GenerateOptions go;
    go.max_tokens = 64;
    go.ignore_eos = true;
    return g.generate({e->tokenizer().bos_id()}, go).tokens;
  };
  const auto a = run(7), b = run(7), c = run(8);
  ASSERT_EQ(a.size(), 64u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (int32_t t : a) EXPECT_TRUE(t >= 0 && t < e->n_vocab()) << t;
}

// Engine::step_sample (the server's batched steps): three sequences' next tokens sampled on the
// device equal the host Sampler's choice from the same step's logits rows and histories: greedy with
// repeat and frequency penalties over the last 8 tokens, temperature 1 with top-k 1 (only the top
// token survives) and a presence penalty over the whole sequence, and plain greedy.
TEST(GpuEngine, BatchedDeviceSamplingMatchesHostRows) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto host = load(model, "gpu", -1), dev = load(model, "gpu", -1);
  const std::vector<std::string> prompts = {"Once upon a time", "The little cat sat on the mat", "Lily"};
  std::vector<KvSequence> sh(3), sd(3);
  std::vector<std::vector<int32_t>> next(3), seen(3);
  for (int s = 0; s < 3; ++s) next[s] = host->tokenizer().encode(prompts[s], true);
  SamplingParams greedy = SamplingParams::greedy(), penalized = greedy, top1;
  penalized.repeat_penalty = 1.5f;
  penalized.frequency_penalty = 0.5f;
  penalized.penalty_last_n = 8;
  top1.temperature = 1.0f;
  top1.top_k = 1;
  top1.top_p = 1.0f;
  top1.min_p = 0.0f;
  top1.presence_penalty = 2.0f;
  top1.penalty_last_n = -1;
  const std::vector<const SamplingParams*> params = {&penalized, &top1, &greedy};
  const int V = host->n_vocab();
  int changed = 0;  // steps where a penalty changed a row's choice: the test must exercise them
  for (int step = 0; step < 12; ++step) {
    std::vector<Engine::Work> wh, wd;
    std::vector<std::span<const int32_t>> histories;
    for (int s = 0; s < 3; ++s) {
      const int32_t n = static_cast<int32_t>(next[s].size());
      ASSERT_TRUE(sh[s].reserve(host->kv_pool(), n) && sd[s].reserve(dev->kv_pool(), n));
      wh.push_back({&sh[s], next[s].data(), n, true});
      wd.push_back({&sd[s], next[s].data(), n, true});
      seen[s].insert(seen[s].end(), next[s].begin(), next[s].end());
    }
    for (int s = 0; s < 3; ++s) histories.emplace_back(seen[s]);
    std::vector<float> logits;
    host->step(wh, logits);
    ASSERT_EQ(logits.size(), size_t(3) * V);
    std::vector<int32_t> ids;
    ASSERT_TRUE(dev->step_sample(wd, params, {0.5f, 0.25f, 0.75f}, histories, ids)) << "step " << step;
    ASSERT_EQ(ids.size(), 3u);
    for (int s = 0; s < 3; ++s) {
      std::vector<float> row(logits.begin() + ptrdiff_t(s) * V, logits.begin() + ptrdiff_t(s + 1) * V);
      const int32_t plain = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      const int32_t want = Sampler(*params[s]).sample(row.data(), V, seen[s]);
      changed += want != plain;
      EXPECT_EQ(ids[s], want) << "step " << step << " sequence " << s;
      EXPECT_EQ(sd[s].n_past, sh[s].n_past);
      next[s] = {want};
    }
  }
  EXPECT_GT(changed, 0) << "no penalty changed a token: the test does not exercise them";
  // Penalties without a history to count: refused, nothing run.
  const int32_t before = sd[0].n_past;
  ASSERT_TRUE(sd[0].reserve(dev->kv_pool(), 1));
  std::vector<int32_t> ids;
  EXPECT_FALSE(dev->step_sample({{&sd[0], next[0].data(), 1, true}}, {&penalized}, {0.5f}, {}, ids));
  EXPECT_EQ(sd[0].n_past, before);
}

// Generation chains decode steps (Executor::forward_sample_steps, up to 8 a launch by default):
// against one step at a time (ROCFORGE_GPU_CHAIN=1) the same tokens, text, stop reason, sequence
// length and history, greedy and seeded, with penalties (a window shorter than a chain, and the
// whole sequence) and without, where generation stops inside a chain (a token budget that
// is no multiple of it, a stop string, the context's end) and on a second turn of the same sequence.
TEST(GpuEngine, ChainedDecodeStepsMatchSingleSteps) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  struct Turn {
    std::vector<int32_t> tokens;
    std::string text;
    int reason;
    int32_t n_past;
    bool operator==(const Turn& o) const {
      return tokens == o.tokens && text == o.text && reason == o.reason && n_past == o.n_past;
    }
  };
  auto run = [&](const char* chain, int* chain_steps) {
    auto e = test::load_gpu_chained(model, chain, 160);
    *chain_steps = e->executor().chain_steps();
    SamplingParams seeded;
    seeded.temperature = 0.9f;
    seeded.top_k = 40;
    seeded.seed = 3;
    SamplingParams penalized = seeded;  // the chain counts its own tokens; last_n 6 < a chain of 8
    penalized.repeat_penalty = 1.3f;
    penalized.frequency_penalty = 0.4f;
    penalized.presence_penalty = 0.2f;
    penalized.penalty_last_n = 6;
    SamplingParams greedy_all = SamplingParams::greedy();  // a window of the whole sequence
    greedy_all.frequency_penalty = 0.3f;
    greedy_all.penalty_last_n = -1;
    std::vector<Turn> turns;
    for (const SamplingParams& p : {SamplingParams::greedy(), seeded, penalized, greedy_all}) {
      Generator g(*e, p);
      auto add = [&](const GenerateResult& r) {
        turns.push_back({r.tokens, r.text, static_cast<int>(r.reason), g.n_past()});
      };
      GenerateOptions a;
      a.max_tokens = 37;
      a.ignore_eos = true;
      add(g.generate(e->tokenizer().encode("Once upon a time", true), a));
      GenerateOptions b;  // a second turn, cut by a stop string
      b.max_tokens = 60;
      b.stop = {"."};
      add(g.generate(e->tokenizer().encode(" Then", false), b));
      GenerateOptions c;  // to the context's end
      c.max_tokens = -1;
      c.ignore_eos = true;
      add(g.generate(e->tokenizer().encode(" The end", false), c));
      turns.push_back({g.history(), "", 0, g.n_past()});
    }
    return turns;
  };
  int single_steps = 0, chained_steps = 0;
  const auto single = run("1", &single_steps), chained = run("8", &chained_steps);
  EXPECT_EQ(single_steps, 0);
  EXPECT_EQ(chained_steps, 8);
  ASSERT_EQ(single.size(), chained.size());
  for (size_t i = 0; i < single.size(); ++i) {
    EXPECT_TRUE(single[i] == chained[i]) << "turn " << i << ": " << single[i].tokens.size() << " tokens / "
                                         << chained[i].tokens.size() << ", reason " << single[i].reason << " / "
                                         << chained[i].reason << ", n_past " << single[i].n_past << " / "
                                         << chained[i].n_past;
  }
  EXPECT_EQ(single[0].tokens.size(), 37u);
  EXPECT_EQ(single[1].reason, static_cast<int>(StopReason::StopString));
  EXPECT_EQ(single[2].reason, static_cast<int>(StopReason::ContextFull));
  EXPECT_EQ(single[2].n_past, 160);
}

}  // namespace
}  // namespace rocforge
