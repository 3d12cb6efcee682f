// gpu_executor.h - a model on a GPU (through a dlopen()ed backend), optionally hybrid: the first
// layers on the CPU, the rest and the output head on the GPU.
#pragma once

#include <memory>

#include "model/executor.h"
#include "rocforge/device.h"

namespace rocforge {

struct GpuPlan {
  int gpu_layers = 0;     // the last gpu_layers layers run on the GPU
  uint64_t bytes = 0;     // device memory the plan needs
  std::string reason;     // why fewer than all layers (for the log line)
};

// How many layers fit in the device's free memory. requested < 0: as many as fit; otherwise
// min(requested, fit) with the reason when it had to be clamped.
GpuPlan plan_gpu_layers(const Model& m, const KvConfig& kv, const device::GpuInfo& gpu, int requested, int max_batch);

// Throws rocforge::Error if the backend cannot run this model (e.g. MoE, which runs on the CPU).
std::unique_ptr<Executor> make_gpu_executor(const Model& m, const KvConfig& kv, const device::Selection& sel,
                                            const GpuPlan& plan, int n_threads, int max_batch);

}  // namespace rocforge
