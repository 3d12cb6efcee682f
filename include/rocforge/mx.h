// rocforge/mx.h - OCP Microscaling (MX) v1.0 element codecs with E8M0 block scales.
//
// An MX block is 32 elements sharing one E8M0 scale X = 2^(s - 127) (s = 255 is NaN); element i
// stands for X * P_i where P_i is a narrow float:
//   E2M1 (MXFP4): 1 sign, 2 exponent (bias 1), 1 mantissa bit; max 6;     no inf, no NaN
//   E2M3 (MXFP6): 1 sign, 2 exponent (bias 1), 3 mantissa bits; max 7.5;  no inf, no NaN
//   E3M2 (MXFP6): 1 sign, 3 exponent (bias 3), 2 mantissa bits; max 28;   no inf, no NaN
//   E4M3 (MXFP8): 1 sign, 4 exponent (bias 7), 3 mantissa bits; max 448;  NaN = S.1111.111, no inf
//   E5M2 (MXFP8): 1 sign, 5 exponent (bias 15), 2 mantissa bits; max 57344; IEEE-style inf and NaN
// All have subnormals (exponent field 0). Encoding follows the spec: the shared exponent is
// floor(log2(max|V|)) - emax_elem, elements are V_i / X rounded to nearest-even with saturation to
// the largest finite magnitude. A block holding NaN or inf gets the NaN scale (every element
// decodes as NaN), except that E4M3/E5M2 elements can carry NaN (and E5M2 inf) themselves and
// do so: their blocks are scaled over the finite values only.
//
// Packing (our choice; the spec fixes no memory layout): E2M1 two codes per byte, element 2k in the
// low nibble; E2M3/E3M2 four codes per 3 bytes as a little-endian 24-bit word, element 4k in bits
// 0-5; FP8 one code per byte.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rocforge::mx {

enum class ElemType { E2M1, E2M3, E3M2, E4M3, E5M2 };

constexpr int kBlockSize = 32;
constexpr uint8_t kScaleNaN = 0xFF;

struct ElemInfo {
  int bits;           // 4, 6 or 8
  int exp_bits;
  int man_bits;
  int bias;
  int emax;           // exponent of the largest normal (unbiased)
  float max_finite;   // largest finite magnitude
  bool has_inf;       // E5M2 only
  bool has_nan;       // E4M3 and E5M2
};
const ElemInfo& elem_info(ElemType t);
const char* elem_name(ElemType t);

// E8M0: 2^(s-127); 255 -> NaN.
float scale_to_float(uint8_t s);

// The spec's shared exponent (unbiased) for a block whose largest magnitude is amax (> 0, finite):
// floor(log2(amax)) - emax, clamped to the E8M0 range [-127, 127].
int shared_exponent(ElemType t, float amax);

// One element: value of a code (only the low `bits` bits are used) and the code of v, rounded to
// nearest-even with saturation. NaN encodes as the format's NaN where it has one, else as +0
// (encode_block never passes NaN to such formats); +-inf saturates unless the format has inf.
float decode_element(ElemType t, uint8_t code);
uint8_t encode_element(ElemType t, double v);

// An unpacked block: the scale byte and one code per element.
struct Block {
  uint8_t scale = 0;
  uint8_t codes[kBlockSize] = {};
};
Block encode_block(ElemType t, const float* x);            // x[32]
void decode_block(ElemType t, const Block& b, float* y);   // y[32]

// Bytes of the packed element payload of one block (16, 24 or 32; the scale byte is extra).
size_t packed_bytes(ElemType t);
void pack_codes(ElemType t, const uint8_t* codes, uint8_t* out);   // codes[32] -> out[packed_bytes]
void unpack_codes(ElemType t, const uint8_t* in, uint8_t* codes);  // in[packed_bytes] -> codes[32]

}  // namespace rocforge::mx
