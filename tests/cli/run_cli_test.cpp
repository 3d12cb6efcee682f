// `rocforge run`, the README's main job: the default model, greedy output, errors.
#include "cli_runner.h"

namespace rocforge::test {
namespace {

TEST(RunCli, DefaultModelGreedyStoryMatchesReference) {
  ROCFORGE_REQUIRE_FIXTURE(text, "models/stories260K/greedy_bos_200.txt");
  const auto dir = temp_dir();
  // No -m: the default model is found under $ROCFORGE_TEST_DATA.
  setenv("ROCFORGE_TEST_DATA", data_dir().c_str(), 1);
  const CliResult r = run_rocforge({"run", "-n", "200", "--temp", "0", "--ignore-eos", "--no-timings", "-t", "1", "--device", "cpu"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, slurp(text));
  std::filesystem::remove_all(dir);
}

TEST(RunCli, TimingSummaryAndStopReasonOnStderr) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = temp_dir();
  const CliResult r = run_rocforge({"run", "-m", model.string(), "-p", "Once upon a time", "-n", "16", "--seed", "5", "-t", "1"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("generated 16 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stop: length"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

TEST(RunCli, BadInputsExitWithClearErrors) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = temp_dir();
  CliResult r = run_rocforge({"run", "-m", (dir / "nope.gguf").string()}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.gguf: cannot open"), std::string::npos) << r.err;
  r = run_rocforge({"run", "-m", model.string(), "-c", "8", "-p", "Once upon a time there was a big dog and a cat"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("prompt too long"), std::string::npos) << r.err;
  r = run_rocforge({"run", "-m", model.string(), "--device", "tpu"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

// bench --tg-sampled: tg as generation runs it (a first token, then sampled ones fed back), named
// "tgN sampled"; -n 1 is refused with the reason.
TEST(BenchCli, TgSampledMeasuresGeneration) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto dir = temp_dir();
  CliResult r = run_rocforge({"bench", "-m", model.string(), "-p", "0", "-n", "8", "-r", "2", "-t", "2", "--tg-sampled"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| tg8 sampled |"), std::string::npos) << r.out;
  r = run_rocforge({"bench", "-m", model.string(), "-p", "0", "-n", "8", "-d", "20", "-r", "1", "-t", "2", "--tg-sampled"}, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| tg8 sampled @ d20 |"), std::string::npos) << r.out;
  r = run_rocforge({"bench", "-m", model.string(), "-p", "0", "-n", "1", "--tg-sampled"}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--tg-sampled needs -n 2"), std::string::npos) << r.err;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rocforge::test
