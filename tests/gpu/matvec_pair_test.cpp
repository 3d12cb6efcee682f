// matvec_q8_pair (decode's [q | k] and v in one launch) must give exactly what two matvec_q8 calls
// give: the same per-row code runs in both, so any difference is a bug in the pairing (row-block
// bookkeeping, the output offset of B, a format mix-up). Fresh random weights each run, odd rows.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu/repack.h"
#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

TEST(GpuMatvecPair, MatchesTwoSeparateMatvecs) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  int tested = 0;
  for (GgmlType ta : {GgmlType::Q4_K, GgmlType::Q5_K}) {
    for (int cols : {2048, 4096, 2304}) {
      const uint32_t tb = gpu::device_layout(static_cast<uint32_t>(GgmlType::Q6_K), cols);  // planes or GGUF blocks
      if (!api.has_matvec_q8_pair(static_cast<uint32_t>(ta), tb)) continue;
      for (auto [rows_a, rows_b] : {std::pair{37, 515}, std::pair{5120, 1024}, std::pair{1, 1}}) {
        SCOPED_TRACE(std::string(ggml_type_name(ta)) + " + q6_k layout " + std::to_string(tb) + " cols " +
                     std::to_string(cols) + " rows " + std::to_string(rows_a) + " + " + std::to_string(rows_b));
        const size_t rba = quant::row_bytes(ta, cols), rbb = quant::row_bytes(GgmlType::Q6_K, cols);
        const auto wa = random_weights(ta, rows_a, cols, rng, false);
        auto wb = random_weights(GgmlType::Q6_K, rows_b, cols, rng, false);
        if (tb != static_cast<uint32_t>(GgmlType::Q6_K)) {
          std::vector<uint8_t> g(wb.size());
          ASSERT_TRUE(gpu::repack_rows(static_cast<uint32_t>(GgmlType::Q6_K), wb.data(), g.data(), rows_b, cols, rbb));
          wb = g;
        }
        auto dwa = to_device(*gpu, wa);
        auto dwb = to_device(*gpu, wb);
        auto dx = to_device(*gpu, random_floats(rng, cols, -2.f, 2.f));
        DeviceBuffer dq(*gpu, api.q8_bytes(cols));
        gpu->check(api.quantize_q8(dx->as<float>(), cols, dq.get(), nullptr), "quantize_q8");
        const size_t n = static_cast<size_t>(rows_a) + rows_b;
        DeviceBuffer fused(*gpu, n * sizeof(float)), apart(*gpu, n * sizeof(float));
        fused.poison();
        apart.poison();
        gpu->check(api.matvec_q8_pair(static_cast<uint32_t>(ta), dwa->get(), rba, rows_a, tb, dwb->get(), rbb, rows_b,
                                      cols, dq.get(), fused.as<float>(), nullptr),
                   "matvec_q8_pair");
        gpu->check(api.matvec_q8(static_cast<uint32_t>(ta), dwa->get(), rba, dq.get(), apart.as<float>(), rows_a, cols,
                                 nullptr),
                   "matvec_q8 a");
        gpu->check(api.matvec_q8(tb, dwb->get(), rbb, dq.get(), apart.as<float>() + rows_a, rows_b, cols, nullptr),
                   "matvec_q8 b");
        const auto yf = fused.download<float>(n), ya = apart.download<float>(n);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], ya[i]) << "output " << i << (i < size_t(rows_a) ? " (a)" : " (b)");
        ++tested;
      }
    }
  }
  EXPECT_GT(tested, 0) << "no pair was served";
  // Pairs it does not serve are refused with an error, not computed wrongly.
  EXPECT_EQ(api.has_matvec_q8_pair(static_cast<uint32_t>(GgmlType::Q4_0), static_cast<uint32_t>(GgmlType::Q8_0)), 0);
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.matvec_q8_pair(static_cast<uint32_t>(GgmlType::Q4_0), buf.get(), 18, 1,
                               static_cast<uint32_t>(GgmlType::Q8_0), buf.get(), 34, 1, 32, buf.get(), buf.as<float>(),
                               nullptr),
            0);
}

}  // namespace
}  // namespace rocforge::test
