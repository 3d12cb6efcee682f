// quant/decode.h - every block format unpacked into one affine form.
//
// Each supported block decodes to small integer codes plus one scale (and optionally one additive
// min) per group of consecutive elements:
//     w[i] = scale[i / group] * code[i]            (has_min == false)
//     w[i] = scale[i / group] * code[i] + min[g]   (has_min == true)
// Dequantization, the reference dot product and the quantizers' error checks all go through it.
// The scales are computed with exactly the float operations (and order) of the ggml reference
// dequantizers, so dequantized values match them bit for bit.
#pragma once

#include <cstdint>

#include "rocforge/ggml_type.h"

namespace rocforge::quant {

struct AffineBlock {
  int n = 0;             // elements in the block (32 or 256)
  int group = 0;         // elements per scale
  bool has_min = false;  // whether min[] is added
  int8_t code[256];      // q, already re-centred (q - 8, kIQ4Levels[q], ...)
  float scale[16];
  float min[16];
};

// Unpacks one block of type t (a quantized type; not F32/F16/BF16). Returns false for types that
// have no block decoder.
bool decode_block(GgmlType t, const void* block, AffineBlock& out);

// w[i] from the affine form, with the float ops ordered as the reference dequantizers order them.
inline float affine_value(const AffineBlock& b, int i) {
  const int g = i / b.group;
  // Two statements, not one expression: keeps compilers from fusing into an FMA (which would change
  // the rounding and break bit-exactness with the reference).
  const float p = b.scale[g] * static_cast<float>(b.code[i]);
  if (!b.has_min) return p;
  return p + b.min[g];
}

}  // namespace rocforge::quant
