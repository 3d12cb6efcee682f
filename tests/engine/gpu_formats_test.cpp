// Synthetic models of every weight format on the GPU against the CPU backend (issue: "synth models
// of every weight format: next-token logits within tolerance of the CPU backend"). Fresh random
// weights are not needed for this: synth is deterministic per seed, and what is compared is two
// backends on the same file. SKIPPED where no GPU exists.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gpu/backend_api.h"
#include "model/batch.h"
#include "model/executor.h"
#include "rocforge/device.h"
#include "rocforge/engine.h"
#include "gpu_engine_support.h"
#include "test_support.h"
#include "tools/synth.h"

namespace rocforge {
namespace {

using test::have_gpu;

std::unique_ptr<Engine> load(const std::filesystem::path& model, const std::string& dev, KvType kv = KvType::F16,
                             int ctx = 256) {
  EngineOptions o;
  o.model_path = model.string();
  o.device = dev;
  o.kv_type = kv;
  o.gpu_layers = dev == "gpu" ? -1 : 0;
  o.ctx_size = ctx;
  o.n_threads = 2;
  return Engine::load(o);
}

using test::rel_rms;

// One step of `batch` through both executors: logits a few percent apart at most (relative RMS).
void expect_step_agrees(Engine& cpu, Engine& gpu, const Batch& batch, const std::string& what) {
  std::vector<float> lc, lg;
  cpu.executor().forward(batch, lc);
  gpu.executor().forward(batch, lg);
  ASSERT_EQ(lc.size(), lg.size()) << what;
  EXPECT_LT(rel_rms(lc, lg), 3e-2) << what;
}

struct Case {
  const char* preset;
  const char* type;
};

using test::synth_file;

// Several sequences per step (the server's batches), straight through both executors on blocks of
// their own: a prompt of three sequences, decode steps of three, then of two (one finished). On the
// GPU those steps take the several-row fusions and, on sm_90, the staged multi-token matvec.
void multi_sequence_steps(Engine& cpu, Engine& gpu) {
  const std::vector<std::vector<int32_t>> prompts = {cpu.tokenizer().encode("Once upon a time", true),
                                                     cpu.tokenizer().encode("The little cat sat on the mat", true),
                                                     cpu.tokenizer().encode("A", true)};
  const int bs = gpu.executor().kv_config().block_size;
  const int per_seq = 64 / bs + 1;
  std::vector<std::vector<int32_t>> tables(prompts.size());
  for (size_t sq = 0; sq < prompts.size(); ++sq)
    for (int k = 0; k < per_seq; ++k) tables[sq].push_back(static_cast<int32_t>(sq) * per_seq + k);
  auto step = [&](const Batch& batch, const std::string& what) { expect_step_agrees(cpu, gpu, batch, what); };
  Batch p;
  p.block_tables = tables;
  std::vector<int32_t> pos(prompts.size());
  for (size_t sq = 0; sq < prompts.size(); ++sq)
    for (size_t i = 0; i < prompts[sq].size(); ++i)
      p.add(prompts[sq][i], pos[sq]++, static_cast<int32_t>(sq), i + 1 == prompts[sq].size());
  step(p, "three-sequence prompt");
  for (int k = 0; k < 4; ++k) {
    const int n = k < 2 ? 3 : 2;
    Batch d;
    d.block_tables = tables;
    for (int sq = 0; sq < n; ++sq) d.add(300 + 10 * sq + k, pos[sq]++, sq, true);
    step(d, std::to_string(n) + "-sequence decode " + std::to_string(k));
  }
}

// Decode steps of many sequences (a server at 9+ streams) after a prompt step of two tokens each,
// straight through both executors, one cache block per sequence. On NVIDIA they run on the
// tensor-core kernel (matmul_mma, up to 64 tokens); ctest gpu_engine_amd_batches runs this with AMD's
// kernels and policy on the same device (ROCFORGE_GPU_MMA_MAX=0 ROCFORGE_GPU_BLAS=0
// ROCFORGE_MV_STAGED=0): 20 tokens on the int8 matvecs in chunks, 56 on the matrix-unit GEMM.
TEST(GpuEngine, ManySequenceDecodeStepsAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  // q3_k and iq4_xs: the staged tensor-core kernel's 4-byte shifted and 8-byte copies.
  for (const char* type : {"q4_k", "q8_0", "q4_0", "f16", "q3_k", "iq4_xs"}) {
    SCOPED_TRACE(type);
    const std::string path = synth_file(dir, std::string("tiny-") + type + "-many.gguf", "tiny", type, vocab);
    auto cpu = load(path, "cpu", KvType::F16, 1024);
    auto gpu = load(path, "gpu", KvType::F16, 1024);
    ASSERT_GE(gpu->executor().kv_config().block_size, 4);  // a sequence's 4 positions in its one block
    ASSERT_GE(gpu->executor().kv_config().n_blocks, 56);
    for (int n_seq : {20, 56}) {
      SCOPED_TRACE(std::to_string(n_seq) + " sequences");
      std::vector<std::vector<int32_t>> tables(n_seq);
      for (int sq = 0; sq < n_seq; ++sq) tables[sq] = {sq};
      auto step = [&](const Batch& batch, const std::string& what) { expect_step_agrees(*cpu, *gpu, batch, what); };
      Batch p;
      p.block_tables = tables;
      for (int sq = 0; sq < n_seq; ++sq)
        for (int i = 0; i < 2; ++i) p.add(100 + 7 * sq + i, i, sq, i == 1);
      step(p, "prompt step");
      for (int k = 0; k < 2; ++k) {
        Batch d;
        d.block_tables = tables;
        for (int sq = 0; sq < n_seq; ++sq) d.add(300 + 3 * sq + k, 2 + k, sq, true);
        step(d, "decode step " + std::to_string(k));
      }
    }
    std::filesystem::remove(path);
  }
}

TEST(GpuEngine, SynthModelsOfEveryFormatAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  std::vector<Case> cases;
  for (const char* t : {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
                        "q6_k", "iq4_nl", "iq4_xs", "mxfp4", "q4_k_m", "q3_k_m"})
    cases.push_back({"tiny", t});
  cases.push_back({"qwen3-tiny", "q8_0"});  // q/k norms, head_dim 128 != dim / heads
  cases.push_back({"moe-tiny", "q4_k"});    // routing and experts on the device, graphed decode
  cases.push_back({"moe-tiny", "f16"});     // experts without an int8 path (float activations)
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.preset) + " " + c.type);
    const std::string path = synth_file(dir, std::string(c.preset) + "-" + c.type + ".gguf", c.preset, c.type, vocab);
    auto cpu = load(path, "cpu");
    auto gpu = load(path, "gpu");
    const auto prompt = cpu->tokenizer().encode("The quick brown fox jumps over the lazy dog", true);
    Generator gc(*cpu, SamplingParams::greedy()), gg(*gpu, SamplingParams::greedy());
    // Prompt (GPU: f16 GEMM, CPU: int8 panel), then decode steps (int8 activations on both, in
    // different block sizes for the K-quants): a few percent apart at most.
    EXPECT_LT(rel_rms(gc.feed(prompt), gg.feed(prompt)), 3e-2) << "prompt";
    for (int32_t tok : {300, 301}) EXPECT_LT(rel_rms(gc.feed({tok}), gg.feed({tok})), 3e-2) << "decode " << tok;
    multi_sequence_steps(*cpu, *gpu);
    std::filesystem::remove(path);
  }
}

// Long contexts: a 700-token prompt (the prefill attention's several query and key tiles, on the
// matrix units where they serve) and decode steps at positions 700-702 (graphed; contexts past 256
// split over several blocks: the matrix-unit decode kernel), head_dim 64 (tiny) and 128
// (qwen3-tiny), F16 and Q8_0 caches (the Q8_0 decode step's own row quantized by the attention
// launch), against the CPU backend.
TEST(GpuEngine, LongContextsAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  for (const char* preset : {"tiny", "qwen3-tiny"}) {
    SCOPED_TRACE(preset);
    const std::string path = synth_file(dir, std::string(preset) + "-long.gguf", preset, "q8_0", vocab);
    for (KvType kv : {KvType::F16, KvType::Q8_0}) {
      SCOPED_TRACE(kv == KvType::F16 ? "f16 cache" : "q8_0 cache");
      auto cpu = load(path, "cpu", kv, 1024);
      auto gpu = load(path, "gpu", kv, 1024);
      std::vector<int32_t> prompt = {cpu->tokenizer().bos_id()};
      for (int i = 0; static_cast<int>(prompt.size()) < 700; ++i) prompt.push_back(100 + (i * 53) % 900);
      Generator gc(*cpu, SamplingParams::greedy()), gg(*gpu, SamplingParams::greedy());
      EXPECT_LT(rel_rms(gc.feed(prompt), gg.feed(prompt)), 3e-2) << "700-token prompt";
      for (int32_t tok : {300, 301, 302}) EXPECT_LT(rel_rms(gc.feed({tok}), gg.feed({tok})), 3e-2) << "decode " << tok;
    }
    std::filesystem::remove(path);
  }
}

// MoE prompt chunks of 16 tokens and more multiply each expert once over the tokens routed to it
// (routing to the host, slots sorted by expert, gather / per-expert GEMM / scatter): a 300-token
// prompt (chunks of 256 and 44 tokens: ~128 and ~22 tokens an expert, i.e. cuBLAS slices and the
// tensor-core kernel) and a 20-token one, against the CPU backend and against the slot-by-slot path
// (ROCFORGE_GPU_MOE_GROUPED=0), with int8 (Q4_K) and float (F16) experts; decode after each. The
// grouped path is forced (=2): by default it is taken only for experts larger than an L2 cache.
TEST(GpuEngine, MoePromptsGroupedByExpertAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  for (const char* type : {"q4_k", "f16"}) {
    SCOPED_TRACE(type);
    const std::string path = synth_file(dir, std::string("moe-tiny-grouped-") + type + ".gguf", "moe-tiny", type, vocab);
    auto cpu = load(path, "cpu", KvType::F16, 1024);
    ::setenv("ROCFORGE_GPU_MOE_GROUPED", "2", 1);  // moe-tiny's experts are small: force the grouped path
    auto grouped = load(path, "gpu", KvType::F16, 1024);
    ::setenv("ROCFORGE_GPU_MOE_GROUPED", "0", 1);
    auto slots = load(path, "gpu", KvType::F16, 1024);
    ::unsetenv("ROCFORGE_GPU_MOE_GROUPED");
    std::vector<int32_t> long_prompt = {cpu->tokenizer().bos_id()};
    for (int i = 0; static_cast<int>(long_prompt.size()) < 300; ++i) long_prompt.push_back(100 + (i * 37) % 800);
    std::vector<int32_t> short_prompt(long_prompt.begin(), long_prompt.begin() + 20);
    for (const auto* prompt : {&long_prompt, &short_prompt}) {
      SCOPED_TRACE(std::to_string(prompt->size()) + "-token prompt");
      Generator gc(*cpu, SamplingParams::greedy()), gg(*grouped, SamplingParams::greedy()),
          gs(*slots, SamplingParams::greedy());
      const auto lc = gc.feed(*prompt), lg = gg.feed(*prompt), ls = gs.feed(*prompt);
      EXPECT_LT(rel_rms(lc, lg), 3e-2) << "grouped against the CPU";
      EXPECT_LT(rel_rms(ls, lg), 3e-2) << "grouped against slot by slot";
      EXPECT_NE(lg, ls) << "the switch took effect (other kernels, other roundings)";
      EXPECT_LT(rel_rms(gc.feed({300}), gg.feed({300})), 3e-2) << "decode after the prompt";
    }
    std::filesystem::remove(path);
  }
}

// A Q8_0 K/V cache on the GPU (--kv-type q8_0: int8 rows + an f16 scale per 32 values, read by the
// decode and prefill attention kernels) against the CPU backend's Q8_0 cache on the same file: the
// same few-percent budget as the f16 cache, over a prompt of several attention tiles and graphed
// decode steps, then two-sequence steps (the server's batches). The GPU's Q8_0 logits must also
// differ from its f16 cache's (the type took effect).
TEST(GpuEngine, Q8CacheAgreesWithCpuQ8Cache) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  const std::string path = synth_file(dir, "tiny-q8_0-kvq8.gguf", "tiny", "q8_0", vocab);  // head_dim 64
  auto cpu = load(path, "cpu", KvType::Q8_0);
  auto gpu = load(path, "gpu", KvType::Q8_0);
  auto gpu16 = load(path, "gpu", KvType::F16);
  ASSERT_EQ(gpu->executor().kv_config().type, KvType::Q8_0);
  std::string text;
  for (int i = 0; i < 6; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  const auto prompt = cpu->tokenizer().encode(text, true);
  ASSERT_GT(prompt.size(), 64u);  // more than one 64-key tile of the prefill kernel
  Generator gc(*cpu, SamplingParams::greedy()), gg(*gpu, SamplingParams::greedy()), g16(*gpu16, SamplingParams::greedy());
  const std::vector<float> c0 = gc.feed(prompt), q0 = gg.feed(prompt), h0 = g16.feed(prompt);
  EXPECT_LT(rel_rms(c0, q0), 3e-2) << "prompt";
  EXPECT_GT(rel_rms(h0, q0), 1e-6) << "a Q8_0 cache gives other logits than an f16 one";
  for (int32_t tok : {300, 301, 302}) {
    const std::vector<float> c = gc.feed({tok}), q = gg.feed({tok});
    EXPECT_LT(rel_rms(c, q), 3e-2) << "decode " << tok;
  }
  // Two sequences per step (the server's batches: rope_kv_store and attention over both), prompt
  // then decode steps, straight through the executors on blocks of their own.
  const auto a = cpu->tokenizer().encode("Once upon a time", true);
  const auto b = cpu->tokenizer().encode("The little cat sat on the mat and looked at the bird", true);
  const int bs = gpu->executor().kv_config().block_size;
  const int per_seq = (static_cast<int>(b.size()) + 8) / bs + 1;
  std::vector<std::vector<int32_t>> tables(2);
  for (int sq = 0; sq < 2; ++sq)
    for (int k = 0; k < per_seq; ++k) tables[sq].push_back(sq * per_seq + k);
  auto step = [&](const Batch& batch, const char* what) { expect_step_agrees(*cpu, *gpu, batch, what); };
  step(test::two_sequence_prompt(a, b, tables), "two-sequence prompt");
  int32_t na = static_cast<int32_t>(a.size()), nb = static_cast<int32_t>(b.size());
  for (int k = 0; k < 3; ++k)
    step(test::two_sequence_decode(300 + k, na++, 310 + k, nb++, tables), "two-sequence decode");
  std::filesystem::remove(path);
}

// SwiGLU in the gate/up launch (matvec_q8_swiglu, the down projection reading its int8 output) against
// its own launch (ROCFORGE_GPU_SWIGLU_FUSE=0): bit-identical decode logits, with the FFN norm fused
// into the projection and apart. The tiny model's matrices are below the staged kernel's size
// threshold, so it is forced through the backend's switch (the same library the engines load).
TEST(GpuEngine, SwigluEpilogueKeepsDecodeLogits) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  auto backend = device::GpuBackend::load(device::LoadOptions{}, &why);
  ASSERT_TRUE(backend) << why;
  const auto& api = backend->api();
  const auto dir = test::temp_dir();
  const std::string path = synth_file(dir, "tiny-q4_k-swiglu.gguf", "tiny", "q4_k", vocab);
  api.matvec_q8_set_kernel(1);
  // Where the device has no epilogue kernel (below sm_90) both engines run the same launches.
  for (const char* norm : {"1", "0"}) {
    SCOPED_TRACE(std::string("ROCFORGE_GPU_NORM_FUSE=") + norm);
    ::setenv("ROCFORGE_GPU_NORM_FUSE", norm, 1);
    auto fused = load(path, "gpu");
    ::setenv("ROCFORGE_GPU_SWIGLU_FUSE", "0", 1);
    auto apart = load(path, "gpu");
    ::unsetenv("ROCFORGE_GPU_SWIGLU_FUSE");
    ::unsetenv("ROCFORGE_GPU_NORM_FUSE");
    const auto prompt = fused->tokenizer().encode("The quick brown fox jumps over the lazy dog", true);
    Generator gf(*fused, SamplingParams::greedy()), ga(*apart, SamplingParams::greedy());
    (void)gf.feed(prompt);
    (void)ga.feed(prompt);
    for (int32_t tok : {300, 301, 302}) EXPECT_EQ(gf.feed({tok}), ga.feed({tok})) << "decode " << tok;
  }
  api.matvec_q8_set_kernel(-1);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace rocforge
