// rocforge synth --preset NAME --type TYPE --vocab VOCAB.gguf -o OUT.gguf [--seed S] - write a
// random-weight model of a real architecture's shape with a real tokenizer (src/tools/synth.h).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "rocforge/error.h"
#include "tools/quant_plan.h"
#include "tools/synth.h"

namespace rocforge::cli {

int run_synth(int argc, char** argv) {
  CLI::App app{"Write a random-weight model with a real architecture's shape and a real tokenizer", "rocforge synth"};
  tools::SynthOptions o;
  bool list = false, quiet = false;
  std::string preset_help = "model shape:";
  for (const auto& p : tools::presets()) preset_help += " " + p.name;
  app.add_option("-p,--preset", o.preset, preset_help);
  app.add_option("--type", o.type, "weight type or mix, as for quantize (default q4_k_m)");
  app.add_option("--vocab", o.vocab_path, "GGUF whose tokenizer.* keys are copied (sets the vocabulary size)");
  app.add_option("-o,--output", o.out_path, "output GGUF file");
  app.add_option("--seed", o.seed, "random seed (same seed, same weights; default 42)");
  app.add_option("-t,--threads", o.threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("--list-presets", list, "list the presets and exit");
  app.add_flag("-q,--quiet", quiet, "no per-tensor progress");
  CLI11_PARSE(app, argc, argv);

  if (list) {
    for (const auto& p : tools::presets())
      std::printf("%-14s %-6s layers %-3lld dim %-5lld heads %lld/%lld ffn %-6lld %s\n", p.name.c_str(), p.arch.c_str(),
                  static_cast<long long>(p.n_layer), static_cast<long long>(p.n_embd), static_cast<long long>(p.n_head),
                  static_cast<long long>(p.n_head_kv), static_cast<long long>(p.n_ff), p.summary.c_str());
    return 0;
  }
  if (o.preset.empty() || o.vocab_path.empty() || o.out_path.empty())
    throw rocforge::Error("synth: --preset, --vocab and -o are required (see rocforge synth --help)");

  const auto t0 = std::chrono::steady_clock::now();
  if (!quiet)
    o.progress = [&](size_t k, size_t n, const std::string& name, const std::string& type) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "[%4zu/%zu] %7.1fs  %-36s %s\n", k + 1, n, s, name.c_str(), type.c_str());
    };
  const auto r = tools::synth_model(o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("synth: %s (%s, %s): %zu tensors, %.3f B parameters, vocab %lld, %.1f s\n", o.out_path.c_str(),
              o.preset.c_str(), o.type.c_str(), r.n_tensors, double(r.n_params) / 1e9, static_cast<long long>(r.n_vocab), s);
  return 0;
}

}  // namespace rocforge::cli
