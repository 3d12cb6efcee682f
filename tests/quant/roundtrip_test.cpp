// roundtrip_test.cpp - quantize -> dequantize error bounds on Gaussian data, edge cases, API checks.
//
// The bounds are the measured relative RMS errors on N(0,1) (docs/quantization.md) plus ~15%
// headroom; every case quantizes at least 2048 values so the estimate is stable to a few percent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>

#include "core/half.h"
#include "quant/blocks.h"
#include "quant/quantize_impl.h"
#include "quant_test_util.h"
#include "rocforge/quant.h"

namespace rocforge::quant {
namespace {

using test::all_finite;
using test::gaussian;
using test::relative_rms;
using test::round_trip;

// Relative RMS bound on N(0,1) per format (see docs/quantization.md for the measured values).
double rms_bound(GgmlType t) {
  static const std::map<GgmlType, double> bounds = {
      {GgmlType::F32, 0.0},       {GgmlType::F16, 0.00025},  {GgmlType::BF16, 0.0019},
      {GgmlType::Q4_0, 0.093},    {GgmlType::Q4_1, 0.080},   {GgmlType::Q5_0, 0.046},
      {GgmlType::Q5_1, 0.039},    {GgmlType::Q8_0, 0.0058},  {GgmlType::Q2_K, 0.30},
      {GgmlType::Q3_K, 0.165},    {GgmlType::Q4_K, 0.081},   {GgmlType::Q5_K, 0.040},
      {GgmlType::Q6_K, 0.0195},   {GgmlType::Q8_K, 0.0080},  {GgmlType::IQ4_NL, 0.085},
      {GgmlType::IQ4_XS, 0.085},  {GgmlType::MXFP4, 0.128},
  };
  return bounds.at(t);
}

std::string name_of(GgmlType t) { return std::string(ggml_type_name(t)); }

class RoundTripTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(RoundTripTest, GaussianErrorWithinBound) {
  const GgmlType t = GetParam();
  for (uint32_t seed : {1u, 2u, 3u}) {
    for (int64_t n : {256, 1024, 4096}) {
      const int64_t nrows = 8192 / n < 2 ? 2 : 8192 / n;
      const auto x = gaussian(static_cast<size_t>(nrows * n), seed * 7919u + static_cast<uint32_t>(n));
      const auto w = round_trip(t, x, nrows, n);
      ASSERT_TRUE(all_finite(w)) << name_of(t);
      const double e = relative_rms(x, w);
      EXPECT_LE(e, rms_bound(t)) << name_of(t) << " seed " << seed << " n " << n;
      if (t != GgmlType::F32) {
        EXPECT_GT(e, 0.0) << name_of(t) << ": lossy format reproduced N(0,1) exactly?";
      }
    }
  }
}

// The error is relative: scaling the data by 2^k (within fp16 scale range) scales the error too.
TEST_P(RoundTripTest, ErrorIsScaleInvariant) {
  const GgmlType t = GetParam();
  const auto x = gaussian(4096, 99);
  for (float scale : {0.01f, 30.0f}) {
    std::vector<float> xs(x);
    for (auto& v : xs) v *= scale;
    const auto w = round_trip(t, xs, 4, 1024);
    EXPECT_LE(relative_rms(xs, w), rms_bound(t) * 1.05) << name_of(t) << " scale " << scale;
  }
}

TEST_P(RoundTripTest, AllZeroRowsStayZero) {
  const GgmlType t = GetParam();
  const std::vector<float> x(1024, 0.0f);
  const auto w = round_trip(t, x, 2, 512);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(w[i], 0.0f) << name_of(t) << " element " << i;
}

// One huge value must not produce NaN/inf nor disturb the blocks that do not contain it.
TEST_P(RoundTripTest, HugeOutlierStaysLocal) {
  const GgmlType t = GetParam();
  const int64_t n = 2048;
  auto x = gaussian(n, 5);
  const int64_t at = 700;
  x[at] = 10000.0f;
  const auto w = round_trip(t, x, 1, n);
  ASSERT_TRUE(all_finite(w)) << name_of(t);
  EXPECT_NEAR(w[at], x[at], 0.3 * x[at]) << name_of(t);
  // Elements outside the outlier's super-block (256 covers every block size here).
  std::vector<float> xo, wo;
  for (int64_t i = 0; i < n; ++i)
    if (i / 256 != at / 256) { xo.push_back(x[i]); wo.push_back(w[i]); }
  EXPECT_LE(relative_rms(xo, wo), rms_bound(t) * 1.1) << name_of(t);
}

TEST_P(RoundTripTest, TinyValuesStayFiniteAndSmall) {
  const GgmlType t = GetParam();
  for (float sigma : {1e-3f, 1e-7f, 1e-30f}) {
    const auto x = gaussian(1024, 11, sigma);
    float amax = 0;
    for (float v : x) amax = std::fmax(amax, std::fabs(v));
    const auto w = round_trip(t, x, 4, 256);
    ASSERT_TRUE(all_finite(w)) << name_of(t) << " sigma " << sigma;
    for (size_t i = 0; i < w.size(); ++i) ASSERT_LE(std::fabs(w[i]), 2 * amax) << name_of(t) << " sigma " << sigma;
    // 1e-3 is well inside the fp16 scale range: the usual bound must hold (5% slack for the
    // coarser relative precision of the smaller fp16 scales).
    if (sigma == 1e-3f) {
      EXPECT_LE(relative_rms(x, w), rms_bound(t) * 1.05) << name_of(t);
    }
  }
}

TEST_P(RoundTripTest, OneSignedRows) {
  const GgmlType t = GetParam();
  auto x = gaussian(4096, 21);
  for (float sign : {-1.0f, 1.0f}) {
    std::vector<float> xs(x);
    for (auto& v : xs) v = sign * (std::fabs(v) + 0.1f);
    const auto w = round_trip(t, xs, 4, 1024);
    ASSERT_TRUE(all_finite(w)) << name_of(t);
    // A one-signed row has a larger norm than N(0,1) for the same spread, so the plain bound
    // holds even for the symmetric formats that waste half their levels on it.
    EXPECT_LE(relative_rms(xs, w), rms_bound(t)) << name_of(t) << " sign " << sign;
  }
}

TEST_P(RoundTripTest, ThreadedRowsMatchSingleThreaded) {
  const GgmlType t = GetParam();
  const int64_t nrows = 7, n = 512;
  const auto x = gaussian(nrows * n, 31);
  const size_t rb = row_bytes(t, n);
  std::vector<uint8_t> a(rb * nrows), b(rb * nrows);
  EXPECT_EQ(quantize_rows(t, x.data(), a.data(), nrows, n, 1), rb * nrows);
  EXPECT_EQ(quantize_rows(t, x.data(), b.data(), nrows, n, 3), rb * nrows);
  EXPECT_EQ(a, b) << name_of(t);
  std::vector<uint8_t> c(rb);
  quantize_row(t, x.data() + 4 * n, c.data(), n);
  EXPECT_EQ(0, std::memcmp(c.data(), a.data() + 4 * rb, rb)) << name_of(t);
}

// NaN/inf in the input are bad data, not a reason to crash: the blocks holding them may decode to
// anything, every other block must be unaffected.
TEST_P(RoundTripTest, NonFiniteInputsStayInTheirBlock) {
  const GgmlType t = GetParam();
  const int64_t n = 1024;
  auto x = gaussian(n, 41);
  x[10] = std::numeric_limits<float>::quiet_NaN();
  x[300] = std::numeric_limits<float>::infinity();
  x[600] = -std::numeric_limits<float>::infinity();
  const auto w = round_trip(t, x, 1, n);
  std::vector<float> xo, wo;
  for (int64_t i = 0; i < n; ++i)
    if (i / 256 != 0 && i / 256 != 1 && i / 256 != 2) { xo.push_back(x[i]); wo.push_back(w[i]); }
  ASSERT_TRUE(all_finite(wo)) << name_of(t);
  EXPECT_LE(relative_rms(xo, wo), rms_bound(t) * 1.2) << name_of(t);
}

// Blocks inside a GGUF mapping need not be aligned for their fields: decoding from an odd address
// gives the same values.
TEST_P(RoundTripTest, DequantizeFromUnalignedMemory) {
  const GgmlType t = GetParam();
  const int64_t n = 512;
  const auto x = gaussian(n, 43);
  std::vector<uint8_t> q(row_bytes(t, n)), shifted(q.size() + 3);
  quantize_row(t, x.data(), q.data(), n);
  std::memcpy(shifted.data() + 3, q.data(), q.size());
  std::vector<float> a(n), b(n);
  dequantize_row(t, q.data(), a.data(), n);
  dequantize_row(t, shifted.data() + 3, b.data() + 0, n);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float))) << name_of(t);
  EXPECT_FLOAT_EQ(dot_row_ref(t, shifted.data() + 3, x.data(), n), dot_row_ref(t, q.data(), x.data(), n));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, RoundTripTest, ::testing::ValuesIn(test::quantizable_types()),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

// The scale search must beat naive max-abs (min-max for formats with a min) scaling.
class SearchBeatsNaiveTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(SearchBeatsNaiveTest, LowerErrorThanMaxAbsScaling) {
  const GgmlType t = GetParam();
  for (uint32_t seed : {4u, 5u}) {
    const int64_t n = 8192;
    const auto x = gaussian(n, seed);
    std::vector<uint8_t> q(row_bytes(t, n));
    std::vector<float> w_search(n), w_naive(n);
    quantize_row(t, x.data(), q.data(), n);
    dequantize_row(t, q.data(), w_search.data(), n);
    quantize_row_naive(t, x.data(), q.data(), n);
    dequantize_row(t, q.data(), w_naive.data(), n);
    const double es = relative_rms(x, w_search), en = relative_rms(x, w_naive);
    // A real improvement, not noise: at least 3% lower error (1% for MXFP4, whose power-of-two
    // scale leaves only two sensible candidates).
    EXPECT_LT(es, en * (t == GgmlType::MXFP4 ? 0.99 : 0.97)) << name_of(t) << " search " << es << " naive " << en;
  }
}

INSTANTIATE_TEST_SUITE_P(SearchedFormats, SearchBeatsNaiveTest,
                         ::testing::Values(GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                           GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::Q4_0,
                                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::MXFP4),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

// Formats with a free additive min (Q4_1, Q5_1) handle data far from zero: the error relative to the
// spread stays near the N(0,1) figure (the fp16 min adds its rounding, 1/32 ulp at 40).
TEST(AffineFormats, LargeCommonOffset) {
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_1}) {
    auto x = gaussian(4096, 51);
    for (auto& v : x) v += 40.0f;
    const auto w = round_trip(t, x, 4, 1024);
    double num = 0;
    for (size_t i = 0; i < x.size(); ++i) num += (static_cast<double>(w[i]) - x[i]) * (w[i] - x[i]);
    const double rms_over_sigma = std::sqrt(num / x.size());
    EXPECT_LE(rms_over_sigma, rms_bound(t) * 1.2) << name_of(t);
  }
}

// F16/BF16 quantization is round-to-nearest-even: no neighbouring code is closer, ties go even.
TEST(HalfQuantize, RoundsToNearestEven) {
  std::mt19937 rng(77);
  std::vector<float> x;
  for (int i = 0; i < 20000; ++i) {
    uint32_t bits = rng();
    const uint32_t exp = 100 + rng() % 50;  // 2^-27 .. 2^22: fp16 subnormal, normal and overflow range
    bits = (bits & 0x807fffffu) | exp << 23;
    if (i % 7 == 0) bits &= 0xffffe000u | (1u << 12);  // exact fp16 ties: low bits = half an ulp
    x.push_back(f32_from_bits(bits));
  }
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint16_t> h(x.size());
    quantize_row(t, x.data(), h.data(), static_cast<int64_t>(x.size()));
    auto dec = [&](uint32_t c) {
      float f;
      dequantize_row(t, &c, &f, 1);  // little-endian: the low 16 bits are the code
      return f;
    };
    for (size_t i = 0; i < x.size(); ++i) {
      const double v = x[i], got = dec(h[i]);
      if (std::isinf(got)) {  // overflow: |v| must be at least the halfway point past the max
        EXPECT_GE(std::fabs(v), t == GgmlType::F16 ? 65520.0 : 3.3961e38) << v;
        continue;
      }
      const uint16_t mag = h[i] & 0x7fff;
      for (int d : {-1, 1}) {
        const int nb = mag + d;
        if (nb < 0 || nb >= (t == GgmlType::F16 ? 0x7c00 : 0x7f80)) continue;
        const double other = dec(static_cast<uint16_t>((h[i] & 0x8000) | nb));
        const double e_got = std::fabs(v - got), e_other = std::fabs(v - other);
        ASSERT_LE(e_got, e_other) << name_of(t) << " x=" << v;
        if (e_got == e_other) {
          ASSERT_EQ(mag % 2, 0) << name_of(t) << " tie not to even, x=" << v;
        }
      }
    }
  }
}

TEST(Q8K, BlockSumsMatchCodes) {
  const auto x = gaussian(1024, 3);
  std::vector<BlockQ8_K> b(4);
  quantize_row(GgmlType::Q8_K, x.data(), b.data(), 1024);
  for (const auto& blk : b)
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
      EXPECT_EQ(blk.bsums[g], sum);
    }
}

TEST(QuantApi, RejectsBadArguments) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> buf(4096);
  EXPECT_THROW(quantize_row(GgmlType::Q4_K, x.data(), buf.data(), 100), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_0, buf.data(), x.data(), 33), Error);
  EXPECT_THROW(quantize_rows(GgmlType::Q4_0, x.data(), buf.data(), -1, 32), Error);
  EXPECT_THROW(dot_row_ref(GgmlType::Q6_K, buf.data(), x.data(), 255), Error);
  for (GgmlType t : {GgmlType::Q8_1, GgmlType::IQ2_XXS, GgmlType::I32, GgmlType::TQ1_0}) {
    EXPECT_FALSE(can_quantize(t)) << name_of(t);
    EXPECT_FALSE(can_dequantize(t)) << name_of(t);
    EXPECT_THROW(dequantize_row(t, buf.data(), x.data(), 256), Error) << name_of(t);
    EXPECT_THROW(quantize_row(t, x.data(), buf.data(), 256), Error) << name_of(t);
  }
  try {
    quantize_row(GgmlType::Q4_K, x.data(), buf.data(), 100);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q4_k"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("100"), std::string::npos) << e.what();
  }
}

TEST(QuantApi, EveryComputableTypeIsSupported) {
  for (GgmlType t : test::quantizable_types()) {
    EXPECT_TRUE(can_quantize(t)) << name_of(t);
    EXPECT_TRUE(can_dequantize(t)) << name_of(t);
    EXPECT_TRUE(ggml_type_traits(t).computable) << name_of(t);
  }
}

}  // namespace
}  // namespace rocforge::quant
