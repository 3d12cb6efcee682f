// kv_q8.h - rows of a Q8_0 K/V cache (rocforge/kv_type.h): quantized as they are stored, read back
// by the scalar attention and the tests.
//
// A row of n values is n / 32 blocks laid out as ggml's block_q8_0 (quant/blocks.h BlockQ8_0):
// an f16 scale d = max|x| / 127, then 32 int8 codes q = round(x / d), so x ~= d * q with an error of
// at most d / 2 per value (plus d's f16 rounding, relative 2^-11).
#pragma once

#include <cstdint>

namespace rocforge::cpu {

// x[n] -> n / 32 blocks at dst (n a multiple of 32). All-zero blocks get d = 0 and zero codes.
void quantize_kv_row_q8_0(const float* x, int64_t n, void* dst);
// n / 32 blocks at src -> x[n] = d * q.
void dequantize_kv_row_q8_0(const void* src, int64_t n, float* x);

}  // namespace rocforge::cpu
