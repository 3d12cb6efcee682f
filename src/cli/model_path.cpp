// model_path.cpp - which model `rocforge run` uses when -m is not given.
#include "cli/model_path.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/log.h"
#include "rocforge/error.h"

namespace rocforge::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultUrl = "https://huggingface.co/ggml-org/tinyllamas/resolve/main/stories260K.gguf";
constexpr const char* kDefaultSha256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string default_model_path() {
  if (const char* m = std::getenv("ROCFORGE_MODEL"); m && *m) return m;
  std::vector<fs::path> data_dirs;
  if (const char* d = std::getenv("ROCFORGE_TEST_DATA"); d && *d) data_dirs.emplace_back(d);
#ifdef ROCFORGE_DEFAULT_DATA_DIR
  data_dirs.emplace_back(ROCFORGE_DEFAULT_DATA_DIR);
#endif
  for (const auto& d : data_dirs)
    if (auto p = d / "models/stories260K/stories260K.gguf"; is_file(p)) return p.string();
  const char* home = std::getenv("HOME");
  const fs::path cache = fs::path(home && *home ? home : "/tmp") / ".cache/rocforge/stories260K.gguf";
  if (is_file(cache)) return cache.string();

  // Last resort: download it (curl or wget), then verify its sha256 before using it.
  std::error_code ec;
  fs::create_directories(cache.parent_path(), ec);
  const std::string tmp = cache.string() + ".part";
  log::info("no local model: downloading {} to {}", kDefaultUrl, cache.string());
  const std::string q = shell_quote(tmp);
  const std::string cmd = "(curl -fsSL --max-time 120 -o " + q + " " + kDefaultUrl + " || wget -q -T 120 -O " + q + " " +
                          kDefaultUrl + ") 2>/dev/null && [ \"$(sha256sum " + q + " | cut -d' ' -f1)\" = " + kDefaultSha256 + " ]";
  if (std::system(cmd.c_str()) != 0) {
    fs::remove(tmp, ec);
    throw Error(std::string("no model given and none found; the download of the default model failed (offline?). ") +
                "Pass -m MODEL.gguf, or set ROCFORGE_MODEL=/path/to/model.gguf, or ROCFORGE_TEST_DATA to a folder holding "
                "models/stories260K/stories260K.gguf");
  }
  fs::rename(tmp, cache, ec);
  if (ec) throw Error("cannot move the downloaded model to " + cache.string() + ": " + ec.message());
  return cache.string();
}

}  // namespace rocforge::cli
