// Synthetic models of every weight format on the GPU against the CPU backend (issue: "synth models
// of every weight format: next-token logits within tolerance of the CPU backend"). Fresh random
// weights are not needed for this: synth is deterministic per seed, and what is compared is two
// backends on the same file. SKIPPED where no GPU exists.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "rocforge/device.h"
#include "rocforge/engine.h"
#include "gpu_engine_support.h"
#include "test_support.h"
#include "tools/synth.h"

namespace rocforge {
namespace {

using test::have_gpu;

std::unique_ptr<Engine> load(const std::filesystem::path& model, const std::string& dev) {
  EngineOptions o;
  o.model_path = model.string();
  o.device = dev;
  o.gpu_layers = dev == "gpu" ? -1 : 0;
  o.ctx_size = 256;
  o.n_threads = 2;
  return Engine::load(o);
}

// Relative RMS of b - a over a.
double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += a[i] * a[i];
  return std::sqrt(num / den);
}

struct Case {
  const char* preset;
  const char* type;
};

TEST(GpuEngine, SynthModelsOfEveryFormatAgreeWithCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  std::vector<Case> cases;
  for (const char* t : {"f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k",
                        "q6_k", "iq4_nl", "iq4_xs", "mxfp4", "q4_k_m"})
    cases.push_back({"tiny", t});
  cases.push_back({"qwen3-tiny", "q8_0"});  // q/k norms, head_dim 128 != dim / heads
  cases.push_back({"moe-tiny", "q4_k"});    // routing and experts on the device, graphed decode
  cases.push_back({"moe-tiny", "f16"});     // experts without an int8 path (float activations)
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.preset) + " " + c.type);
    tools::SynthOptions o;
    o.preset = c.preset;
    o.type = c.type;
    o.vocab_path = vocab.string();
    o.out_path = (dir / (std::string(c.preset) + "-" + c.type + ".gguf")).string();
    o.threads = 2;
    tools::synth_model(o);
    auto cpu = load(o.out_path, "cpu");
    auto gpu = load(o.out_path, "gpu");
    const auto prompt = cpu->tokenizer().encode("The quick brown fox jumps over the lazy dog", true);
    Generator gc(*cpu, SamplingParams::greedy()), gg(*gpu, SamplingParams::greedy());
    // Prompt (GPU: f16 GEMM, CPU: int8 panel), then decode steps (int8 activations on both, in
    // different block sizes for the K-quants): a few percent apart at most.
    EXPECT_LT(rel_rms(gc.feed(prompt), gg.feed(prompt)), 3e-2) << "prompt";
    for (int32_t tok : {300, 301}) EXPECT_LT(rel_rms(gc.feed({tok}), gg.feed({tok})), 3e-2) << "decode " << tok;
    std::filesystem::remove(o.out_path);
  }
}

}  // namespace
}  // namespace rocforge
