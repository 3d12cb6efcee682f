// quantize_blocks.cpp - quantizers for the 32-element block formats and Q8_K.
//
// Each block is searched as one group (search.h), then the codes are re-rounded against the scale
// as actually stored (fp16), so the block reproduces its own best values after the scale rounding.
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/quantize_impl.h"
#include "quant/search.h"
#include "rocforge/mx.h"

namespace rocforge::quant {

uint16_t fp16_scale(float s) {
  if (!(std::fabs(s) <= 65504.0f)) s = std::isnan(s) ? 0.0f : (s < 0 ? -65504.0f : 65504.0f);
  return f32_to_fp16(s);
}

namespace {

// Codes for x ~= d * q with the stored scale d (0 -> all codes 0).
void symmetric_codes(const float* x, int n, float d, int qmin, int qmax, int8_t* q) {
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(quant_code(x[i] * inv, qmin, qmax));
}

// Codes for x ~= d * q + m with the stored d and m.
void affine_codes(const float* x, int n, float d, float m, int qmax, uint8_t* q) {
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(quant_code((x[i] - m) * inv, 0, qmax));
}

// Q4_0 / IQ4_NL / MXFP4 nibble order: element j low nibble, element j+16 high nibble of byte j.
void pack_nibbles32(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 15) | (q[j + 16] & 15) << 4);
}

}  // namespace

void quantize_block_q4_0(const float* x, void* block, bool naive) {
  BlockQ4_0 b{};
  int8_t q[32];
  b.d = fp16_scale(search_symmetric(x, 32, -8, 7, q, naive));
  symmetric_codes(x, 32, fp16_to_f32(b.d), -8, 7, q);
  uint8_t u[32];
  for (int j = 0; j < 32; ++j) u[j] = static_cast<uint8_t>(q[j] + 8);
  pack_nibbles32(u, b.qs);
  std::memcpy(block, &b, sizeof b);
}

void quantize_block_q4_1(const float* x, void* block, bool naive) {
  BlockQ4_1 b{};
  uint8_t q[32];
  float m;
  b.d = fp16_scale(search_affine(x, 32, 15, false, q, &m, naive));
  b.m = fp16_scale(m);
  affine_codes(x, 32, fp16_to_f32(b.d), fp16_to_f32(b.m), 15, q);
  pack_nibbles32(q, b.qs);
  std::memcpy(block, &b, sizeof b);
}

namespace {
// Q5_0/Q5_1 share the 5-bit packing: low nibbles as Q4_0, fifth bits in a 32-bit LE word.
void pack_q5(const uint8_t* u, uint8_t* qs, uint8_t* qh) {
  pack_nibbles32(u, qs);
  uint32_t h = 0;
  for (int j = 0; j < 32; ++j) h |= static_cast<uint32_t>((u[j] >> 4) & 1) << j;
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(h >> (8 * k));
}
}  // namespace

void quantize_block_q5_0(const float* x, void* block, bool naive) {
  BlockQ5_0 b{};
  int8_t q[32];
  b.d = fp16_scale(search_symmetric(x, 32, -16, 15, q, naive));
  symmetric_codes(x, 32, fp16_to_f32(b.d), -16, 15, q);
  uint8_t u[32];
  for (int j = 0; j < 32; ++j) u[j] = static_cast<uint8_t>(q[j] + 16);
  pack_q5(u, b.qs, b.qh);
  std::memcpy(block, &b, sizeof b);
}

void quantize_block_q5_1(const float* x, void* block, bool naive) {
  BlockQ5_1 b{};
  uint8_t q[32];
  float m;
  b.d = fp16_scale(search_affine(x, 32, 31, false, q, &m, naive));
  b.m = fp16_scale(m);
  affine_codes(x, 32, fp16_to_f32(b.d), fp16_to_f32(b.m), 31, q);
  pack_q5(q, b.qs, b.qh);
  std::memcpy(block, &b, sizeof b);
}

void quantize_block_q8_0(const float* x, void* block, bool naive) {
  BlockQ8_0 b{};
  int8_t q[32];
  b.d = fp16_scale(search_symmetric(x, 32, -127, 127, q, naive));
  symmetric_codes(x, 32, fp16_to_f32(b.d), -127, 127, b.qs);
  std::memcpy(block, &b, sizeof b);
}

// Q8_K holds activations for the K-quant dot products: a plain max-abs scale is what kernels
// expect (and with 255 levels a search gains almost nothing). The fp32 scale needs no re-rounding.
void quantize_block_q8_k(const float* x, void* block, bool /*naive*/) {
  BlockQ8_K b{};
  float amax = 0;
  for (int i = 0; i < 256; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  b.d = amax > 0 && std::isfinite(amax) ? amax / 127.0f : 0.0f;
  symmetric_codes(x, 256, b.d, -127, 127, b.qs);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += b.qs[16 * g + i];
    b.bsums[g] = static_cast<int16_t>(sum);
  }
  std::memcpy(block, &b, sizeof b);
}

void quantize_block_iq4_nl(const float* x, void* block, bool naive) {
  BlockIQ4_NL b{};
  uint8_t q[32];
  b.d = fp16_scale(search_iq4(x, 32, q, naive));
  const float d = fp16_to_f32(b.d);
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>(nearest_iq4(x[j] * inv));
  pack_nibbles32(q, b.qs);
  std::memcpy(block, &b, sizeof b);
}

uint8_t mxfp4_code(float v) {
  const float a = std::fabs(v);
  // Thresholds are the midpoints between E2M1 magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6; at a tie the
  // comparison is strict or not so that the even code (mantissa bit 0) wins; >= 6 saturates.
  const int mag = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  return static_cast<uint8_t>(mag | (v < 0 ? 8 : 0));
}

// MXFP4: the scale is a power of two. The OCP choice (floor(log2(amax)) - 2, see mx.h) makes the
// largest value land in [4, 8) and saturate above 6; one exponent higher avoids that saturation
// at the cost of coarser steps. We try both (unless naive) and keep the smaller squared error.
void quantize_block_mxfp4(const float* x, void* block, bool naive) {
  BlockMXFP4 best{};
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  if (amax > 0 && std::isfinite(amax)) {
    const int e0 = mx::shared_exponent(mx::ElemType::E2M1, amax);  // unbiased, in [-127, 127]
    double best_err = -1;
    for (int e = e0; e <= e0 + (naive ? 0 : 1) && e <= 127; ++e) {
      BlockMXFP4 b{};
      b.e = static_cast<uint8_t>(e + 127);
      // Powers of two in [2^-127, 2^127] are exact floats, so x * inv is exact (unless it
      // underflows, where it rounds to zero anyway).
      const float inv = std::ldexp(1.0f, -e), half_scale = std::ldexp(1.0f, e - 1);
      uint8_t q[32];
      double err = 0;  // double: squares of values near FLT_MAX must not overflow
      for (int j = 0; j < 32; ++j) {
        q[j] = mxfp4_code(x[j] * inv);
        const double w = static_cast<double>(kMxfp4Levels[q[j]]) * half_scale;
        err += (w - x[j]) * (w - x[j]);
      }
      pack_nibbles32(q, b.qs);
      if (best_err < 0 || err < best_err) {
        best_err = err;
        best = b;
      }
    }
  }
  std::memcpy(block, &best, sizeof best);
}

}  // namespace rocforge::quant
