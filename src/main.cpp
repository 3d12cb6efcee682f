// rocforge - one binary, many subcommands. Each subcommand lives in src/cli/cmd_<name>.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "cli/commands.h"
#include "rocforge/error.h"

namespace {

void print_usage() {
  std::fprintf(stderr, "usage: rocforge <command> [options]   (rocforge <command> --help)\n\ncommands:\n");
  for (const auto& c : rocforge::cli::commands()) std::fprintf(stderr, "  %-12s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 1 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("rocforge %s\n", rocforge::cli::version_string());
    return 0;
  }
  const std::string_view name = argv[1];
  for (const auto& c : rocforge::cli::commands()) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const rocforge::Error& e) {
      std::fprintf(stderr, "rocforge %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rocforge %s: internal error: %s\n", c.name, e.what());
      return 2;
    }
  }
  std::fprintf(stderr, "rocforge: unknown command '%s'\n\n", argv[1]);
  print_usage();
  return 1;
}
