// Every CPU matmul kernel (each weight format x each ISA level this machine runs) against the
// scalar references of rocforge/quant.h, on fresh random inputs with odd shapes.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "rocforge/quant.h"
#include "cpu_test_inputs.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,   GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                           GgmlType::MXFP4};

// Restores the ISA level a test changed.
struct IsaGuard {
  IsaLevel saved = active_isa();
  ~IsaGuard() { set_isa_level(saved); }
};

struct Case {
  GgmlType type;
  int64_t rows, cols, T;
};

using test_inputs::random_acts;
using test_inputs::random_weights;

// What the int8 kernels see: x rounded through the activation quantizer (scalar reference).
std::vector<float> requantized(const std::vector<float>& x, int64_t T, int64_t cols, int block) {
  std::vector<float> out(x.size());
  std::vector<int8_t> q(cols);
  std::vector<float> d(cols / block), ds(cols / 32);
  std::vector<int16_t> s16(cols / 16);
  std::vector<int32_t> lanes(cols / 4);
  for (int64_t t = 0; t < T; ++t) {
    quantize_act_row(x.data() + t * cols, cols, block, q.data(), d.data(), s16.data(), lanes.data(), ds.data());
    for (int64_t i = 0; i < cols; ++i) out[t * cols + i] = d[i / block] * q[i];
  }
  return out;
}

void check_case(const Case& c, ThreadPool& pool, std::mt19937& rng) {
  const std::string what = std::string(ggml_type_name(c.type)) + " " + std::to_string(c.rows) + "x" +
                           std::to_string(c.cols) + " T=" + std::to_string(c.T) + " isa=" + isa_name(active_isa());
  const auto w = random_weights(c.type, c.rows, c.cols, rng);
  const auto x = random_acts(c.T, c.cols, rng);
  const size_t rb = quant::row_bytes(c.type, c.cols);
  QMatrix m{w.data(), c.type, c.cols, c.rows, rb};
  std::vector<float> y(c.T * c.rows, NAN);
  matmul(m, x.data(), c.T, y.data(), pool);

  const int block = matmul_act_block(c.type, c.T);
  const std::vector<float> xq = block ? requantized(x, c.T, c.cols, block) : x;
  std::vector<float> wrow(c.cols);
  for (int64_t r = 0; r < c.rows; ++r) {
    quant::dequantize_row(c.type, w.data() + r * rb, wrow.data(), c.cols);
    for (int64_t t = 0; t < c.T; ++t) {
      const float* xt = x.data() + t * c.cols;
      const float got = y[t * c.rows + r];
      // (1) Against the reference dot product on the f32 activations. The int8 activations differ
      // from x by at most d/2 = amax/254 per element (round to nearest, d = amax/127 per block),
      // so |error| <= sum over blocks of amax/254 * sum|w| (plus f32 rounding).
      const float ref = quant::dot_row_ref(c.type, w.data() + r * rb, xt, c.cols);
      double bound = 0, mag = 0;
      for (int64_t b0 = 0; b0 < c.cols; b0 += (block ? block : c.cols)) {
        const int64_t be = block ? b0 + block : c.cols;
        double amax = 0, wsum = 0;
        for (int64_t i = b0; i < be; ++i) {
          amax = std::max(amax, std::fabs(double(xt[i])));
          wsum += std::fabs(double(wrow[i]));
          mag += std::fabs(double(wrow[i]) * xt[i]);
        }
        if (block) bound += amax / 254.0 * wsum;
      }
      const double tol_f32 = 2e-6 * c.cols;  // f32 summation over `cols` terms, relative to mag
      ASSERT_NEAR(got, ref, 1.0001 * bound + tol_f32 * mag + 1e-5) << what << " row " << r << " token " << t;
      // (2) Tight: against a double dot with the same int8-rounded activations, so only f32
      // rounding separates them (catches wrong offsets/scales hidden inside tolerance (1)).
      double exact = 0, emag = 0;
      const float* xqt = xq.data() + t * c.cols;
      for (int64_t i = 0; i < c.cols; ++i) {
        exact += double(wrow[i]) * xqt[i];
        emag += std::fabs(double(wrow[i]) * xqt[i]);
      }
      ASSERT_NEAR(got, exact, tol_f32 * emag + 1e-5) << what << " (same int8 activations) row " << r << " token " << t;
    }
  }
}

class MatmulKernels : public ::testing::TestWithParam<IsaLevel> {};

TEST_P(MatmulKernels, EveryFormatMatchesScalarReference) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  ThreadPool pool(2);
  std::mt19937 rng(1234 + static_cast<int>(GetParam()));
  for (GgmlType t : kTypes) {
    const int64_t be = ggml_type_traits(t).block_elems;
    // Odd widths: 7 blocks of 32 (or 3 super-blocks); float types get a width with a SIMD tail.
    const int64_t cols = be == 1 ? 203 : be == 32 ? 7 * 32 : 3 * 256;
    for (int64_t T : {1, 2, 3, 7, 16, 33}) check_case({t, 13, cols, T}, pool, rng);
    check_case({t, 1, be == 1 ? 5 : be, 1}, pool, rng);  // one row, one block
    // Decode GEMV shapes: an even block count with a partial group of 16 blocks (18 = 16 + 2).
    if (be == 32) check_case({t, 9, 18 * 32, 1}, pool, rng);
    // Q2_K/Q3_K/IQ4_XS take the panel GEMM only from 128 tokens (matmul.cpp): cover it too.
    if (be == 256) check_case({t, 13, cols, 128}, pool, rng);
    if (be == 1) check_case({t, 19, 7 * 32, 33}, pool, rng);  // a width with no SIMD tail
  }
}

// Decode (T = 1) GEMVs walk a thread's rows as several streams and take blocks in groups (4 Q4_0
// blocks, 2 Q8_0 blocks, ...): row counts that leave streams uneven and widths that leave partial
// groups must all match the reference.
TEST_P(MatmulKernels, DecodeShapesMatchScalarReference) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  ThreadPool pool(2);
  std::mt19937 rng(4321 + static_cast<int>(GetParam()));
  const GgmlType types[] = {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::IQ4_NL,
                            GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16};
  for (GgmlType t : types) {
    const int64_t be = ggml_type_traits(t).block_elems == 256 ? 256 : 32;
    for (int64_t blocks : {1, 2, 3, 4, 5, 9, 15})
      for (int64_t rows : {1, 6, 7, 13, 41}) check_case({t, rows, blocks * be, 1}, pool, rng);
  }
}

TEST_P(MatmulKernels, ResultsDoNotDependOnThreadCount) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(99);
  ThreadPool one(1), three(3);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::F16, GgmlType::Q3_K}) {
    for (int64_t T : {1, 5, 20}) {  // decode GEMVs, tile kernels and (where available) the panel GEMM
    // T = 1 needs enough work to be split at all (ThreadPool::kMinParallelWork).
    const int64_t cols = 512, rows = T == 1 ? 301 : 37;
    const auto w = random_weights(t, rows, cols, rng);
    const auto x = random_acts(T, cols, rng);
    QMatrix m{w.data(), t, cols, rows, quant::row_bytes(t, cols)};
    std::vector<float> y1(T * rows), y3(T * rows);
    matmul(m, x.data(), T, y1.data(), one);
    matmul(m, x.data(), T, y3.data(), three);
    for (size_t i = 0; i < y1.size(); ++i)
      ASSERT_EQ(std::memcmp(&y1[i], &y3[i], 4), 0) << ggml_type_name(t) << " T=" << T << " element " << i;
    }
  }
}

TEST_P(MatmulKernels, MultiEqualsSeparateCalls) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(5);
  ThreadPool pool(2);
  const int64_t cols = 256, T = 3;
  const GgmlType types[3] = {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F32};
  const int64_t rows[3] = {9, 16, 5};
  std::vector<std::vector<uint8_t>> ws;
  std::vector<QMatrix> ms;
  for (int k = 0; k < 3; ++k) ws.push_back(random_weights(types[k], rows[k], cols, rng));
  for (int k = 0; k < 3; ++k) ms.push_back({ws[k].data(), types[k], cols, rows[k], quant::row_bytes(types[k], cols)});
  const auto x = random_acts(T, cols, rng);
  std::vector<std::vector<float>> multi(3), single(3);
  float* ys[3];
  for (int k = 0; k < 3; ++k) {
    multi[k].assign(T * rows[k], NAN);
    single[k].assign(T * rows[k], NAN);
    ys[k] = multi[k].data();
  }
  matmul_multi(ms.data(), ys, 3, x.data(), T, pool);
  for (int k = 0; k < 3; ++k) {
    matmul(ms[k], x.data(), T, single[k].data(), pool);
    EXPECT_EQ(multi[k], single[k]) << ggml_type_name(types[k]);
  }
}

// Decode-sized calls hand out rows in chunks of ~256 KiB to whichever thread is free (matmul.cpp):
// with several matrices of different row sizes and many chunks each, every output must still
// equal the one-thread result bit for bit.
TEST_P(MatmulKernels, DecodeChunksDoNotChangeResults) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(17);
  ThreadPool one(1), two(2), three(3);
  const int64_t cols = 512;
  const GgmlType types[3] = {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16};
  const int64_t rows[3] = {1500, 997, 700};  // Q8_0: 3+ chunks; F16: 2 chunks; odd row counts
  std::vector<std::vector<uint8_t>> ws;
  std::vector<QMatrix> ms;
  for (int k = 0; k < 3; ++k) ws.push_back(random_weights(types[k], rows[k], cols, rng));
  for (int k = 0; k < 3; ++k) ms.push_back({ws[k].data(), types[k], cols, rows[k], quant::row_bytes(types[k], cols)});
  const auto x = random_acts(1, cols, rng);
  std::vector<float> ref[3], got[3];
  float* ys[3];
  for (int k = 0; k < 3; ++k) ref[k].assign(rows[k], NAN), ys[k] = ref[k].data();
  matmul_multi(ms.data(), ys, 3, x.data(), 1, one);
  for (ThreadPool* pool : {&two, &three}) {
    for (int k = 0; k < 3; ++k) got[k].assign(rows[k], NAN), ys[k] = got[k].data();
    matmul_multi(ms.data(), ys, 3, x.data(), 1, *pool);
    for (int k = 0; k < 3; ++k)
      ASSERT_EQ(std::memcmp(got[k].data(), ref[k].data(), rows[k] * sizeof(float)), 0)
          << ggml_type_name(types[k]) << " threads=" << pool->size();
  }
  // And the one-thread result is right (spot check against the scalar-reference test's bound).
  std::vector<float> wrow(cols);
  for (int64_t r = 0; r < rows[0]; r += 97) {
    quant::dequantize_row(types[0], ws[0].data() + r * ms[0].row_bytes, wrow.data(), cols);
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < cols; ++i) exact += double(wrow[i]) * x[i], mag += std::fabs(double(wrow[i]) * x[i]);
    ASSERT_NEAR(ref[0][r], exact, 0.02 * mag + 1e-3) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, MatmulKernels, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// The super-block formats (act block 256) must have their own SIMD path at every x86 level: a
// kernel table returning false would silently fall back to the scalar decode_block loop, which
// the matmul tests above cannot tell apart. Called directly on the table; checked against a
// double dot of the dequantized weights with the same int8 activations.
TEST(MatmulKernelCoverage, SuperBlockFormatsHaveSimdPaths) {
  std::mt19937 rng(21);
  const KernelTable* tables[] = {avx2_kernels(), avx512_kernels()};
  const IsaLevel levels[] = {IsaLevel::Avx2, IsaLevel::Avx512};
  const GgmlType types[] = {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                            GgmlType::IQ4_XS};
  int tested = 0;
  for (int k = 0; k < 2; ++k) {
    if (!tables[k] || detected_isa() < levels[k]) continue;
    ++tested;
    for (GgmlType t : types) {
      const int64_t rows = 9, cols = 3 * 256;
      ASSERT_EQ(act_block_for(t), 256);
      const auto w = random_weights(t, rows, cols, rng);
      const size_t rb = quant::row_bytes(t, cols);
      std::vector<float> wf(rows * cols);
      for (int64_t r = 0; r < rows; ++r) quant::dequantize_row(t, w.data() + r * rb, wf.data() + r * cols, cols);
      for (int64_t T : {1, 3}) {  // decode GEMV and the small-batch tiles
        const auto x = random_acts(T, cols, rng);
        std::vector<int8_t> q(T * cols);
        std::vector<float> d(T * cols / 256), ds(T * cols / 32);
        std::vector<int16_t> s16(T * cols / 16);
        std::vector<int32_t> lanes(T * cols / 4);
        for (int64_t tt = 0; tt < T; ++tt)
          quantize_act_row(x.data() + tt * cols, cols, 256, q.data() + tt * cols, d.data() + tt * cols / 256,
                           s16.data() + tt * cols / 16, lanes.data() + tt * cols / 4, ds.data() + tt * cols / 32);
        const QActView a{256, cols, T, q.data(), d.data(), s16.data(), lanes.data(), ds.data()};
        std::vector<float> y(T * rows, NAN);
        const std::string what = std::string(tables[k]->name) + " " + std::string(ggml_type_name(t)) + " T=" + std::to_string(T);
        ASSERT_TRUE(tables[k]->gemm_q(t, w.data(), rb, 0, rows, a, y.data(), rows)) << what << ": no SIMD path";
        for (int64_t tt = 0; tt < T; ++tt)
          for (int64_t r = 0; r < rows; ++r) {
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < cols; ++i) {
              const double p = double(wf[r * cols + i]) * d[(tt * cols + i) / 256] * q[tt * cols + i];
              exact += p;
              mag += std::fabs(p);
            }
            ASSERT_NEAR(y[tt * rows + r], exact, 2e-6 * cols * mag + 1e-5) << what << " row " << r;
          }
      }
    }
  }
  if (tested == 0) GTEST_SKIP() << "no SIMD level on this CPU";
}

TEST(MatmulErrors, RejectsMismatchedWidthsAndUnsupportedTypes) {
  ThreadPool pool(1);
  std::vector<uint8_t> w(64 * 4, 0);
  std::vector<float> x(64, 1.0f), y(8);
  QMatrix a{w.data(), GgmlType::F32, 64, 1, 256}, b{w.data(), GgmlType::F32, 32, 1, 128};
  QMatrix both[2] = {a, b};
  float* ys[2] = {y.data(), y.data() + 1};
  EXPECT_THROW(matmul_multi(both, ys, 2, x.data(), 1, pool), Error);
  QMatrix bad{w.data(), GgmlType::Q8_1, 64, 1, 72};
  EXPECT_THROW(matmul(bad, x.data(), 1, y.data(), pool), Error);
}

TEST(ActivationQuant, RoundTripWithinHalfStepAndSumsConsistent) {
  std::mt19937 rng(3);
  for (int block : {32, 256}) {
    const int64_t n = 512;
    const auto x = random_acts(1, n, rng);
    std::vector<int8_t> q(n);
    std::vector<float> d(n / block), ds(n / 32);
    std::vector<int16_t> s16(n / 16);
    std::vector<int32_t> lanes(n / 4);
    quantize_act_row(x.data(), n, block, q.data(), d.data(), s16.data(), lanes.data(), ds.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(x[i] - d[i / block] * q[i]), d[i / block] * 0.5f * 1.0001f);
    for (int64_t g = 0; g < n / 16; ++g) {
      int s = 0;
      for (int i = 0; i < 16; ++i) s += q[g * 16 + i];
      ASSERT_EQ(s, s16[g]);
    }
    for (int64_t k = 0; k < n / 4; ++k) ASSERT_EQ(lanes[k], q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3]);
  }
}

TEST(ActivationQuant, SimdQuantizersEqualScalarReference) {
  std::mt19937 rng(8);
  const KernelTable* tables[] = {avx2_kernels(), avx512_kernels()};
  const IsaLevel levels[] = {IsaLevel::Avx2, IsaLevel::Avx512};
  int tested = 0;
  for (int k = 0; k < 2; ++k) {
    if (!tables[k] || detected_isa() < levels[k]) continue;
    ++tested;
    for (int block : {32, 256}) {
      const int64_t n = 768;
      auto x = random_acts(1, n, rng);
      for (int64_t i = 0; i < 32; ++i) x[i] = 0.0f;  // an all-zero block (scale 0)
      x[40] = 0.5f * 127.0f / 127.0f;                 // ties land on .5 after scaling in some blocks
      std::vector<int8_t> q0(n), q1(n);
      std::vector<float> d0(n / block), d1(n / block), ds0(n / 32), ds1(n / 32);
      std::vector<int16_t> s0(n / 16), s1(n / 16);
      std::vector<int32_t> l0(n / 4), l1(n / 4);
      quantize_act_row(x.data(), n, block, q0.data(), d0.data(), s0.data(), l0.data(), ds0.data());
      tables[k]->quantize_act(x.data(), n, block, q1.data(), d1.data(), s1.data(), l1.data(), ds1.data());
      EXPECT_EQ(q0, q1) << tables[k]->name << " block " << block;
      EXPECT_EQ(d0, d1);
      EXPECT_EQ(s0, s1);
      EXPECT_EQ(l0, l1);
      EXPECT_EQ(ds0, ds1);
    }
  }
  if (tested == 0) GTEST_SKIP() << "no SIMD level on this CPU";
}

}  // namespace
}  // namespace rocforge::cpu
