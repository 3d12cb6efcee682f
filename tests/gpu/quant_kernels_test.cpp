// GPU matvec (decode), tiled matmul (prefill) and embedding lookup for every weight format, against
// the scalar references of rocforge::quant (dot_row_ref, dequantize_row), on fresh random weights:
// both quantizer output (realistic) and random bit patterns (every bit path of the decoders).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/half.h"
#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "quant/blocks.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,   GgmlType::Q4_0,   GgmlType::Q4_1,
                           GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,   GgmlType::Q2_K,   GgmlType::Q3_K,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,   GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                           GgmlType::MXFP4};

std::vector<int> col_sizes(GgmlType t) {
  const int be = static_cast<int>(ggml_type_traits(t).block_elems);
  if (be == 1) return {33, 100, 4096};
  if (be == 32) return {32, 96, 4128};
  return {256, 768, 4352};
}

class QuantKernels : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantKernels, MatvecMatchesDotRowRef) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const GgmlType t = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (bool raw : {false, true}) {
    for (int cols : col_sizes(t)) {
      for (int rows : {1, 37, 515}) {
        SCOPED_TRACE(std::string(ggml_type_name(t)) + " rows " + std::to_string(rows) + " cols " +
                     std::to_string(cols) + (raw ? " raw bits" : " quantized"));
        const size_t rb = quant::row_bytes(t, cols);
        const auto w = random_weights(t, rows, cols, rng, raw);
        const auto x = random_floats(rng, cols);
        auto dw = to_device(*gpu, w);
        // x at a 16-byte aligned address (the vectorized decode path) and one float past it (the
        // generic path), so both code paths of every format are checked.
        std::vector<float> x_shifted(1);
        x_shifted.insert(x_shifted.end(), x.begin(), x.end());
        auto dx = to_device(*gpu, x);
        auto dxs = to_device(*gpu, x_shifted);
        DeviceBuffer dy(*gpu, rows * sizeof(float)), dys(*gpu, rows * sizeof(float));
        dy.poison();
        dys.poison();
        gpu->check(gpu->api().matvec(static_cast<uint32_t>(t), dw->get(), rb, dx->as<float>(), dy.as<float>(), rows,
                                     cols, nullptr),
                   "matvec");
        gpu->check(gpu->api().matvec(static_cast<uint32_t>(t), dw->get(), rb, dxs->as<float>() + 1, dys.as<float>(),
                                     rows, cols, nullptr),
                   "matvec (unaligned x)");
        const auto y = dy.download<float>(rows);
        const auto ys = dys.download<float>(rows);
        std::vector<float> row(cols);
        for (int r = 0; r < rows; ++r) {
          const uint8_t* wr = w.data() + r * rb;
          const double ref = quant::dot_row_ref(t, wr, x.data(), cols);
          quant::dequantize_row(t, wr, row.data(), cols);
          double mag = 0;
          for (int c = 0; c < cols; ++c) mag += std::fabs(static_cast<double>(row[c]) * x[c]);
          ASSERT_TRUE(std::isfinite(y[r])) << "row " << r;
          ASSERT_NEAR(y[r], ref, 1e-4 * mag + 1e-6) << "row " << r;
          ASSERT_NEAR(ys[r], ref, 1e-4 * mag + 1e-6) << "row " << r << " (unaligned x)";
        }
      }
    }
  }
}

// y [n_tok][rows] must equal X W^T of the dequantized weights, computed in double, within
// rel * sum|w*x| + abs per output.
void expect_dequantized_product(GgmlType t, const std::vector<uint8_t>& w, const std::vector<float>& x,
                                const std::vector<float>& y, int rows, int cols, int n_tok, double rel, double abs) {
  const size_t rb = quant::row_bytes(t, cols);
  std::vector<float> wf(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) quant::dequantize_row(t, w.data() + r * rb, wf.data() + r * cols, cols);
  for (int tk = 0; tk < n_tok; ++tk) {
    for (int r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int c = 0; c < cols; ++c) {
        const double p = static_cast<double>(wf[r * cols + c]) * x[tk * cols + c];
        ref += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(y[tk * rows + r], ref, rel * mag + abs) << "token " << tk << " row " << r;
    }
  }
}

// matmul_f16 of n_tok fresh random tokens against the uploaded weights dw (w on the host), checked
// against the exact product within the f16 rounding of W and X (each < 2^-11 relative).
void expect_matmul_f16_product(const device::GpuBackend& gpu, GgmlType t, const std::vector<uint8_t>& w,
                               const DeviceBuffer& dw, int rows, int cols, int n_tok, std::mt19937& rng) {
  const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
  auto dx = to_device(gpu, x);
  DeviceBuffer dy(gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
  dy.poison();
  gpu.check(gpu.api().matmul_f16(static_cast<uint32_t>(t), dw.get(), quant::row_bytes(t, cols), dx->as<float>(),
                                 dy.as<float>(), rows, cols, n_tok, nullptr),
            "matmul_f16");
  ASSERT_NO_FATAL_FAILURE(expect_dequantized_product(t, w, x, dy.download<float>(static_cast<size_t>(n_tok) * rows),
                                                     rows, cols, n_tok, 2e-3, 1e-5));
}

TEST_P(QuantKernels, MatmulMatchesDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const GgmlType t = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 70;
  for (int cols : {col_sizes(t)[0], col_sizes(t)[1]}) {
    for (int n_tok : {1, 7, 67}) {
      SCOPED_TRACE(std::string(ggml_type_name(t)) + " cols " + std::to_string(cols) + " tokens " +
                   std::to_string(n_tok));
      const size_t rb = quant::row_bytes(t, cols);
      const auto w = random_weights(t, rows, cols, rng, n_tok == 7);
      const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
      auto dw = to_device(*gpu, w);
      auto dx = to_device(*gpu, x);
      DeviceBuffer dy(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
      dy.poison();
      gpu->check(gpu->api().matmul(static_cast<uint32_t>(t), dw->get(), rb, dx->as<float>(), dy.as<float>(), rows,
                                   cols, n_tok, nullptr),
                 "matmul");
      ASSERT_NO_FATAL_FAILURE(expect_dequantized_product(t, w, x, dy.download<float>(static_cast<size_t>(n_tok) * rows),
                                                         rows, cols, n_tok, 1e-4, 1e-6));
    }
  }
}

// The GEMM with f16 operands: up to 64 tokens the tensor-core kernel with the weights dequantized in
// registers (matmul_mma.hip, sm_80+), beyond that cuBLAS on dequantized slices (the fp32 kernel where
// neither runs): within the f16 rounding of W and X (each < 2^-11 relative) of the exact product of
// the dequantized weights, for partial token tiles of both and odd row counts.
TEST_P(QuantKernels, MatmulF16MatchesDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const GgmlType t = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 70;
  for (int cols : {col_sizes(t)[0], col_sizes(t)[1]}) {
    for (int n_tok : {9, 16, 24, 33, 64, 67}) {
      SCOPED_TRACE(std::string(ggml_type_name(t)) + " cols " + std::to_string(cols) + " tokens " +
                   std::to_string(n_tok));
      const auto w = random_weights(t, rows, cols, rng, false);
      auto dw = to_device(*gpu, w);
      ASSERT_NO_FATAL_FAILURE(expect_matmul_f16_product(*gpu, t, w, *dw, rows, cols, n_tok, rng));
    }
  }
}

// The prompt GEMM on the matrix units (matmul_mc.hip, what matmul_f16 runs without a vendor BLAS):
// within the f16 rounding of W and X of the exact product, over partial tiles of tokens (128 a tile),
// rows (128) and columns (64 a step), for every format including the element-wise plain rows. A
// device with a matrix unit the backend is built for (every sm_80+ NVIDIA card) must serve it: the
// first call also runs the kernel's self-check against the fp32 kernel, so a -1 there is a failure.
TEST_P(QuantKernels, MatmulMcMatchesDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  rf_gpu_device_info info{};
  gpu->check(gpu->api().device_info(0, &info), "device info");
  const bool must_serve = std::string(gpu->api().backend_name) == "cuda" && info.cc_major >= 8;
  const GgmlType t = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 150;
  for (int cols : {col_sizes(t)[0], col_sizes(t)[1]}) {
    const auto w = random_weights(t, rows, cols, rng, false);
    auto dw = to_device(*gpu, w);
    for (int n_tok : {1, 37, 64, 130}) {
      SCOPED_TRACE(std::string(ggml_type_name(t)) + " cols " + std::to_string(cols) + " tokens " +
                   std::to_string(n_tok));
      const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
      auto dx = to_device(*gpu, x);
      DeviceBuffer dy(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
      dy.poison();
      const int rc = gpu->api().matmul_mc(static_cast<uint32_t>(t), dw->get(), quant::row_bytes(t, cols),
                                          dx->as<float>(), dy.as<float>(), rows, cols, n_tok, nullptr);
      if (rc < 0) {
        ASSERT_FALSE(must_serve) << "an sm_" << info.cc_major << info.cc_minor << " device must serve matmul_mc";
        GTEST_SKIP() << "no matrix-unit GEMM on " << info.arch;
      }
      gpu->check(rc, "matmul_mc");
      ASSERT_NO_FATAL_FAILURE(expect_dequantized_product(t, w, x, dy.download<float>(static_cast<size_t>(n_tok) * rows),
                                                         rows, cols, n_tok, 2e-3, 1e-5));
    }
  }
}

// A GEMM path's guard: when its first-use check disagrees with the fp32 kernel (forced by a test hook
// that spoils one product of the check), `entry` declines from then on (-1, nothing launched) and
// matmul_f16 without a vendor BLAS still gives the right product through the paths below it. Each
// runs as its own ctest, since the check runs once a process.
using GemmEntry = int (*)(uint32_t, const void*, size_t, const float*, float*, int, int, int, rf_stream);
void expect_declined_and_matmul_f16_right(const device::GpuBackend& gpu, GemmEntry entry) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const GgmlType t = GgmlType::Q4_K;
  const int rows = 150, cols = 512, n_tok = 70;
  const auto w = random_weights(t, rows, cols, rng, false);
  auto dw = to_device(gpu, w);
  const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
  auto dx = to_device(gpu, x);
  DeviceBuffer dy(gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
  EXPECT_EQ(entry(static_cast<uint32_t>(t), dw->get(), quant::row_bytes(t, cols), dx->as<float>(), dy.as<float>(), rows,
                  cols, n_tok, nullptr),
            -1);
  ASSERT_NO_FATAL_FAILURE(expect_matmul_f16_product(gpu, t, w, *dw, rows, cols, n_tok, rng));
}

// matmul_mc's (ROCFORGE_GPU_MC_FAULT=1, ctest gpu_matmul_mc_fault, with ROCFORGE_GPU_BLAS=0 and
// ROCFORGE_GPU_HGEMM=0): matmul_f16 then serves through the fp32 kernel.
TEST(MatmulMcSelfCheck, AFailedCheckKeepsTheFp32Kernel) {
  const char* fault = std::getenv("ROCFORGE_GPU_MC_FAULT");
  if (!fault || std::string(fault) != "1")
    GTEST_SKIP() << "runs as ctest gpu_matmul_mc_fault (ROCFORGE_GPU_MC_FAULT=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  expect_declined_and_matmul_f16_right(*gpu, gpu->api().matmul_mc);
}

// The own f16 GEMM's (hgemm on slices; ROCFORGE_GPU_HGEMM_FAULT=1, ctest gpu_hgemm_fault, with
// ROCFORGE_GPU_BLAS=0): matmul_f16 then serves through matmul_mc or the fp32 tiles.
TEST(HgemmSelfCheck, AFailedCheckFallsBackToTheOtherKernels) {
  const char* fault = std::getenv("ROCFORGE_GPU_HGEMM_FAULT");
  if (!fault || std::string(fault) != "1") GTEST_SKIP() << "runs as ctest gpu_hgemm_fault (ROCFORGE_GPU_HGEMM_FAULT=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  expect_declined_and_matmul_f16_right(*gpu, gpu->api().matmul_hgemm);
}

// The vendor BLAS's guard: when its first-use check disagrees with the fp32 kernel (forced by
// ROCFORGE_GPU_BLAS_FAULT=1), matmul_f16 serves through its own kernels (hgemm on f16 slices, else
// matmul_mc, else the fp32 tiles) and stays right. Runs as its own ctest, gpu_blas_fault (the check runs once a process); 70
// tokens, past the small-batch kernel, so the BLAS path is the one asked.
TEST(BlasSelfCheck, AFailedCheckFallsBackToTheOwnKernels) {
  const char* fault = std::getenv("ROCFORGE_GPU_BLAS_FAULT");
  if (!fault || std::string(fault) != "1") GTEST_SKIP() << "runs as ctest gpu_blas_fault (ROCFORGE_GPU_BLAS_FAULT=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::F16}) {
    SCOPED_TRACE(ggml_type_name(t));
    const int rows = 150, cols = 512, n_tok = 70;
    const auto w = random_weights(t, rows, cols, rng, false);
    auto dw = to_device(*gpu, w);
    ASSERT_NO_FATAL_FAILURE(expect_matmul_f16_product(*gpu, t, w, *dw, rows, cols, n_tok, rng));
  }
}

// Enough rows for the tensor-core GEMM's wide tiles (32 rows a block where the grid still gives every
// multiprocessor two blocks), with a last partial tile, for each token-tile shape and every quantized
// format; 512 columns also put the formats with 16-byte-word groups (Q4_0, Q4_1, Q4_K, IQ4_NL) on the
// staged kernel.
TEST(MatmulMma, WideTilesMatchDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 2 * 200 * 32 + 13, cols = 512;
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                     GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL,
                     GgmlType::IQ4_XS, GgmlType::MXFP4}) {
    const auto w = random_weights(t, rows, cols, rng, false);
    auto dw = to_device(*gpu, w);
    for (int n_tok : {2, 17, 40}) {
      SCOPED_TRACE(std::string(ggml_type_name(t)) + " tokens " + std::to_string(n_tok));
      ASSERT_NO_FATAL_FAILURE(expect_matmul_f16_product(*gpu, t, w, *dw, rows, cols, n_tok, rng));
    }
  }
}

// The tensor-core GEMM keeps each stream's X (as f16 fragments) in a slot of its own: six streams,
// more than its four slots, multiply their own X at the same time (the fifth and sixth read X's fp32
// rows instead), for a format on the staged kernel (Q4_K) and one on the direct kernel (Q8_0); a
// second round on new streams (the destroyed streams' slots handed on) gives the same results.
TEST(MatmulMma, ConcurrentStreamsKeepTheirOwnX) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  if (api.matmul_f16_mma_max() < 40) GTEST_SKIP() << "no tensor-core GEMM on this device";
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rows = 300, cols = 1024, n_streams = 6;
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0}) {
    const size_t rb = quant::row_bytes(t, cols);
    const auto w = random_weights(t, rows, cols, rng, false);
    auto dw = to_device(*gpu, w);
    for (int round = 0; round < 2; ++round) {
      const int n_tok = round == 0 ? 16 : 37;
      SCOPED_TRACE(std::string(ggml_type_name(t)) + " round " + std::to_string(round));
      std::vector<rf_stream> streams(n_streams, nullptr);
      for (auto& s : streams) gpu->check(api.stream_create(&s), "stream");
      std::vector<std::vector<float>> xs;
      std::vector<std::unique_ptr<DeviceBuffer>> dxs, dys;
      for (int i = 0; i < n_streams; ++i) {
        xs.push_back(random_floats(rng, static_cast<size_t>(n_tok) * cols));
        dxs.push_back(to_device(*gpu, xs.back()));
        dys.push_back(std::make_unique<DeviceBuffer>(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float)));
        dys.back()->poison();
      }
      for (int i = 0; i < n_streams; ++i)  // all in flight before any stream is waited for
        gpu->check(api.matmul_f16(static_cast<uint32_t>(t), dw->get(), rb, dxs[i]->as<float>(), dys[i]->as<float>(),
                                  rows, cols, n_tok, streams[i]),
                   "matmul_f16");
      for (auto s : streams) gpu->check(api.stream_sync(s), "stream sync");
      for (int i = 0; i < n_streams; ++i) {
        SCOPED_TRACE("stream " + std::to_string(i));
        ASSERT_NO_FATAL_FAILURE(expect_dequantized_product(
            t, w, xs[i], dys[i]->download<float>(static_cast<size_t>(n_tok) * rows), rows, cols, n_tok, 2e-3, 1e-5));
      }
      for (auto s : streams) gpu->check(api.stream_destroy(s), "stream destroy");
    }
  }
}

// A fused buffer's matrices (q / k / v, gate / up) in one launch, each part's rows into its own
// output: bit-identical to multiplying each part on its own (every row sums in the same order).
TEST(MatmulMma, PartsEqualSeparateProducts) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  if (api.matmul_f16_mma_max() < 40) GTEST_SKIP() << "no tensor-core GEMM on this device";
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int cols = 512;
  const int part_rows[3] = {70, 33, 45};
  const int total = part_rows[0] + part_rows[1] + part_rows[2];
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q6_K}) {
    const size_t rb = quant::row_bytes(t, cols);
    const auto w = random_weights(t, total, cols, rng, false);
    auto dw = to_device(*gpu, w);
    for (int n_parts : {2, 3}) {
      int rows = 0;
      for (int i = 0; i < n_parts; ++i) rows += part_rows[i];
      for (int n_tok : {6, 16, 17, 40}) {
        SCOPED_TRACE(std::string(ggml_type_name(t)) + " parts " + std::to_string(n_parts) + " tokens " +
                     std::to_string(n_tok));
        const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
        auto dx = to_device(*gpu, x);
        std::vector<std::unique_ptr<DeviceBuffer>> fused, apart;
        std::vector<float*> ys;
        size_t row_off = 0;
        for (int i = 0; i < n_parts; ++i) {
          const size_t n = static_cast<size_t>(n_tok) * part_rows[i];
          fused.push_back(std::make_unique<DeviceBuffer>(*gpu, n * sizeof(float)));
          apart.push_back(std::make_unique<DeviceBuffer>(*gpu, n * sizeof(float)));
          fused.back()->poison();
          apart.back()->poison();
          ys.push_back(fused.back()->as<float>());
          gpu->check(api.matmul_f16(static_cast<uint32_t>(t), static_cast<const uint8_t*>(dw->get()) + row_off * rb, rb,
                                    dx->as<float>(), apart.back()->as<float>(), part_rows[i], cols, n_tok, nullptr),
                     "matmul_f16");
          row_off += part_rows[i];
        }
        gpu->check(api.matmul_f16_parts(static_cast<uint32_t>(t), dw->get(), rb, dx->as<float>(), cols, n_tok, n_parts,
                                        part_rows, ys.data(), nullptr),
                   "matmul_f16_parts");
        for (int i = 0; i < n_parts; ++i) {
          const size_t n = static_cast<size_t>(n_tok) * part_rows[i];
          const auto a = fused[i]->download<float>(n), b = apart[i]->download<float>(n);
          for (size_t j = 0; j < n; ++j) ASSERT_EQ(a[j], b[j]) << "part " << i << " output " << j;
        }
      }
    }
  }
  // What the kernel does not serve is an error, not a silent fallback.
  DeviceBuffer buf(*gpu, 1 << 20);
  float* y[4] = {buf.as<float>(), buf.as<float>(), buf.as<float>(), buf.as<float>()};
  const int four[4] = {8, 8, 8, 8};
  EXPECT_NE(api.matmul_f16_parts(static_cast<uint32_t>(GgmlType::Q8_0), buf.get(), 34, buf.as<float>(), 32, 16, 4, four,
                                 y, nullptr),
            0);
  EXPECT_NE(api.matmul_f16_parts(static_cast<uint32_t>(GgmlType::Q8_0), buf.get(), 34, buf.as<float>(), 32, 65, 1, four,
                                 y, nullptr),
            0);
  EXPECT_NE(std::string(api.last_error()).find("matmul_f16_parts"), std::string::npos) << api.last_error();
}

TEST_P(QuantKernels, EmbedMatchesDequantizeRow) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const GgmlType t = GetParam();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n_rows = 50;
  for (int cols : col_sizes(t)) {
    const size_t rb = quant::row_bytes(t, cols);
    const auto table = random_weights(t, n_rows, cols, rng, true);
    std::vector<int32_t> tokens = {0, 49, 7, 7, 23};
    for (int i = 0; i < 6; ++i) tokens.push_back(static_cast<int32_t>(rng() % n_rows));
    const int n_tok = static_cast<int>(tokens.size());
    auto dt = to_device(*gpu, table);
    auto dtok = to_device(*gpu, tokens);
    DeviceBuffer dout(*gpu, static_cast<size_t>(n_tok) * cols * sizeof(float));
    dout.poison();
    gpu->check(gpu->api().embed(static_cast<uint32_t>(t), dt->get(), rb, cols, dtok->as<int32_t>(), n_tok,
                                dout.as<float>(), nullptr),
               "embed");
    const auto out = dout.download<float>(static_cast<size_t>(n_tok) * cols);
    std::vector<float> ref(cols);
    for (int i = 0; i < n_tok; ++i) {
      quant::dequantize_row(t, table.data() + tokens[i] * rb, ref.data(), cols);
      // Rounding of the scale products may differ by an ulp; w = d*q - m can cancel, so the bound is
      // relative to the row's largest weight.
      float row_max = 0.f;
      for (float v : ref) row_max = std::max(row_max, std::fabs(v));
      for (int c = 0; c < cols; ++c)
        ASSERT_NEAR(out[i * cols + c], ref[c], 1e-6f * row_max)
            << ggml_type_name(t) << " cols " << cols << " token " << tokens[i] << " element " << c;
    }
  }
}

// The decode hot path: x quantized on the device to int8 (checked against its definition), then
// matvec_q8 against the dequantized weights times the device's own quantized x.
TEST_P(QuantKernels, MatvecQ8MatchesReferenceOnQuantizedX) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const GgmlType t = GetParam();
  const auto& api = gpu->api();
  if (!api.has_matvec_q8(static_cast<uint32_t>(t))) {
    DeviceBuffer buf(*gpu, 4096);
    EXPECT_NE(api.matvec_q8(static_cast<uint32_t>(t), buf.get(), 64, buf.get(), buf.as<float>(), 1, 32, nullptr), 0);
    GTEST_SKIP() << ggml_type_name(t) << " has no int8-activation path (decode uses matvec)";
  }
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (bool raw : {false, true}) {
    for (int cols : col_sizes(t)) {
      for (int rows : {1, 37, 515}) {
        SCOPED_TRACE(std::string(ggml_type_name(t)) + " rows " + std::to_string(rows) + " cols " +
                     std::to_string(cols) + (raw ? " raw bits" : " quantized"));
        const size_t rb = quant::row_bytes(t, cols);
        const auto w = random_weights(t, rows, cols, rng, raw);
        auto x = random_floats(rng, cols, -2.f, 2.f);
        x[0] = 0.f;
        if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.f);  // an all-zero chunk
        auto dw = to_device(*gpu, w);
        auto dx = to_device(*gpu, x);
        const size_t qb = api.q8_bytes(cols);
        ASSERT_GE(qb, static_cast<size_t>(cols) + cols / 32 * 4);
        DeviceBuffer dq(*gpu, qb);
        dq.poison();
        gpu->check(api.quantize_q8(dx->as<float>(), cols, dq.get(), nullptr), "quantize_q8");
        const auto raw_q = dq.download<uint8_t>(qb);
        const auto* q = reinterpret_cast<const int8_t*>(raw_q.data());
        std::vector<float> d(cols / 32);
        std::memcpy(d.data(), raw_q.data() + (cols + 15) / 16 * 16, d.size() * sizeof(float));
        std::vector<double> xr(cols);
        for (int c = 0; c < cols / 32; ++c) {
          float amax = 0.f;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * c + i]));
          ASSERT_NEAR(d[c], amax / 127.f, 1e-6f * amax) << "chunk " << c;
          for (int i = 0; i < 32; ++i) {
            xr[32 * c + i] = static_cast<double>(d[c]) * q[32 * c + i];
            ASSERT_LE(std::fabs(xr[32 * c + i] - x[32 * c + i]), 0.5001 * d[c] + 1e-12) << "element " << 32 * c + i;
          }
        }
        DeviceBuffer dy(*gpu, rows * sizeof(float));
        dy.poison();
        gpu->check(api.matvec_q8(static_cast<uint32_t>(t), dw->get(), rb, dq.get(), dy.as<float>(), rows, cols, nullptr),
                   "matvec_q8");
        const auto y = dy.download<float>(rows);
        std::vector<float> row(cols);
        for (int r = 0; r < rows; ++r) {
          quant::dequantize_row(t, w.data() + r * rb, row.data(), cols);
          double ref = 0, mag = 0;
          for (int c = 0; c < cols; ++c) {
            ref += row[c] * xr[c];
            mag += std::fabs(row[c] * xr[c]);
          }
          ASSERT_NEAR(y[r], ref, 1e-4 * mag + 1e-6) << "row " << r;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QuantKernels, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(QuantKernelErrors, BadShapesAreReportedNotLaunched) {
  ROCFORGE_REQUIRE_GPU(gpu);
  DeviceBuffer buf(*gpu, 1 << 16);
  // Q4_K rows must be a multiple of 256 elements.
  const int rc = gpu->api().matvec(static_cast<uint32_t>(GgmlType::Q4_K), buf.get(), 144, buf.as<float>(),
                                   buf.as<float>(), 4, 100, nullptr);
  EXPECT_NE(rc, 0);
  EXPECT_NE(std::string(gpu->api().last_error()).find("multiple of the block size"), std::string::npos);
  EXPECT_NE(gpu->api().matvec(9999, buf.get(), 64, buf.as<float>(), buf.as<float>(), 4, 32, nullptr), 0);
  EXPECT_NE(std::string(gpu->api().last_error()).find("unsupported weight type"), std::string::npos);
}

}  // namespace
}  // namespace rocforge::test
