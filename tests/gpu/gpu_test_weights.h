// gpu_test_weights.h - random weight matrices of every format for the GPU kernel tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "core/half.h"
#include "quant/blocks.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {

inline uint16_t random_half(std::mt19937& rng, float lo, float hi) {
  return f32_to_fp16(std::uniform_real_distribution<float>(lo, hi)(rng));
}

// rows x cols weights of type t. Half the time quantizer output of random floats, else random bytes
// with every scale field overwritten by a finite value (raw random halves can be inf/NaN).
inline std::vector<uint8_t> random_weights(GgmlType t, int rows, int cols, std::mt19937& rng, bool raw_bits) {
  const size_t rb = quant::row_bytes(t, cols);
  std::vector<uint8_t> w(rb * rows);
  const bool plain = t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
  if (!raw_bits || plain) {
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> f(static_cast<size_t>(rows) * cols);
    for (auto& x : f) x = nd(rng);
    quant::quantize_rows(t, f.data(), w.data(), rows, cols);
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  const auto& tr = ggml_type_traits(t);
  const size_t n_blocks = w.size() / tr.block_bytes;
  for (size_t i = 0; i < n_blocks; ++i) {
    uint8_t* b = w.data() + i * tr.block_bytes;
    auto set_half = [&](size_t off, float lo, float hi) {
      const uint16_t h = random_half(rng, lo, hi);
      b[off] = static_cast<uint8_t>(h);
      b[off + 1] = static_cast<uint8_t>(h >> 8);
    };
    switch (t) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: case GgmlType::IQ4_NL:
        set_half(0, -0.1f, 0.1f); break;
      case GgmlType::Q4_1: case GgmlType::Q5_1: set_half(0, -0.1f, 0.1f); set_half(2, -1.f, 1.f); break;
      case GgmlType::Q2_K: set_half(offsetof(quant::BlockQ2_K, d), -0.1f, 0.1f);
        set_half(offsetof(quant::BlockQ2_K, dmin), -0.1f, 0.1f); break;
      case GgmlType::Q3_K: set_half(offsetof(quant::BlockQ3_K, d), -0.01f, 0.01f); break;
      case GgmlType::Q4_K: case GgmlType::Q5_K: set_half(0, -0.01f, 0.01f); set_half(2, -0.01f, 0.01f); break;
      case GgmlType::Q6_K: set_half(offsetof(quant::BlockQ6_K, d), -0.001f, 0.001f); break;
      case GgmlType::IQ4_XS: set_half(0, -0.001f, 0.001f); break;
      case GgmlType::MXFP4: b[0] = static_cast<uint8_t>(118 + rng() % 13); break;
      default: break;
    }
  }
  return w;
}

}  // namespace rocforge::test
