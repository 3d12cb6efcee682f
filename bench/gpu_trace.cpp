// gpu_trace.cpp - where a captured decode step's time goes, kernel by kernel, on NVIDIA (CUPTI).
//
//   LD_PRELOAD=libgpu_trace.so rocforge bench -m FILE --device gpu -p 0 -n 128 -r 3
//
// Preloaded into any program that runs the CUDA backend, it records every kernel's start and end
// on the device (CUPTI's concurrent-kernel activity: hardware timestamps, kernels keep overlapping
// under programmatic dependent launch) and, at exit, prints to stderr one table for the graph that
// ran most often (the decode step): per kernel of the step, in launch order, the medians over its
// replays of
//   dur   its own run time (first block starts -> last block ends),
//   lead  its start minus the previous kernel's end (negative: it started early, under PDL),
//   cost  its end minus the previous kernel's end: what it adds to the step's critical path.
// The costs add up to the step; kernels of the same name are summed at the end. Also the time
// between one replay's last kernel and the next replay's first (the host's turn-around).
// Why: ROCFORGE_GPU_SKIP leaves a kernel out, which shifts its neighbours' overlap; this reads the
// chain as it runs. ROCFORGE_TRACE_OUT=FILE also writes every record as CSV.
// Build: only where CUPTI's header is found (bench/CMakeLists.txt); only the device tool runs it.
#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Rec {
  uint64_t start, end;
  uint32_t graph, corr;
  uint64_t node;
  std::string name;
};

std::mutex g_mu;
std::vector<Rec> g_recs;

// Kernel names without their argument lists and template arguments: "matvec8q_staged_kernel".
std::string short_name(const char* mangled) {
  int st = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &st);
  std::string s = st == 0 && d ? d : mangled;
  std::free(d);
  for (size_t at; (at = s.find("(anonymous namespace)::")) != std::string::npos;) s.erase(at, 23);
  const size_t paren = s.find('(');
  if (paren != std::string::npos) s.resize(paren);
  // Drop template arguments (balanced <...>) and any leading return type / namespaces.
  std::string out;
  int depth = 0;
  for (char c : s) {
    if (c == '<') ++depth;
    else if (c == '>') --depth;
    else if (depth == 0) out += c;
  }
  const size_t colon = out.rfind("::");
  if (colon != std::string::npos) out = out.substr(colon + 2);
  const size_t space = out.rfind(' ');
  if (space != std::string::npos) out = out.substr(space + 1);
  return out;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *size = 1 << 20;
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, *size));
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* rec = nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    g_recs.push_back({k->start, k->end, k->graphId, k->correlationId, k->graphNodeId, short_name(k->name)});
  }
  std::free(buffer);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (const char* path = std::getenv("ROCFORGE_TRACE_OUT")) {
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "name,start_ns,end_ns,graph,node,corr\n");
      for (const Rec& r : g_recs)
        std::fprintf(f, "%s,%llu,%llu,%u,%llu,%u\n", r.name.c_str(), (unsigned long long)r.start,
                     (unsigned long long)r.end, r.graph, (unsigned long long)r.node, r.corr);
      std::fclose(f);
    }
  }
  // Replays: the kernels of one graph launch share its correlation id.
  std::map<std::pair<uint32_t, uint32_t>, std::vector<const Rec*>> launches;
  std::map<uint32_t, int> per_graph;
  for (const Rec& r : g_recs)
    if (r.graph != 0) launches[{r.graph, r.corr}].push_back(&r);
  for (const auto& [key, v] : launches) ++per_graph[key.first];
  if (per_graph.empty()) {
    std::fprintf(stderr, "gpu_trace: %zu kernels, no graph launches\n", g_recs.size());
    return;
  }
  uint32_t graph = 0;
  int most = 0;
  for (const auto& [g, n] : per_graph)
    if (n > most) most = n, graph = g;
  std::vector<std::vector<const Rec*>> reps;
  for (auto& [key, v] : launches) {
    if (key.first != graph) continue;
    std::sort(v.begin(), v.end(), [](const Rec* a, const Rec* b) { return a->start < b->start; });
    reps.push_back(v);
  }
  std::sort(reps.begin(), reps.end(), [](const auto& a, const auto& b) { return a.front()->start < b.front()->start; });
  // The replays' usual kernel count (a replay cut off at exit has fewer); names from the first such.
  std::map<size_t, int> sizes;
  for (const auto& r : reps) ++sizes[r.size()];
  size_t n = 0;
  for (const auto& [size, count] : sizes)
    if (n == 0 || count > sizes[n]) n = size;
  const std::vector<const Rec*>& ref = *std::find_if(reps.begin(), reps.end(), [&](const auto& r) { return r.size() == n; });
  std::vector<double> step, gap;
  for (size_t i = 0; i < reps.size(); ++i) {
    if (reps[i].size() != n) continue;
    step.push_back(double(reps[i].back()->end - reps[i].front()->start) / 1e3);
    if (i + 1 < reps.size())
      gap.push_back((double(reps[i + 1].front()->start) - double(reps[i].back()->end)) / 1e3);
  }
  std::fprintf(stderr,
               "gpu_trace: graph %u, %zu replays of %zu kernels; step %.1f us (median), between replays %.1f us\n",
               graph, step.size(), n, median(step), median(gap));
  std::fprintf(stderr, "%4s %-36s %8s %8s %8s\n", "#", "kernel", "dur_us", "lead_us", "cost_us");
  std::map<std::string, std::pair<double, int>> by_name;
  double total = 0;
  for (size_t k = 0; k < n; ++k) {
    std::vector<double> dur, lead, cost;
    for (const auto& r : reps) {
      if (r.size() != n) continue;
      dur.push_back(double(r[k]->end - r[k]->start) / 1e3);
      if (k == 0) {
        lead.push_back(0);
        cost.push_back(double(r[0]->end - r[0]->start) / 1e3);
      } else {
        lead.push_back((double(r[k]->start) - double(r[k - 1]->end)) / 1e3);
        cost.push_back((double(r[k]->end) - double(r[k - 1]->end)) / 1e3);
      }
    }
    const double c = median(cost);
    total += c;
    auto& e = by_name[ref[k]->name];
    e.first += c;
    ++e.second;
    std::fprintf(stderr, "%4zu %-36.36s %8.2f %8.2f %8.2f\n", k, ref[k]->name.c_str(), median(dur),
                 median(lead), c);
  }
  std::fprintf(stderr, "by kernel (sum of median costs %.1f us):\n", total);
  for (const auto& [name, e] : by_name)
    std::fprintf(stderr, "  %-40s %4d x  %8.1f us  %5.1f%%\n", name.c_str(), e.second, e.first, 100 * e.first / total);
}

struct Tracer {
  Tracer() {
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
      std::fprintf(stderr, "gpu_trace: CUPTI did not start\n");
      return;
    }
    on = true;
  }
  ~Tracer() {
    if (!on) return;
    cuptiActivityFlushAll(1);
    report();
  }
  bool on = false;
};
Tracer g_tracer;

}  // namespace
