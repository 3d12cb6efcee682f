// quant/blocks.h - the packed ggml weight blocks, byte for byte as they lie in a GGUF tensor.
//
// Plain C++ (no STL, no exceptions) so CPU SIMD kernels and .hip/.cu GPU kernels can include it.
// Half-precision fields are kept as raw uint16_t bits (convert with rocforge::fp16_to_f32).
// Every struct's size is checked against the block_bytes of include/rocforge/ggml_type.h.
// The level tables (kIQ4Levels, kMxfp4Levels) are host constants: device code needs its own
// __device__ copy (src/gpu/quant_formats.h has one).
//
// Naming used in the comments: a "block" is one struct; a "sub-block" (group) is a run of elements
// that share one scale (and maybe one min); "q" is the small integer stored per element.
#pragma once

#include <stdint.h>

namespace rocforge::quant {

// Elements per K-quant super-block (Q2_K..Q8_K, IQ4_XS).
constexpr int kQK = 256;
// Elements per simple block (Q4_0..Q8_0, IQ4_NL, MXFP4).
constexpr int kQ32 = 32;

// Q4_0: 32 weights, one fp16 scale d, 4-bit q in [0,15]; w = d * (q - 8).
// qs[j] holds element j in its low nibble and element j+16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

// Q4_1: as Q4_0 but unsigned with an offset: w = d * q + m (d and m are fp16).
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

// Q5_0: 5-bit q = low nibble (same nibble layout as Q4_0) | bit j of the 32-bit little-endian word
// qh << 4, for element j in 0..31; w = d * (q - 16).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");

// Q5_1: the 5-bit q of Q5_0, unsigned with an offset: w = d * q + m.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");

// Q8_0: 32 signed bytes and one fp16 scale: w = d * q.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

// Q2_K: 256 weights in 16 sub-blocks of 16. scales[i] holds sub-block i's 4-bit scale (low nibble)
// and 4-bit min (high nibble); w = (d * scale) * q - (dmin * min), q in [0,3].
// The 2-bit q are spread as: element h*128 + s*32 + l (h in 0..1, s in 0..3, l in 0..31) lives in
// bits 2s..2s+1 of qs[h*32 + l]; its sub-block is h*8 + s*2 + l/16.
struct BlockQ2_K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block is 84 bytes");

// Q3_K: 256 weights in 16 sub-blocks of 16, symmetric: w = (d * (scale - 32)) * q with q in [-4,3].
// The low two bits of q sit like Q2_K's (bits 2s.. of qs[h*32 + l]); the third bit is bit (h*4 + s)
// of hmask[l], and it is stored *inverted*: q = low2 - (bit set ? 0 : 4).
// The 16 6-bit scales are packed in 12 bytes: low nibble of sub-block i is scales[i] & 15 for
// i < 8, scales[i-8] >> 4 for i >= 8; the top two bits are (scales[8 + i%4] >> (2*(i/4))) & 3.
struct BlockQ3_K {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block is 110 bytes");

// Q4_K: 256 weights in 8 sub-blocks of 32 with a 6-bit scale and a 6-bit min each:
// w = (d * scale) * q - (dmin * min), q in [0,15].
// Scales/mins packed in 12 bytes: for j < 4, scale = s[j] & 63, min = s[j+4] & 63; for j >= 4,
// scale = (s[j+4] & 15) | (s[j-4] >> 6) << 4, min = (s[j+4] >> 4) | (s[j] >> 6) << 4.
// Nibbles: qs[c*32 + l] holds element c*64 + l (low) and c*64 + 32 + l (high), c in 0..3.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");

// Q5_K: Q4_K plus a fifth bit: element c*64 + l takes bit 2c of qh[l], element c*64 + 32 + l takes
// bit 2c+1 of qh[l] (as value 16). q in [0,31].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");

// Q6_K: 256 weights in 16 sub-blocks of 16 with signed 8-bit scales: w = (d * scale) * (q - 32).
// For half h (128 elements) and l in 0..31, with L = ql + 64h and H = qh + 32h:
//   element 128h + l      : low nibble of L[l]      | bits 0-1 of H[l] << 4
//   element 128h + l + 32 : low nibble of L[l + 32] | bits 2-3 of H[l] << 4
//   element 128h + l + 64 : high nibble of L[l]     | bits 4-5 of H[l] << 4
//   element 128h + l + 96 : high nibble of L[l + 32]| bits 6-7 of H[l] << 4
// Sub-block of element e is e / 16.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

// Q8_K: 256 signed bytes with an fp32 scale: w = d * q. bsums[i] is the sum of q over elements
// 16i..16i+15 (kernels use it to fold in the mins of Q2_K..Q5_K weights).
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

// The 16 non-uniform levels shared by IQ4_NL and IQ4_XS (denser near zero, like a Gaussian).
constexpr int8_t kIQ4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// IQ4_NL: Q4_0's nibble layout, but q indexes kIQ4Levels: w = d * kIQ4Levels[q].
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block is 18 bytes");

// IQ4_XS: 256 weights in 8 sub-blocks of 32; sub-block ib has a 6-bit scale
// ls = (scales_l[ib/2] >> 4*(ib%2)) & 15 | ((scales_h >> 2*ib) & 3) << 4 and
// w = (d * (ls - 32)) * kIQ4Levels[q]. qs + 16*ib holds sub-block ib in Q4_0's nibble layout.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[4];
  uint8_t qs[128];
};
static_assert(sizeof(BlockIQ4_XS) == 136, "IQ4_XS block is 136 bytes");

// MXFP4 (ggml type 39): 32 E2M1 elements sharing an E8M0 exponent byte e (2^(e-127)).
// Nibble layout as Q4_0 (element j low, j+16 high). Each nibble is an OCP E2M1 code
// (sign, 2 exponent bits, 1 mantissa bit); kMxfp4Levels gives twice its value, so that
// w = kMxfp4Levels[q] * 2^(e-128).
struct BlockMXFP4 {
  uint8_t e;
  uint8_t qs[16];
};
static_assert(sizeof(BlockMXFP4) == 17, "MXFP4 block is 17 bytes");

constexpr int8_t kMxfp4Levels[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace rocforge::quant
