// The AMX-BF16 prompt GEMM for F16 / BF16 weights (src/cpu/kernels_amx_bf16.cpp) against a double
// reference on fresh random inputs and against the f32 FMA tiles it replaces. SKIPPED on machines
// without AMX-BF16 (or without the OS grant of tile data).
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kernels_amx.h"
#include "cpu/ops.h"
#include "rocforge/quant.h"
#include "cpu_test_inputs.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

#define REQUIRE_AMX_BF16()                                                                            \
  if (!amx_available() || !amx_bf16_usable())                                                         \
  GTEST_SKIP() << "no AMX-BF16 here: cpuid lacks AMX-TILE/AMX-BF16/AVX512_BF16, no AVX-512 level, or " \
                  "Linux refused tile data"

using test_inputs::random_acts;
using test_inputs::random_weights;

// Error bound, relative to sum |w x| of an output (kernels_amx_bf16.cpp): the activation split
// keeps 16 significand bits (<= 2^-18 |x| left over) and the dropped w_lo * x_lo term is <= 2^-17
// of |w x|, so each product is within ~2^-16 of exact; the f32 sums of the tile unit add at most
// ~n * 2^-24 (n <= 2048 here: 2^-13). 2^-12 covers both with margin and is still 8x tighter than
// what rounding x to f16 (llama.cpp's F16 path, 2^-11 per product) can promise in the worst case.
constexpr double kRelTol = 1.0 / 4096;

struct Case {
  GgmlType type;
  int64_t rows, cols, T, r0, r1;
};

std::string describe(const Case& c) {
  return std::string(ggml_type_name(c.type)) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
         " T=" + std::to_string(c.T) + " rows [" + std::to_string(c.r0) + "," + std::to_string(c.r1) + ")";
}

void check(const Case& c, std::mt19937& rng) {
  const std::string what = describe(c);
  const auto w = random_weights(c.type, c.rows, c.cols, rng);
  const auto x = random_acts(c.T, c.cols, rng);
  const size_t rb = quant::row_bytes(c.type, c.cols);
  std::vector<float> got(c.T * c.rows, NAN), fma(c.T * c.rows, NAN);
  ASSERT_TRUE(amx_kernels()->gemm_f(c.type, w.data(), rb, c.cols, c.r0, c.r1, x.data(), c.T, got.data(), c.rows));
  const bool has_fma = c.type != GgmlType::Q6_K;  // the FMA tiles take float weights only
  if (has_fma) {
    ASSERT_TRUE(avx512_kernels()->gemm_f(c.type, w.data(), rb, c.cols, c.r0, c.r1, x.data(), c.T, fma.data(), c.rows));
  }
  std::vector<float> wrow(c.cols);
  for (int64_t r = 0; r < c.rows; ++r) {
    const bool in = r >= c.r0 && r < c.r1;
    if (in) quant::dequantize_row(c.type, w.data() + r * rb, wrow.data(), c.cols);
    for (int64_t t = 0; t < c.T; ++t) {
      const float g = got[t * c.rows + r];
      if (!in) {
        ASSERT_TRUE(std::isnan(g)) << what << " wrote row " << r << " token " << t;
        continue;
      }
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < c.cols; ++i) {
        exact += double(wrow[i]) * x[t * c.cols + i];
        mag += std::fabs(double(wrow[i]) * x[t * c.cols + i]);
      }
      ASSERT_NEAR(g, exact, kRelTol * mag + 1e-6) << what << " row " << r << " token " << t;
      // The FMA tiles it replaces are within f32 rounding of the same value.
      if (has_fma) {
        ASSERT_NEAR(g, fma[t * c.rows + r], 2 * kRelTol * mag + 1e-6) << what << " vs fma, row " << r << " token " << t;
      }
    }
  }
}

TEST(AmxBf16Gemm, F16AndBf16MatchDoubleReference) {
  REQUIRE_AMX_BF16();
  std::mt19937 rng(2024);
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
    // One token block, a partial one, an odd count of blocks (padded to a pair), many blocks.
    for (int64_t T : {16, 17, 40, 100}) check({t, 37, 7 * 32, T, 0, 37}, rng);
    // Row ranges starting and ending inside panels, a single partial panel, a panel pair + 1 row.
    check({t, 70, 96, 23, 3, 66}, rng);
    check({t, 9, 64, 16, 0, 9}, rng);
    check({t, 33, 64, 33, 0, 33}, rng);
  }
  // Several input chunks of 256 (partial sums kept between them), the last one partial (11 steps
  // of 32 = 8 + 3), and a Llama-like width.
  check({GgmlType::F16, 40, 352, 35, 2, 39}, rng);
  check({GgmlType::BF16, 40, 352, 35, 2, 39}, rng);
  check({GgmlType::F16, 32, 2048, 48, 0, 32}, rng);
}

// Q6_K: integer codes sc * q (up to 13 bits) split exactly into hi + lo, d applied per 256-input
// super-block; f32 activations. Same error bound as F16 (the weights are exact, x keeps 16 bits).
TEST(AmxBf16Gemm, Q6KMatchesDoubleReference) {
  REQUIRE_AMX_BF16();
  ASSERT_TRUE(amx_bf16_takes(GgmlType::Q6_K, 16));
  EXPECT_FALSE(amx_bf16_takes(GgmlType::Q6_K, 15));
  EXPECT_FALSE(amx_bf16_takes(GgmlType::Q4_K, 512));
  std::mt19937 rng(66);
  for (int64_t T : {16, 17, 40}) check({GgmlType::Q6_K, 37, 256, T, 0, 37}, rng);
  check({GgmlType::Q6_K, 70, 768, 23, 3, 66}, rng);   // several super-blocks, rows inside panels
  check({GgmlType::Q6_K, 9, 512, 33, 0, 9}, rng);     // one partial panel, odd token blocks
  check({GgmlType::Q6_K, 32, 2048, 20, 0, 32}, rng);  // Llama-like width
}

// The split must stay exact for F16 values of every magnitude, subnormals included: F16 weights
// spanning 2^-24 .. 2^15 against activations spanning 2^-20 .. 2^20.
TEST(AmxBf16Gemm, F16ExtremeMagnitudes) {
  REQUIRE_AMX_BF16();
  std::mt19937 rng(99);
  const int64_t rows = 16, cols = 64, T = 16;
  std::uniform_real_distribution<float> e(-24.0f, 15.0f), ex(-20.0f, 20.0f), m(1.0f, 2.0f);
  std::vector<float> wf(rows * cols), x(T * cols);
  for (auto& v : wf) v = std::ldexp(m(rng), static_cast<int>(e(rng))) * (rng() & 1 ? 1.0f : -1.0f);
  for (auto& v : x) v = std::ldexp(m(rng), static_cast<int>(ex(rng))) * (rng() & 1 ? 1.0f : -1.0f);
  const size_t rb = quant::row_bytes(GgmlType::F16, cols);
  std::vector<uint8_t> w(rb * rows);
  for (int64_t r = 0; r < rows; ++r) quant::quantize_row(GgmlType::F16, wf.data() + r * cols, w.data() + r * rb, cols);
  std::vector<float> got(T * rows), wrow(cols);
  ASSERT_TRUE(amx_kernels()->gemm_f(GgmlType::F16, w.data(), rb, cols, 0, rows, x.data(), T, got.data(), rows));
  for (int64_t r = 0; r < rows; ++r) {
    quant::dequantize_row(GgmlType::F16, w.data() + r * rb, wrow.data(), cols);
    for (int64_t t = 0; t < T; ++t) {
      double exact = 0, mag = 0;
      for (int64_t i = 0; i < cols; ++i) {
        exact += double(wrow[i]) * x[t * cols + i];
        mag += std::fabs(double(wrow[i]) * x[t * cols + i]);
      }
      ASSERT_NEAR(got[t * rows + r], exact, kRelTol * mag + 1e-30) << "row " << r << " token " << t;
    }
  }
}

// Through cpu::matmul with AMX on (AMX-BF16 GEMM) and off (FMA tiles), split over 2 threads: both
// within tolerance of the double reference, and results independent of the thread count.
TEST(AmxBf16Gemm, MatmulDispatchAndThreadCount) {
  REQUIRE_AMX_BF16();
  const bool saved_amx = amx_enabled();
  const IsaLevel saved_isa = active_isa();
  ASSERT_EQ(set_isa_level(IsaLevel::Avx512), IsaLevel::Avx512);
  std::mt19937 rng(5);
  const int64_t rows = 77, cols = 256, T = 50;
  const auto w = random_weights(GgmlType::F16, rows, cols, rng);
  const auto x = random_acts(T, cols, rng);
  const size_t rb = quant::row_bytes(GgmlType::F16, cols);
  QMatrix m{w.data(), GgmlType::F16, cols, rows, rb};
  ThreadPool one(1), two(2);
  std::vector<float> wrow(cols);
  for (bool on : {true, false}) {
    ASSERT_EQ(set_amx_enabled(on), on);
    std::vector<float> y1(T * rows), y2(T * rows);
    matmul(m, x.data(), T, y1.data(), one);
    matmul(m, x.data(), T, y2.data(), two);
    for (int64_t r = 0; r < rows; ++r) {
      quant::dequantize_row(GgmlType::F16, w.data() + r * rb, wrow.data(), cols);
      for (int64_t t = 0; t < T; ++t) {
        double exact = 0, mag = 0;
        for (int64_t i = 0; i < cols; ++i) {
          exact += double(wrow[i]) * x[t * cols + i];
          mag += std::fabs(double(wrow[i]) * x[t * cols + i]);
        }
        ASSERT_NEAR(y1[t * rows + r], exact, kRelTol * mag + 1e-6) << "amx=" << on << " row " << r << " token " << t;
        ASSERT_EQ(y1[t * rows + r], y2[t * rows + r]) << "amx=" << on << " 1 vs 2 threads, row " << r << " token " << t;
      }
    }
  }
  set_isa_level(saved_isa);
  set_amx_enabled(saved_amx);
}

}  // namespace
}  // namespace rocforge::cpu
