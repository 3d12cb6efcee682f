// synthetic_test.cpp - hand-built vocabularies: merge order, unknown handling, metadata errors,
// and invalid UTF-8 through the real byte-level vocabularies.
#include <cstdlib>
#include <string>
#include <vector>

#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"
#include "test_support.h"

namespace {

using rocforge::Tokenizer;
using rocforge::VocabData;
using Ids = std::vector<int32_t>;

std::string error_of(VocabData v) {
  try {
    Tokenizer::from_vocab(std::move(v));
  } catch (const rocforge::Error& e) {
    return e.what();
  }
  return "";
}

VocabData tiny_bpe() {
  VocabData v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  //          0    1    2     3     4      5 ("Ġ" = space)  6
  v.tokens = {"a", "b", "ab", "aa", "aab", "\xC4\xA0", "\xC4\xA0" "a"};
  v.merges = {"a a", "a b", "aa b", "\xC4\xA0 a"};
  return v;
}

TEST(TokenizerSynthetic, BpeMergesLowestRankFirstThenLeftmost) {
  auto t = Tokenizer::from_vocab(tiny_bpe());
  // "aab": (a,a) has rank 0 < (a,b) rank 1 -> [aa][b] -> "aa b" rank 2 -> [aab].
  EXPECT_EQ(t->encode("aab", false), (Ids{4}));
  // "aba": only (a,b) applies -> [ab][a].
  EXPECT_EQ(t->encode("aba", false), (Ids{2, 0}));
  // "aaa": two (a,a) pairs of equal rank -> the leftmost merges -> [aa][a].
  EXPECT_EQ(t->encode("aaa", false), (Ids{3, 0}));
  // gpt-2 pre-tokenizer: " a" is one word ("Ġa").
  EXPECT_EQ(t->encode("b a", false), (Ids{1, 6}));
  EXPECT_EQ(t->decode({1, 6, 4}), "b aaab");
}

TEST(TokenizerSynthetic, SentencePieceUnknownCharactersWithoutByteTokens) {
  VocabData v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"};
  v.scores = {0, 0, 0, -1, -2, -0.5f};
  v.types = {2, 3, 3, 1, 1, 1};
  v.unk_id = 0;
  v.bos_id = 1;
  auto t = Tokenizer::from_vocab(std::move(v));
  // " a€a" -> "▁a€a": "▁a" merges; "€" has no token and no byte tokens exist -> one <unk>.
  EXPECT_EQ(t->encode("a\xE2\x82\xAC" "a", false), (Ids{5, 0, 4}));
  EXPECT_EQ(t->encode("a", true), (Ids{1, 5}));  // add_bos defaults to true for SentencePiece
  // <unk> decodes to U+FFFD: the text it replaced is gone.
  EXPECT_EQ(t->decode({1, 5, 0, 4}, true), "a\xEF\xBF\xBD" "a");
}

TEST(TokenizerSynthetic, MetadataErrorsAreClear) {
  VocabData v = tiny_bpe();
  v.pre = "deepseek-llm";
  std::string e = error_of(v);
  EXPECT_NE(e.find("deepseek-llm"), std::string::npos) << e;
  EXPECT_NE(e.find("llama-bpe"), std::string::npos) << e;  // lists what is supported

  v = tiny_bpe();
  v.pre = "";
  EXPECT_NE(error_of(v).find("tokenizer.ggml.pre"), std::string::npos);

  v = tiny_bpe();
  v.model = "bert";
  EXPECT_NE(error_of(v).find("'bert'"), std::string::npos);

  v = tiny_bpe();
  v.merges = {"a a", "nospace"};
  EXPECT_NE(error_of(v).find("merges[1]"), std::string::npos);

  v = tiny_bpe();
  v.scores = {1.0f};
  EXPECT_NE(error_of(v).find("scores"), std::string::npos);

  v = tiny_bpe();
  v.types = {1, 1, 1, 1, 1, 1, 9};
  EXPECT_NE(error_of(v).find("token_type[6]"), std::string::npos);

  v = tiny_bpe();
  v.eos_id = 7;
  EXPECT_NE(error_of(v).find("eos_token_id"), std::string::npos);

  v = tiny_bpe();
  v.tokens.clear();
  EXPECT_FALSE(error_of(v).empty());
}

TEST(TokenizerSynthetic, ByteLevelVocabsRoundTripInvalidUtf8) {
  ROCFORGE_REQUIRE_FIXTURE(gpt2, "vocab/ggml-vocab-gpt-2.gguf");
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  const std::string bad = "ok \xFF\xFE broken \xE2\x82 tail \xC0\xAF!";
  for (const auto& p : {gpt2, bpe}) {
    auto f = rocforge::gguf::File::open(p.string());
    auto t = Tokenizer::from_gguf(*f);
    const Ids ids = t->encode(bad, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t->decode(ids), bad) << p;
  }
}

}  // namespace

namespace {

TEST(TokenizerSynthetic, PreTokenizerOverrideIsExplicit) {
  VocabData v = tiny_bpe();
  v.pre = "made-up-pre";
  EXPECT_NE(error_of(v).find("ROCFORGE_PRE_TOKENIZER"), std::string::npos);
  ::setenv("ROCFORGE_PRE_TOKENIZER", "gpt-2", 1);
  auto t = Tokenizer::from_vocab(v);
  ::unsetenv("ROCFORGE_PRE_TOKENIZER");
  EXPECT_EQ(t->pre(), "gpt-2");
  EXPECT_EQ(t->encode("aab", false), (Ids{4}));
}

}  // namespace
