// commands.h - the table of rocforge subcommands.
#pragma once

namespace rocforge::cli {

// A subcommand gets argv starting at its own name (argv[0] == "info") and returns the exit code.
// It may throw rocforge::Error for user-facing failures; main() prints them.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

struct CommandList {
  const Command* begin() const;
  const Command* end() const;
};
CommandList commands();
const char* version_string();

// One declaration per subcommand (defined in src/cli/cmd_<name>.cpp).
int run_info(int argc, char** argv);
int run_devices(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_perplexity(int argc, char** argv);
int run_quantize(int argc, char** argv);
int run_synth(int argc, char** argv);
int run_run(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_detokenize(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_bench_serve(int argc, char** argv);

}  // namespace rocforge::cli
