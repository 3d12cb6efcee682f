// quant_test_util.h - shared helpers of the quant tests: data generators and error measures.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::quant::test {

inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// sqrt(sum (w - x)^2 / sum x^2), in double.
inline double relative_rms(const std::vector<float>& x, const std::vector<float>& w) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(w[i]) - x[i];
    num += e * e;
    den += static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Quantizes `x` as nrows rows of n and dequantizes it back.
inline std::vector<float> round_trip(GgmlType t, const std::vector<float>& x, int64_t nrows, int64_t n) {
  std::vector<uint8_t> q(row_bytes(t, n) * nrows);
  quantize_rows(t, x.data(), q.data(), nrows, n);
  std::vector<float> w(x.size());
  for (int64_t r = 0; r < nrows; ++r) dequantize_row(t, q.data() + r * row_bytes(t, n), w.data() + r * n, n);
  return w;
}

inline bool all_finite(const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return false;
  return true;
}

// Every format with a quantizer, in ggml id order.
inline std::vector<GgmlType> quantizable_types() {
  return {GgmlType::F32,  GgmlType::F16,    GgmlType::Q4_0,   GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
          GgmlType::Q8_0, GgmlType::Q2_K,   GgmlType::Q3_K,   GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
          GgmlType::Q8_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::BF16, GgmlType::MXFP4};
}

}  // namespace rocforge::quant::test
