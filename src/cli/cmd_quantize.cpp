// rocforge quantize IN.gguf OUT.gguf TYPE [--threads N] - re-encode a model's weights.
// The per-tensor type policy (mixes, fallbacks) is in src/tools/quant_plan.h and docs/tools.md.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "tools/quant_plan.h"
#include "tools/quantize.h"

namespace rocforge::cli {

int run_quantize(int argc, char** argv) {
  std::string types;
  for (const auto& n : tools::plan_names()) types += (types.empty() ? "" : " ") + n;
  CLI::App app{"Quantize a GGUF model (types: " + types + ")", "rocforge quantize"};
  tools::QuantizeOptions o;
  bool quiet = false;
  app.add_option("input", o.in_path, "input GGUF model")->required();
  app.add_option("output", o.out_path, "output GGUF file")->required();
  app.add_option("type", o.type, "target type or mix: " + types)->required();
  app.add_option("-t,--threads", o.threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", quiet, "no per-tensor progress");
  CLI11_PARSE(app, argc, argv);

  const auto t0 = std::chrono::steady_clock::now();
  if (!quiet)
    o.progress = [&](size_t k, size_t n, const std::string& name, const std::string& note) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "[%4zu/%zu] %7.1fs  %-36s %s\n", k + 1, n, s, name.c_str(), note.c_str());
    };
  const auto r = tools::quantize_model(o);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("quantize: %s -> %s (%s): %zu tensors, %zu re-encoded, tensor data %.2f MiB -> %.2f MiB, %.1f s\n",
              o.in_path.c_str(), o.out_path.c_str(), o.type.c_str(), r.n_tensors, r.n_requantized,
              double(r.in_bytes) / (1 << 20), double(r.out_bytes) / (1 << 20), s);
  return 0;
}

}  // namespace rocforge::cli
