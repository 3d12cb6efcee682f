// mx_test.cpp - OCP MX v1.0 element codecs: exhaustive decode, rounding, block scale, packing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "quant/quantize_impl.h"
#include "quant_test_util.h"
#include "rocforge/mx.h"
#include "rocforge/quant.h"

namespace rocforge::mx {
namespace {

const ElemType kAll[] = {ElemType::E2M1, ElemType::E2M3, ElemType::E3M2, ElemType::E4M3, ElemType::E5M2};

// Independent formula for the value of a code: (-1)^s 2^(E-bias) (1 + M/2^m), or the subnormal
// (-1)^s 2^(1-bias) (M/2^m), with the FP8 specials from the OCP spec.
double formula_value(ElemType t, unsigned code, int ebits, int mbits, int bias) {
  const int bits = 1 + ebits + mbits;
  const int s = (code >> (bits - 1)) & 1, e = (code >> mbits) & ((1 << ebits) - 1), m = code & ((1 << mbits) - 1);
  const double sign = s ? -1.0 : 1.0;
  if (t == ElemType::E5M2 && e == 31) return m == 0 ? sign * INFINITY : NAN;
  if (t == ElemType::E4M3 && e == 15 && m == 7) return NAN;
  if (e == 0) return sign * std::pow(2.0, 1 - bias) * (m / std::pow(2.0, mbits));
  return sign * std::pow(2.0, e - bias) * (1.0 + m / std::pow(2.0, mbits));
}

struct Layout { int ebits, mbits, bias; double max, min_sub; };
// Published parameters of each element type (OCP MX v1.0, table 1 / OCP FP8).
Layout layout(ElemType t) {
  switch (t) {
    case ElemType::E2M1: return {2, 1, 1, 6.0, 0.5};
    case ElemType::E2M3: return {2, 3, 1, 7.5, 0.125};
    case ElemType::E3M2: return {3, 2, 3, 28.0, 0.0625};
    case ElemType::E4M3: return {4, 3, 7, 448.0, std::ldexp(1.0, -9)};
    case ElemType::E5M2: return {5, 2, 15, 57344.0, std::ldexp(1.0, -16)};
  }
  return {};
}

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return bits_from_f32(a) == bits_from_f32(b);
}

TEST(MxElement, ExhaustiveDecodeMatchesFormula) {
  for (ElemType t : kAll) {
    const Layout L = layout(t);
    const ElemInfo& info = elem_info(t);
    EXPECT_EQ(info.bits, 1 + L.ebits + L.mbits) << elem_name(t);
    double max_seen = 0, min_sub = INFINITY;
    for (unsigned c = 0; c < (1u << info.bits); ++c) {
      const double want = formula_value(t, c, L.ebits, L.mbits, L.bias);
      const float got = decode_element(t, static_cast<uint8_t>(c));
      ASSERT_TRUE(same_float(got, static_cast<float>(want))) << elem_name(t) << " code " << c << " got " << got
                                                             << " want " << want;
      if (std::isfinite(want)) max_seen = std::fmax(max_seen, std::fabs(want));
      if (want > 0) min_sub = std::fmin(min_sub, want);
    }
    EXPECT_EQ(max_seen, L.max) << elem_name(t);
    EXPECT_EQ(info.max_finite, L.max) << elem_name(t);
    EXPECT_EQ(min_sub, L.min_sub) << elem_name(t);
  }
}

TEST(MxElement, EncodeInvertsDecodeForEveryCode) {
  for (ElemType t : kAll) {
    for (unsigned c = 0; c < (1u << elem_info(t).bits); ++c) {
      const float v = decode_element(t, static_cast<uint8_t>(c));
      if (std::isnan(v)) {
        EXPECT_TRUE(std::isnan(decode_element(t, encode_element(t, v)))) << elem_name(t);
        continue;
      }
      EXPECT_EQ(encode_element(t, v), c) << elem_name(t) << " value " << v;
    }
  }
}

// Between adjacent codes a < b: below the midpoint -> a, above -> b, exactly on it -> the even
// code (even mantissa). Beyond the largest finite value -> saturate.
TEST(MxElement, RoundsToNearestEvenAndSaturates) {
  for (ElemType t : kAll) {
    const ElemInfo& info = elem_info(t);
    const unsigned pos_codes = 1u << (info.bits - 1);
    for (unsigned c = 0; c + 1 < pos_codes; ++c) {
      const double a = decode_element(t, static_cast<uint8_t>(c)), b = decode_element(t, static_cast<uint8_t>(c + 1));
      if (!std::isfinite(a) || !std::isfinite(b)) continue;
      const double mid = (a + b) / 2, eps = (b - a) * 1e-3;
      EXPECT_EQ(encode_element(t, mid - eps), c) << elem_name(t);
      EXPECT_EQ(encode_element(t, mid + eps), c + 1) << elem_name(t);
      EXPECT_EQ(encode_element(t, mid), c % 2 == 0 ? c : c + 1) << elem_name(t) << " tie at " << mid;
      // The negative side mirrors it with the sign bit set.
      EXPECT_EQ(encode_element(t, -(mid + eps)), (c + 1) | pos_codes) << elem_name(t);
    }
    const uint8_t max_code = encode_element(t, info.max_finite);
    EXPECT_EQ(decode_element(t, max_code), info.max_finite);
    for (double big : {info.max_finite * 1.01, info.max_finite * 1.2, 1e30}) {
      EXPECT_EQ(encode_element(t, big), max_code) << elem_name(t) << " " << big;
      EXPECT_EQ(encode_element(t, -big), max_code | pos_codes) << elem_name(t);
    }
  }
}

TEST(MxBlock, SharedScaleFollowsSpec) {
  std::mt19937 rng(5);
  for (ElemType t : kAll) {
    for (int trial = 0; trial < 200; ++trial) {
      const float mag = std::ldexp(1.0f, static_cast<int>(rng() % 200) - 100);
      auto x = quant::test::gaussian(kBlockSize, rng(), mag);
      const Block b = encode_block(t, x.data());
      float amax = 0;
      for (float v : x) amax = std::fmax(amax, std::fabs(v));
      int want = std::ilogb(amax) - elem_info(t).emax;  // floor(log2(amax)) - emax_elem
      want = want < -127 ? -127 : want;
      EXPECT_EQ(static_cast<int>(b.scale) - 127, want) << elem_name(t) << " amax " << amax;
      // Every element is the nearest representable value: no other code at this scale is closer.
      std::vector<float> y(kBlockSize);
      decode_block(t, b, y.data());
      const double X = std::ldexp(1.0, want);
      for (int i = 0; i < kBlockSize; ++i) {
        const double err = std::fabs(y[i] - x[i]);
        for (unsigned c = 0; c < (1u << elem_info(t).bits); ++c) {
          const double other = decode_element(t, static_cast<uint8_t>(c)) * X;
          if (std::isfinite(other)) {
            ASSERT_LE(err, std::fabs(other - x[i]) * (1 + 1e-12)) << elem_name(t);
          }
        }
      }
    }
  }
}

// Blocks made of representable values (largest element in the top binade, so the spec picks the
// same scale back) re-encode to exactly the same scale and codes.
TEST(MxBlock, RepresentableValuesRoundTripExactly) {
  std::mt19937 rng(6);
  for (ElemType t : kAll) {
    const ElemInfo& info = elem_info(t);
    const unsigned top_exp_field = static_cast<unsigned>(info.emax + info.bias);
    for (int trial = 0; trial < 300; ++trial) {
      Block b;
      b.scale = static_cast<uint8_t>(rng() % 230 + 10);
      for (int i = 0; i < kBlockSize; ++i) {
        uint8_t c;
        do c = static_cast<uint8_t>(rng() % (1u << info.bits));
        while (!std::isfinite(decode_element(t, c)) || std::fabs(decode_element(t, c)) >= std::ldexp(1.0, info.emax));
        b.codes[i] = c;
      }
      // One element in the top binade (exponent emax), with a valid mantissa.
      uint8_t top;
      do top = static_cast<uint8_t>(top_exp_field << info.man_bits | (rng() % (1u << info.man_bits)));
      while (!std::isfinite(decode_element(t, top)));
      b.codes[rng() % kBlockSize] = static_cast<uint8_t>(top | (rng() % 2) << (info.bits - 1));
      std::vector<float> y(kBlockSize), y2(kBlockSize);
      decode_block(t, b, y.data());
      const Block b2 = encode_block(t, y.data());
      EXPECT_EQ(b2.scale, b.scale) << elem_name(t);
      for (int i = 0; i < kBlockSize; ++i) EXPECT_EQ(b2.codes[i], b.codes[i]) << elem_name(t) << " element " << i;
      decode_block(t, b2, y2.data());
      for (int i = 0; i < kBlockSize; ++i) EXPECT_TRUE(same_float(y[i], y2[i])) << elem_name(t);
    }
  }
}

// Relative RMS error on N(0,1) blocks; bounds are the measured values (docs/quantization.md) + ~15%.
TEST(MxBlock, GaussianRmsWithinBound) {
  const double bounds[] = {0.132, 0.033, 0.062, 0.034, 0.062};  // E2M1 E2M3 E3M2 E4M3 E5M2
  for (ElemType t : kAll) {
    double num = 0, den = 0;
    for (uint32_t seed = 0; seed < 64; ++seed) {
      const auto x = quant::test::gaussian(kBlockSize * 16, seed);
      std::vector<float> y(kBlockSize);
      for (int blk = 0; blk < 16; ++blk) {
        decode_block(t, encode_block(t, x.data() + blk * kBlockSize), y.data());
        for (int i = 0; i < kBlockSize; ++i) {
          const double e = y[i] - x[blk * kBlockSize + i];
          num += e * e;
          den += static_cast<double>(x[blk * kBlockSize + i]) * x[blk * kBlockSize + i];
        }
      }
    }
    const double rms = std::sqrt(num / den);
    EXPECT_LE(rms, bounds[static_cast<int>(t)]) << elem_name(t);
    EXPECT_GT(rms, 0.0) << elem_name(t);
  }
}

TEST(MxBlock, ZerosNaNAndInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(scale_to_float(kScaleNaN)));
  EXPECT_EQ(scale_to_float(127), 1.0f);
  EXPECT_EQ(scale_to_float(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(scale_to_float(254), std::ldexp(1.0f, 127));
  for (ElemType t : kAll) {
    std::vector<float> x(kBlockSize, 0.0f), y(kBlockSize);
    x[3] = -0.0f;
    decode_block(t, encode_block(t, x.data()), y.data());
    for (int i = 0; i < kBlockSize; ++i) EXPECT_TRUE(same_float(y[i], x[i])) << elem_name(t) << " zero sign kept";

    for (float special : {nan, inf, -inf}) {
      x = quant::test::gaussian(kBlockSize, 3);
      x[7] = special;
      const Block b = encode_block(t, x.data());
      decode_block(t, b, y.data());
      if (!elem_info(t).has_nan) {  // FP4/FP6: the whole block is NaN (scale 0xFF)
        EXPECT_EQ(b.scale, kScaleNaN) << elem_name(t);
        for (float v : y) EXPECT_TRUE(std::isnan(v)) << elem_name(t);
        continue;
      }
      // FP8: the special stays in its element, the others are scaled over the finite values.
      if (std::isnan(special) || t == ElemType::E4M3) {
        EXPECT_TRUE(std::isnan(y[7])) << elem_name(t);
      } else {
        EXPECT_EQ(y[7], special) << elem_name(t);
      }
      for (int i = 0; i < kBlockSize; ++i) {
        if (i == 7) continue;
        EXPECT_NEAR(y[i], x[i], 0.2 * std::fabs(x[i]) + 0.05) << elem_name(t);
      }
    }
  }
}

TEST(MxPacking, RoundTripAndLayout) {
  std::mt19937 rng(7);
  for (ElemType t : kAll) {
    const int bits = elem_info(t).bits;
    EXPECT_EQ(packed_bytes(t), static_cast<size_t>(bits * 4));
    for (int trial = 0; trial < 50; ++trial) {
      uint8_t codes[kBlockSize], back[kBlockSize];
      for (auto& c : codes) c = static_cast<uint8_t>(rng() % (1u << bits));
      std::vector<uint8_t> packed(packed_bytes(t));
      pack_codes(t, codes, packed.data());
      unpack_codes(t, packed.data(), back);
      EXPECT_EQ(0, std::memcmp(codes, back, kBlockSize)) << elem_name(t);
    }
  }
  // Documented layouts: FP4 element 2k in the low nibble; FP6 element 4k in bits 0-5 of a
  // little-endian 24-bit group.
  uint8_t codes[kBlockSize] = {}, out[32] = {};
  codes[0] = 0x1; codes[1] = 0x2; codes[3] = 0xF;
  pack_codes(ElemType::E2M1, codes, out);
  EXPECT_EQ(out[0], 0x21);
  EXPECT_EQ(out[1], 0xF0);
  std::memset(codes, 0, sizeof codes);
  codes[0] = 0x3F; codes[1] = 0x01; codes[3] = 0x20;
  pack_codes(ElemType::E3M2, codes, out);
  EXPECT_EQ(out[0], 0x7F);  // 0x3F | (0x01 << 6)
  EXPECT_EQ(out[1], 0x00);
  EXPECT_EQ(out[2], 0x80);  // bit 23 = top bit of element 3
}

// ggml's MXFP4 blocks are E2M1 codes with an E8M0 scale: both decoders must agree exactly.
TEST(MxCrossCheck, GgmlMxfp4MatchesE2M1Decoder) {
  std::mt19937 rng(8);
  for (int trial = 0; trial < 500; ++trial) {
    uint8_t blk[17];
    for (auto& byte : blk) byte = static_cast<uint8_t>(rng());
    blk[0] = static_cast<uint8_t>(rng() % 255);  // 255 is NaN in MX; ggml has no NaN scale
    float ggml[32], mx[32];
    quant::dequantize_row(GgmlType::MXFP4, blk, ggml, 32);
    Block b;
    b.scale = blk[0];
    for (int j = 0; j < 16; ++j) {  // ggml order: element j low nibble, j + 16 high nibble
      b.codes[j] = blk[1 + j] & 0x0F;
      b.codes[j + 16] = blk[1 + j] >> 4;
    }
    decode_block(ElemType::E2M1, b, mx);
    // Equal values; zero signs differ by design (ggml's level table has +0 for E2M1's -0 code 8).
    for (int i = 0; i < 32; ++i) ASSERT_EQ(ggml[i], mx[i]) << "scale " << int(blk[0]) << " i " << i;
  }
}

// The ggml MXFP4 quantizer's branch-free E2M1 rounding agrees with the generic MX encoder (ggml
// has no -0, so only the magnitude is compared for results that round to zero).
TEST(MxCrossCheck, GgmlMxfp4CodeMatchesE2M1Encoder) {
  std::mt19937 rng(9);
  std::vector<float> vals;
  for (int c = 0; c < 16; ++c) {  // every level and every midpoint, both signs
    const float a = decode_element(ElemType::E2M1, static_cast<uint8_t>(c));
    const float b = decode_element(ElemType::E2M1, static_cast<uint8_t>(c + 1 < 16 ? c + 1 : c));
    vals.push_back(a);
    vals.push_back((a + b) / 2);
  }
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  for (int i = 0; i < 20000; ++i) vals.push_back(u(rng));
  for (float v : vals) {
    const uint8_t want = encode_element(ElemType::E2M1, v), got = quant::mxfp4_code(v);
    if ((want & 7) == 0) {
      EXPECT_EQ(got & 7, 0) << v;
    } else {
      EXPECT_EQ(got, want) << v;
    }
  }
}

}  // namespace
}  // namespace rocforge::mx
