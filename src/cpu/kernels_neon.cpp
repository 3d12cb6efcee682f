// kernels_neon.cpp - the aarch64 kernel table: NEON activation quantizer, int8 dot products with
// `sdot` (vdotq_s32, FEAT_DotProd) for every quantized weight type matmul takes (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL, MXFP4; Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), and F32/F16/BF16 rows with
// vfmaq_f32. Any other type (Q8_K) returns false from gemm_q and takes the scalar kernel
// (matmul.cpp); there is no panel GEMM and no attention kernel (both nullptr: scalar paths).
//
// Each format is one Fmt* struct that unpacks a block into int8 codes and float scales (the
// quant::decode_block form), so all of them share one sdot loop and one float epilogue (gemm_fmt).
//
// This file alone is compiled with -march=armv8.2-a+dotprod (CMakeLists.txt; the aarch64 check
// scripts pass the same flag), so nothing in it may run before the CPU is known to have sdot:
// neon_kernels() (kernels_neon_dispatch.cpp, baseline armv8-a) checks HWCAP_ASIMDDP first and
// only then returns neon_dotprod_kernels(). On other machines this file compiles to nothing.
//
// Results: the quantizer is bit-identical to quantize_act_row. The int8 kernels keep the scalar
// kernel's float epilogue (per block: a double sum over the groups of scale * d_x * integer dot,
// then one float add into y), so with the integer dot products exact they give the scalar kernel's
// results; only the integer work is vectorised. scripts/check-aarch64-neon.sh checks both under
// qemu (tests/aarch64/neon_vs_scalar.cpp).
#if defined(__aarch64__)
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/half.h"
#include "cpu/kernels.h"
#include "quant/blocks.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "kernels_neon.cpp needs -march=armv8.2-a+dotprod (set for this file in CMakeLists.txt)"
#endif
#include <arm_neon.h>

namespace rocforge::cpu::neon {
namespace {

using quant::BlockIQ4_NL;
using quant::BlockIQ4_XS;
using quant::BlockMXFP4;
using quant::BlockQ2_K;
using quant::BlockQ3_K;
using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ4_K;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_f32(h);
}

// One weight block unpacked into registers: kElems int8 codes (already re-centred, as
// quant::decode_block gives them) in 16-lane vectors, one scale (and min) per kGroup elements.
template <int kElems, int kGroup, bool kMin>
struct Unpacked {
  static constexpr int kN = kElems, kG = kGroup, kVecs = kElems / 16, kGroups = kElems / kGroup;
  static constexpr bool kHasMin = kMin;
  int8x16_t code[kVecs];    // code[v] = elements 16v .. 16v+15
  float scale[kGroups];
  float min[kMin ? kGroups : 1];
};

// Q4_0: qs[j] holds element j (low nibble) and j + 16 (high nibble); w = d * (q - 8).
struct FmtQ4_0 {
  using U = Unpacked<32, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  static void unpack(const uint8_t* b, U& u) {
    const uint8x16_t qs = vld1q_u8(b + offsetof(BlockQ4_0, qs));
    const int8x16_t eight = vdupq_n_s8(8);
    u.code[0] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F))), eight);
    u.code[1] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(qs, 4)), eight);
    u.scale[0] = half_at(b + offsetof(BlockQ4_0, d));
  }
};

// Q4_1: Q4_0's nibbles without the re-centring, plus an fp16 offset: w = d * q + m, q in [0,15].
struct FmtQ4_1 {
  using U = Unpacked<32, 32, true>;
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  static void unpack(const uint8_t* b, U& u) {
    const uint8x16_t qs = vld1q_u8(b + offsetof(BlockQ4_1, qs));
    u.code[0] = vreinterpretq_s8_u8(vandq_u8(qs, vdupq_n_u8(0x0F)));
    u.code[1] = vreinterpretq_s8_u8(vshrq_n_u8(qs, 4));
    u.scale[0] = half_at(b + offsetof(BlockQ4_1, d));
    u.min[0] = half_at(b + offsetof(BlockQ4_1, m));
  }
};

// Q5_0 / Q5_1: Q4_0's nibbles plus a fifth bit (value 16): element j takes bit j of the
// little-endian 32-bit qh, i.e. bit j%8 of qh[j/8]. Codes of the 32 elements, minus `offset`.
void q5_codes(const uint8_t* qs_p, const uint8_t* qh, uint8_t offset, int8x16_t code[2]) {
  const uint8x16_t qs = vld1q_u8(qs_p);
  // Byte k of each 8-lane half tests bit k: lanes 0-7 look at qh[0] (or qh[2]), 8-15 at qh[1] (qh[3]).
  const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
  const uint8x16_t h01 = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));  // elements 0..15
  const uint8x16_t h23 = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));  // elements 16..31
  const uint8x16_t b4 = vdupq_n_u8(0x10), off = vdupq_n_u8(offset);
  const uint8x16_t lo = vorrq_u8(vandq_u8(qs, vdupq_n_u8(0x0F)), vandq_u8(vtstq_u8(h01, bit), b4));
  const uint8x16_t hi = vorrq_u8(vshrq_n_u8(qs, 4), vandq_u8(vtstq_u8(h23, bit), b4));
  // Wrapping u8 subtraction, then reread as s8: q - offset in [-16, 15] (or [0, 31] for offset 0).
  code[0] = vreinterpretq_s8_u8(vsubq_u8(lo, off));
  code[1] = vreinterpretq_s8_u8(vsubq_u8(hi, off));
}

// Q5_0: w = d * (q - 16).
struct FmtQ5_0 {
  using U = Unpacked<32, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  static void unpack(const uint8_t* b, U& u) {
    q5_codes(b + offsetof(BlockQ5_0, qs), b + offsetof(BlockQ5_0, qh), 16, u.code);
    u.scale[0] = half_at(b + offsetof(BlockQ5_0, d));
  }
};

// Q5_1: the unsigned 5-bit q with an fp16 offset: w = d * q + m.
struct FmtQ5_1 {
  using U = Unpacked<32, 32, true>;
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  static void unpack(const uint8_t* b, U& u) {
    q5_codes(b + offsetof(BlockQ5_1, qs), b + offsetof(BlockQ5_1, qh), 0, u.code);
    u.scale[0] = half_at(b + offsetof(BlockQ5_1, d));
    u.min[0] = half_at(b + offsetof(BlockQ5_1, m));
  }
};

// Q8_0: 32 signed bytes, w = d * q.
struct FmtQ8_0 {
  using U = Unpacked<32, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  static void unpack(const uint8_t* b, U& u) {
    const auto* qs = reinterpret_cast<const int8_t*>(b + offsetof(BlockQ8_0, qs));
    u.code[0] = vld1q_s8(qs);
    u.code[1] = vld1q_s8(qs + 16);
    u.scale[0] = half_at(b + offsetof(BlockQ8_0, d));
  }
};

// 32 elements in Q4_0's nibble layout (qs[j]: element j low, j + 16 high) mapped through a
// 16-entry int8 level table with one tbl lookup per 16 codes (IQ4_NL, IQ4_XS, MXFP4).
void lut_codes(const uint8_t* qs_p, int8x16_t levels, int8x16_t code[2]) {
  const uint8x16_t qs = vld1q_u8(qs_p);
  code[0] = vqtbl1q_s8(levels, vandq_u8(qs, vdupq_n_u8(0x0F)));
  code[1] = vqtbl1q_s8(levels, vshrq_n_u8(qs, 4));
}

// IQ4_NL: w = d * kIQ4Levels[q].
struct FmtIQ4_NL {
  using U = Unpacked<32, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockIQ4_NL);
  static void unpack(const uint8_t* b, U& u) {
    lut_codes(b + offsetof(BlockIQ4_NL, qs), vld1q_s8(quant::kIQ4Levels), u.code);
    u.scale[0] = half_at(b + offsetof(BlockIQ4_NL, d));
  }
};

// MXFP4: E2M1 codes (kMxfp4Levels holds twice their value) sharing an E8M0 exponent byte e:
// w = kMxfp4Levels[q] * 2^(e-128). The scale is built from bits as quant::decode_block builds it
// (e < 2 lands in the f32 subnormal range).
struct FmtMXFP4 {
  using U = Unpacked<32, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockMXFP4);
  static void unpack(const uint8_t* b, U& u) {
    lut_codes(b + offsetof(BlockMXFP4, qs), vld1q_s8(quant::kMxfp4Levels), u.code);
    const uint32_t e = b[offsetof(BlockMXFP4, e)];
    u.scale[0] = f32_from_bits(e < 2 ? (0x00200000u << e) : (e - 1) << 23);
  }
};

// IQ4_XS: 8 sub-blocks of 32, each in Q4_0's nibble layout at qs + 16*ib, with a 6-bit scale
// ls = low nibble of scales_l[ib/2] (high nibble for odd ib) | bits 2ib..2ib+1 of scales_h << 4;
// w = (d * (ls - 32)) * kIQ4Levels[q].
struct FmtIQ4_XS {
  using U = Unpacked<256, 32, false>;
  static constexpr size_t kBytes = sizeof(BlockIQ4_XS);
  static void unpack(const uint8_t* b, U& u) {
    const float d = half_at(b + offsetof(BlockIQ4_XS, d));
    uint16_t sh;
    std::memcpy(&sh, b + offsetof(BlockIQ4_XS, scales_h), 2);
    const uint8_t* sl = b + offsetof(BlockIQ4_XS, scales_l);
    const uint8_t* qs = b + offsetof(BlockIQ4_XS, qs);
    const int8x16_t levels = vld1q_s8(quant::kIQ4Levels);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0x0F) | ((sh >> (2 * ib)) & 3) << 4;
      u.scale[ib] = d * static_cast<float>(ls - 32);  // the float op of quant::decode_block
      lut_codes(qs + 16 * ib, levels, u.code + 2 * ib);
    }
  }
};

// The 2-bit fields of Q2_K / Q3_K: element 128h + 32s + l (h < 2, s < 4, l < 32) is bits
// 2s..2s+1 of qs[32h + l]. low2[8h + 2s + l0/16] = those 16 fields for l in l0..l0+15 (vector
// index = element / 16, as in Unpacked).
void two_bit_fields(const uint8_t* qs, uint8x16_t low2[16]) {
  const uint8x16_t m3 = vdupq_n_u8(3);
  for (int h = 0; h < 2; ++h)
    for (int l0 = 0; l0 < 32; l0 += 16) {
      const uint8x16_t q = vld1q_u8(qs + 32 * h + l0);
      const int v = 8 * h + l0 / 16;
      low2[v + 0] = vandq_u8(q, m3);
      low2[v + 2] = vandq_u8(vshrq_n_u8(q, 2), m3);
      low2[v + 4] = vandq_u8(vshrq_n_u8(q, 4), m3);
      low2[v + 6] = vshrq_n_u8(q, 6);
    }
}

// Q2_K: 16 sub-blocks of 16; scales[g] low nibble is the scale, high nibble the min:
// w = (d * sc) * q - (dmin * m), q in [0,3].
struct FmtQ2_K {
  using U = Unpacked<256, 16, true>;
  static constexpr size_t kBytes = sizeof(BlockQ2_K);
  static void unpack(const uint8_t* b, U& u) {
    const float d = half_at(b + offsetof(BlockQ2_K, d)), dmin = half_at(b + offsetof(BlockQ2_K, dmin));
    const uint8_t* sc = b + offsetof(BlockQ2_K, scales);
    for (int g = 0; g < 16; ++g) {  // the float ops of quant::decode_block
      u.scale[g] = d * static_cast<float>(sc[g] & 0x0F);
      u.min[g] = -(dmin * static_cast<float>(sc[g] >> 4));
    }
    uint8x16_t low2[16];
    two_bit_fields(b + offsetof(BlockQ2_K, qs), low2);
    for (int v = 0; v < 16; ++v) u.code[v] = vreinterpretq_s8_u8(low2[v]);
  }
};

// Q3_K: 16 sub-blocks of 16, symmetric: w = (d * (sc - 32)) * q, q = low2 - (hbit ? 0 : 4) in
// [-4,3], low2 laid out as Q2_K's and hbit = bit 4h + s of hmask[l] (stored inverted). The 6-bit
// scale of sub-block i: low nibble from scales[i] (i < 8) or scales[i-8] >> 4, top two bits
// (scales[8 + i%4] >> 2*(i/4)) & 3.
struct FmtQ3_K {
  using U = Unpacked<256, 16, false>;
  static constexpr size_t kBytes = sizeof(BlockQ3_K);
  static void unpack(const uint8_t* b, U& u) {
    const float d = half_at(b + offsetof(BlockQ3_K, d));
    const uint8_t* sc = b + offsetof(BlockQ3_K, scales);
    for (int i = 0; i < 16; ++i) {
      const int low = i < 8 ? (sc[i] & 0x0F) : (sc[i - 8] >> 4);
      const int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
      u.scale[i] = d * static_cast<float>((low | high << 4) - 32);  // the float op of decode_block
    }
    uint8x16_t low2[16];
    two_bit_fields(b + offsetof(BlockQ3_K, qs), low2);
    const uint8_t* hm = b + offsetof(BlockQ3_K, hmask);
    const uint8x16_t hm0 = vld1q_u8(hm), hm1 = vld1q_u8(hm + 16);  // hmask[l], l < 16 and l >= 16
    const uint8x16_t four = vdupq_n_u8(4);
    for (int v = 0; v < 16; ++v) {
      const int h = v / 8, s = (v % 8) / 2;  // vector v holds elements 128h + 32s + 16(v%2) ..
      const uint8x16_t set = vtstq_u8(v % 2 ? hm1 : hm0, vdupq_n_u8(uint8_t(1u << (4 * h + s))));
      // low2 < 4, so (low2 | (hbit ? 4 : 0)) - 4 is low2 - (hbit ? 0 : 4).
      u.code[v] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low2[v], vandq_u8(set, four))), vdupq_n_s8(4));
    }
  }
};

// Q4_K / Q5_K: the 6-bit scale and min of each of the 8 sub-blocks from the 12 packed bytes
// (sub-blocks 0-3 in the low 6 bits of s[0..7]; 4-7 split over s[8..11], low nibbles scales and
// high nibbles mins, and the top 2 bits of s[0..7]). Both blocks start with d, dmin, scales[12].
static_assert(offsetof(BlockQ5_K, scales) == offsetof(BlockQ4_K, scales), "Q5_K header is Q4_K's");
void k4_scales(const uint8_t* b, float* scale, float* min) {
  const float d = half_at(b + offsetof(BlockQ4_K, d)), dmin = half_at(b + offsetof(BlockQ4_K, dmin));
  const uint8_t* s = b + offsetof(BlockQ4_K, scales);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    if (j < 4) {
      sc = s[j] & 63;
      m = s[j + 4] & 63;
    } else {
      sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
      m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
    // Same float ops as quant::decode_block (so the scales are the scalar kernel's).
    scale[j] = d * static_cast<float>(sc);
    min[j] = -(dmin * static_cast<float>(m));
  }
}

// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min; element c*64 + l is the low nibble of
// qs[c*32 + l], element c*64 + 32 + l its high nibble. w = (d*sc) * q - (dmin*m).
struct FmtQ4_K {
  using U = Unpacked<256, 32, true>;
  static constexpr size_t kBytes = sizeof(BlockQ4_K);
  static void unpack(const uint8_t* b, U& u) {
    k4_scales(b, u.scale, u.min);
    const uint8_t* qs = b + offsetof(BlockQ4_K, qs);
    const uint8x16_t lo4 = vdupq_n_u8(0x0F);
    for (int c = 0; c < 4; ++c) {
      const uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
      u.code[4 * c + 0] = vreinterpretq_s8_u8(vandq_u8(q0, lo4));
      u.code[4 * c + 1] = vreinterpretq_s8_u8(vandq_u8(q1, lo4));
      u.code[4 * c + 2] = vreinterpretq_s8_u8(vshrq_n_u8(q0, 4));
      u.code[4 * c + 3] = vreinterpretq_s8_u8(vshrq_n_u8(q1, 4));
    }
  }
};

// Q5_K: Q4_K's scales and nibbles plus a fifth bit (value 16): element c*64 + l takes bit 2c of
// qh[l], element c*64 + 32 + l bit 2c+1 of qh[l]. w = (d*sc) * q - (dmin*m), q in [0,31].
struct FmtQ5_K {
  using U = Unpacked<256, 32, true>;
  static constexpr size_t kBytes = sizeof(BlockQ5_K);
  static void unpack(const uint8_t* b, U& u) {
    k4_scales(b, u.scale, u.min);
    const uint8_t* qs = b + offsetof(BlockQ5_K, qs);
    const uint8_t* qh = b + offsetof(BlockQ5_K, qh);
    const uint8x16_t lo4 = vdupq_n_u8(0x0F), b4 = vdupq_n_u8(0x10);
    const uint8x16_t h0 = vld1q_u8(qh), h1 = vld1q_u8(qh + 16);  // qh[l] for l < 16, l >= 16
    for (int c = 0; c < 4; ++c) {
      const uint8x16_t q0 = vld1q_u8(qs + 32 * c), q1 = vld1q_u8(qs + 32 * c + 16);
      // vtstq: 0xFF where the bit is set; & 0x10 turns it into the value 16.
      const uint8x16_t mlo = vdupq_n_u8(uint8_t(1u << (2 * c))), mhi = vdupq_n_u8(uint8_t(2u << (2 * c)));
      u.code[4 * c + 0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q0, lo4), vandq_u8(vtstq_u8(h0, mlo), b4)));
      u.code[4 * c + 1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q1, lo4), vandq_u8(vtstq_u8(h1, mlo), b4)));
      u.code[4 * c + 2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q0, 4), vandq_u8(vtstq_u8(h0, mhi), b4)));
      u.code[4 * c + 3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q1, 4), vandq_u8(vtstq_u8(h1, mhi), b4)));
    }
  }
};

// Q6_K: 16 sub-blocks of 16 with int8 scales; 4 low bits in ql, 2 high bits in qh, w = d*sc*(q-32).
// Half h (128 elements): element 128h + l + 32k (l < 32, k < 4) takes
//   k=0: ql[64h+l] low nibble,  qh[32h+l] bits 0-1     k=1: ql[64h+32+l] low nibble, qh bits 2-3
//   k=2: ql[64h+l] high nibble, qh bits 4-5            k=3: ql[64h+32+l] high nibble, qh bits 6-7
struct FmtQ6_K {
  using U = Unpacked<256, 16, false>;
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  static void unpack(const uint8_t* b, U& u) {
    const float d = half_at(b + offsetof(BlockQ6_K, d));
    const auto* sc = reinterpret_cast<const int8_t*>(b + offsetof(BlockQ6_K, scales));
    for (int g = 0; g < 16; ++g) u.scale[g] = d * static_cast<float>(sc[g]);
    const uint8_t* ql = b + offsetof(BlockQ6_K, ql);
    const uint8_t* qh = b + offsetof(BlockQ6_K, qh);
    const uint8x16_t lo4 = vdupq_n_u8(0x0F), hi2 = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
    for (int h = 0; h < 2; ++h)
      for (int l0 = 0; l0 < 32; l0 += 16) {
        const uint8x16_t a = vld1q_u8(ql + 64 * h + l0), c = vld1q_u8(ql + 64 * h + 32 + l0);
        const uint8x16_t hb = vld1q_u8(qh + 32 * h + l0);
        // The two high bits of element k moved to bits 4-5.
        const uint8x16_t v0 = vorrq_u8(vandq_u8(a, lo4), vandq_u8(vshlq_n_u8(hb, 4), hi2));
        const uint8x16_t v1 = vorrq_u8(vandq_u8(c, lo4), vandq_u8(vshlq_n_u8(hb, 2), hi2));
        const uint8x16_t v2 = vorrq_u8(vshrq_n_u8(a, 4), vandq_u8(hb, hi2));
        const uint8x16_t v3 = vorrq_u8(vshrq_n_u8(c, 4), vandq_u8(vshrq_n_u8(hb, 2), hi2));
        const int base = 8 * h + l0 / 16;  // vector of element 128h + l0
        u.code[base + 0] = vsubq_s8(vreinterpretq_s8_u8(v0), off);
        u.code[base + 2] = vsubq_s8(vreinterpretq_s8_u8(v1), off);
        u.code[base + 4] = vsubq_s8(vreinterpretq_s8_u8(v2), off);
        u.code[base + 6] = vsubq_s8(vreinterpretq_s8_u8(v3), off);
      }
  }
};

// y[t*ldy + r] for rows [r0, r1): each weight block is unpacked once and used by all T tokens.
// The float epilogue is the scalar kernel's, statement for statement (see the file comment).
template <class F>
void gemm_fmt(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a, float* y, int64_t ldy) {
  using U = typename F::U;
  constexpr int kPerGroup = U::kG / 16;  // 16-lane vectors per scale group
  const int64_t nblk = a.n / U::kN, dstride = a.n / a.block;
  U u;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t t = 0; t < a.T; ++t) y[t * ldy + r] = 0.0f;
    for (int64_t b = 0; b < nblk; ++b) {
      F::unpack(row + b * F::kBytes, u);
      for (int64_t tt = 0; tt < a.T; ++tt) {
        const int8_t* xq = a.q + tt * a.n + b * U::kN;  // [kN] int8 activations of this block
        double acc = 0;
        for (int g = 0; g < U::kGroups; ++g) {
          int32x4_t s = vdupq_n_s32(0);
          for (int v = g * kPerGroup; v < (g + 1) * kPerGroup; ++v) s = vdotq_s32(s, u.code[v], vld1q_s8(xq + 16 * v));
          const int32_t idot = vaddvq_s32(s);
          const int64_t e0 = b * U::kN + g * U::kG;  // first element of the group in the row
          const double dx = a.d[tt * dstride + e0 / a.block];
          acc += double(u.scale[g]) * dx * idot;
          if constexpr (U::kHasMin) {
            // Sum of the group's activation codes from the quantizer's 16-element sums.
            const int16_t* s16 = a.s16 + (tt * a.n + e0) / 16;
            int32_t isum = 0;
            for (int k = 0; k < kPerGroup; ++k) isum += s16[k];
            acc += double(u.min[g]) * dx * isum;
          }
        }
        y[tt * ldy + r] += static_cast<float>(acc);
      }
    }
  }
}

// One format's kernel, or false when a row is not whole blocks of it (a K-quant row of 256s).
template <class F>
bool run_fmt(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a, float* y, int64_t ldy) {
  if (a.n % F::U::kN != 0) return false;
  gemm_fmt<F>(w, row_bytes, r0, r1, a, y, ldy);
  return true;
}

bool gemm_q(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a, float* y,
            int64_t ldy) {
  // Scale groups must not straddle activation blocks (the quantizer gives 32 or 256).
  if (a.block <= 0 || a.block % 32 != 0 || a.n % a.block != 0) return false;
  switch (t) {
    case GgmlType::Q4_0: return run_fmt<FmtQ4_0>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q4_1: return run_fmt<FmtQ4_1>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q5_0: return run_fmt<FmtQ5_0>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q5_1: return run_fmt<FmtQ5_1>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q8_0: return run_fmt<FmtQ8_0>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::IQ4_NL: return run_fmt<FmtIQ4_NL>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::MXFP4: return run_fmt<FmtMXFP4>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q2_K: return run_fmt<FmtQ2_K>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q3_K: return run_fmt<FmtQ3_K>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q4_K: return run_fmt<FmtQ4_K>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q5_K: return run_fmt<FmtQ5_K>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::Q6_K: return run_fmt<FmtQ6_K>(w, row_bytes, r0, r1, a, y, ldy);
    case GgmlType::IQ4_XS: return run_fmt<FmtIQ4_XS>(w, row_bytes, r0, r1, a, y, ldy);
    default: return false;  // Q8_K and the rest: the scalar kernel takes it
  }
}

// Four weights of row element i..i+3 as f32 (F16/BF16 conversions are exact). Byte loads: rows of
// F16/BF16 (and F32 inside a GGUF) need not be 4-byte aligned.
template <GgmlType T>
float32x4_t load4(const uint8_t* row, int64_t i) {
  if constexpr (T == GgmlType::F32) return vreinterpretq_f32_u8(vld1q_u8(row + 4 * i));
  else if constexpr (T == GgmlType::F16) return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(row + 2 * i)));
  else return vreinterpretq_f32_u32(vshll_n_u16(vreinterpret_u16_u8(vld1_u8(row + 2 * i)), 16));
}

template <GgmlType T>
float load1(const uint8_t* row, int64_t i) {
  if constexpr (T == GgmlType::F32) {
    float f;
    std::memcpy(&f, row + 4 * i, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return T == GgmlType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
  }
}

// Same eight partial sums as the scalar kernel (lanes 0-3 in acc0, 4-7 in acc1), the same tail
// and the same final additions.
template <GgmlType T>
void gemm_float(const uint8_t* w, size_t row_bytes, int64_t n, int64_t r0, int64_t r1, const float* x, int64_t Tn,
                float* y, int64_t ldy) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t tt = 0; tt < Tn; ++tt) {
      const float* xr = x + tt * n;  // [n] f32 activations of token tt
      float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, load4<T>(row, i), vld1q_f32(xr + i));
        acc1 = vfmaq_f32(acc1, load4<T>(row, i + 4), vld1q_f32(xr + i + 4));
      }
      float tail = 0;
      for (; i < n; ++i) tail += load1<T>(row, i) * xr[i];
      float s[8];
      vst1q_f32(s, acc0);
      vst1q_f32(s + 4, acc1);
      y[tt * ldy + r] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
    }
  }
}

bool gemm_f(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t n, int64_t r0, int64_t r1, const float* x,
            int64_t T, float* y, int64_t ldy) {
  switch (t) {
    case GgmlType::F32: gemm_float<GgmlType::F32>(w, row_bytes, n, r0, r1, x, T, y, ldy); return true;
    case GgmlType::F16: gemm_float<GgmlType::F16>(w, row_bytes, n, r0, r1, x, T, y, ldy); return true;
    case GgmlType::BF16: gemm_float<GgmlType::BF16>(w, row_bytes, n, r0, r1, x, T, y, ldy); return true;
    default: return false;
  }
}

// quantize_act_row, 16 codes at a time. Bit-identical: max is order-independent (vmaxnm skips a
// NaN as std::max does when it is the second operand), the scale and the product x * id are the
// same single float ops, and vcvtnq rounds to nearest-even as nearbyint does in the default mode.
void quantize_act(const float* x, int64_t n, int block, int8_t* q, float* d, int16_t* s16, int32_t* lanes,
                  float* ds) {
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int i = 0; i < block; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + b0 + i)));
    const float amax = vmaxnmvq_f32(m);
    const float dd = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    d[b0 / block] = dd;
    const float32x4_t vid = vdupq_n_f32(id);
    int32_t s32 = 0;  // running sum of the current 32-element group
    for (int i = 0; i < block; i += 16) {
      const float* xs = x + b0 + i;
      int32x4_t c[4];
      for (int k = 0; k < 4; ++k) c[k] = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(xs + 4 * k), vid));
      const int16x8_t h0 = vcombine_s16(vqmovn_s32(c[0]), vqmovn_s32(c[1]));
      const int16x8_t h1 = vcombine_s16(vqmovn_s32(c[2]), vqmovn_s32(c[3]));
      const int8x16_t v = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
      vst1q_s8(q + b0 + i, v);
      const int16_t sum16 = vaddlvq_s8(v);
      s16[(b0 + i) / 16] = sum16;
      vst1q_s32(lanes + (b0 + i) / 4, vpaddlq_s16(vpaddlq_s8(v)));  // sums of codes 4k..4k+3
      s32 += sum16;
      if (i % 32 == 16) {
        ds[(b0 + i - 16) / 32] = dd * static_cast<float>(s32);
        s32 = 0;
      }
    }
  }
}

}  // namespace
}  // namespace rocforge::cpu::neon

namespace rocforge::cpu {

const KernelTable* neon_dotprod_kernels() {
  static const KernelTable table{"neon", neon::gemm_q, neon::gemm_f, neon::quantize_act, nullptr, nullptr};
  return &table;
}

}  // namespace rocforge::cpu
#endif
