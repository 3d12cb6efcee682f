#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace rocforge::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("ROCFORGE_LOG");
  if (!env) return Level::Info;
  if (!std::strcmp(env, "error")) return Level::Error;
  if (!std::strcmp(env, "warn")) return Level::Warn;
  if (!std::strcmp(env, "debug")) return Level::Debug;
  return Level::Info;
}

std::atomic<int> g_level{static_cast<int>(initial_level())};
std::mutex g_mutex;

}  // namespace

Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }
void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

void write(Level l, std::string_view msg) {
  static const char* const kTags[] = {"error", "warn", "info", "debug"};
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "rocforge: %s: %.*s\n", kTags[static_cast<int>(l)], static_cast<int>(msg.size()), msg.data());
}

}  // namespace rocforge::log
