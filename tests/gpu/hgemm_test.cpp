// The backend's own f16 GEMM on dequantized slices (hgemm.hip through matmul_f16.hip's slices: what
// prompts run on where no vendor BLAS serves, AMD's usual case): every weight format against the
// exact product of the dequantized weights, partial tiles of tokens (128 a tile), rows (128) and k
// (32 a step), strided plain rows (the F16 operand used in place) and several slices. (Its guard is
// tested beside matmul_mc's, in quant_kernels_test.cpp.)
// Fresh random inputs each run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

// Whether this device must serve the own GEMM: every sm_80+ NVIDIA card has the matrix unit it uses.
bool must_serve(const device::GpuBackend& gpu) {
  rf_gpu_device_info info{};
  gpu.check(gpu.api().device_info(0, &info), "device info");
  return std::string(gpu.api().backend_name) == "cuda" && info.cc_major >= 8;
}

// rows x cols weights of type t, each row padded to row_stride bytes (the padding random too).
std::vector<uint8_t> strided_weights(GgmlType t, int rows, int cols, size_t row_stride, std::mt19937& rng) {
  const size_t rb = quant::row_bytes(t, cols);
  const auto packed = random_weights(t, rows, cols, rng, false);
  std::vector<uint8_t> w(static_cast<size_t>(rows) * row_stride);
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  for (int r = 0; r < rows; ++r) std::copy_n(packed.data() + r * rb, rb, w.data() + static_cast<size_t>(r) * row_stride);
  return w;
}

// Whether matmul_hgemm serves this device (one small F16 product); an sm_80+ NVIDIA card must.
bool hgemm_serves(const device::GpuBackend& gpu) {
  DeviceBuffer w(gpu, 8 * 8 * 2), x(gpu, 8 * 4), y(gpu, 8 * 4);
  w.zero();
  x.zero();
  const int rc = gpu.api().matmul_hgemm(static_cast<uint32_t>(GgmlType::F16), w.get(), 16, x.as<float>(),
                                        y.as<float>(), 8, 8, 1, nullptr);
  if (rc < 0) {
    EXPECT_FALSE(must_serve(gpu)) << "an sm_80+ NVIDIA device must serve the own f16 GEMM";
  }
  return rc >= 0;
}

// One call of matmul_hgemm on fresh random inputs, checked against the product.
void check_product(const device::GpuBackend& gpu, GgmlType t, int rows, int cols, int n_tok, size_t row_stride,
                   std::mt19937& rng) {
  SCOPED_TRACE(std::string(ggml_type_name(t)) + " rows " + std::to_string(rows) + " cols " + std::to_string(cols) +
               " tokens " + std::to_string(n_tok) + " stride " + std::to_string(row_stride));
  const auto w = strided_weights(t, rows, cols, row_stride, rng);
  const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
  auto dw = to_device(gpu, w);
  auto dx = to_device(gpu, x);
  DeviceBuffer dy(gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
  dy.poison();
  const int rc = gpu.api().matmul_hgemm(static_cast<uint32_t>(t), dw->get(), row_stride, dx->as<float>(),
                                        dy.as<float>(), rows, cols, n_tok, nullptr);
  ASSERT_GE(rc, 0) << "matmul_hgemm declined a shape it serves";
  gpu.check(rc, "matmul_hgemm");
  expect_f16_product(t, w, row_stride, x, dy.download<float>(static_cast<size_t>(n_tok) * rows), rows, cols, n_tok);
}

const GgmlType kFormats[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,
                             GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,   GgmlType::Q3_K,
                             GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                             GgmlType::MXFP4};

// 300 rows (two whole row tiles and a partial one), token counts on both sides of a 128-token tile,
// and a k that ends in a partial 32-column step where the format allows (plain rows: 264 columns).
TEST(Hgemm, EveryFormatMatchesDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  if (!hgemm_serves(*gpu)) GTEST_SKIP() << "the own f16 GEMM does not serve this device";
  for (GgmlType t : kFormats) {
    const int be = static_cast<int>(ggml_type_traits(t).block_elems);
    const int cols = be == 1 ? 264 : be == 32 ? 416 : 768;
    for (int n_tok : {1, 70, 200})
      ASSERT_NO_FATAL_FAILURE(check_product(*gpu, t, 300, cols, n_tok, quant::row_bytes(t, cols), rng));
  }
}

// Plain rows further apart than their bytes: F16 is multiplied in place (its rows are the GEMM's
// operand, lda = stride / 2), F32 and BF16 through the slices; and a stride that is not a multiple
// of 16 bytes, which the F16 operand cannot take in place (sliced instead).
TEST(Hgemm, StridedPlainRowsMatchDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  if (!hgemm_serves(*gpu)) GTEST_SKIP() << "the own f16 GEMM does not serve this device";
  const int cols = 136;
  for (GgmlType t : {GgmlType::F16, GgmlType::F32, GgmlType::BF16})
    for (size_t extra : {48, 8})
      ASSERT_NO_FATAL_FAILURE(check_product(*gpu, t, 131, cols, 150, quant::row_bytes(t, cols) + extra, rng));
}

// Rows beyond one slice of dequantized weights (32M elements: 1024 rows of 32768 columns): the
// slices' products land at their own rows.
TEST(Hgemm, SeveralSlicesMatchDequantizedProduct) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  if (!hgemm_serves(*gpu)) GTEST_SKIP() << "the own f16 GEMM does not serve this device";
  const GgmlType t = GgmlType::Q4_0;
  const int cols = 32768;
  check_product(*gpu, t, 1100, cols, 3, quant::row_bytes(t, cols), rng);
}

// Rows whose length is not a multiple of 8 elements: not served (-1, nothing launched); matmul_f16
// takes another path for them.
TEST(Hgemm, DeclinesRowsOfOddLength) {
  ROCFORGE_REQUIRE_GPU(gpu);
  DeviceBuffer w(*gpu, 100 * 2 * 4), x(*gpu, 100 * 4 * 3), y(*gpu, 4 * 3 * 4);
  EXPECT_EQ(gpu->api().matmul_hgemm(static_cast<uint32_t>(GgmlType::F16), w.get(), 200, x.as<float>(), y.as<float>(),
                                    4, 100, 3, nullptr),
            -1);
}

}  // namespace
}  // namespace rocforge::test
