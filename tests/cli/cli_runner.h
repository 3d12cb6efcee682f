// cli_runner.h - runs the built rocforge binary from a test and captures its output.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "test_support.h"

namespace rocforge::test {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `rocforge ARGS...`; stdout and stderr go to files in `dir`.
inline CliResult run_rocforge(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  std::string cmd = shell_quote(rocforge_binary().string());
  // Appended piecewise: `" " + std::string` trips a gcc 12 -Wrestrict false positive.
  for (const auto& a : args) {
    cmd += ' ';
    cmd += shell_quote(a);
  }
  const auto out = dir / "stdout.txt", err = dir / "stderr.txt";
  cmd += " >";
  cmd += shell_quote(out.string());
  cmd += " 2>";
  cmd += shell_quote(err.string());
  CliResult r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace rocforge::test
