// streaming_test.cpp - StreamingDetokenizer never emits a partial UTF-8 sequence.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"
#include "test_support.h"

namespace {

// Independent strict UTF-8 check (complete sequences only, no overlongs/surrogates).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { n = 1; cp = c; }
    else if ((c >> 5) == 6) { n = 2; cp = c & 0x1F; }
    else if ((c >> 4) == 14) { n = 3; cp = c & 0x0F; }
    else if ((c >> 3) == 30) { n = 4; cp = c & 0x07; }
    else return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return false;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += n;
  }
  return true;
}

std::unique_ptr<rocforge::Tokenizer> load(const std::filesystem::path& p) {
  auto f = rocforge::gguf::File::open(p.string());
  return rocforge::Tokenizer::from_gguf(*f);
}

const char* kTexts[] = {
    " this is 🦙.cpp",
    "កាន់តែពិសេសអាចខលចេញ",
    "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅",
    "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
    "Cửa Việt нещо на Български",
};

void check_stream(const rocforge::Tokenizer& t, const std::string& text, bool with_bos) {
  std::vector<int32_t> ids = t.encode(text, with_bos);
  rocforge::StreamingDetokenizer sd(t, /*skip_special=*/true, /*at_text_start=*/true);
  std::string all;
  for (auto id : ids) {
    const std::string chunk = sd.push(id);
    EXPECT_TRUE(valid_utf8(chunk)) << "partial UTF-8 emitted for token " << id;
    all += chunk;
  }
  const std::string rest = sd.flush();
  EXPECT_TRUE(rest.empty()) << "complete text left bytes pending";
  all += rest;
  EXPECT_EQ(all, t.decode(ids, /*skip_special=*/true));
  EXPECT_EQ(all, text);
}

TEST(StreamingDetokenizer, MultiByteTextSplitAcrossByteTokens) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  ROCFORGE_REQUIRE_FIXTURE(bpe, "vocab/ggml-vocab-llama-bpe.gguf");
  for (const auto& p : {spm, bpe}) {
    auto t = load(p);
    size_t split = 0;
    for (const char* text : kTexts) {
      for (auto id : t->encode(text, false)) split += !valid_utf8(t->token_to_piece(id));
      check_stream(*t, text, false);
      check_stream(*t, text, true);  // BOS is skipped, leading-space handling still right
    }
    EXPECT_GT(split, 5u) << p << ": the texts no longer split characters across tokens";
  }
}

TEST(StreamingDetokenizer, GeneratedContinuationKeepsLeadingSpace) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  auto t = load(spm);
  // Prompt "The capital of France is" continued by " Paris.": the continuation's ids stream
  // exactly the text they add, leading space included.
  const auto prompt = t->encode("The capital of France is", true);
  const auto full = t->encode("The capital of France is Paris.", true);
  ASSERT_GT(full.size(), prompt.size());
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), full.begin()));
  rocforge::StreamingDetokenizer sd(*t);
  std::string out;
  for (size_t i = prompt.size(); i < full.size(); ++i) out += sd.push(full[i]);
  out += sd.flush();
  EXPECT_EQ(out, " Paris.");
}

TEST(StreamingDetokenizer, InvalidBytesBecomeReplacementCharacters) {
  ROCFORGE_REQUIRE_FIXTURE(spm, "vocab/ggml-vocab-llama-spm.gguf");
  auto t = load(spm);
  auto byte = [&](int b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    auto id = t->find_token(name);
    EXPECT_TRUE(id.has_value()) << name;
    return *id;
  };
  rocforge::StreamingDetokenizer sd(*t);
  // A 3-byte lead, one continuation, then a plain ASCII token: the lead pair can never complete.
  EXPECT_EQ(sd.push(byte(0xE2)), "");
  EXPECT_EQ(sd.push(byte(0x82)), "");
  const std::string out = sd.push(byte('A'));
  EXPECT_TRUE(valid_utf8(out));
  EXPECT_EQ(out, "\xEF\xBF\xBD\xEF\xBF\xBD" "A");
  // A lone continuation byte is replaced at once.
  EXPECT_EQ(sd.push(byte(0x80)), "\xEF\xBF\xBD");
  // An incomplete tail at the end is flushed as U+FFFD.
  EXPECT_EQ(sd.push(byte(0xF0)), "");
  EXPECT_EQ(sd.push(byte(0x9F)), "");
  EXPECT_EQ(sd.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sd.flush(), "");
}

}  // namespace
