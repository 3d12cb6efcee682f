// test_support.h - where fixtures live, and skipping (never passing) when one is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace rocforge::test {

// $ROCFORGE_TEST_DATA, else ../shared beside the repo root (baked in at configure time).
std::filesystem::path data_dir();
// data_dir()/relative if it exists, else an empty path.
std::filesystem::path fixture(const std::string& relative);
// A fresh temporary directory for the calling test.
std::filesystem::path temp_dir();
// The built rocforge binary.
std::filesystem::path rocforge_binary();

}  // namespace rocforge::test

// Declares `var` as the fixture's path, or marks the test SKIPPED with the reason.
#define ROCFORGE_REQUIRE_FIXTURE(var, relative)                                                        \
  const std::filesystem::path var = ::rocforge::test::fixture(relative);                              \
  if (var.empty())                                                                                     \
  GTEST_SKIP() << "fixture " << (relative) << " not found under " << ::rocforge::test::data_dir()      \
               << " (set ROCFORGE_TEST_DATA)"
