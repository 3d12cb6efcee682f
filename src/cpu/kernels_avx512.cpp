// kernels_avx512.cpp - the AVX-512 kernel table: 256-bit VNNI integer dot products (vpdpbusd,
// vpdpwssd) with 32 registers for larger tiles, and 512-bit FMA for F32/F16/BF16 weights.
// Requires AVX512F/BW/VL/VNNI at run time (checked by cpu_features.cpp before it is used).
#if defined(__x86_64__)
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu/kernels.h"
#include "quant/blocks.h"
#include "quant/decode.h"

#pragma GCC push_options
// GCC 12 flags its own _mm512 helpers (undefined-vector idiom) as uninitialised: not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
#include <immintrin.h>

#define RF_NS avx512
#define RF_VNNI 1
#define RF_WIDE 1
#include "cpu/kernels_x86.inc"
#undef RF_NS
#undef RF_VNNI
#undef RF_WIDE
#pragma GCC pop_options

namespace rocforge::cpu {
const KernelTable* avx512_kernels() {
  static const KernelTable table{"avx512", avx512::gemm_q, avx512::gemm_f, avx512::quantize_act, avx512::gemm_panel, avx512::attend_impl};
  return &table;
}
}  // namespace rocforge::cpu
#endif
