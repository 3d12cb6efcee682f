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
// "avx2 fma f16c avx512f avx512bw avx512vl avx512vnni avx512bf16 ..." (what was detected).
std::string cpu_feature_string();
// The CPU's brand string from /proc/cpuinfo (or "unknown").
std::string cpu_model_name();

}  // namespace rocforge::cpu
