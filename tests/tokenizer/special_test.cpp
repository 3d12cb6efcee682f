// special_test.cpp - special ids, BOS/EOS insertion and literal special-token parsing.
//
// Expected ids come from llama.cpp (node-llama-cpp 3.21.1 via shared/tools, tokenize with
// special parsing on/off) on the same vocab files.
#include <memory>
#include <string>
#include <vector>

#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"
#include "test_support.h"

namespace {

using Ids = std::vector<int32_t>;

std::unique_ptr<rocforge::Tokenizer> load(const std::filesystem::path& p) {
  auto f = rocforge::gguf::File::open(p.string());
  return rocforge::Tokenizer::from_gguf(*f);
}

TEST(TokenizerSpecial, SpecialIdsAndFlagsMatchLlamaCpp) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  ROCFORGE_REQUIRE_FIXTURE(qwen, "vocab/ggml-vocab-qwen2.gguf");
  ROCFORGE_REQUIRE_FIXTURE(phi, "vocab/ggml-vocab-phi-3.gguf");
  ROCFORGE_REQUIRE_FIXTURE(gpt2, "vocab/ggml-vocab-gpt-2.gguf");
  struct Want {
    std::filesystem::path path;
    int32_t bos, eos, eot;
    bool add_bos;
    Ids eog, not_eog;
  };
  const Want wants[] = {
      {spm, 1, 2, -1, true, {2}, {1, 0, 13}},
      {bpe, 128000, 128001, 128009, true, {128001, 128009}, {128000, 128006, 128008}},
      {qwen, 151643, 151643, 151645, false, {151643, 151645, 128247}, {151644}},  // 128247: "</s>"
      {phi, 1, 32000, 32007, true, {32000, 32007, 2}, {1, 32010, 32001}},
      {gpt2, 50256, 50256, 50256, false, {50256}, {0, 198}},
  };
  for (const auto& w : wants) {
    auto t = load(w.path);
    SCOPED_TRACE(w.path.filename().string());
    EXPECT_EQ(t->bos_id(), w.bos);
    EXPECT_EQ(t->eos_id(), w.eos);
    EXPECT_EQ(t->eot_id(), w.eot);
    EXPECT_EQ(t->add_bos(), w.add_bos);
    EXPECT_FALSE(t->add_eos());
    for (auto id : w.eog) EXPECT_TRUE(t->is_end_of_generation(id)) << id;
    for (auto id : w.not_eog) EXPECT_FALSE(t->is_end_of_generation(id)) << id;
  }
}

TEST(TokenizerSpecial, AddSpecialPrependsBosOnlyWhenTheVocabAsksForIt) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  ROCFORGE_REQUIRE_FIXTURE(qwen, "vocab/ggml-vocab-qwen2.gguf");
  for (const auto& p : {spm, qwen}) {
    auto t = load(p);
    const Ids plain = t->encode("Hello world", false);
    Ids with = plain;
    if (t->add_bos()) with.insert(with.begin(), t->bos_id());
    EXPECT_EQ(t->encode("Hello world", true), with) << p;
    // Decoding with skip_special drops BOS and gives the text back.
    EXPECT_EQ(t->decode(t->encode("Hello world", true), true), "Hello world") << p;
  }
}

TEST(TokenizerSpecial, ControlTokensMatchOnlyWhenParsingSpecials) {
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  ROCFORGE_REQUIRE_FIXTURE(qwen, "vocab/ggml-vocab-qwen2.gguf");
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  {
    auto t = load(bpe);
    const std::string s = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    EXPECT_EQ(t->encode(s, false, true), (Ids{128006, 882, 128007, 271, 13347, 128009}));
    EXPECT_EQ(t->encode(s, false, false), (Ids{27, 91, 2527, 8932, 851, 91, 29, 882, 27, 91, 408, 8932, 851, 91, 1363,
                                               13347, 27, 91, 68, 354, 851, 91, 29}));
    EXPECT_EQ(t->decode(t->encode(s, false, true)), s);
  }
  {
    auto t = load(qwen);
    EXPECT_EQ(t->encode("<|im_start|>user\nHi<|im_end|>", false, true), (Ids{151644, 872, 198, 13048, 151645}));
    EXPECT_EQ(t->encode("<|im_start|>\nx", false, false), (Ids{27, 91, 318, 4906, 91, 397, 87}));
    // A normal-typed "</s>" is treated as a control token (as llama.cpp does).
    EXPECT_EQ(t->encode("x </s>", false, true), (Ids{87, 220, 128247}));
    EXPECT_EQ(t->encode("x </s>", false, false), (Ids{87, 690, 82, 29}));
    // User-defined tokens (added vocabulary) match even without special parsing.
    EXPECT_EQ(t->encode("a[PAD151646]b", false, false), (Ids{64, 151646, 65}));
  }
  {
    // SentencePiece: the leading space is added again after each literal special token.
    auto t = load(spm);
    EXPECT_EQ(t->encode("<s>\nHi</s>", false, true), (Ids{1, 29871, 13, 18567, 2}));
    EXPECT_EQ(t->encode("<s>\nHi</s>", false, false), (Ids{529, 29879, 29958, 13, 18567, 829, 29879, 29958}));
  }
}

TEST(TokenizerSpecial, Phi3ChatTokensEatFollowingWhitespace) {
  ROCFORGE_REQUIRE_FIXTURE(phi, "vocab/ggml-vocab-phi-3.gguf");
  auto t = load(phi);
  EXPECT_EQ(t->encode("<|user|>\nHello<|end|>\n<|assistant|>", false, true), (Ids{32010, 15043, 32007, 32001}));
  EXPECT_EQ(t->encode(" <|end|> x", false, true), (Ids{259, 32007, 921}));
  EXPECT_EQ(t->encode("Hi <|user|>  y", false, true), (Ids{6324, 29871, 32010, 343}));
  // "</s>" is stored as user-defined but behaves as a control token.
  EXPECT_EQ(t->encode("a</s> b", false, true), (Ids{263, 2, 289}));
  EXPECT_EQ(t->encode("a</s> b", false, false), (Ids{263, 829, 29879, 29958, 289}));
}

TEST(TokenizerSpecial, DecodeRejectsOutOfRangeIds) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  auto t = load(spm);
  EXPECT_THROW(t->decode({1, 32000}), rocforge::Error);
  EXPECT_THROW(t->decode({-1}), rocforge::Error);
  EXPECT_THROW(t->token_to_piece(40000), rocforge::Error);
}

}  // namespace

namespace {

// The test model's 512-token SentencePiece vocabulary (its padding id is u32 0xFFFFFFFF = none).
// The second text holds literal backslash-n pairs (as typed in a shell), not newlines.
TEST(TokenizerSpecial, Stories260KVocabularyMatchesLlamaCpp) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto t = load(model);
  EXPECT_EQ(t->n_vocab(), 512);
  EXPECT_EQ(t->pad_id(), -1);
  EXPECT_EQ(t->encode("Once upon a time, there was a little girl.", false),
            (Ids{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 426}));
  EXPECT_EQ(t->encode("  Hello\\n\\nworld \xF0\x9F\xA6\x99 \xC2\xBD", false),
            (Ids{410, 410, 346, 306, 414, 500, 416, 500, 416, 424, 304, 341, 410, 243, 162, 169, 156, 410, 197, 192}));
}

}  // namespace
