#include "test_support.h"

#include <cstdlib>
#include <random>

namespace rocforge::test {

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("ROCFORGE_TEST_DATA"); env && *env) return env;
  return ROCFORGE_DEFAULT_TEST_DATA;
}

std::filesystem::path fixture(const std::string& relative) {
  auto p = data_dir() / relative;
  std::error_code ec;
  return std::filesystem::exists(p, ec) ? p : std::filesystem::path();
}

std::filesystem::path temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "rocforge";
  for (auto& c : name)
    if (c == '/') c = '_';
  auto dir = std::filesystem::temp_directory_path() /
             ("rocforge-test-" + name + "-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path rocforge_binary() { return std::filesystem::path(ROCFORGE_BINARY_DIR) / "rocforge"; }

}  // namespace rocforge::test
