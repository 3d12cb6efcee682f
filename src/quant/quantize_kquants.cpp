// quantize_kquants.cpp - quantizers for the 256-element super-block formats Q2_K..Q6_K, IQ4_XS.
//
// Two levels of scales: each sub-block (16 or 32 elements) first gets its own best float scale
// (and min) from the searches of search.h. Those are then themselves quantized to 4-8 bits against
// one fp16 super-scale (the largest maps to the end of the range). Finally, unless naive, each
// sub-block tries its quantized scale/min +-1 step and keeps whichever, with codes re-rounded
// against the values exactly as the dequantizer will compute them, gives the smallest error. That
// last step repairs most of what the coarse scale quantization costs.
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/quantize_impl.h"
#include "quant/search.h"

namespace rocforge::quant {
namespace {

// ---- group error helpers: codes re-rounded for a given effective scale (and min) --------------

// Codes for an effective scale: x * inv with inv = 1/eff (0 when eff is 0, giving code 0 / the
// level nearest 0).
float inverse(float eff) { return eff != 0 ? 1.0f / eff : 0.0f; }

int sym_code(float x, float inv, int qmin, int qmax) { return quant_code(x * inv, qmin, qmax); }

// w = eff * q, symmetric codes (n a multiple of 4; see affine_err).
float sym_err(const float* x, int n, float eff, int qmin, int qmax) {
  const float inv = inverse(eff), lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  float acc[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i += 4)
    for (int k = 0; k < 4; ++k) {
      const float w = eff * quant_codef(x[i + k] * inv, lo, hi);
      acc[k] += (w - x[i + k]) * (w - x[i + k]);
    }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

int affine_code(float x, float inv_s, float eff_m, int qmax) { return quant_code((x + eff_m) * inv_s, 0, qmax); }

// w = eff_s * q - eff_m, codes in [0, qmax]. n is a multiple of 4: four independent partial sums
// break the serial dependency on one accumulator (the compiler may not reassociate floats itself).
float affine_err(const float* x, int n, float eff_s, float eff_m, int qmax) {
  const float inv = inverse(eff_s), hi = static_cast<float>(qmax);
  float acc[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; i += 4)
    for (int k = 0; k < 4; ++k) {
      const float w = eff_s * quant_codef((x[i + k] + eff_m) * inv, 0.0f, hi) - eff_m;
      acc[k] += (w - x[i + k]) * (w - x[i + k]);
    }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

int iq4_code(float x, float inv) { return nearest_iq4(x * inv); }

float iq4_err(const float* x, int n, float eff) {
  const float inv = inverse(eff);
  float err = 0;
  for (int i = 0; i < n; ++i) {
    const float w = eff * static_cast<float>(kIQ4Levels[iq4_code(x[i], inv)]);
    err += (w - x[i]) * (w - x[i]);
  }
  return err;
}

// ---- two-level scale quantization --------------------------------------------------------------

// Affine sub-blocks (Q2_K, Q4_K, Q5_K): float scales s[g] >= 0 and mins m[g] >= 0 (w = s*q - m)
// become unsigned `scale_bits`-bit integers sc[g], mi[g] against fp16 d and dmin.
struct AffineScales {
  uint16_t d, dmin;
  int sc[16], mi[16];
};

AffineScales quantize_affine_scales(const float* x, int groups, int group, int qmax, int scale_max, bool naive) {
  float s[16], m[16];
  uint8_t q[32];
  float smax = 0, mmax = 0;
  for (int g = 0; g < groups; ++g) {
    float b;
    s[g] = search_affine(x + g * group, group, qmax, true, q, &b, naive);
    m[g] = -b;
    smax = std::fmax(smax, s[g]);
    mmax = std::fmax(mmax, m[g]);
  }
  AffineScales r;
  r.d = fp16_scale(smax / static_cast<float>(scale_max));
  r.dmin = fp16_scale(mmax / static_cast<float>(scale_max));
  const float d = fp16_to_f32(r.d), dmin = fp16_to_f32(r.dmin);
  for (int g = 0; g < groups; ++g) {
    r.sc[g] = d > 0 ? clamp_int(round_int(s[g] / d), 0, scale_max) : 0;
    r.mi[g] = dmin > 0 ? clamp_int(round_int(m[g] / dmin), 0, scale_max) : 0;
    if (naive) continue;
    // The rounded (scale, min) pair is not always the best once codes are re-rounded against it:
    // try every +-1 neighbour (trying only the "other rounding" direction measurably loses).
    const float* xg = x + g * group;
    float best = affine_err(xg, group, d * static_cast<float>(r.sc[g]), dmin * static_cast<float>(r.mi[g]), qmax);
    const int sc0 = r.sc[g], mi0 = r.mi[g];
    for (int ds = -1; ds <= 1; ++ds)
      for (int dm = -1; dm <= 1; ++dm) {
        const int sc = sc0 + ds, mi = mi0 + dm;
        if ((ds == 0 && dm == 0) || sc < 0 || sc > scale_max || mi < 0 || mi > scale_max) continue;
        const float e = affine_err(xg, group, d * static_cast<float>(sc), dmin * static_cast<float>(mi), qmax);
        if (e < best) { best = e; r.sc[g] = sc; r.mi[g] = mi; }
      }
  }
  return r;
}

// Final codes of an affine super-block, against the dequantizer's own float values.
void affine_final_codes(const float* x, int groups, int group, int qmax, const AffineScales& r, uint8_t* q) {
  const float d = fp16_to_f32(r.d), dmin = fp16_to_f32(r.dmin);
  for (int g = 0; g < groups; ++g) {
    const float inv = inverse(d * static_cast<float>(r.sc[g])), em = dmin * static_cast<float>(r.mi[g]);
    for (int i = 0; i < group; ++i) q[g * group + i] = static_cast<uint8_t>(affine_code(x[g * group + i], inv, em, qmax));
  }
}

// Signed sub-block scales (Q3_K, Q6_K, IQ4_XS): s[g] -> sc[g] in [smin, smax] against fp16 d. The
// largest-magnitude scale maps to smin (the longer side), flipping d's sign when needed.
struct SignedScales {
  uint16_t d;
  int sc[16];
};

enum class Levels { Uniform, IQ4 };

SignedScales quantize_signed_scales(const float* x, int groups, int group, Levels levels, int qmin, int qmax,
                                    int smin, int smax, bool naive) {
  float s[16];
  float vmax = 0;
  for (int g = 0; g < groups; ++g) {
    if (levels == Levels::IQ4) {
      uint8_t q[32];
      s[g] = search_iq4(x + g * group, group, q, naive);
    } else {
      int8_t q[32];
      s[g] = search_symmetric(x + g * group, group, qmin, qmax, q, naive);
    }
    if (std::fabs(s[g]) > std::fabs(vmax)) vmax = s[g];
  }
  SignedScales r;
  r.d = fp16_scale(vmax / static_cast<float>(smin));
  const float d = fp16_to_f32(r.d);
  auto err = [&](const float* xg, float eff) {
    return levels == Levels::IQ4 ? iq4_err(xg, group, eff) : sym_err(xg, group, eff, qmin, qmax);
  };
  for (int g = 0; g < groups; ++g) {
    r.sc[g] = d != 0 ? clamp_int(round_int(s[g] / d), smin, smax) : 0;
    if (naive) continue;
    const float* xg = x + g * group;
    float best = err(xg, d * static_cast<float>(r.sc[g]));
    const int sc0 = r.sc[g];
    for (int ds = -1; ds <= 1; ds += 2) {
      const int sc = sc0 + ds;
      if (sc < smin || sc > smax) continue;
      const float e = err(xg, d * static_cast<float>(sc));
      if (e < best) { best = e; r.sc[g] = sc; }
    }
  }
  return r;
}

}  // namespace

// ---- Q2_K -------------------------------------------------------------------------------------

void quantize_block_q2_k(const float* x, void* block, bool naive) {
  const AffineScales r = quantize_affine_scales(x, 16, 16, 3, 15, naive);
  uint8_t q[256];
  affine_final_codes(x, 16, 16, 3, r, q);
  BlockQ2_K b{};
  b.d = r.d;
  b.dmin = r.dmin;
  for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<uint8_t>(r.sc[g] | r.mi[g] << 4);
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) b.qs[h * 32 + l] |= static_cast<uint8_t>(q[h * 128 + s * 32 + l] << (2 * s));
  std::memcpy(block, &b, sizeof b);
}

// ---- Q3_K -------------------------------------------------------------------------------------

void quantize_block_q3_k(const float* x, void* block, bool naive) {
  const SignedScales r = quantize_signed_scales(x, 16, 16, Levels::Uniform, -4, 3, -32, 31, naive);
  const float d = fp16_to_f32(r.d);
  BlockQ3_K b{};
  b.d = r.d;
  for (int i = 0; i < 16; ++i) {
    const int u = r.sc[i] + 32;  // stored biased, 0..63
    if (i < 8) b.scales[i] |= static_cast<uint8_t>(u & 0x0F);
    else b.scales[i - 8] |= static_cast<uint8_t>((u & 0x0F) << 4);
    b.scales[8 + i % 4] |= static_cast<uint8_t>((u >> 4) << (2 * (i / 4)));
  }
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int e = h * 128 + s * 32 + l;
        const float inv = inverse(d * static_cast<float>(r.sc[e / 16]));
        const int u = sym_code(x[e], inv, -4, 3) + 4;  // 0..7: low two bits + the (inverted) third
        b.qs[h * 32 + l] |= static_cast<uint8_t>((u & 3) << (2 * s));
        b.hmask[l] |= static_cast<uint8_t>((u >> 2) << (h * 4 + s));
      }
  std::memcpy(block, &b, sizeof b);
}

// ---- Q4_K / Q5_K ------------------------------------------------------------------------------

namespace {
// Inverse of the 12-byte scale/min packing described on BlockQ4_K.
void pack_k4_scales(const AffineScales& r, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(r.sc[j] | (r.sc[j + 4] >> 4) << 6);
    s[j + 4] = static_cast<uint8_t>(r.mi[j] | (r.mi[j + 4] >> 4) << 6);
    s[j + 8] = static_cast<uint8_t>((r.sc[j + 4] & 0x0F) | (r.mi[j + 4] & 0x0F) << 4);
  }
}
}  // namespace

void quantize_block_q4_k(const float* x, void* block, bool naive) {
  const AffineScales r = quantize_affine_scales(x, 8, 32, 15, 63, naive);
  uint8_t q[256];
  affine_final_codes(x, 8, 32, 15, r, q);
  BlockQ4_K b{};
  b.d = r.d;
  b.dmin = r.dmin;
  pack_k4_scales(r, b.scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b.qs[c * 32 + l] = static_cast<uint8_t>(q[c * 64 + l] | q[c * 64 + 32 + l] << 4);
  std::memcpy(block, &b, sizeof b);
}

void quantize_block_q5_k(const float* x, void* block, bool naive) {
  const AffineScales r = quantize_affine_scales(x, 8, 32, 31, 63, naive);
  uint8_t q[256];
  affine_final_codes(x, 8, 32, 31, r, q);
  BlockQ5_K b{};
  b.d = r.d;
  b.dmin = r.dmin;
  pack_k4_scales(r, b.scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = q[c * 64 + l], hi = q[c * 64 + 32 + l];
      b.qs[c * 32 + l] = static_cast<uint8_t>((lo & 0x0F) | (hi & 0x0F) << 4);
      b.qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
    }
  std::memcpy(block, &b, sizeof b);
}

// ---- Q6_K -------------------------------------------------------------------------------------

void quantize_block_q6_k(const float* x, void* block, bool naive) {
  const SignedScales r = quantize_signed_scales(x, 16, 16, Levels::Uniform, -32, 31, -128, 127, naive);
  const float d = fp16_to_f32(r.d);
  uint8_t u[256];  // q + 32, 0..63
  for (int e = 0; e < 256; ++e) u[e] = static_cast<uint8_t>(sym_code(x[e], inverse(d * static_cast<float>(r.sc[e / 16])), -32, 31) + 32);
  BlockQ6_K b{};
  b.d = r.d;
  for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<int8_t>(r.sc[g]);
  for (int h = 0; h < 2; ++h) {
    uint8_t* ql = b.ql + 64 * h;
    uint8_t* qh = b.qh + 32 * h;
    const uint8_t* y = u + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((y[l] & 0x0F) | (y[l + 64] & 0x0F) << 4);
      ql[l + 32] = static_cast<uint8_t>((y[l + 32] & 0x0F) | (y[l + 96] & 0x0F) << 4);
      qh[l] = static_cast<uint8_t>((y[l] >> 4) | (y[l + 32] >> 4) << 2 | (y[l + 64] >> 4) << 4 | (y[l + 96] >> 4) << 6);
    }
  }
  std::memcpy(block, &b, sizeof b);
}

// ---- IQ4_XS -----------------------------------------------------------------------------------

void quantize_block_iq4_xs(const float* x, void* block, bool naive) {
  const SignedScales r = quantize_signed_scales(x, 8, 32, Levels::IQ4, 0, 0, -32, 31, naive);
  const float d = fp16_to_f32(r.d);
  BlockIQ4_XS b{};
  b.d = r.d;
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = r.sc[ib] + 32;
    b.scales_l[ib / 2] |= static_cast<uint8_t>((ls & 0x0F) << (4 * (ib % 2)));
    b.scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
    const float inv = inverse(d * static_cast<float>(r.sc[ib]));
    for (int j = 0; j < 16; ++j) {
      const int lo = iq4_code(x[32 * ib + j], inv), hi = iq4_code(x[32 * ib + j + 16], inv);
      b.qs[16 * ib + j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
  std::memcpy(block, &b, sizeof b);
}

}  // namespace rocforge::quant
