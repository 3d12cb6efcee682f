// device.cpp - dlopen()ing GPU backend libraries and resolving --device.
#include "rocforge/device.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/log.h"
#include "gpu/backend_api.h"
#include "rocforge/error.h"

namespace rocforge::device {
namespace {

constexpr const char* kLibNames[] = {"librocforge-cuda.so", "librocforge-hip.so"};

std::filesystem::path executable_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path();
}

// Candidate library paths in search order. A bare file name means "ask the dynamic linker".
std::vector<std::filesystem::path> candidates(const LoadOptions& opts) {
  std::vector<std::filesystem::path> out;
  auto add_dir = [&](const std::filesystem::path& d) {
    if (d.empty()) return;
    for (const char* n : kLibNames) out.push_back(d / n);
  };
  for (const auto& d : opts.extra_dirs) add_dir(d);
  if (opts.default_search) {
    add_dir(executable_dir());
    if (const char* env = std::getenv("ROCFORGE_GPU_LIB"); env && *env) {
      std::error_code ec;
      if (std::filesystem::is_directory(env, ec)) add_dir(env);
      else out.emplace_back(env);
    }
    for (const char* n : kLibNames) out.emplace_back(n);
  }
  return out;
}

std::string dl_error() {
  const char* e = ::dlerror();
  return e ? e : "unknown dlopen error";
}

}  // namespace

DeviceSpec parse_device_spec(std::string_view text) {
  DeviceSpec s;
  if (text == "auto") return s;
  if (text == "cpu") {
    s.mode = DeviceSpec::Mode::Cpu;
    return s;
  }
  if (text == "gpu") {
    s.mode = DeviceSpec::Mode::Gpu;
    return s;
  }
  if (text.substr(0, 4) == "gpu:" && text.size() > 4) {
    // gpu:N or gpu:A,B,...: indices of at most 4 digits, at most 64 of them.
    std::string_view rest = text.substr(4);
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      if (item.empty() || item.size() > 4 || s.list.size() >= 64)
        throw Error(fmt::format("--device: bad GPU list in '{}' (want gpu:N or gpu:A,B,...)", text));
      int n = 0;
      for (char c : item) {
        if (c < '0' || c > '9') throw Error(fmt::format("--device: bad GPU index in '{}' (want gpu:N or gpu:A,B,...)", text));
        n = n * 10 + (c - '0');
      }
      s.list.push_back(n);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    s.mode = DeviceSpec::Mode::Gpu;
    s.index = s.list[0];
    s.has_index = true;
    if (s.list.size() == 1) s.list.clear();  // gpu:N: that GPU alone
    return s;
  }
  throw Error(fmt::format("--device: unknown value '{}' (want auto, cpu, gpu, gpu:N or gpu:A,B,...)", text));
}

std::shared_ptr<GpuBackend> GpuBackend::load_file(const std::filesystem::path& path) {
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw Error(fmt::format("GPU backend {}: {}", path.string(), dl_error()));
  auto entry = reinterpret_cast<rocforge_gpu_api_fn>(::dlsym(h, "rocforge_gpu_api"));
  const rf_gpu_api* api = entry ? entry() : nullptr;
  if (!api || api->version != RF_GPU_API_VERSION) {
    // Read everything the message needs before dlclose: `api` points into the library.
    const std::string why = !entry ? std::string("no rocforge_gpu_api symbol (not a rocforge backend)")
                                   : fmt::format("API version {} != {} (rebuild the backend with this binary)",
                                                 api ? api->version : 0u, RF_GPU_API_VERSION);
    ::dlclose(h);
    throw Error(fmt::format("GPU backend {}: {}", path.string(), why));
  }
  std::shared_ptr<GpuBackend> b(new GpuBackend());
  b->handle_ = h;
  b->api_ = api;
  b->name_ = api->backend_name ? api->backend_name : "gpu";
  b->path_ = path;
  return b;
}

std::shared_ptr<GpuBackend> GpuBackend::load(const LoadOptions& opts, std::string* why_not) {
  std::shared_ptr<GpuBackend> first_loaded;
  std::string why;
  for (const auto& p : candidates(opts)) {
    // Paths with a folder must exist (dlopen would otherwise search the library path for them).
    std::error_code ec;
    if (p.has_parent_path() && !std::filesystem::exists(p, ec)) continue;
    try {
      auto b = load_file(p);
      if (b->device_count() > 0) return b;
      why += fmt::format("{}: loaded ({}), no device\n", p.string(), b->name());
      if (!first_loaded) first_loaded = std::move(b);
    } catch (const Error& e) {
      if (p.has_parent_path()) why += std::string(e.what()) + "\n";
    }
  }
  if (why.empty()) why = "no GPU backend library (librocforge-cuda.so / librocforge-hip.so) found\n";
  if (why_not) *why_not = why;
  return first_loaded;
}

GpuBackend::~GpuBackend() {
  // The runtimes register exit handlers inside the library; unloading it before process exit can
  // run them on unmapped code, so the handle is deliberately kept (the OS reclaims it at exit).
  handle_ = nullptr;
}

int GpuBackend::device_count() const {
  int n = 0;
  if (api_->device_count(&n) != 0) return 0;
  return n;
}

GpuInfo GpuBackend::info(int index) const {
  const int n = device_count();
  if (index < 0 || index >= n)
    throw Error(fmt::format("GPU {} does not exist ({} backend sees {} device{})", index, name_, n, n == 1 ? "" : "s"));
  rf_gpu_device_info raw{};
  check(api_->device_info(index, &raw), fmt::format("querying GPU {}", index));
  GpuInfo g;
  g.index = index;
  g.backend = name_;
  g.name = raw.name;
  g.arch = raw.arch;
  g.total_memory = raw.total_memory;
  g.free_memory = raw.free_memory;
  g.wave_size = raw.wave_size;
  g.multiprocessors = raw.multiprocessors;
  return g;
}

void GpuBackend::check(int rc, std::string_view what) const {
  if (rc == 0) return;
  const char* msg = api_->last_error ? api_->last_error() : "";
  throw Error(fmt::format("{} ({}): {}", what, name_, msg && *msg ? msg : "unknown GPU error"));
}

Selection select_device(const DeviceSpec& spec, const LoadOptions& opts, bool quiet) {
  Selection sel;
  auto say = [&](const std::string& line) {
    sel.description = line;
    if (!quiet) log::info("{}", line);
  };
  if (spec.mode == DeviceSpec::Mode::Cpu) {
    say("device: CPU (--device cpu)");
    return sel;
  }
  std::string why;
  auto backend = GpuBackend::load(opts, &why);
  while (!why.empty() && why.back() == '\n') why.pop_back();
  const int n = backend ? backend->device_count() : 0;
  const int want = spec.mode == DeviceSpec::Mode::Gpu ? spec.index : 0;
  int beyond = want;  // the highest index asked for
  for (int i : spec.list) beyond = std::max(beyond, i);
  if (n == 0 || beyond >= n) {
    if (spec.mode == DeviceSpec::Mode::Gpu) {
      if (n == 0) throw Error(fmt::format("--device gpu: no usable GPU: {}", why));
      throw Error(fmt::format("--device gpu:{}: only {} GPU{} ({} backend)", beyond, n, n == 1 ? "" : "s",
                              backend->name()));
    }
    // auto: say why in one line (first reason only).
    say(fmt::format("device: CPU (no GPU: {})", why.substr(0, why.find('\n'))));
    return sel;
  }
  sel.kind = Kind::Gpu;
  sel.backend = backend;
  sel.gpu = backend->info(want);
  if (!spec.list.empty()) {
    for (int i : spec.list) sel.gpus.push_back(i == want ? sel.gpu : backend->info(i));
    sel.spread = true;
  } else {
    sel.gpus.push_back(sel.gpu);
    if (!spec.has_index)
      for (int i = 0; i < n; ++i)
        if (i != want) sel.gpus.push_back(backend->info(i));
  }
  // ROCFORGE_GPU_FREE_MB=N: count at most N MiB of each GPU as free (room left for other work; and
  // how tests make the planner split or spill without filling a card).
  if (const char* env = std::getenv("ROCFORGE_GPU_FREE_MB"); env && *env) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    if (!end || *end) throw Error(fmt::format("ROCFORGE_GPU_FREE_MB: '{}' is not a number of MiB", env));
    for (GpuInfo& g : sel.gpus) g.free_memory = std::min<uint64_t>(g.free_memory, uint64_t(mb) << 20);
    sel.gpu = sel.gpus[0];
  }
  backend->check(backend->api().set_device(want), "selecting GPU");
  say(fmt::format("device: GPU {} {} ({}, {}, {:.1f} GiB, {:.1f} GiB free, wave {}) via {}", want, sel.gpu.name,
                  sel.gpu.backend, sel.gpu.arch, sel.gpu.total_memory / 1073741824.0,
                  sel.gpu.free_memory / 1073741824.0, sel.gpu.wave_size, backend->path().string()) +
      (sel.spread ? fmt::format(", layers spread over GPUs {}", fmt::join(spec.list, ",")) : std::string()));
  return sel;
}

}  // namespace rocforge::device
