// rocforge/device.h - finding a GPU backend at run time and choosing where a model runs.
//
// The rocforge binary links no GPU runtime. A GPU backend is a shared library (librocforge-cuda.so,
// librocforge-hip.so) that this module dlopen()s: first next to the executable, then the file or
// folder named by $ROCFORGE_GPU_LIB, then the dynamic linker's library path. `--device` picks the
// device: auto (a GPU if a backend loads and finds one, else the CPU, said in one log line), cpu, or
// gpu[:N] (an Error when no such GPU exists).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct rf_gpu_api;  // src/gpu/backend_api.h: the C function table of a backend library

namespace rocforge::device {

enum class Kind { Cpu, Gpu };

// A parsed --device value.
struct DeviceSpec {
  enum class Mode { Auto, Cpu, Gpu } mode = Mode::Auto;
  int index = 0;          // for Gpu: the N of gpu:N (the first of a list)
  std::vector<int> list;  // gpu:A,B,...: the model's layers spread over these GPUs, in this order
  bool has_index = false;  // gpu:N given (not plain gpu)
};
// Parses "auto", "cpu", "gpu", "gpu:N" or "gpu:A,B,..." (a GPU may repeat: two stages then share
// it). Throws rocforge::Error naming the bad value.
DeviceSpec parse_device_spec(std::string_view text);

struct GpuInfo {
  int index = 0;
  std::string backend;  // "cuda" or "hip"
  std::string name;
  std::string arch;     // "sm_90", "gfx942", ...
  uint64_t total_memory = 0;
  uint64_t free_memory = 0;
  int wave_size = 0;
  int multiprocessors = 0;
};

// Where to look for backend libraries.
struct LoadOptions {
  // Searched first, in order (tests put the build folder here).
  std::vector<std::filesystem::path> extra_dirs;
  // The default places: the executable's folder, $ROCFORGE_GPU_LIB, the library path.
  bool default_search = true;
};

// A loaded backend library. Unloaded (dlclose) on destruction.
class GpuBackend {
 public:
  // Tries librocforge-cuda.so then librocforge-hip.so in each place; returns the first that loads
  // and reports at least one device, else the first that loads, else nullptr with the reasons in
  // *why_not (one line per attempt).
  static std::shared_ptr<GpuBackend> load(const LoadOptions& opts, std::string* why_not = nullptr);
  // Loads exactly `path`. Throws rocforge::Error if it is not a backend library.
  static std::shared_ptr<GpuBackend> load_file(const std::filesystem::path& path);
  ~GpuBackend();
  GpuBackend(const GpuBackend&) = delete;
  GpuBackend& operator=(const GpuBackend&) = delete;

  const std::string& name() const { return name_; }  // "cuda" / "hip"
  const std::filesystem::path& path() const { return path_; }
  int device_count() const;
  GpuInfo info(int index) const;  // throws Error for a bad index
  // The raw table, for the GPU compute code (include "gpu/backend_api.h").
  const rf_gpu_api& api() const { return *api_; }
  // Throws rocforge::Error "<what>: <backend message>" when rc != 0.
  void check(int rc, std::string_view what) const;

 private:
  GpuBackend() = default;
  void* handle_ = nullptr;
  const rf_gpu_api* api_ = nullptr;
  std::string name_;
  std::filesystem::path path_;
};

// The outcome of --device.
struct Selection {
  Kind kind = Kind::Cpu;
  std::shared_ptr<GpuBackend> backend;  // set for Gpu
  GpuInfo gpu;                          // valid for Gpu: the first of `gpus`
  // The GPUs the model may use, first choice first: auto and plain gpu list every device of the
  // backend (the next ones take layers only where the model does not fit the first), gpu:N only N,
  // gpu:A,B,... those (spread: the layers divided among all of them by their free memory).
  std::vector<GpuInfo> gpus;
  bool spread = false;
  std::string description;  // the one log line: "device: GPU 0 ..." / "device: CPU (...)"
};

// Resolves a DeviceSpec. auto: GPU 0 of the first backend with a device (and the others after it),
// else CPU. cpu: CPU without loading anything. gpu[:N] / gpu:A,B: those GPUs, or rocforge::Error
// saying why there are none. Logs the choice (info level) unless `quiet`.
Selection select_device(const DeviceSpec& spec, const LoadOptions& opts = {}, bool quiet = false);

}  // namespace rocforge::device
