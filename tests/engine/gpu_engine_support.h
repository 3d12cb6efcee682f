// gpu_engine_support.h - whether the engine tests can run on a GPU here (else they SKIP with why).
#pragma once

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/batch.h"
#include "rocforge/device.h"
#include "rocforge/engine.h"
#include "tools/synth.h"

namespace rocforge::test {

inline bool have_gpu(std::string* why) {
  const auto sel = device::select_device(device::parse_device_spec("auto"), {}, /*quiet=*/true);
  if (sel.kind == device::Kind::Gpu) return true;
  *why = sel.description;
  return false;
}

// The model on the GPU with ROCFORGE_GPU_CHAIN=chain (decode steps chained a launch; "1": one at a
// time), read by the executor when it is made; the variable is unset again after the load.
inline std::unique_ptr<Engine> load_gpu_chained(const std::filesystem::path& model, const char* chain, int ctx_size,
                                                int n_parallel = 1) {
  setenv("ROCFORGE_GPU_CHAIN", chain, 1);
  EngineOptions o;
  o.model_path = model.string();
  o.device = "gpu";
  o.n_threads = 1;
  o.ctx_size = ctx_size;
  o.n_parallel = n_parallel;
  auto e = Engine::load(o);
  unsetenv("ROCFORGE_GPU_CHAIN");
  return e;
}

// Relative RMS of b - a over a (logits of two engines on the same step).
inline double rel_rms(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * (a[i] - b[i]), den += a[i] * a[i];
  return std::sqrt(num / den);
}

// A model on `dev` (--gpu-layers gpu_layers), 512 positions for each of n_parallel sequences, one
// CPU thread.
inline std::unique_ptr<Engine> load_engine(const std::filesystem::path& model, const std::string& dev, int gpu_layers,
                                           int n_parallel = 1) {
  EngineOptions o;
  o.model_path = model.string();
  o.device = dev;
  o.gpu_layers = gpu_layers;
  o.ctx_size = 512;
  o.n_parallel = n_parallel;
  o.n_threads = 1;
  return Engine::load(o);
}

// Two sequences on their block tables: both prompts in one step (each wanting its last position's
// logits), and a decode step feeding token ta at position pa to sequence 0 and tb at pb to 1.
inline Batch two_sequence_prompt(const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                                 const std::vector<std::vector<int32_t>>& tables) {
  Batch p;
  p.block_tables = tables;
  for (size_t i = 0; i < a.size(); ++i) p.add(a[i], static_cast<int32_t>(i), 0, i + 1 == a.size());
  for (size_t i = 0; i < b.size(); ++i) p.add(b[i], static_cast<int32_t>(i), 1, i + 1 == b.size());
  return p;
}
inline Batch two_sequence_decode(int32_t ta, int32_t pa, int32_t tb, int32_t pb,
                                 const std::vector<std::vector<int32_t>>& tables) {
  Batch d;
  d.block_tables = tables;
  d.add(ta, pa, 0, true);
  d.add(tb, pb, 1, true);
  return d;
}

// `rocforge synth` of a preset in a type with the real tokenizer `vocab`, written to dir/name.
inline std::string synth_file(const std::filesystem::path& dir, const std::string& name, const char* preset,
                              const char* type, const std::filesystem::path& vocab) {
  tools::SynthOptions o;
  o.preset = preset;
  o.type = type;
  o.vocab_path = vocab.string();
  o.out_path = (dir / name).string();
  o.threads = 2;
  tools::synth_model(o);
  return o.out_path;
}

}  // namespace rocforge::test
