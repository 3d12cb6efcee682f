// rocforge devices [--json] - the GPUs a backend library finds (the indices --device gpu:A,B takes),
// or why none is used; the CPU takes the model then.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "rocforge/device.h"

namespace rocforge::cli {

int run_devices(int argc, char** argv) {
  CLI::App app{"List the GPUs a backend library finds (--device gpu:N / gpu:A,B take their indices)",
               "rocforge devices"};
  bool json = false;
  app.add_flag("--json", json, "machine-readable output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string why;
  const auto backend = device::GpuBackend::load({}, &why);
  while (!why.empty() && why.back() == '\n') why.pop_back();
  const int n = backend ? backend->device_count() : 0;
  std::vector<device::GpuInfo> gpus;
  for (int i = 0; i < n; ++i) gpus.push_back(backend->info(i));
  if (n == 0 && why.empty()) why = backend ? backend->path().string() + ": no device" : "no GPU backend library";

  if (json) {
    nlohmann::json j;
    j["backend"] = backend ? nlohmann::json{{"name", backend->name()}, {"path", backend->path().string()}}
                           : nlohmann::json(nullptr);
    j["gpus"] = nlohmann::json::array();
    for (const auto& g : gpus)
      j["gpus"].push_back({{"index", g.index}, {"name", g.name}, {"arch", g.arch}, {"total_bytes", g.total_memory},
                           {"free_bytes", g.free_memory}, {"wave_size", g.wave_size},
                           {"multiprocessors", g.multiprocessors}});
    if (gpus.empty()) j["why"] = why;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (gpus.empty()) {
    std::string lines = why;  // one reason a line, indented
    for (size_t at = lines.find('\n'); at != std::string::npos; at = lines.find('\n', at + 3)) lines.replace(at, 1, "\n  ");
    std::printf("no GPU (models run on the CPU):\n  %s\n", lines.c_str());
    return 0;
  }
  std::printf("%s backend: %s\n", backend->name().c_str(), backend->path().string().c_str());
  for (const auto& g : gpus)
    std::printf("  gpu:%d  %s (%s), %.1f GiB, %.1f GiB free, wave %d, %d multiprocessors\n", g.index, g.name.c_str(),
                g.arch.c_str(), g.total_memory / 1073741824.0, g.free_memory / 1073741824.0, g.wave_size,
                g.multiprocessors);
  return 0;
}

}  // namespace rocforge::cli
