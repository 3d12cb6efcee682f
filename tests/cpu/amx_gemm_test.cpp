// The AMX-INT8 prompt GEMM (src/cpu/kernels_amx.cpp) against the scalar reference kernel, and the
// matmul dispatch with AMX on and off. SKIPPED on machines without AMX (or without the OS grant).
#include <cmath>
#include <cstring>
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

// Every format the panel GEMM unpacks (the AMX GEMM shares its panel builder).
const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,   GgmlType::Q5_1,  GgmlType::Q8_0,
                           GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,   GgmlType::Q5_K,  GgmlType::Q6_K,
                           GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4};

#define REQUIRE_AMX()                                                                                 \
  if (!amx_available())                                                                               \
  GTEST_SKIP() << "no AMX here: cpuid lacks AMX-TILE/AMX-INT8, no AVX-512 level, or Linux refused "  \
                  "tile data (arch_prctl ARCH_REQ_XCOMP_PERM)"

struct AmxGuard {
  bool saved = amx_enabled();
  IsaLevel isa = active_isa();
  ~AmxGuard() {
    set_isa_level(isa);
    set_amx_enabled(saved);
  }
};

using test_inputs::random_acts;
using test_inputs::random_weights;

// Activations quantized in blocks of 32 by the scalar quantizer, with the view the kernels take.
struct Acts {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int16_t> s16;
  std::vector<int32_t> lanes;
  QActView view;
  Acts(const std::vector<float>& x, int64_t T, int64_t n)
      : q(T * n), d(T * n / 32), ds(T * n / 32), s16(T * n / 16), lanes(T * n / 4) {
    for (int64_t t = 0; t < T; ++t)
      quantize_act_row(x.data() + t * n, n, 32, q.data() + t * n, d.data() + t * n / 32, s16.data() + t * n / 16,
                       lanes.data() + t * n / 4, ds.data() + t * n / 32);
    view = {32, n, T, q.data(), d.data(), s16.data(), lanes.data(), ds.data()};
  }
  float value(int64_t t, int64_t i) const { return d[(t * view.n + i) / 32] * q[t * view.n + i]; }
};

// sum |w * xq| of one output: the f32 rounding tolerance scales with it (as in matmul_test).
double magnitude(const std::vector<float>& wrow, const Acts& a, int64_t t) {
  double m = 0;
  for (int64_t i = 0; i < a.view.n; ++i) m += std::fabs(double(wrow[i]) * a.value(t, i));
  return m;
}

struct Case {
  GgmlType type;
  int64_t rows, cols, T, r0, r1;
};

void check_direct(const Case& c, std::mt19937& rng) {
  const std::string what = std::string(ggml_type_name(c.type)) + " " + std::to_string(c.rows) + "x" +
                           std::to_string(c.cols) + " T=" + std::to_string(c.T) + " rows [" + std::to_string(c.r0) +
                           "," + std::to_string(c.r1) + ")";
  const auto w = random_weights(c.type, c.rows, c.cols, rng);
  const Acts a(random_acts(c.T, c.cols, rng), c.T, c.cols);
  const size_t rb = quant::row_bytes(c.type, c.cols);
  std::vector<float> got(c.T * c.rows, NAN), ref(c.T * c.rows, NAN);
  ASSERT_TRUE(amx_kernels()->gemm_panel(c.type, w.data(), rb, c.r0, c.r1, a.view, got.data(), c.rows)) << what;
  ASSERT_TRUE(scalar_kernels().gemm_q(c.type, w.data(), rb, c.r0, c.r1, a.view, ref.data(), c.rows)) << what;
  const double tol_f32 = 2e-6 * c.cols;
  std::vector<float> wrow(c.cols);
  for (int64_t r = 0; r < c.rows; ++r) {
    const bool in = r >= c.r0 && r < c.r1;
    if (in) quant::dequantize_row(c.type, w.data() + r * rb, wrow.data(), c.cols);
    for (int64_t t = 0; t < c.T; ++t) {
      const float g = got[t * c.rows + r];
      if (!in) {  // outside [r0, r1): never written
        ASSERT_TRUE(std::isnan(g)) << what << " wrote row " << r << " token " << t;
        continue;
      }
      ASSERT_NEAR(g, ref[t * c.rows + r], tol_f32 * magnitude(wrow, a, t) + 1e-5)
          << what << " row " << r << " token " << t;
    }
  }
}

TEST(AmxGemm, EveryPanelFormatMatchesScalarReference) {
  REQUIRE_AMX();
  std::mt19937 rng(4242);
  for (GgmlType t : kTypes) {
    const int64_t be = ggml_type_traits(t).block_elems;
    const int64_t cols = be == 32 ? 7 * 32 : 3 * 256;
    // Token counts: one full tile, full + partial, partial only, several tiles + partial.
    for (int64_t T : {16, 17, 5, 47}) check_direct({t, 37, cols, T, 0, 37}, rng);
    // A row range starting and ending inside panels (what a thread's share of rows can be).
    check_direct({t, 40, cols, 19, 3, 38}, rng);
  }
}

TEST(AmxGemm, WideRowsAndManyTokens) {
  REQUIRE_AMX();
  std::mt19937 rng(7);
  // Llama-like widths (many groups: exercises the double-buffered tiles over long K).
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K})
    check_direct({t, 32, 2048, 70, 0, 32}, rng);
  // More rows than one output stage (128) holds, starting and ending inside panels; IQ4_XS takes
  // the generic panel builder, the others the AMX one.
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::IQ4_XS})
    check_direct({t, 300, 512, 20, 5, 290}, rng);
  // More rows than the largest stage (512) holds: several flushes, the last one partial.
  check_direct({GgmlType::Q4_0, 1100, 64, 20, 5, 1090}, rng);
}

// Same matmul call with AMX on and off: both within the f32 tolerance of the scalar kernel, and
// the AMX table really is the one dispatched (its name) while the VNNI one is used when off.
TEST(AmxGemm, MatmulWithAndWithoutAmx) {
  REQUIRE_AMX();
  AmxGuard guard;
  ASSERT_EQ(set_isa_level(IsaLevel::Avx512), IsaLevel::Avx512);
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q3_K}) {
    const int64_t rows = 45, cols = 512, T = 130;
    // Q6_K prompts go to the AMX-BF16 GEMM with f32 activations where it exists (amx_bf16_test).
    if (amx_bf16_takes(t, T)) continue;
    const auto w = random_weights(t, rows, cols, rng);
    const auto x = random_acts(T, cols, rng);
    const size_t rb = quant::row_bytes(t, cols);
    QMatrix m{w.data(), t, cols, rows, rb};
    ASSERT_EQ(matmul_act_block(t, T), 32);
    const Acts a(x, T, cols);
    std::vector<float> ref(T * rows);
    ASSERT_TRUE(scalar_kernels().gemm_q(t, w.data(), rb, 0, rows, a.view, ref.data(), rows));
    std::vector<float> wrow(cols);
    for (bool on : {true, false}) {
      ASSERT_EQ(set_amx_enabled(on), on);
      ASSERT_EQ(amx_enabled(), on);
      ASSERT_NE(cpu_feature_string().find(on ? "amx gemm on" : "amx gemm off"), std::string::npos);
      std::vector<float> y(T * rows, NAN);
      matmul(m, x.data(), T, y.data(), pool);
      for (int64_t r = 0; r < rows; ++r) {
        quant::dequantize_row(t, w.data() + r * rb, wrow.data(), cols);
        for (int64_t tt = 0; tt < T; ++tt)
          ASSERT_NEAR(y[tt * rows + r], ref[tt * rows + r], 2e-6 * cols * magnitude(wrow, a, tt) + 1e-5)
              << ggml_type_name(t) << " amx=" << on << " row " << r << " token " << tt;
      }
    }
  }
  // A lower ISA level turns AMX off (it is part of the AVX-512 table).
  set_amx_enabled(true);
  ASSERT_EQ(set_isa_level(IsaLevel::Avx2), IsaLevel::Avx2);
  EXPECT_FALSE(amx_enabled());
}

// The AMX GEMM is the VNNI panel GEMM's integer math on other hardware: the same int32 group sums,
// scaled and min-corrected with the same f32 operations in the same order, so the two agree bit
// for bit (and a model's logits do not depend on which of the two ran).
TEST(AmxGemm, BitIdenticalToVnniPanel) {
  REQUIRE_AMX();
  std::mt19937 rng(3);
  for (GgmlType t : kTypes) {
    const int64_t cols = 512, rows = 21, T = 23;
    const auto w = random_weights(t, rows, cols, rng);
    const Acts a(random_acts(T, cols, rng), T, cols);
    const size_t rb = quant::row_bytes(t, cols);
    std::vector<float> y_amx(T * rows), y_vnni(T * rows);
    ASSERT_TRUE(amx_kernels()->gemm_panel(t, w.data(), rb, 0, rows, a.view, y_amx.data(), rows));
    ASSERT_TRUE(avx512_kernels()->gemm_panel(t, w.data(), rb, 0, rows, a.view, y_vnni.data(), rows));
    for (size_t i = 0; i < y_amx.size(); ++i)
      ASSERT_EQ(std::memcmp(&y_amx[i], &y_vnni[i], 4), 0) << ggml_type_name(t) << " element " << i;
  }
}

}  // namespace
}  // namespace rocforge::cpu
