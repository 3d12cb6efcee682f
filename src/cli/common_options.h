// common_options.h - flags shared by run, serve, bench and perplexity.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "rocforge/engine.h"
#include "rocforge/sampler.h"

namespace rocforge::cli {

struct EngineFlags {
  EngineOptions opts;
  std::string kv_type = "f16";
};

// --kv-type f16 | f32 | q8_0 into kv_type (parse it with parse_kv_type after parsing).
void add_kv_type_flag(CLI::App& app, std::string& kv_type);
// -m/--model, -t/--threads, -c/--ctx-size, -b/--batch-size, --device, --gpu-layers, --kv-type.
void add_engine_flags(CLI::App& app, EngineFlags& f, bool model_required);
// Validates and resolves the default model; call after parsing.
EngineOptions finish_engine_flags(EngineFlags& f);

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --presence-penalty, --frequency-penalty,
// --repeat-last-n, --seed.
void add_sampling_flags(CLI::App& app, SamplingParams& p);

}  // namespace rocforge::cli
