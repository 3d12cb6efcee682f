// synth_cli_test.cpp - rocforge synth: shapes, metadata and tokenizer of the presets, weight
// statistics, determinism. Only the small presets are generated here; the big ones are checked by
// parameter count against the published figures of the real models.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "cli/cli_runner.h"
#include "rocforge/gguf.h"
#include "rocforge/quant.h"
#include "tools/synth.h"

namespace rocforge {
namespace {

std::vector<float> dequantize(const gguf::TensorInfo& t) {
  std::vector<float> out(t.n_elements);
  const auto n = static_cast<int64_t>(t.shape[0]);
  const size_t rb = quant::row_bytes(t.type, n);
  for (uint64_t r = 0; r < t.rows(); ++r) quant::dequantize_row(t.type, t.data + r * rb, out.data() + r * n, n);
  return out;
}

struct Synth {
  std::filesystem::path dir, out;
  test::CliResult r;
};

Synth synth(const std::string& preset, const std::string& type, const std::filesystem::path& vocab,
            std::vector<std::string> extra = {}) {
  Synth s;
  s.dir = test::temp_dir();
  s.out = s.dir / (preset + "-" + type + ".gguf");
  std::vector<std::string> args = {"synth", "--preset", preset, "--type", type, "--vocab", vocab.string(), "-o", s.out.string(), "-q"};
  args.insert(args.end(), extra.begin(), extra.end());
  s.r = test::run_rocforge(args, s.dir);
  return s;
}

TEST(SynthCli, TinyHasLlamaMetadataTokenizerAndShapes) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  const auto s = synth("tiny", "q4_k_m", vocab_path);
  ASSERT_EQ(s.r.exit_code, 0) << s.r.err;
  auto f = gguf::File::open(s.out.string());
  auto vocab = gguf::File::open(vocab_path.string());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("general.file_type"), 15);  // LLAMA_FTYPE_MOSTLY_Q4_K_M
  EXPECT_EQ(f->get_int("llama.block_count"), 2);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 256);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 512);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 4);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count"), 64);
  EXPECT_EQ(f->get_int("llama.vocab_size"), 512);
  EXPECT_TRUE(f->get_int("llama.context_length").has_value());
  EXPECT_TRUE(f->get_float("llama.attention.layer_norm_rms_epsilon").has_value());
  EXPECT_TRUE(f->get_float("llama.rope.freq_base").has_value());

  // Every tokenizer.* key of the vocab file, with the same value.
  size_t n_tok_keys = 0;
  for (const auto& kv : vocab->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    ++n_tok_keys;
    const gguf::Value* v = f->find(kv.key);
    ASSERT_NE(v, nullptr) << kv.key;
    EXPECT_EQ(gguf::to_string(*v, 1 << 20), gguf::to_string(kv.value, 1 << 20)) << kv.key;
  }
  EXPECT_GE(n_tok_keys, 5u);

  // 1 + 2 x 9 + 2 tensors; untied, so output.weight exists.
  EXPECT_EQ(f->tensors().size(), 21u);
  const std::map<std::string, std::pair<std::vector<uint64_t>, GgmlType>> expect = {
      {"token_embd.weight", {{256, 512}, GgmlType::Q4_K}},
      {"output.weight", {{256, 512}, GgmlType::Q6_K}},
      {"output_norm.weight", {{256}, GgmlType::F32}},
      {"blk.1.attn_norm.weight", {{256}, GgmlType::F32}},
      {"blk.1.attn_q.weight", {{256, 256}, GgmlType::Q4_K}},
      {"blk.1.attn_k.weight", {{256, 128}, GgmlType::Q4_K}},
      {"blk.1.attn_v.weight", {{256, 128}, GgmlType::Q6_K}},  // 2 layers: both are "edge" layers
      {"blk.1.attn_output.weight", {{256, 256}, GgmlType::Q4_K}},
      {"blk.1.ffn_norm.weight", {{256}, GgmlType::F32}},
      {"blk.1.ffn_gate.weight", {{256, 512}, GgmlType::Q4_K}},
      {"blk.1.ffn_up.weight", {{256, 512}, GgmlType::Q4_K}},
      {"blk.1.ffn_down.weight", {{512, 256}, GgmlType::Q6_K}},
  };
  for (const auto& [name, st] : expect) {
    const auto* t = f->tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape, st.first) << name;
    EXPECT_EQ(t->type, st.second) << name;
  }
}

TEST(SynthCli, WeightsAreGaussianAndNormsAreOne) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  const auto s = synth("tiny", "f32", vocab_path);
  ASSERT_EQ(s.r.exit_code, 0) << s.r.err;
  auto f = gguf::File::open(s.out.string());
  for (const auto& t : f->tensors()) {
    const auto v = dequantize(t);
    if (t.shape.size() == 1) {
      for (float x : v) ASSERT_EQ(x, 1.0f) << t.name;
      continue;
    }
    double sum = 0, sq = 0;
    for (float x : v) sum += x, sq += double(x) * x;
    const double mean = sum / v.size(), sd = std::sqrt(sq / v.size() - mean * mean);
    // 32K..131K samples: the sample sd is within ~1% of 0.02, the mean within ~4e-4 (several sigma).
    EXPECT_NEAR(sd, 0.02, 0.0006) << t.name;
    EXPECT_NEAR(mean, 0.0, 0.0004) << t.name;
    // Tails: about 0.27% of N(0, s^2) samples lie beyond 3 s.
    size_t beyond = 0;
    for (float x : v) beyond += std::fabs(x) > 0.06f;
    EXPECT_NEAR(double(beyond) / v.size(), 0.0027, 0.0012) << t.name;
  }
  // Different tensors get different values.
  EXPECT_NE(std::memcmp(f->tensor("blk.0.attn_q.weight")->data, f->tensor("blk.1.attn_q.weight")->data, 1024), 0);
}

TEST(SynthCli, DeterministicBySeedAndThreadCount) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  const auto a = synth("tiny", "q4_0", vocab_path, {"--seed", "7", "--threads", "1"});
  const auto b = synth("tiny", "q4_0", vocab_path, {"--seed", "7", "--threads", "2"});
  const auto c = synth("tiny", "q4_0", vocab_path, {"--seed", "8", "--threads", "2"});
  ASSERT_EQ(a.r.exit_code, 0) << a.r.err;
  ASSERT_EQ(b.r.exit_code, 0) << b.r.err;
  ASSERT_EQ(c.r.exit_code, 0) << c.r.err;
  EXPECT_EQ(test::slurp(a.out), test::slurp(b.out));
  EXPECT_NE(test::slurp(a.out), test::slurp(c.out));
}

TEST(SynthCli, Qwen3TinyHasHeadNormsAndTiedOutput) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  const auto s = synth("qwen3-tiny", "q4_k_m", vocab_path);
  ASSERT_EQ(s.r.exit_code, 0) << s.r.err;
  auto f = gguf::File::open(s.out.string());
  EXPECT_EQ(f->get_string("general.architecture"), "qwen3");
  EXPECT_EQ(f->get_int("qwen3.attention.key_length"), 128);
  EXPECT_EQ(f->get_int("qwen3.attention.value_length"), 128);
  EXPECT_EQ(f->get_int("qwen3.rope.dimension_count"), 128);
  EXPECT_EQ(f->get_float("qwen3.rope.freq_base"), 1e6);
  EXPECT_EQ(f->tensor("output.weight"), nullptr);
  ASSERT_NE(f->tensor("token_embd.weight"), nullptr);
  EXPECT_EQ(f->tensor("token_embd.weight")->type, GgmlType::Q6_K);  // tied: it is the output matrix too
  const auto* qn = f->tensor("blk.0.attn_q_norm.weight");
  const auto* kn = f->tensor("blk.1.attn_k_norm.weight");
  ASSERT_TRUE(qn && kn);
  EXPECT_EQ(qn->shape, (std::vector<uint64_t>{128}));
  EXPECT_EQ(kn->type, GgmlType::F32);
  EXPECT_EQ(f->tensor("blk.0.attn_q.weight")->shape, (std::vector<uint64_t>{256, 512}));      // 4 heads x 128
  EXPECT_EQ(f->tensor("blk.0.attn_k.weight")->shape, (std::vector<uint64_t>{256, 256}));      // 2 heads x 128
  EXPECT_EQ(f->tensor("blk.0.attn_output.weight")->shape, (std::vector<uint64_t>{512, 256}));
}

TEST(SynthCli, MoeTinyHasRouterAndExpertTensors) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  const auto s = synth("moe-tiny", "q4_k_m", vocab_path);
  ASSERT_EQ(s.r.exit_code, 0) << s.r.err;
  auto f = gguf::File::open(s.out.string());
  EXPECT_EQ(f->get_int("llama.expert_count"), 4);
  EXPECT_EQ(f->get_int("llama.expert_used_count"), 2);
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const auto* router = f->tensor(b + "ffn_gate_inp.weight");
    ASSERT_NE(router, nullptr);
    EXPECT_EQ(router->shape, (std::vector<uint64_t>{256, 4}));
    EXPECT_EQ(router->type, GgmlType::F32);
    for (const char* n : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"}) {
      const auto* t = f->tensor(b + n + ".weight");
      ASSERT_NE(t, nullptr) << n;
      EXPECT_EQ(t->shape, (std::vector<uint64_t>{256, 256, 4})) << n;
    }
    EXPECT_EQ(f->tensor(b + "ffn_gate_exps.weight")->type, GgmlType::Q4_K);
    EXPECT_EQ(f->tensor(b + "ffn_down_exps.weight")->type, GgmlType::Q6_K);
    EXPECT_EQ(f->tensor(b + "ffn_gate.weight"), nullptr);
  }
}

TEST(SynthCli, BadArgumentsFailWithAMessage) {
  ROCFORGE_REQUIRE_FIXTURE(vocab_path, "models/stories260K/stories260K.gguf");
  auto s = synth("no-such-preset", "q4_0", vocab_path);
  EXPECT_EQ(s.r.exit_code, 1);
  EXPECT_NE(s.r.err.find("unknown preset 'no-such-preset'"), std::string::npos) << s.r.err;
  s = synth("tiny", "q9_9", vocab_path);
  EXPECT_EQ(s.r.exit_code, 1);
  EXPECT_NE(s.r.err.find("unknown --type 'q9_9'"), std::string::npos) << s.r.err;
  EXPECT_FALSE(std::filesystem::exists(s.out));
}

uint64_t params(const std::string& preset, int64_t n_vocab, bool embeddings = true) {
  const auto* p = tools::find_preset(preset);
  EXPECT_NE(p, nullptr) << preset;
  if (!p) return 0;
  uint64_t n = 0;
  for (const auto& t : tools::synth_tensors(*p, n_vocab)) {
    if (!embeddings && (t.name == "token_embd.weight" || t.name == "output.weight")) continue;
    uint64_t e = 1;
    for (uint64_t d : t.shape) e *= d;
    n += e;
  }
  return n;
}

// The presets have the real models' parameter counts (published figures).
TEST(SynthPresets, ParameterCountsMatchTheRealModels) {
  EXPECT_EQ(params("llama3-8b", 128256), 8030261248u);    // Meta-Llama-3-8B
  EXPECT_EQ(params("llama3.2-1b", 128256), 1235814400u);  // Llama-3.2-1B (tied)
  EXPECT_NEAR(params("qwen2.5-0.5b", 151936) / 1e9, 0.49, 0.005);         // "0.49B"
  EXPECT_NEAR(params("qwen2.5-0.5b", 151936, false) / 1e9, 0.36, 0.005);  // "0.36B non-embedding"
  EXPECT_NEAR(params("qwen3-0.6b", 151936) / 1e9, 0.6, 0.01);             // "0.6B"
  EXPECT_NEAR(params("qwen3-0.6b", 151936, false) / 1e9, 0.44, 0.005);    // "0.44B non-embedding"
  // Mixtral-8x7B: 46,702,792,704 parameters; less its two 32000 x 4096 tables and final norm, 32 equal
  // layers of 1,451,270,144. mixtral-4l has 4 of them and the final norm (tables not counted here).
  EXPECT_EQ(params("mixtral-4l", 32000, false), 4ull * 1451270144ull + 4096ull);
  EXPECT_EQ((46702792704ull - 2ull * 32000 * 4096 - 4096) % 32, 0ull);
  EXPECT_EQ((46702792704ull - 2ull * 32000 * 4096 - 4096) / 32, 1451270144ull);
  const auto* q = tools::find_preset("qwen2.5-0.5b");
  ASSERT_NE(q, nullptr);
  size_t biases = 0;
  for (const auto& t : tools::synth_tensors(*q, 151936)) biases += t.kind == tools::SynthTensor::Kind::Bias;
  EXPECT_EQ(biases, 24u * 3);
}

}  // namespace
}  // namespace rocforge
