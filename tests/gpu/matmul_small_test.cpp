// The small-batch GEMM for every matrix unit (matmul_small.hip: AMD's kernel for steps of up to 64
// tokens, written once through mma_frag.h). It serves on NVIDIA only where ROCFORGE_GPU_MMA_SMALL=1
// selects it, so these tests run there as ctest gpu_mma_small (with the other small-batch tests,
// QuantKernels.MatmulF16* and MatmulMma.*, under the same switch), on NVIDIA's fragments; its guard
// runs as gpu_mma_small_fault. Fresh random inputs each run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

bool small_selected() {
  const char* e = std::getenv("ROCFORGE_GPU_MMA_SMALL");
  return e && std::string(e) == "1";
}

// Whether this device must serve the kernel: every sm_80+ NVIDIA card has the matrix unit it uses.
bool must_serve(const device::GpuBackend& gpu) {
  rf_gpu_device_info info{};
  gpu.check(gpu.api().device_info(0, &info), "device info");
  return std::string(gpu.api().backend_name) == "cuda" && info.cc_major >= 8;
}

// Every shape the launcher picks (one, two and four 16-token fragments; two and four 16-row fragments
// a block, the four only on grids of at least two blocks a multiprocessor), partial fragments of rows
// and tokens, rows of fewer chunks than the block has waves (96 columns: 3 chunks) and of many, for
// each format family. Through matmul_f16_parts, which fails rather than fall back where the kernel
// does not serve, so a silent fallback cannot pass.
TEST(MatmulSmall, EveryShapeMatchesDequantizedProduct) {
  if (!small_selected()) GTEST_SKIP() << "runs as ctest gpu_mma_small (ROCFORGE_GPU_MMA_SMALL=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  if (api.matmul_f16_mma_max() < 64) {
    ASSERT_FALSE(must_serve(*gpu)) << "an sm_80+ device must serve the small-batch GEMM";
    GTEST_SKIP() << "no matrix unit for the small-batch GEMM here";
  }
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  rf_gpu_device_info info{};
  gpu->check(api.device_info(0, &info), "device info");
  // Up to 16 tokens, four row fragments a block where that still gives every multiprocessor two
  // blocks (wide_rows), else two where that does (mid_rows), else one (the small cases); 17-32
  // tokens take two where every multiprocessor gets a block (wide_rows again), else one.
  const int wide_rows = 2 * info.multiprocessors * 64 + 13;
  const int mid_rows = 2 * info.multiprocessors * 32 + 13;
  struct Case {
    GgmlType t;
    int rows, cols;
  };
  const Case cases[] = {{GgmlType::Q4_0, 333, 96},          {GgmlType::Q8_0, 70, 1024},
                        {GgmlType::Q4_K, 333, 512},         {GgmlType::Q6_K, 45, 768},
                        {GgmlType::Q3_K, 70, 256},          {GgmlType::IQ4_XS, 70, 256},
                        {GgmlType::MXFP4, 70, 96},          {GgmlType::BF16, 33, 160},
                        {GgmlType::F32, 33, 160},           {GgmlType::Q4_K, wide_rows, 256},
                        {GgmlType::Q5_0, wide_rows, 96},   {GgmlType::Q6_K, mid_rows, 256}};
  for (const Case& c : cases) {
    const size_t rb = quant::row_bytes(c.t, c.cols);
    const auto w = random_weights(c.t, c.rows, c.cols, rng, false);
    auto dw = to_device(*gpu, w);
    for (int n_tok : {1, 5, 16, 17, 32, 33, 64}) {
      if ((c.rows == wide_rows || c.rows == mid_rows) && n_tok > 17) continue;  // their shapes are covered
      SCOPED_TRACE(std::string(ggml_type_name(c.t)) + " rows " + std::to_string(c.rows) + " cols " +
                   std::to_string(c.cols) + " tokens " + std::to_string(n_tok));
      const auto x = random_floats(rng, static_cast<size_t>(n_tok) * c.cols);
      auto dx = to_device(*gpu, x);
      DeviceBuffer dy(*gpu, static_cast<size_t>(n_tok) * c.rows * sizeof(float));
      dy.poison();
      float* y = dy.as<float>();
      gpu->check(api.matmul_f16_parts(static_cast<uint32_t>(c.t), dw->get(), rb, dx->as<float>(), c.cols, n_tok, 1,
                                      &c.rows, &y, nullptr),
                 "matmul_f16_parts");
      ASSERT_NO_FATAL_FAILURE(
          expect_f16_product(c.t, w, rb, x, dy.download<float>(static_cast<size_t>(n_tok) * c.rows), c.rows, c.cols, n_tok));
    }
  }
}

// The same call twice gives the same bits: the waves' sums meet in a fixed order.
TEST(MatmulSmall, RepeatsAreBitIdentical) {
  if (!small_selected()) GTEST_SKIP() << "runs as ctest gpu_mma_small (ROCFORGE_GPU_MMA_SMALL=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  if (api.matmul_f16_mma_max() < 64) GTEST_SKIP() << "no matrix unit for the small-batch GEMM here";
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const GgmlType t = GgmlType::Q4_K;
  const int rows = 500, cols = 2048, n_tok = 24;
  const auto w = random_weights(t, rows, cols, rng, false);
  auto dw = to_device(*gpu, w);
  auto dx = to_device(*gpu, random_floats(rng, static_cast<size_t>(n_tok) * cols));
  std::vector<std::vector<float>> out;
  for (int i = 0; i < 2; ++i) {
    DeviceBuffer dy(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
    dy.poison();
    gpu->check(api.matmul_f16(static_cast<uint32_t>(t), dw->get(), quant::row_bytes(t, cols), dx->as<float>(),
                              dy.as<float>(), rows, cols, n_tok, nullptr),
               "matmul_f16");
    out.push_back(dy.download<float>(static_cast<size_t>(n_tok) * rows));
  }
  for (size_t i = 0; i < out[0].size(); ++i) ASSERT_EQ(out[0][i], out[1][i]) << "output " << i;
}

// The guard: when the first-use check disagrees with the fp32 kernel (ROCFORGE_GPU_MMA_SMALL_FAULT=1
// spoils one of its products; ctest gpu_mma_small_fault), the kernel declines for good - the backend
// reports no small-batch tokens, so the executor keeps such steps elsewhere, and a direct parts call
// fails - while matmul_f16 stays right through its other paths.
TEST(MatmulSmallSelfCheck, AFailedCheckDeclines) {
  const char* fault = std::getenv("ROCFORGE_GPU_MMA_SMALL_FAULT");
  if (!fault || std::string(fault) != "1" || !small_selected())
    GTEST_SKIP() << "runs as ctest gpu_mma_small_fault (ROCFORGE_GPU_MMA_SMALL=1, ROCFORGE_GPU_MMA_SMALL_FAULT=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  EXPECT_EQ(api.matmul_f16_mma_max(), 0);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const GgmlType t = GgmlType::Q4_K;
  const int rows = 150, cols = 512, n_tok = 16;
  const size_t rb = quant::row_bytes(t, cols);
  const auto w = random_weights(t, rows, cols, rng, false);
  auto dw = to_device(*gpu, w);
  const auto x = random_floats(rng, static_cast<size_t>(n_tok) * cols);
  auto dx = to_device(*gpu, x);
  DeviceBuffer dy(*gpu, static_cast<size_t>(n_tok) * rows * sizeof(float));
  float* y = dy.as<float>();
  EXPECT_NE(api.matmul_f16_parts(static_cast<uint32_t>(t), dw->get(), rb, dx->as<float>(), cols, n_tok, 1, &rows, &y,
                                 nullptr),
            0);
  dy.poison();
  gpu->check(api.matmul_f16(static_cast<uint32_t>(t), dw->get(), rb, dx->as<float>(), y, rows, cols, n_tok, nullptr),
             "matmul_f16");
  ASSERT_NO_FATAL_FAILURE(
      expect_f16_product(t, w, rb, x, dy.download<float>(static_cast<size_t>(n_tok) * rows), rows, cols, n_tok));
}

}  // namespace
}  // namespace rocforge::test
