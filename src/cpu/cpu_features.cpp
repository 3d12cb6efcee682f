#include "cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string_view>

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#include "cpu/kernels.h"
#include "cpu/kernels_amx.h"
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

// cpuid.(eax=7, ecx=0).edx bits 22/24/25: AMX-BF16, AMX-TILE, AMX-INT8. (Unused off x86.)
[[maybe_unused]] bool cpuid_amx(int bit) {
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (d >> bit) & 1u;
#else
  (void)bit;
  return false;
#endif
}

bool detect_amx() {
#if defined(__x86_64__) && defined(__linux__)
  if (detected_isa() < IsaLevel::Avx512 || !cpuid_amx(24) || !cpuid_amx(25)) return false;
  // Tile data is an XSAVE feature Linux hands out on request only (since 5.16); without the grant
  // the first tile instruction faults. ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18.
  if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return false;
  return amx_kernels() != nullptr;
#else
  return false;
#endif
}

bool parse_amx_env() {
  const char* e = std::getenv("ROCFORGE_AMX");
  if (!e || !*e) return true;
  const std::string_view v(e);
  if (v == "0") return false;
  if (v == "1") return true;
  throw Error("ROCFORGE_AMX='" + std::string(v) + "': expected 0 or 1");
}

std::atomic<bool>& amx_slot() {
  static std::atomic<bool> on{amx_available() && parse_amx_env()};
  return on;
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

bool amx_available() {
  static const bool ok = detect_amx();
  return ok;
}

bool amx_enabled() {
  return amx_slot().load(std::memory_order_relaxed) && active_isa() == IsaLevel::Avx512;
}

bool set_amx_enabled(bool on) {
  const bool use = on && amx_available();
  amx_slot().store(use, std::memory_order_relaxed);
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
  add(cpuid_amx(24), "amx_tile");
  add(cpuid_amx(25), "amx_int8");
  add(cpuid_amx(22), "amx_bf16");
  // Whether the prompt GEMM runs on AMX now (off: ROCFORGE_AMX=0, a lower ROCFORGE_CPU, or no
  // tile-data permission from the OS).
  if (cpuid_amx(25)) s += amx_enabled() ? " (amx gemm on)" : " (amx gemm off)";
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
