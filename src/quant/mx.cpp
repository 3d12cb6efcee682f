// mx.cpp - OCP MX v1.0 element codecs (see include/rocforge/mx.h).
#include "rocforge/mx.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.h"

namespace rocforge::mx {
namespace {

constexpr ElemInfo kInfo[] = {
    //  bits ebits mbits bias emax max_finite has_inf has_nan
    {4, 2, 1, 1, 2, 6.0f, false, false},          // E2M1
    {6, 2, 3, 1, 2, 7.5f, false, false},          // E2M3
    {6, 3, 2, 3, 4, 28.0f, false, false},         // E3M2
    {8, 4, 3, 7, 8, 448.0f, false, true},         // E4M3
    {8, 5, 2, 15, 15, 57344.0f, true, true},      // E5M2
};

// Code of the largest finite magnitude (positive sign).
uint8_t max_code(const ElemInfo& f) {
  if (f.has_inf) return static_cast<uint8_t>(((1 << f.exp_bits) - 2) << f.man_bits | ((1 << f.man_bits) - 1));  // E5M2: 0x7B
  if (f.has_nan) return static_cast<uint8_t>((1 << (f.bits - 1)) - 2);  // E4M3: S.1111.110
  return static_cast<uint8_t>((1 << (f.bits - 1)) - 1);                 // all bits but the sign
}

uint8_t nan_code(const ElemInfo& f) { return static_cast<uint8_t>((1 << (f.bits - 1)) - 1); }  // 0x7F for both FP8
uint8_t inf_code(const ElemInfo& f) { return static_cast<uint8_t>(((1 << f.exp_bits) - 1) << f.man_bits); }

}  // namespace

const ElemInfo& elem_info(ElemType t) { return kInfo[static_cast<int>(t)]; }

const char* elem_name(ElemType t) {
  static const char* const names[] = {"E2M1", "E2M3", "E3M2", "E4M3", "E5M2"};
  return names[static_cast<int>(t)];
}

float scale_to_float(uint8_t s) {
  if (s == kScaleNaN) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, static_cast<int>(s) - 127);
}

int shared_exponent(ElemType t, float amax) {
  int e2;
  std::frexp(amax, &e2);  // amax = f * 2^e2 with f in [0.5, 1): floor(log2(amax)) = e2 - 1
  int e = e2 - 1 - elem_info(t).emax;
  return e < -127 ? -127 : (e > 127 ? 127 : e);
}

float decode_element(ElemType t, uint8_t code) {
  const ElemInfo& f = elem_info(t);
  code = static_cast<uint8_t>(code & ((1u << f.bits) - 1));
  const uint32_t sign = (code >> (f.bits - 1)) & 1u;
  const uint32_t exp = (code >> f.man_bits) & ((1u << f.exp_bits) - 1);
  const uint32_t man = code & ((1u << f.man_bits) - 1);
  const uint32_t exp_all_ones = (1u << f.exp_bits) - 1;
  if (f.has_inf && exp == exp_all_ones)  // E5M2: IEEE-style specials
    return man == 0 ? (sign ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity())
                    : std::numeric_limits<float>::quiet_NaN();
  if (f.has_nan && !f.has_inf && exp == exp_all_ones && man == (1u << f.man_bits) - 1)  // E4M3 NaN
    return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) {  // subnormal: man * 2^(1 - bias - man_bits), exact in float
    const float v = static_cast<float>(man) * std::ldexp(1.0f, 1 - f.bias - f.man_bits);
    return sign ? -v : v;
  }
  // Normal: rebias the exponent into binary32 and left-align the mantissa bits.
  const uint32_t bits = sign << 31 | (exp - f.bias + 127) << 23 | man << (23 - f.man_bits);
  return f32_from_bits(bits);
}

uint8_t encode_element(ElemType t, double v) {
  const ElemInfo& f = elem_info(t);
  if (std::isnan(v)) return f.has_nan ? nan_code(f) : 0;
  const uint8_t sign = std::signbit(v) ? static_cast<uint8_t>(1u << (f.bits - 1)) : 0;
  const double a = std::fabs(v);
  if (std::isinf(a)) {
    if (f.has_inf) return sign | inf_code(f);
    if (f.has_nan) return sign | nan_code(f);
  }
  if (a >= f.max_finite) return sign | max_code(f);  // saturate
  const int min_normal_exp = 1 - f.bias;
  int e2;
  std::frexp(a, &e2);
  const int e = a == 0 ? min_normal_exp - 1 : e2 - 1;  // floor(log2(a)); zero takes the subnormal path
  // Spacing of representable values around a: fixed in the subnormal range, 2^(e - m) above it.
  const int quantum_exp = (e < min_normal_exp ? min_normal_exp : e) - f.man_bits;
  // a / quantum is exact in double; nearbyint rounds half to even (default rounding mode).
  const double r = std::nearbyint(std::ldexp(a, -quantum_exp));
  uint32_t code;
  if (e < min_normal_exp) {
    code = static_cast<uint32_t>(r);  // r == 2^m lands exactly on the smallest normal's code
  } else {
    // Leading 1 becomes the exponent field; a carry (r == 2^(m+1)) moves into the exponent.
    code = static_cast<uint32_t>(e + f.bias) << f.man_bits;
    code += static_cast<uint32_t>(r) - (1u << f.man_bits);
  }
  if (code > max_code(f)) code = max_code(f);
  return static_cast<uint8_t>(sign | code);
}

Block encode_block(ElemType t, const float* x) {
  const ElemInfo& f = elem_info(t);
  Block b;
  float amax = 0;
  bool nonfinite = false;
  for (int i = 0; i < kBlockSize; ++i) {
    if (!std::isfinite(x[i])) nonfinite = true;
    else amax = std::fmax(amax, std::fabs(x[i]));
  }
  if (nonfinite && !f.has_nan) {  // FP4/FP6 cannot represent it: the whole block becomes NaN
    b.scale = kScaleNaN;
    return b;
  }
  // All zero: any scale works; the smallest keeps the block's meaning obvious.
  const int e = amax > 0 ? shared_exponent(t, amax) : -127;
  b.scale = static_cast<uint8_t>(e + 127);
  for (int i = 0; i < kBlockSize; ++i) b.codes[i] = encode_element(t, std::ldexp(static_cast<double>(x[i]), -e));
  return b;
}

void decode_block(ElemType t, const Block& b, float* y) {
  for (int i = 0; i < kBlockSize; ++i) {
    if (b.scale == kScaleNaN) {
      y[i] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const double v = std::ldexp(static_cast<double>(decode_element(t, b.codes[i])), static_cast<int>(b.scale) - 127);
    y[i] = static_cast<float>(v);
  }
}

size_t packed_bytes(ElemType t) { return static_cast<size_t>(elem_info(t).bits) * kBlockSize / 8; }

void pack_codes(ElemType t, const uint8_t* c, uint8_t* out) {
  switch (elem_info(t).bits) {
    case 4:
      for (int k = 0; k < 16; ++k) out[k] = static_cast<uint8_t>((c[2 * k] & 0x0F) | (c[2 * k + 1] & 0x0F) << 4);
      break;
    case 6:
      for (int k = 0; k < 8; ++k) {
        const uint32_t w = (c[4 * k] & 0x3Fu) | (c[4 * k + 1] & 0x3Fu) << 6 | (c[4 * k + 2] & 0x3Fu) << 12 |
                           (c[4 * k + 3] & 0x3Fu) << 18;
        out[3 * k] = static_cast<uint8_t>(w);
        out[3 * k + 1] = static_cast<uint8_t>(w >> 8);
        out[3 * k + 2] = static_cast<uint8_t>(w >> 16);
      }
      break;
    default:
      std::memcpy(out, c, kBlockSize);
  }
}

void unpack_codes(ElemType t, const uint8_t* in, uint8_t* c) {
  switch (elem_info(t).bits) {
    case 4:
      for (int k = 0; k < 16; ++k) {
        c[2 * k] = in[k] & 0x0F;
        c[2 * k + 1] = in[k] >> 4;
      }
      break;
    case 6:
      for (int k = 0; k < 8; ++k) {
        const uint32_t w = in[3 * k] | uint32_t(in[3 * k + 1]) << 8 | uint32_t(in[3 * k + 2]) << 16;
        for (int j = 0; j < 4; ++j) c[4 * k + j] = static_cast<uint8_t>((w >> (6 * j)) & 0x3F);
      }
      break;
    default:
      std::memcpy(c, in, kBlockSize);
  }
}

}  // namespace rocforge::mx
