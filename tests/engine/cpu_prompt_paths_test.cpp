// The CPU prompt paths of a whole model (tiled attention, AMX-BF16 F16 / Q6_K GEMM, AMX-INT8 GEMM)
// against the decode paths (per-token attention, GEMV / small tiles) on the same tokens, and the
// prompt with AMX on against AMX off, on synth "tiny" models (head_dim 64, GQA 4/2): the per-kernel
// tests check each kernel; this checks that the forward pass wires them up right (tiles of tokens,
// strides, cache slots, row splits).
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "rocforge/engine.h"
#include "test_support.h"
#include "tools/synth.h"

namespace rocforge {
namespace {

std::unique_ptr<Engine> load_cpu(const std::string& path) {
  EngineOptions o;
  o.model_path = path;
  o.device = "cpu";
  o.ctx_size = 256;
  o.n_threads = 2;
  return Engine::load(o);
}

// Relative RMS of b - a over a.
double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += double(a[i] - b[i]) * (a[i] - b[i]), den += double(a[i]) * a[i];
  return std::sqrt(num / den);
}

TEST(CpuPromptPaths, PromptMatchesTokenByTokenAndAmxOff) {
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = test::temp_dir();
  const bool saved_amx = cpu::amx_enabled();
  // F16: prompt and decode both keep ~f32 precision (measured 7e-5). Q4_K_M: int8 activations in
  // blocks of 32 (prompt) vs 256 (decode K-quant kernels), and f32 ones for Q6_K prompts: a few
  // percent at most (measured 1.5-1.7e-2). A wrong token, head or cache slot gives O(1).
  struct Case {
    const char* type;
    double prompt_vs_decode, amx_on_vs_off;
  };
  for (const Case& c : {Case{"f16", 5e-4, 5e-4}, Case{"q4_k_m", 3e-2, 3e-2}}) {
    SCOPED_TRACE(c.type);
    tools::SynthOptions o;
    o.preset = "tiny";
    o.type = c.type;
    o.vocab_path = vocab.string();
    o.out_path = (dir / (std::string("tiny-") + c.type + ".gguf")).string();
    o.threads = 2;
    tools::synth_model(o);
    auto engine = load_cpu(o.out_path);
    std::string text;
    for (int i = 0; i < 4; ++i) text += "The quick brown fox jumps over the lazy dog. ";
    const auto prompt = engine->tokenizer().encode(text, true);
    ASSERT_GE(prompt.size(), 40u);  // several attention tiles (16 tokens each here) and T >= 16 GEMMs

    cpu::set_amx_enabled(true);
    Generator whole(*engine, SamplingParams::greedy());
    const std::vector<float> at_once = whole.feed(prompt);
    Generator steps(*engine, SamplingParams::greedy());
    std::vector<float> one_by_one;
    for (int32_t tok : prompt) one_by_one = steps.feed({tok});
    EXPECT_LT(rel_rms(one_by_one, at_once), c.prompt_vs_decode) << "prompt at once vs token by token";
    // A decode step after each: the cache the prompt wrote is what decode reads.
    EXPECT_LT(rel_rms(steps.feed({300}), whole.feed({300})), c.prompt_vs_decode) << "decode after the prompt";

    cpu::set_amx_enabled(false);
    Generator no_amx(*engine, SamplingParams::greedy());
    EXPECT_LT(rel_rms(no_amx.feed(prompt), at_once), c.amx_on_vs_off) << "AMX off vs on";
    cpu::set_amx_enabled(saved_amx);
    std::filesystem::remove(o.out_path);
  }
  cpu::set_amx_enabled(saved_amx);
}

}  // namespace
}  // namespace rocforge
