// kernels.h - the per-ISA matrix kernels behind cpu::matmul, and the 8-bit activation format they
// consume. Internal to src/cpu: ops.cpp quantizes the activations, splits rows over threads and
// calls the kernel table of the active ISA level (cpu_features.h).
//
// Quantized weights are never expanded to a float copy: each kernel unpacks one weight block into
// registers and takes integer dot products against the activations, quantized on the fly to int8
// with one f32 scale per `block` elements (32 for the 32-element formats, like Q8_0; 256 for the
// K-quants and IQ4_XS, like Q8_K, so their integer sub-block scales can be applied in integer
// arithmetic across a whole super-block).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cpu/attention.h"
#include "rocforge/ggml_type.h"

namespace rocforge::cpu {

// T rows of n activations, quantized. Per token t (all arrays are [T, ...] row-major):
//   q[t*n + i]        int8 codes, x[i] ~= d[i / block] * q[i]
//   d[t*n/block + b]  scale of block b (amax / 127)
//   s16[t*n/16 + g]   sum of the 16 codes of group g (folds in weight offsets and mins)
//   lanes[t*n/4 + k]  sum of codes 4k..4k+3, the int32 lanes a dpbusd/maddubs dot product yields
//                     (used to subtract a weight offset inside the integer accumulator)
//   ds[t*n/32 + j]    d * sum of the 32 codes of group j, as float (for per-32 weight mins)
struct QActView {
  int block = 32;
  int64_t n = 0;
  int64_t T = 0;
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const int16_t* s16 = nullptr;
  const int32_t* lanes = nullptr;
  const float* ds = nullptr;
};

// Quantizes one token's n activations (n a multiple of `block`, which is 32 or 256).
// Writes q[n], d[n/block], s16[n/16], lanes[n/4], ds[n/32]. Round-to-nearest-even, d = amax/127.
void quantize_act_row(const float* x, int64_t n, int block, int8_t* q, float* d, int16_t* s16,
                      int32_t* lanes, float* ds);

// Activation block size used for a weight type (32 or 256); 0 for float weight types.
int act_block_for(GgmlType t);

// Batches of at least this many tokens take the panel GEMM where the ISA has one.
constexpr int64_t kPanelMinTokens = 16;
// The activation block matmul uses for weight type t and T tokens at the active ISA level.
int matmul_act_block(GgmlType t, int64_t T);

// y[t*ldy + r] = W[r,:] . x[t,:] for rows r in [r0, r1), all T tokens.
// A kernel table entry returns false when it has no path for the type (the caller falls back).
struct KernelTable {
  const char* name;
  // Quantized weights against quantized activations.
  bool (*gemm_q)(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a,
                 float* y, int64_t ldy);
  // F32 / F16 / BF16 weights against f32 activations x[T, n].
  bool (*gemm_f)(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t n, int64_t r0, int64_t r1, const float* x,
                 int64_t T, float* y, int64_t ldy);
  // Same contract as quantize_act_row (a faster version of it, identical results).
  void (*quantize_act)(const float* x, int64_t n, int block, int8_t* q, float* d, int16_t* s16, int32_t* lanes,
                       float* ds);
  // Prompt-sized batches (T >= kPanelMinTokens): weights unpacked once per 16-row panel and reused
  // by every token; activations in blocks of 32 for every format. nullptr: not available.
  bool (*gemm_panel)(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a,
                     float* y, int64_t ldy);
  // One (token, kv head) of attention (attention.h); nullptr: use attend_scalar.
  void (*attend)(const AttnArgs& a);
};

// Scalar reference kernels: every quantized type through quant::decode_block, float types by
// converting one element at a time. Always available.
const KernelTable& scalar_kernels();
// x86 tables; nullptr when not compiled in (non-x86 builds).
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
// aarch64 with the dot-product instructions (HWCAP_ASIMDDP); nullptr elsewhere.
const KernelTable* neon_kernels();
// The NEON table itself (kernels_neon.cpp, aarch64 builds only): call through neon_kernels(),
// which checks the CPU first.
const KernelTable* neon_dotprod_kernels();

// The tiled prompt attention (attention.h) for AVX-512 (attention_avx512.cpp); false when it has no
// path for the shape (D not a multiple of 16, or no AVX-512 in this build): use attend per token.
// Only call at the AVX-512 level.
bool avx512_attend_tile(const AttnTileArgs& a, float* scratch);
// ops.h's swiglu on 16 lanes (ops_avx512.cpp); only call at the AVX-512 level.
void avx512_swiglu(float* gate, const float* up, int64_t n);
// The same two on 8-lane AVX2 + FMA + F16C (attention_avx2.cpp, ops_avx2.cpp): the tiled attention
// for D = 32, 64 or 128 (false otherwise, or off x86). Only call at the AVX2 level or above.
bool avx2_attend_tile(const AttnTileArgs& a, float* scratch);
void avx2_swiglu(float* gate, const float* up, int64_t n);

}  // namespace rocforge::cpu
