// quant/quantize_impl.h - per-format block quantizers (internal).
#pragma once

#include <cstdint>

#include "rocforge/ggml_type.h"

namespace rocforge::quant {

// Quantizes one block (block_elems floats of x) into `block`. `naive` selects the plain max-abs /
// min-max scaling without any search (kept so tests can show what the search buys).
using BlockQuantizer = void (*)(const float* x, void* block, bool naive);

// nullptr for types without a block quantizer (F32/F16/BF16 are handled element-wise).
BlockQuantizer block_quantizer(GgmlType t);

// The quantizers of quantize_blocks.cpp (32-element formats, Q8_K) and quantize_kquants.cpp.
void quantize_block_q4_0(const float* x, void* block, bool naive);
void quantize_block_q4_1(const float* x, void* block, bool naive);
void quantize_block_q5_0(const float* x, void* block, bool naive);
void quantize_block_q5_1(const float* x, void* block, bool naive);
void quantize_block_q8_0(const float* x, void* block, bool naive);
void quantize_block_q8_k(const float* x, void* block, bool naive);
void quantize_block_iq4_nl(const float* x, void* block, bool naive);
void quantize_block_mxfp4(const float* x, void* block, bool naive);
void quantize_block_q2_k(const float* x, void* block, bool naive);
void quantize_block_q3_k(const float* x, void* block, bool naive);
void quantize_block_q4_k(const float* x, void* block, bool naive);
void quantize_block_q5_k(const float* x, void* block, bool naive);
void quantize_block_q6_k(const float* x, void* block, bool naive);
void quantize_block_iq4_xs(const float* x, void* block, bool naive);

// The fp16 bits of s, saturated to +-65504 so that huge inputs give a finite (if coarse) scale.
uint16_t fp16_scale(float s);

// E2M1 code (ggml MXFP4 nibble) nearest to v, ties to even, saturating at +-6.
uint8_t mxfp4_code(float v);

// Like quantize_row but with the naive scaling (tests only).
void quantize_row_naive(GgmlType t, const float* src, void* dst, int64_t n);

}  // namespace rocforge::quant
