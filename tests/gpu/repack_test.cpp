// Device-only weight layouts (gpu/repack.h): a repacked Q4_0 / Q8_0 / Q6_K matrix must give bit-identical results to
// the GGUF layout it came from in every kernel that reads weights (the kernels' own accuracy against
// the scalar references is quant_kernels_test's job). Fresh random weights each run: quantizer
// output and raw bit patterns, odd row counts.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/half.h"
#include "gpu/repack.h"
#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "quant/blocks.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

TEST(GpuRepack, LayoutChoice) {
  EXPECT_EQ(gpu::device_layout(2u, 4096), RF_GPU_TYPE_Q4_0_G8);
  EXPECT_EQ(gpu::device_layout(8u, 256), RF_GPU_TYPE_Q8_0_G8);
  EXPECT_EQ(gpu::device_layout(2u, 288), 2u);  // not a whole group of eight blocks
  EXPECT_EQ(gpu::device_layout(14u, 4096), RF_GPU_TYPE_Q6_K_G8);
  EXPECT_EQ(gpu::device_layout(14u, 14336), RF_GPU_TYPE_Q6_K_G8);
  EXPECT_EQ(gpu::device_layout(14u, 256), 14u);   // not a whole group of eight super-blocks
  EXPECT_EQ(gpu::device_layout(14u, 2304), 14u);
  EXPECT_EQ(gpu::device_layout(11u, 4096), RF_GPU_TYPE_Q3_K_G8);
  EXPECT_EQ(gpu::device_layout(11u, 14336), RF_GPU_TYPE_Q3_K_G8);
  EXPECT_EQ(gpu::device_layout(11u, 2304), 11u);
  EXPECT_EQ(gpu::device_layout(12u, 4096), 12u);  // Q4_K keeps its (16-byte aligned) blocks
  std::vector<uint8_t> in(210 * 8), out(210 * 8, 0);
  EXPECT_FALSE(gpu::repack_rows(12u, in.data(), out.data(), 1, 2048, 1680));
}

struct LayoutCase {
  GgmlType type;
  std::vector<int> cols;
};

TEST(GpuRepack, Group8LayoutsMatchGgufLayoutInEveryKernel) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const LayoutCase& lc : {LayoutCase{GgmlType::Q6_K, {2048, 6144}}, LayoutCase{GgmlType::Q3_K, {2048, 6144}},
                               LayoutCase{GgmlType::Q4_0, {256, 4352}},
                               LayoutCase{GgmlType::Q8_0, {256, 4352}}}) {
  const uint32_t plain = static_cast<uint32_t>(lc.type);
  for (bool raw : {false, true}) {
    for (int cols : lc.cols) {
      const uint32_t g8 = gpu::device_layout(plain, cols);
      ASSERT_NE(g8, plain);
      for (int rows : {1, 37, 515}) {
        SCOPED_TRACE(std::string(ggml_type_name(lc.type)) + " rows " + std::to_string(rows) + " cols " +
                     std::to_string(cols) + (raw ? " raw" : " quantized"));
        const size_t rb = quant::row_bytes(lc.type, cols);
        const auto w = random_weights(lc.type, rows, cols, rng, raw);
        std::vector<uint8_t> wg(w.size());
        ASSERT_TRUE(gpu::repack_rows(plain, w.data(), wg.data(), rows, cols, rb));
        ASSERT_NE(w, wg);
        auto dw = to_device(*gpu, w);
        auto dg = to_device(*gpu, wg);
        const int T = 20;  // prompt tokens for the matmuls
        const auto x = random_floats(rng, static_cast<size_t>(T) * cols, -2.f, 2.f);
        auto dx = to_device(*gpu, x);
        auto run = [&](const char* what, auto&& launch, size_t n) {
          DeviceBuffer a(*gpu, n * sizeof(float)), b(*gpu, n * sizeof(float));
          a.poison();
          b.poison();
          gpu->check(launch(plain, dw->get(), a.as<float>()), what);
          gpu->check(launch(g8, dg->get(), b.as<float>()), what);
          const auto ya = a.download<float>(n), yb = b.download<float>(n);
          for (size_t i = 0; i < n; ++i) ASSERT_EQ(ya[i], yb[i]) << what << " output " << i;
        };
        run("matvec", [&](uint32_t t, const void* p, float* y) {
          return api.matvec(t, p, rb, dx->as<float>(), y, rows, cols, nullptr);
        }, rows);
        DeviceBuffer dq(*gpu, api.q8_bytes(cols));
        gpu->check(api.quantize_q8(dx->as<float>(), cols, dq.get(), nullptr), "quantize_q8");
        run("matvec_q8", [&](uint32_t t, const void* p, float* y) {
          return api.matvec_q8(t, p, rb, dq.get(), y, rows, cols, nullptr);
        }, rows);
        run("matmul", [&](uint32_t t, const void* p, float* y) {
          return api.matmul(t, p, rb, dx->as<float>(), y, rows, cols, T, nullptr);
        }, static_cast<size_t>(rows) * T);
        run("matmul_f16", [&](uint32_t t, const void* p, float* y) {
          return api.matmul_f16(t, p, rb, dx->as<float>(), y, rows, cols, T, nullptr);
        }, static_cast<size_t>(rows) * T);
        // The prompt GEMMs that serve without a vendor BLAS, where this device has them (-1: not).
        for (auto gemm : {api.matmul_hgemm, api.matmul_mc}) {
          const size_t n = static_cast<size_t>(rows) * T;
          DeviceBuffer probe(*gpu, n * sizeof(float));
          if (gemm(plain, dw->get(), rb, dx->as<float>(), probe.as<float>(), rows, cols, T, nullptr) < 0) continue;
          run(gemm == api.matmul_hgemm ? "matmul_hgemm" : "matmul_mc", [&](uint32_t t, const void* p, float* y) {
            return gemm(t, p, rb, dx->as<float>(), y, rows, cols, T, nullptr);
          }, n);
        }
        const std::vector<int32_t> tokens = {rows - 1, 0, rows / 2};
        auto dt = to_device(*gpu, tokens);
        run("embed", [&](uint32_t t, const void* p, float* y) {
          return api.embed(t, p, rb, cols, dt->as<int32_t>(), 3, y, nullptr);
        }, static_cast<size_t>(3) * cols);
      }
    }
  }
  }
}

}  // namespace
}  // namespace rocforge::test
