// info_cli_test.cpp - `rocforge info --json` reports stories260K's known shape (see its README).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"

namespace rocforge {
namespace {

TEST(InfoCli, JsonReportsStories260KHyperParameters) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  const auto r = test::run_rocforge({"info", "--json", model.string()}, test::temp_dir());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["version"], 3);
  const auto& hp = j["hyperparameters"];
  EXPECT_EQ(hp["block_count"], 5);
  EXPECT_EQ(hp["embedding_length"], 64);
  EXPECT_EQ(hp["feed_forward_length"], 172);
  EXPECT_EQ(hp["attention.head_count"], 8);
  EXPECT_EQ(hp["attention.head_count_kv"], 4);
  EXPECT_EQ(hp["context_length"], 2048);
  EXPECT_NEAR(hp["attention.layer_norm_rms_epsilon"].get<double>(), 1e-5, 1e-9);
  EXPECT_EQ(j["tokenizer"]["model"], "llama");
  EXPECT_EQ(j["tokenizer"]["n_vocab"], 512);
  EXPECT_EQ(j["tensors"].size(), 48u);
  EXPECT_EQ(j["totals"]["file_bytes"], 1185376);
  bool found = false;
  for (const auto& t : j["tensors"])
    if (t["name"] == "token_embd.weight") {
      found = true;
      EXPECT_EQ(t["shape"], nlohmann::json::array({64, 512}));
      EXPECT_EQ(t["type"], "f32");
      EXPECT_EQ(t["bytes"], 64 * 512 * 4);
    }
  EXPECT_TRUE(found);
}

TEST(InfoCli, CorruptFileFailsWithOffset) {
  const auto dir = test::temp_dir();
  const auto bad = dir / "bad.gguf";
  const char bytes[8] = {'G', 'G', 'U', 'F', 7, 0, 0, 0};  // version 7
  std::ofstream(bad, std::ios::binary).write(bytes, sizeof bytes);
  const auto r = test::run_rocforge({"info", bad.string()}, dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("offset 4: version: unsupported GGUF version 7"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rocforge
