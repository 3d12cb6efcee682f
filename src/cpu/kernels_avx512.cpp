// kernels_avx512.cpp - the AVX-512 kernel table: 256-bit VNNI integer dot products (vpdpbusd,
// vpdpwssd) with 32 registers for larger tiles, and 512-bit FMA for F32/F16/BF16 weights.
// Requires AVX512F/BW/VL/VNNI at run time (checked by cpu_features.cpp before it is used).
#if defined(__x86_64__)
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cpu/kernels.h"
#include "cpu/kernels_amx.h"
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
#include "cpu/attention_x86.inc"  // attend_impl, on the float helpers above
#include "cpu/kernels_amx_panel.inc"  // AMX weight panels, from the unpackers above
#undef RF_NS
#undef RF_VNNI
#undef RF_WIDE

namespace rocforge::cpu {
// The VNNI panel builder, shared with the AMX GEMM (kernels_amx.h); compiled for AVX-512 here.
bool avx512_build_panel(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t p0, int64_t rows_end, int64_t n,
                        uint8_t* codes, float* scale, float* mins, int* group, bool* has_min) {
  static_assert(avx512::kPanelRows == kAmxPanelRows, "AMX tiles take the VNNI panel as is");
  avx512::PanelShape shape{};
  const bool ok = avx512::build_panel(t, w, row_bytes, p0, rows_end, n, codes, scale, mins, shape);
  *group = shape.group;
  *has_min = shape.has_min;
  return ok;
}
}  // namespace rocforge::cpu
#pragma GCC pop_options

namespace rocforge::cpu {
const KernelTable* avx512_kernels() {
  static const KernelTable table{"avx512", avx512::gemm_q, avx512::gemm_f, avx512::quantize_act, avx512::gemm_panel, avx512::attend_impl};
  return &table;
}
}  // namespace rocforge::cpu
#endif
