// Mixture-of-experts kernels (moe_route, matvec_experts, moe_mix) against scalar references on fresh
// random inputs: the routing rule of CpuForward::moe_block (softmax, top-k with the lower id first on
// ties, renormalised weights), each slot's product with its expert's dequantized rows, the weighted mix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

TEST(GpuMoe, RouteMatchesSoftmaxTopK) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  struct Shape { int n_tok, n_expert, k; };
  for (const Shape sh : {Shape{1, 8, 2}, Shape{7, 4, 1}, Shape{64, 60, 4}, Shape{5, 128, 8}, Shape{3, 257, 6},
                         Shape{2, 8, 8}}) {
    SCOPED_TRACE("tokens " + std::to_string(sh.n_tok) + " experts " + std::to_string(sh.n_expert) + " k " +
                 std::to_string(sh.k));
    auto logits = random_floats(rng, static_cast<size_t>(sh.n_tok) * sh.n_expert, -4.f, 4.f);
    // Ties (equal logits: the lower id goes first) and -inf logits (never chosen before finite ones).
    for (int t = 0; t < sh.n_tok; ++t) {
      float* l = logits.data() + static_cast<size_t>(t) * sh.n_expert;
      if (sh.n_expert >= 4) l[sh.n_expert - 1] = l[1] = 5.f;
      if (t % 2 && sh.n_expert > sh.k) l[0] = -INFINITY;
    }
    auto dl = to_device(*gpu, logits);
    DeviceBuffer ids(*gpu, sh.n_tok * sh.k * sizeof(int32_t)), w(*gpu, sh.n_tok * sh.k * sizeof(float));
    ids.poison();
    w.poison();
    gpu->check(api.moe_route(dl->as<float>(), sh.n_tok, sh.n_expert, sh.k, ids.as<int32_t>(), w.as<float>(), nullptr),
               "moe_route");
    const auto got_ids = ids.download<int32_t>(sh.n_tok * sh.k);
    const auto got_w = w.download<float>(sh.n_tok * sh.k);
    for (int t = 0; t < sh.n_tok; ++t) {
      const float* l = logits.data() + static_cast<size_t>(t) * sh.n_expert;
      std::vector<double> p(sh.n_expert);
      const double m = *std::max_element(l, l + sh.n_expert);
      double sum = 0;
      for (int e = 0; e < sh.n_expert; ++e) sum += p[e] = std::exp(l[e] - m);
      std::vector<int> idx(sh.n_expert);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return l[a] > l[b]; });
      double chosen = 0;
      for (int j = 0; j < sh.k; ++j) chosen += p[idx[j]] / sum;
      for (int j = 0; j < sh.k; ++j) {
        ASSERT_EQ(got_ids[t * sh.k + j], idx[j]) << "token " << t << " choice " << j;
        EXPECT_NEAR(got_w[t * sh.k + j], p[idx[j]] / sum / chosen, 1e-5) << "token " << t << " choice " << j;
      }
    }
  }
  // Bad shapes are errors, not launches.
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.moe_route(buf.as<float>(), 1, 8, 9, buf.as<int32_t>(), buf.as<float>(), nullptr), 0);
  EXPECT_NE(api.moe_route(buf.as<float>(), 1, 0, 1, buf.as<int32_t>(), buf.as<float>(), nullptr), 0);
  EXPECT_NE(api.moe_route(buf.as<float>(), 1, 100000, 2, buf.as<int32_t>(), buf.as<float>(), nullptr), 0);
}

TEST(GpuMoe, MixWeighsSlotsInOrder) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int n_tok : {1, 3, 64}) {
    for (int k : {1, 2, 8}) {
      const int n = 1000 + n_tok;
      const auto y = random_floats(rng, static_cast<size_t>(n_tok) * k * n);
      const auto w = random_floats(rng, static_cast<size_t>(n_tok) * k, 0.f, 1.f);
      auto dy = to_device(*gpu, y);
      auto dw = to_device(*gpu, w);
      DeviceBuffer out(*gpu, static_cast<size_t>(n_tok) * n * sizeof(float));
      out.poison();
      gpu->check(gpu->api().moe_mix(dy->as<float>(), dw->as<float>(), n_tok, k, n, out.as<float>(), nullptr), "moe_mix");
      const auto got = out.download<float>(static_cast<size_t>(n_tok) * n);
      for (int t = 0; t < n_tok; ++t)
        for (int i = 0; i < n; ++i) {
          double ref = 0;
          for (int j = 0; j < k; ++j) ref += static_cast<double>(w[t * k + j]) * y[(static_cast<size_t>(t) * k + j) * n + i];
          ASSERT_NEAR(got[static_cast<size_t>(t) * n + i], ref, 1e-5) << "token " << t << " i " << i;
        }
    }
  }
}

class GpuMoeExperts : public ::testing::TestWithParam<GgmlType> {};

// Each slot against its expert's dequantized rows times its x row (the device's own int8 x where the
// format takes int8 activations, else float x); an id out of range gives NaN rows.
TEST_P(GpuMoeExperts, SlotsMatchTheirExpertsDequantized) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const GgmlType t = GetParam();
  const uint32_t type = static_cast<uint32_t>(t);
  const bool q8 = api.has_matvec_q8(type) != 0;
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(std::string(ggml_type_name(t)) + " seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n_expert = 5;
  const int be = static_cast<int>(ggml_type_traits(t).block_elems);
  for (int cols : {be == 256 ? 512 : 96, be == 256 ? 2048 : 1056}) {
    for (int rows : {1, 67, 300}) {
      for (int x_div : {1, 2}) {
        const int n_slots = 6;
        SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " x_div " + std::to_string(x_div));
        const size_t rb = quant::row_bytes(t, cols), eb = rb * rows;
        const auto w = random_weights(t, rows * n_expert, cols, rng, /*raw_bits=*/false);
        const int n_x = (n_slots + x_div - 1) / x_div;
        const auto x = random_floats(rng, static_cast<size_t>(n_x) * cols, -2.f, 2.f);
        std::vector<int32_t> ids(n_slots);
        for (auto& id : ids) id = static_cast<int32_t>(rng() % n_expert);
        ids[1] = ids[0];  // a repeated expert
        ids[n_slots - 1] = n_expert;  // out of range: NaN rows
        auto dw = to_device(*gpu, w);
        auto dx = to_device(*gpu, x);
        auto dids = to_device(*gpu, ids);
        const size_t qb = api.q8_bytes(n_x * cols);
        DeviceBuffer dq(*gpu, qb);
        std::vector<double> xr(x.begin(), x.end());  // what the kernel multiplies: x, or its int8 form
        if (q8) {
          gpu->check(api.quantize_q8(dx->as<float>(), n_x * cols, dq.get(), nullptr), "quantize_q8");
          xr = dequantized_q8(dq, *gpu, static_cast<size_t>(n_x) * cols);
        }
        DeviceBuffer dy(*gpu, static_cast<size_t>(n_slots) * rows * sizeof(float));
        dy.poison();
        gpu->check(api.matvec_experts(type, dw->get(), eb, rb, n_expert, rows, cols, dids->as<int32_t>(), n_slots, x_div,
                                      dx->as<float>(), q8 ? dq.get() : nullptr, dy.as<float>(), nullptr),
                   "matvec_experts");
        const auto y = dy.download<float>(static_cast<size_t>(n_slots) * rows);
        std::vector<float> row(cols);
        for (int s = 0; s < n_slots; ++s) {
          for (int r = 0; r < rows; ++r) {
            const float got = y[static_cast<size_t>(s) * rows + r];
            if (ids[s] >= n_expert) {
              ASSERT_TRUE(std::isnan(got)) << "slot " << s << " row " << r;
              continue;
            }
            quant::dequantize_row(t, w.data() + ids[s] * eb + r * rb, row.data(), cols);
            const double* xs = xr.data() + static_cast<size_t>(s / x_div) * cols;
            double ref = 0, mag = 0;
            for (int c = 0; c < cols; ++c) ref += row[c] * xs[c], mag += std::fabs(row[c] * xs[c]);
            ASSERT_NEAR(got, ref, 1e-4 * mag + 1e-6) << "slot " << s << " (expert " << ids[s] << ") row " << r;
          }
        }
      }
    }
  }
}

const GgmlType kExpertTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q8_0,
                                 GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS, GgmlType::MXFP4};
INSTANTIATE_TEST_SUITE_P(Formats, GpuMoeExperts, ::testing::ValuesIn(kExpertTypes),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace rocforge::test
