// devices_cli_test.cpp - `rocforge devices --json`: every GPU the backend finds with its index, or,
// where there is none (the CPU machines), the reason; exit 0 either way.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "rocforge/device.h"

namespace rocforge {
namespace {

TEST(DevicesCli, ListsEveryGpuOrSaysWhyThereIsNone) {
  const auto r = test::run_rocforge({"devices", "--json"}, test::temp_dir());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["gpus"].is_array()) << r.out;
  // The binary's own search: its folder first, then $ROCFORGE_GPU_LIB and the library path.
  device::LoadOptions o;
  o.extra_dirs.push_back(test::rocforge_binary().parent_path());
  const auto sel = device::select_device(device::parse_device_spec("auto"), o, /*quiet=*/true);
  if (sel.kind == device::Kind::Cpu) {
    EXPECT_TRUE(j["gpus"].empty()) << r.out;
    ASSERT_TRUE(j["why"].is_string()) << r.out;
    EXPECT_FALSE(j["why"].get<std::string>().empty()) << r.out;
  } else {
    ASSERT_EQ(j["gpus"].size(), sel.gpus.size()) << r.out;
    for (size_t i = 0; i < j["gpus"].size(); ++i) {
      const auto& g = j["gpus"][i];
      EXPECT_EQ(g["index"], static_cast<int>(i));
      EXPECT_FALSE(g["name"].get<std::string>().empty());
      EXPECT_GT(g["total_bytes"].get<uint64_t>(), 0u);
      EXPECT_GT(g["wave_size"].get<int>(), 0);
    }
    EXPECT_EQ(j["backend"]["name"], sel.backend->name());
  }
  const auto plain = test::run_rocforge({"devices"}, test::temp_dir());
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.out.find(sel.kind == device::Kind::Cpu ? "no GPU" : "gpu:0"), std::string::npos) << plain.out;
}

}  // namespace
}  // namespace rocforge
