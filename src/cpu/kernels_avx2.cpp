// kernels_avx2.cpp - the AVX2 + FMA + F16C kernel table (16 ymm registers, maddubs dot products).
// Compiled for that ISA through `#pragma GCC target`, so the rest of the binary stays baseline
// x86-64; dispatch (cpu_features.cpp) only calls it on CPUs that report the features.
#if defined(__x86_64__)
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu/kernels.h"
#include "quant/blocks.h"
#include "quant/decode.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#define RF_NS avx2
#define RF_VNNI 0
#define RF_WIDE 0
#include "cpu/kernels_x86.inc"
#include "cpu/attention_x86.inc"  // attend_impl, on the float helpers above
#undef RF_NS
#undef RF_VNNI
#undef RF_WIDE
#pragma GCC pop_options

namespace rocforge::cpu {
const KernelTable* avx2_kernels() {
  static const KernelTable table{"avx2", avx2::gemm_q, avx2::gemm_f, avx2::quantize_act, nullptr, avx2::attend_impl};
  return &table;
}
}  // namespace rocforge::cpu
#endif
