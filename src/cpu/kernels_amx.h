// kernels_amx.h - the AMX-INT8 prompt GEMM (kernels_amx.cpp) and the panel builder it shares with
// the AVX-512 VNNI panel GEMM (kernels_avx512.cpp). Internal to src/cpu.
//
// Nothing here may be called unless amx_available() (cpu_features.h) returned true: the AMX file
// is compiled with -mamx-tile -mamx-int8 and AVX-512 flags, so any of its code can contain
// instructions an older CPU does not have.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"

namespace rocforge::cpu {

// Rows of one weight panel (the N of a 16 x 16 int32 tile).
constexpr int kAmxPanelRows = 16;

// Unpacks weight rows [p0, p0 + 16) (rows >= rows_end zero) of an n-wide matrix into the VNNI
// panel layout of kernels_x86.inc: codes[group][quad k/4][row 0..15][4 codes], stored +128
// (unsigned), scale/mins[group][row] f32. *group = elements per weight scale (16 or 32).
// Defined in kernels_avx512.cpp (AVX-512 code); false when the type has no panel unpacker.
bool avx512_build_panel(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t p0, int64_t rows_end, int64_t n,
                        uint8_t* codes, float* scale, float* mins, int* group, bool* has_min);

// The same panel with signed codes, as the AMX GEMM wants it, built a block of 16 rows at a time
// (kernels_amx_panel.inc, AVX-512 code in kernels_avx512.cpp). False for the formats it does not
// cover (Q2_K, Q3_K, IQ4_XS): use avx512_build_panel and flip the codes' top bit.
bool avx512_build_amx_panel(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t p0, int64_t rows_end, int64_t n,
                            int8_t* codes, float* scale, float* mins, int* group, bool* has_min);

// The AVX-512 table with gemm_panel replaced by the AMX tile GEMM (same contract: rows [r0, r1),
// all T tokens, activations in blocks of 32). Only call when amx_available().
const KernelTable* amx_kernels();

// The AMX-BF16 prompt GEMM for F16 / BF16 weights (kernels_amx_bf16.cpp), KernelTable::gemm_f's
// contract; other types, T < kPanelMinTokens or widths not a multiple of 32 go to the AVX-512 FMA
// tiles. nullptr unless the CPU also has AMX-BF16 and AVX512_BF16 (amx_bf16_usable) and the build
// has the compiler flags. The AMX table (amx_kernels) takes it as its gemm_f.
using GemmFFn = bool (*)(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t n, int64_t r0, int64_t r1,
                         const float* x, int64_t T, float* y, int64_t ldy);
bool amx_bf16_usable();
GemmFFn amx_bf16_gemm_f_fn();
// Quantized types the AMX table's gemm_f also takes, with f32 activations (matmul then skips the
// int8 quantization for them): Q6_K for T >= kPanelMinTokens, on AMX-BF16 with integer codes
// and one f32 scaling per super-block (kernels_amx_bf16.cpp). False without AMX-BF16.
bool amx_bf16_takes(GgmlType t, int64_t T);

}  // namespace rocforge::cpu
