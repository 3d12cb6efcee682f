// rocforge/quant.h - ggml weight formats: dequantize, quantize, reference dot product.
//
// Formats: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K,
// IQ4_NL, IQ4_XS, MXFP4. Block layouts are described in src/quant/blocks.h; the quantizers'
// scale searches and their measured errors in docs/quantization.md.
//
// Everything here is scalar reference code; the SIMD and GPU kernels reuse the block structs and
// are tested against these functions. Bad arguments (unsupported type, n not a multiple of the
// block size, negative counts) throw rocforge::Error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "rocforge/error.h"
#include "rocforge/ggml_type.h"

namespace rocforge::quant {

bool can_dequantize(GgmlType t);
bool can_quantize(GgmlType t);

// n must be a multiple of the type's block_elems; src holds n/block_elems blocks.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);

// Quantizes nrows rows of n_per_row floats (row-major) into dst, splitting rows over `threads`
// threads. Returns bytes written (nrows * row bytes).
size_t quantize_rows(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t n_per_row, int threads = 1);

// Scalar reference dot product of one quantized row with f32 activations: sum_i w[i]*x[i].
// Computed per sub-block in factored form (scale * sum(q*x) + min * sum(x)), accumulated in double.
float dot_row_ref(GgmlType t, const void* row, const float* x, int64_t n);

// Bytes of a row of n elements of type t (throws if n is not a multiple of the block size).
size_t row_bytes(GgmlType t, int64_t n);

}  // namespace rocforge::quant
