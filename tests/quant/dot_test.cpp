// dot_test.cpp - dot_row_ref (factored per-group form) against dequantize + double dot product.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quant_test_util.h"
#include "rocforge/quant.h"

namespace rocforge::quant {
namespace {

class DotTest : public ::testing::TestWithParam<GgmlType> {};

// Quantized rows of random data (odd row counts, several lengths) dotted with random activations.
TEST_P(DotTest, MatchesDequantizedDoubleDot) {
  const GgmlType t = GetParam();
  const std::string name(ggml_type_name(t));
  for (int64_t nrows : {1, 3, 7}) {
    for (int64_t n : {256, 768, 2304}) {
      const auto w_src = test::gaussian(static_cast<size_t>(nrows * n), static_cast<uint32_t>(nrows * 1000 + n), 0.5f);
      const auto x = test::gaussian(static_cast<size_t>(n), static_cast<uint32_t>(n + 17), 2.0f, 0.3f);
      const size_t rb = row_bytes(t, n);
      std::vector<uint8_t> q(rb * nrows);
      quantize_rows(t, w_src.data(), q.data(), nrows, n);
      std::vector<float> w(n);
      for (int64_t r = 0; r < nrows; ++r) {
        const uint8_t* row = q.data() + r * rb;
        dequantize_row(t, row, w.data(), n);
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          ref += static_cast<double>(w[i]) * x[i];
          mag += std::fabs(static_cast<double>(w[i]) * x[i]);
        }
        const float got = dot_row_ref(t, row, x.data(), n);
        // Both are exact-ish double sums; the float result rounding dominates.
        EXPECT_NEAR(got, ref, 1e-6 * mag + 1e-30) << name << " rows " << nrows << " n " << n << " row " << r;
      }
    }
  }
}

// A dot product on the raw reference-style random blocks (every bit pattern of the payload, not
// only what our quantizer produces), built by perturbing quantized bytes except the fp16 scales.
class ScrambledDotTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ScrambledDotTest, MatchesOnScrambledPayloads) {
  const GgmlType t = GetParam();
  const int64_t n = 512;
  const auto src = test::gaussian(n, 8);
  const auto x = test::gaussian(n, 9);
  std::vector<uint8_t> q(row_bytes(t, n));
  quantize_row(t, src.data(), q.data(), n);
  std::vector<float> w(n);
  dequantize_row(t, q.data(), w.data(), n);
  std::mt19937 rng(10);
  // Flip random bits in the payload; re-dequantize and keep the change only if values stay finite
  // (a flipped scale exponent can legitimately overflow).
  for (int k = 0; k < 200; ++k) {
    std::vector<uint8_t> trial(q);
    trial[rng() % trial.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    dequantize_row(t, trial.data(), w.data(), n);
    if (test::all_finite(w)) q = trial;
  }
  dequantize_row(t, q.data(), w.data(), n);
  double ref = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    ref += static_cast<double>(w[i]) * x[i];
    mag += std::fabs(static_cast<double>(w[i]) * x[i]);
  }
  EXPECT_NEAR(dot_row_ref(t, q.data(), x.data(), n), ref, 1e-6 * mag + 1e-30) << ggml_type_name(t);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DotTest, ::testing::ValuesIn(test::quantizable_types()),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

std::vector<GgmlType> block_types() {
  std::vector<GgmlType> v;
  for (GgmlType t : test::quantizable_types())
    if (ggml_type_traits(t).block_elems > 1) v.push_back(t);
  return v;
}

INSTANTIATE_TEST_SUITE_P(BlockFormats, ScrambledDotTest, ::testing::ValuesIn(block_types()),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace rocforge::quant
