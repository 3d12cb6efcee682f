#include "cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "cpu/kernels.h"
#include "rocforge/error.h"

namespace rocforge::cpu {
namespace {

IsaLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // The AVX-512 kernels use 256-bit VNNI dot products on 32 registers (needs VL) and BW byte ops.
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  if (avx512 && avx512_kernels()) return IsaLevel::Avx512;
  if (avx2 && avx2_kernels()) return IsaLevel::Avx2;
  return IsaLevel::Scalar;
#elif defined(__aarch64__)
  return neon_kernels() ? IsaLevel::Neon : IsaLevel::Scalar;
#else
  return IsaLevel::Scalar;
#endif
}

IsaLevel parse_env(IsaLevel best) {
  const char* e = std::getenv("ROCFORGE_CPU");
  if (!e || !*e) return best;
  const std::string_view v(e);
  IsaLevel want;
  if (v == "scalar") want = IsaLevel::Scalar;
  else if (v == "neon") want = IsaLevel::Neon;
  else if (v == "avx2") want = IsaLevel::Avx2;
  else if (v == "avx512") want = IsaLevel::Avx512;
  else throw Error("ROCFORGE_CPU='" + std::string(v) + "': expected scalar, avx2, avx512 or neon");
  return want < best ? want : best;
}

std::atomic<int>& active_slot() {
  static std::atomic<int> level{static_cast<int>(parse_env(detect()))};
  return level;
}

}  // namespace

const char* isa_name(IsaLevel l) {
  switch (l) {
    case IsaLevel::Scalar: return "scalar";
    case IsaLevel::Neon: return "neon";
    case IsaLevel::Avx2: return "avx2";
    case IsaLevel::Avx512: return "avx512";
  }
  return "?";
}

IsaLevel detected_isa() {
  static const IsaLevel l = detect();
  return l;
}

std::vector<IsaLevel> available_isas() {
  std::vector<IsaLevel> out{IsaLevel::Scalar};
  const IsaLevel best = detected_isa();
  if (best == IsaLevel::Neon) out.push_back(IsaLevel::Neon);
  if (best >= IsaLevel::Avx2) out.push_back(IsaLevel::Avx2);
  if (best >= IsaLevel::Avx512) out.push_back(IsaLevel::Avx512);
  return out;
}

IsaLevel active_isa() { return static_cast<IsaLevel>(active_slot().load(std::memory_order_relaxed)); }

IsaLevel set_isa_level(IsaLevel l) {
  const IsaLevel best = detected_isa();
  IsaLevel use = l;
  if (use > best) use = best;
  if (use == IsaLevel::Neon && best != IsaLevel::Neon) use = IsaLevel::Scalar;
  active_slot().store(static_cast<int>(use), std::memory_order_relaxed);
  return use;
}

std::string cpu_feature_string() {
  std::string s;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("f16c") , "f16c");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vnni"), "avx512vnni");
  add(__builtin_cpu_supports("avx512bf16"), "avx512bf16");
#elif defined(__aarch64__)
  s = "neon";
#endif
  return s.empty() ? "none" : s;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(' ', p + 1));
    }
  }
  return "unknown";
}

}  // namespace rocforge::cpu
