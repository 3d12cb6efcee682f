// --kv-type on the commands that take it (run, perplexity, bench; serve and bench-serve share run's
// flags): q8_0 runs on a model whose head_dim allows it, and each bad case exits with its reason.
#include "cli_runner.h"

namespace rocforge::test {
namespace {

TEST(KvTypeCli, Q8CacheRunsOnRunPerplexityAndBench) {
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  const auto dir = temp_dir();
  const std::string model = (dir / "tiny.gguf").string();
  CliResult r = run_rocforge({"synth", "-p", "tiny", "--type", "q8_0", "--vocab", vocab.string(), "-o", model, "-q", "-t", "2"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = run_rocforge({"run", "-m", model, "-p", "Once upon a time", "-n", "8", "--temp", "0", "-t", "2", "--device", "cpu", "--kv-type", "q8_0"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  // head_dim 64, 2 kv heads, 2 layers: (K + V) x 2 layers x 128 values -> 2 x 2 x 4 blocks of 34 bytes.
  EXPECT_NE(r.err.find("KV cache: q8_0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(544 bytes per position)"), std::string::npos) << r.err;

  std::string text;
  for (int i = 0; i < 20; ++i) text += "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun. ";
  std::ofstream(dir / "text.txt") << text;
  r = run_rocforge({"perplexity", "-m", model, "-f", (dir / "text.txt").string(), "--ctx", "64", "--chunks", "2", "-t", "2", "--kv-type", "q8_0"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("PPL = "), std::string::npos) << r.out << r.err;

  r = run_rocforge({"bench", "-m", model, "-p", "16", "-n", "4", "-r", "1", "-t", "2", "--kv-type", "q8_0"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("tg4"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("KV cache: q8_0"), std::string::npos) << r.err;
  // The table names the cache type when it is not the default f16 (and only then), as llama-bench does.
  EXPECT_NE(r.out.find("| type_kv |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| q8_0 | tg4 |"), std::string::npos) << r.out;
  r = run_rocforge({"bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "2"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| tg2 |"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("type_kv"), std::string::npos) << r.out;
  r = run_rocforge({"bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-t", "2", "-o", "csv"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(",type_kv\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\",f16\n"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

TEST(KvTypeCli, BadKvTypesExitWithTheirReason) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = temp_dir();
  // stories260K's heads are 8 wide: Q8_0's 32-value blocks do not fit.
  CliResult r = run_rocforge({"run", "-m", model.string(), "-p", "Hi", "-n", "2", "--device", "cpu", "--kv-type", "q8_0"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--kv-type q8_0: the model's head_dim is 8"), std::string::npos) << r.err;
  r = run_rocforge({"perplexity", "-m", model.string(), "-f", model.string(), "--kv-type", "q8_0"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("head_dim is 8"), std::string::npos) << r.err;
  // Not a cache type: refused while parsing, naming the option.
  r = run_rocforge({"run", "-m", model.string(), "--kv-type", "q4_0"}, dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--kv-type"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rocforge::test
