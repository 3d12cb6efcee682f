// cpu_test_inputs.h - fresh random inputs shared by the CPU kernel tests (matmul, AMX GEMM).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::cpu::test_inputs {

// A weight matrix quantized from random values whose scale varies per row (so block scales differ).
inline std::vector<uint8_t> random_weights(GgmlType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(0.01f, 2.0f);
  const size_t rb = quant::row_bytes(t, cols);
  std::vector<uint8_t> w(rb * rows);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float m = mag(rng);
    for (auto& v : row) v = nd(rng) * m;
    quant::quantize_row(t, row.data(), w.data() + r * rb, cols);
  }
  return w;
}

// T rows of activations. A few outliers, as real activations have: they set the block scale and
// stress the rounding.
inline std::vector<float> random_acts(int64_t T, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(T * cols);
  for (auto& v : x) v = nd(rng);
  for (int64_t i = 0; i < T * cols; i += 97) x[i] *= 20.0f;
  return x;
}

}  // namespace rocforge::cpu::test_inputs
