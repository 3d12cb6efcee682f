// tokenize_cli_test.cpp - `rocforge tokenize` / `rocforge detokenize` against the library and the
// vocab test vectors.
#include <sstream>

#include "cli/cli_runner.h"
#include "rocforge/gguf.h"
#include "rocforge/tokenizer.h"
#include "test_support.h"

namespace {

using rocforge::test::run_rocforge;

TEST(TokenizeCli, IdsMatchTheLibraryAndDetokenizeInverts) {
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-bpe.gguf");
  if (!std::filesystem::exists(rocforge::test::rocforge_binary())) GTEST_SKIP() << "rocforge binary not built";
  const auto dir = rocforge::test::temp_dir();
  const std::string text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～";
  auto f = rocforge::gguf::File::open(vocab.string());
  auto tok = rocforge::Tokenizer::from_gguf(*f);

  auto r = run_rocforge({"tokenize", "-m", vocab.string(), "--ids", "--no-add-special", text}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int32_t> ids;
  std::istringstream in(r.out);
  for (int32_t id; in >> id;) ids.push_back(id);
  EXPECT_EQ(ids, tok->encode(text, false));

  // Default adds BOS (Llama 3 metadata) and prints "id piece" lines.
  r = run_rocforge({"tokenize", "-m", vocab.string(), "Hello world"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "128000 \"<|begin_of_text|>\"\n  9906 \"Hello\"\n  1917 \" world\"\n");

  std::vector<std::string> args = {"detokenize", "-m", vocab.string()};
  for (auto id : ids) args.push_back(std::to_string(id));
  r = run_rocforge(args, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, text + "\n");
  r = run_rocforge({"detokenize", "-m", vocab.string(), "--skip-special", "[128000, 9906, 1917]"}, dir);
  EXPECT_EQ(r.out, "Hello world\n");
}

TEST(TokenizeCli, BadInputIsAnErrorNotACrash) {
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  if (!std::filesystem::exists(rocforge::test::rocforge_binary())) GTEST_SKIP() << "rocforge binary not built";
  const auto dir = rocforge::test::temp_dir();
  auto r = run_rocforge({"detokenize", "-m", vocab.string(), "1", "99999"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("99999"), std::string::npos) << r.err;
  r = run_rocforge({"detokenize", "-m", vocab.string(), "12x"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("12x"), std::string::npos) << r.err;
  r = run_rocforge({"tokenize", "-m", (dir / "missing.gguf").string(), "x"}, dir);
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
