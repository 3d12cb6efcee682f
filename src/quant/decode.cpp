// decode.cpp - unpacking each ggml block into the affine form of decode.h.
#include "quant/decode.h"

#include <cstring>

#include "core/half.h"
#include "quant/blocks.h"

namespace rocforge::quant {
namespace {

float h2f(uint16_t h) { return fp16_to_f32(h); }

// 32-element blocks whose qs[j] holds element j (low nibble) and j+16 (high nibble).
void nibbles32(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = qs[j] & 0x0F;
    q[j + 16] = qs[j] >> 4;
  }
}

uint32_t load_u32le(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

void decode_q4_0(const BlockQ4_0& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = false;
  uint8_t q[32];
  nibbles32(b.qs, q);
  for (int j = 0; j < 32; ++j) o.code[j] = static_cast<int8_t>(q[j] - 8);
  o.scale[0] = h2f(b.d);
}

void decode_q4_1(const BlockQ4_1& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = true;
  uint8_t q[32];
  nibbles32(b.qs, q);
  for (int j = 0; j < 32; ++j) o.code[j] = static_cast<int8_t>(q[j]);
  o.scale[0] = h2f(b.d);
  o.min[0] = h2f(b.m);
}

void decode_q5(const uint8_t* qs, const uint8_t* qh_bytes, int offset, AffineBlock& o) {
  uint8_t q[32];
  nibbles32(qs, q);
  const uint32_t qh = load_u32le(qh_bytes);
  for (int j = 0; j < 32; ++j) o.code[j] = static_cast<int8_t>((q[j] | ((qh >> j) & 1u) << 4) - offset);
}

void decode_q5_0(const BlockQ5_0& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = false;
  decode_q5(b.qs, b.qh, 16, o);
  o.scale[0] = h2f(b.d);
}

void decode_q5_1(const BlockQ5_1& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = true;
  decode_q5(b.qs, b.qh, 0, o);
  o.scale[0] = h2f(b.d);
  o.min[0] = h2f(b.m);
}

void decode_q8_0(const BlockQ8_0& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = false;
  for (int j = 0; j < 32; ++j) o.code[j] = b.qs[j];
  o.scale[0] = h2f(b.d);
}

void decode_q2_k(const BlockQ2_K& b, AffineBlock& o) {
  o.n = 256; o.group = 16; o.has_min = true;
  const float d = h2f(b.d), dmin = h2f(b.dmin);
  for (int g = 0; g < 16; ++g) {
    o.scale[g] = d * static_cast<float>(b.scales[g] & 0x0F);
    o.min[g] = -(dmin * static_cast<float>(b.scales[g] >> 4));
  }
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) o.code[h * 128 + s * 32 + l] = static_cast<int8_t>((b.qs[h * 32 + l] >> (2 * s)) & 3);
}

void decode_q3_k(const BlockQ3_K& b, AffineBlock& o) {
  o.n = 256; o.group = 16; o.has_min = false;
  const float d = h2f(b.d);
  for (int i = 0; i < 16; ++i) {
    const int low = i < 8 ? (b.scales[i] & 0x0F) : (b.scales[i - 8] >> 4);
    const int high = (b.scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    o.scale[i] = d * static_cast<float>((low | high << 4) - 32);
  }
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int low2 = (b.qs[h * 32 + l] >> (2 * s)) & 3;
        const bool hbit = (b.hmask[l] >> (h * 4 + s)) & 1;
        o.code[h * 128 + s * 32 + l] = static_cast<int8_t>(low2 - (hbit ? 0 : 4));
      }
}

// Q4_K / Q5_K 6-bit scale and min of sub-block j from the 12 packed bytes.
void scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
    m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

void k4_scales(uint16_t dh, uint16_t dminh, const uint8_t* scales, AffineBlock& o) {
  const float d = h2f(dh), dmin = h2f(dminh);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(scales, j, sc, m);
    o.scale[j] = d * static_cast<float>(sc);
    o.min[j] = -(dmin * static_cast<float>(m));
  }
}

void decode_q4_k(const BlockQ4_K& b, AffineBlock& o) {
  o.n = 256; o.group = 32; o.has_min = true;
  k4_scales(b.d, b.dmin, b.scales, o);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      o.code[c * 64 + l] = static_cast<int8_t>(b.qs[c * 32 + l] & 0x0F);
      o.code[c * 64 + 32 + l] = static_cast<int8_t>(b.qs[c * 32 + l] >> 4);
    }
}

void decode_q5_k(const BlockQ5_K& b, AffineBlock& o) {
  o.n = 256; o.group = 32; o.has_min = true;
  k4_scales(b.d, b.dmin, b.scales, o);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = b.qs[c * 32 + l] & 0x0F, hi = b.qs[c * 32 + l] >> 4;
      o.code[c * 64 + l] = static_cast<int8_t>(lo | ((b.qh[l] >> (2 * c)) & 1) << 4);
      o.code[c * 64 + 32 + l] = static_cast<int8_t>(hi | ((b.qh[l] >> (2 * c + 1)) & 1) << 4);
    }
}

void decode_q6_k(const BlockQ6_K& b, AffineBlock& o) {
  o.n = 256; o.group = 16; o.has_min = false;
  const float d = h2f(b.d);
  for (int g = 0; g < 16; ++g) o.scale[g] = d * static_cast<float>(b.scales[g]);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* y = o.code + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y[l] = static_cast<int8_t>(((ql[l] & 0x0F) | ((qh[l] >> 0) & 3) << 4) - 32);
      y[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) - 32);
      y[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
      y[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
    }
  }
}

void decode_q8_k(const BlockQ8_K& b, AffineBlock& o) {
  o.n = 256; o.group = 256; o.has_min = false;
  for (int j = 0; j < 256; ++j) o.code[j] = b.qs[j];
  o.scale[0] = b.d;
}

void decode_iq4_nl(const BlockIQ4_NL& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = false;
  uint8_t q[32];
  nibbles32(b.qs, q);
  for (int j = 0; j < 32; ++j) o.code[j] = kIQ4Levels[q[j]];
  o.scale[0] = h2f(b.d);
}

void decode_iq4_xs(const BlockIQ4_XS& b, AffineBlock& o) {
  o.n = 256; o.group = 32; o.has_min = false;
  const float d = h2f(b.d);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | ((b.scales_h >> (2 * ib)) & 3) << 4;
    o.scale[ib] = d * static_cast<float>(ls - 32);
    uint8_t q[32];
    nibbles32(b.qs + 16 * ib, q);
    for (int j = 0; j < 32; ++j) o.code[32 * ib + j] = kIQ4Levels[q[j]];
  }
}

// 2^(e-128) as a float, built from bits; e < 2 lands in the subnormal range.
float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e) - 1) << 23;
  return f32_from_bits(bits);
}

void decode_mxfp4(const BlockMXFP4& b, AffineBlock& o) {
  o.n = 32; o.group = 32; o.has_min = false;
  uint8_t q[32];
  nibbles32(b.qs, q);
  for (int j = 0; j < 32; ++j) o.code[j] = kMxfp4Levels[q[j]];
  o.scale[0] = e8m0_half(b.e);
}

// Copies the block out of possibly unaligned memory before decoding it.
template <typename B, typename F>
void decode_as(const void* p, AffineBlock& o, F f) {
  B b;
  std::memcpy(&b, p, sizeof(B));
  f(b, o);
}

}  // namespace

bool decode_block(GgmlType t, const void* p, AffineBlock& o) {
  switch (t) {
    case GgmlType::Q4_0: decode_as<BlockQ4_0>(p, o, decode_q4_0); return true;
    case GgmlType::Q4_1: decode_as<BlockQ4_1>(p, o, decode_q4_1); return true;
    case GgmlType::Q5_0: decode_as<BlockQ5_0>(p, o, decode_q5_0); return true;
    case GgmlType::Q5_1: decode_as<BlockQ5_1>(p, o, decode_q5_1); return true;
    case GgmlType::Q8_0: decode_as<BlockQ8_0>(p, o, decode_q8_0); return true;
    case GgmlType::Q2_K: decode_as<BlockQ2_K>(p, o, decode_q2_k); return true;
    case GgmlType::Q3_K: decode_as<BlockQ3_K>(p, o, decode_q3_k); return true;
    case GgmlType::Q4_K: decode_as<BlockQ4_K>(p, o, decode_q4_k); return true;
    case GgmlType::Q5_K: decode_as<BlockQ5_K>(p, o, decode_q5_k); return true;
    case GgmlType::Q6_K: decode_as<BlockQ6_K>(p, o, decode_q6_k); return true;
    case GgmlType::Q8_K: decode_as<BlockQ8_K>(p, o, decode_q8_k); return true;
    case GgmlType::IQ4_NL: decode_as<BlockIQ4_NL>(p, o, decode_iq4_nl); return true;
    case GgmlType::IQ4_XS: decode_as<BlockIQ4_XS>(p, o, decode_iq4_xs); return true;
    case GgmlType::MXFP4: decode_as<BlockMXFP4>(p, o, decode_mxfp4); return true;
    default: return false;
  }
}

}  // namespace rocforge::quant
