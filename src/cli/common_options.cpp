#include "cli/common_options.h"

#include "cli/model_path.h"
#include "rocforge/error.h"

namespace rocforge::cli {

void add_kv_type_flag(CLI::App& app, std::string& kv_type) {
  app.add_option("--kv-type", kv_type, "K/V cache element type: " + kv_type_choices() + " (q8_0: head_dim a multiple of 32)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}));
}

void add_engine_flags(CLI::App& app, EngineFlags& f, bool model_required) {
  auto* m = app.add_option("-m,--model", f.opts.model_path, "GGUF model file");
  if (model_required) m->required();
  app.add_option("-t,--threads", f.opts.n_threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("-c,--ctx-size", f.opts.ctx_size, "context size per sequence (default: min(train ctx, 4096))")->check(CLI::NonNegativeNumber);
  app.add_option("-b,--batch-size", f.opts.n_batch, "max tokens per forward step")->check(CLI::PositiveNumber);
  app.add_option("--device", f.opts.device,
                 "auto | cpu | gpu[:N] | gpu:A,B,... (layers split over those GPUs; auto and gpu add GPUs 1, 2, "
                 "... where the model does not fit GPU 0)");
  add_kv_type_flag(app, f.kv_type);
  app.add_option_function<std::string>(
      "--gpu-layers,--n-gpu-layers,--ngl",
      [&f](const std::string& v) {
        if (v == "auto" || v == "all") f.opts.gpu_layers = v == "all" ? 1 << 30 : -1;
        else {
          try {
            f.opts.gpu_layers = std::stoi(v);
          } catch (...) {
            throw CLI::ValidationError("--gpu-layers", "expected a number, auto or all");
          }
        }
      },
      "layers on the GPU: N | auto | all");
}

EngineOptions finish_engine_flags(EngineFlags& f) {
  if (f.opts.model_path.empty()) f.opts.model_path = default_model_path();
  f.opts.kv_type = parse_kv_type(f.kv_type);
  return f.opts;
}

void add_sampling_flags(CLI::App& app, SamplingParams& p) {
  app.add_option("--temp,--temperature", p.temperature, "temperature (0 = greedy)");
  app.add_option("--top-k", p.top_k, "top-k (0 = off)");
  app.add_option("--top-p", p.top_p, "top-p (1 = off)");
  app.add_option("--min-p", p.min_p, "min-p (0 = off)");
  app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1 = off)");
  app.add_option("--presence-penalty", p.presence_penalty, "presence penalty");
  app.add_option("--frequency-penalty", p.frequency_penalty, "frequency penalty");
  app.add_option("--repeat-last-n", p.penalty_last_n, "tokens the penalties look back over (-1 = all)");
  app.add_option("-s,--seed", p.seed, "random seed");
}

}  // namespace rocforge::cli
