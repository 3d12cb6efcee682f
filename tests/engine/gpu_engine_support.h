// gpu_engine_support.h - whether the engine tests can run on a GPU here (else they SKIP with why).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "rocforge/device.h"
#include "rocforge/engine.h"

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

}  // namespace rocforge::test
