// cpu_features.h - which SIMD level the CPU kernels run at.
//
// The level is detected once (cpuid through __builtin_cpu_supports) and can be lowered, never
// raised, with ROCFORGE_CPU=scalar|avx2|avx512 (tests use set_isa_level to exercise every path
// the machine supports). One binary therefore runs on AVX2-only and AVX-512 machines alike.
#pragma once

#include <string>
#include <vector>

namespace rocforge::cpu {

enum class IsaLevel { Scalar = 0, Neon = 1, Avx2 = 2, Avx512 = 3 };

const char* isa_name(IsaLevel l);
// Best level this machine (and build) supports.
IsaLevel detected_isa();
// Levels this machine can run, lowest first (always includes Scalar).
std::vector<IsaLevel> available_isas();
// The level kernels use now: detected_isa(), lowered by $ROCFORGE_CPU at first use.
IsaLevel active_isa();
// Forces a level (clamped to what the machine supports); returns the level actually set.
IsaLevel set_isa_level(IsaLevel l);
// AMX-INT8 tile GEMM for prompts (kernels_amx.cpp), used on top of the AVX-512 level. Available
// when cpuid reports AMX-TILE and AMX-INT8, the AVX-512 level is supported, and Linux grants this
// process tile data (arch_prctl ARCH_REQ_XCOMP_PERM); never on other machines.
bool amx_available();
// Whether matmul uses it now: amx_available(), not turned off by ROCFORGE_AMX=0 (read at first
// use) or set_amx_enabled(false), and active_isa() is Avx512.
bool amx_enabled();
// Turns the AMX GEMM on or off (tests, benchmarks); returns the state actually set.
bool set_amx_enabled(bool on);
// "avx2 fma f16c avx512f avx512bw avx512vl avx512vnni avx512bf16 ..." (what was detected).
std::string cpu_feature_string();
// The CPU's brand string from /proc/cpuinfo (or "unknown").
std::string cpu_model_name();

}  // namespace rocforge::cpu
