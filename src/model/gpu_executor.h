// gpu_executor.h - a model on one GPU or split over several (through a dlopen()ed backend),
// optionally hybrid: the first layers on the CPU, the rest and the output head on the GPUs.
#pragma once

#include <memory>
#include <vector>

#include "model/executor.h"
#include "rocforge/device.h"

namespace rocforge {

// A run of layers on one GPU: layers [first, end) on device `device`. The stage holding the last
// layer also runs the output head; the one holding layer 0 (when no layer is on the CPU) embeds.
struct GpuStage {
  int device = 0;
  int first = 0, end = 0;
  uint64_t bytes = 0;  // device memory the stage needs
};

struct GpuPlan {
  int gpu_layers = 0;            // the last gpu_layers layers run on GPUs, the ones before on the CPU
  uint64_t bytes = 0;            // device memory the plan needs, all stages together
  std::string reason;            // why fewer than all layers (for the log line)
  std::vector<GpuStage> stages;  // in layer order, the head's last; empty when gpu_layers == 0
};

// How many layers fit in one device's free memory. requested < 0: as many as fit; otherwise
// min(requested, fit) with the reason when it had to be clamped.
GpuPlan plan_gpu_layers(const Model& m, const KvConfig& kv, const device::GpuInfo& gpu, int requested, int max_batch);

// The same over several devices (device::Selection::gpus, first choice first). Not spread: the first
// takes the head and the last layers that fit, the next ones the layers before those, and so on, so
// that a model that fits one GPU stays on one (each further stage costs a hand-over a step). Spread
// (an explicit list): the list is the pipeline's order, the head on its last device, and each device
// takes layers in proportion to its free memory, as far as they fit.
GpuPlan plan_gpu_stages(const Model& m, const KvConfig& kv, const std::vector<device::GpuInfo>& gpus, bool spread,
                        int requested, int max_batch);

// Throws rocforge::Error if the backend cannot run this model.
std::unique_ptr<Executor> make_gpu_executor(const Model& m, const KvConfig& kv, const device::Selection& sel,
                                            const GpuPlan& plan, int n_threads, int max_batch);

}  // namespace rocforge
