// real_files_test.cpp - the published GGUF files in the fixtures parse, with their known shapes.
//
// Reference values: stories260K's README (Karpathy's tinyllamas: 5 layers, dim 64, ffn 172, 8 heads,
// 4 KV heads, vocab 512, context 2048) and the published configs of the models whose tokenizers the
// vocab files carry (Llama 3 8B, Llama 2 7B, Qwen2 7B, Phi-3 mini, GPT-2).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "rocforge/gguf.h"
#include "test_support.h"

namespace rocforge {
namespace {

TEST(GgufRealFiles, Stories260KHyperParameters) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  auto f = gguf::File::open(path.string());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->file_size(), 1185376u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("llama.block_count"), 5);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(f->get_int("llama.context_length"), 2048);
  EXPECT_EQ(f->get_int("llama.rope.dimension_count"), 8);  // head_dim = 64 / 8
  EXPECT_NEAR(*f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 512u);
  EXPECT_EQ(f->get_f32_array("tokenizer.ggml.scores")->size(), 512u);

  // 5 blocks x 9 tensors + token_embd, output_norm, output.
  EXPECT_EQ(f->tensors().size(), 48u);
  const auto* emb = f->tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<uint64_t>{64, 512}));
  const auto* k = f->tensor("blk.4.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->shape, (std::vector<uint64_t>{64, 32}));  // 4 KV heads x head_dim 8
  const auto* down = f->tensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape, (std::vector<uint64_t>{172, 64}));
  uint64_t params = 0;
  for (const auto& t : f->tensors()) {
    EXPECT_EQ(t.type, GgmlType::F32) << t.name;
    EXPECT_NE(t.data, nullptr) << t.name;
    params += t.n_elements;
    // The data lies inside the file and the norms are not all zero.
    ASSERT_LE(f->data_offset() + t.offset + t.n_bytes, f->file_size()) << t.name;
  }
  // 64*512*2 (embd, output) + 64 (output_norm) + 5 * (64*64 + 2*64*32 + 64*64 + 3*64*172 + 2*64)
  EXPECT_EQ(params, 64u * 512 * 2 + 64 + 5u * (64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 172 + 2 * 64));
  const auto* norm = f->tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  float first;
  std::memcpy(&first, norm->data, 4);
  EXPECT_TRUE(std::isfinite(first) && first != 0.0f);
}

struct VocabCase {
  const char* file;
  const char* arch;
  const char* tokenizer;
  size_t n_tokens;
  int64_t n_embd, n_layer, n_ff, n_head;
};

TEST(GgufRealFiles, VocabFilesParse) {
  const VocabCase cases[] = {
      {"vocab/ggml-vocab-llama-bpe.gguf", "llama", "gpt2", 128256, 4096, 32, 14336, 32},  // Llama 3 8B
      {"vocab/ggml-vocab-llama-spm.gguf", "llama", "llama", 32000, 4096, 32, 11008, 32},  // Llama 2 7B
      {"vocab/ggml-vocab-qwen2.gguf", "qwen2", "gpt2", 151936, 4096, 32, 11008, 32},
      {"vocab/ggml-vocab-phi-3.gguf", "phi3", "llama", 32064, 3072, 32, 8192, 32},      // Phi-3 mini
      {"vocab/ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 50257, 768, 12, 3072, 12},        // GPT-2 small
  };
  for (const auto& c : cases) {
    ROCFORGE_REQUIRE_FIXTURE(path, c.file);
    SCOPED_TRACE(c.file);
    auto f = gguf::File::open(path.string());
    EXPECT_TRUE(f->tensors().empty());
    const std::string arch = *f->get_string("general.architecture");
    EXPECT_EQ(arch, c.arch);
    EXPECT_EQ(f->get_string("tokenizer.ggml.model"), c.tokenizer);
    EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), c.n_tokens);
    EXPECT_EQ(f->get_int(arch + ".embedding_length"), c.n_embd);
    EXPECT_EQ(f->get_int(arch + ".block_count"), c.n_layer);
    EXPECT_EQ(f->get_int(arch + ".feed_forward_length"), c.n_ff);
    EXPECT_EQ(f->get_int(arch + ".attention.head_count"), c.n_head);
    if (std::string(c.tokenizer) == "gpt2") {
      // Byte-level BPE files carry merges; each merge is "left right".
      auto merges = f->get_string_array("tokenizer.ggml.merges");
      ASSERT_TRUE(merges.has_value());
      EXPECT_GT(merges->size(), 1000u);
      EXPECT_NE((*merges)[0].find(' '), std::string::npos);
    }
  }
  // Llama 3: GQA with 8 KV heads and rope theta 500000.
  ROCFORGE_REQUIRE_FIXTURE(l3, "vocab/ggml-vocab-llama-bpe.gguf");
  auto f = gguf::File::open(l3.string());
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 8);
  EXPECT_EQ(f->get_float("llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(f->get_int("llama.context_length"), 8192);
  EXPECT_EQ(f->get_int("llama.vocab_size"), 128256);
}

}  // namespace
}  // namespace rocforge
