// RMSNorm, RoPE (normal and NeoX, with llama3-style frequency factors), SwiGLU and residual add on
// the GPU against double-precision scalar references, fresh random inputs, odd sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu_test_support.h"

namespace rocforge::test {
namespace {

TEST(GpuElementwise, RmsNormMatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int n : {1, 37, 1000, 4096, 5003}) {
    for (int rows : {1, 3, 65}) {
      const float eps = 1e-5f;
      const auto x = random_floats(rng, static_cast<size_t>(n) * rows, -3.f, 3.f);
      const auto w = random_floats(rng, n, 0.5f, 1.5f);
      auto dx = to_device(*gpu, x);
      auto dw = to_device(*gpu, w);
      DeviceBuffer dy(*gpu, x.size() * sizeof(float));
      dy.poison();
      gpu->check(gpu->api().rmsnorm(dx->as<float>(), dw->as<float>(), dy.as<float>(), n, rows, eps, nullptr), "rmsnorm");
      const auto y = dy.download<float>(x.size());
      for (int r = 0; r < rows; ++r) {
        double ss = 0;
        for (int i = 0; i < n; ++i) ss += static_cast<double>(x[r * n + i]) * x[r * n + i];
        const double inv = 1.0 / std::sqrt(ss / n + eps);
        for (int i = 0; i < n; ++i) {
          const double ref = x[r * n + i] * inv * w[i];
          ASSERT_NEAR(y[r * n + i], ref, 1e-5 * (1 + std::fabs(ref))) << "n " << n << " row " << r << " i " << i;
        }
      }
      // In place (y aliases x) gives the same result.
      gpu->check(gpu->api().rmsnorm(dx->as<float>(), dw->as<float>(), dx->as<float>(), n, rows, eps, nullptr), "rmsnorm");
      EXPECT_EQ(dx->download<float>(x.size()), y);
    }
  }
}

// Reference rotation of x: [n_tok][n_head][head_dim] in double.
std::vector<float> rope_ref(std::vector<float> x, const std::vector<int32_t>& pos, int n_head, int head_dim, int n_rot,
                            float base, float freq_scale, const std::vector<float>* ff, bool neox) {
  const int half = n_rot / 2;
  for (size_t t = 0; t < pos.size(); ++t)
    for (int h = 0; h < n_head; ++h) {
      float* v = x.data() + (t * n_head + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        double theta = pos[t] * static_cast<double>(freq_scale) * std::pow(static_cast<double>(base), -2.0 * i / n_rot);
        if (ff) theta /= (*ff)[i];
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const double x0 = v[a], x1 = v[b];
        v[a] = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
        v[b] = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
      }
    }
  return x;
}

TEST(GpuElementwise, RopeNormalAndNeoxWithFrequencyFactors) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  struct Case { int n_tok, n_head, head_dim, n_rot; bool neox, factors; float base, scale; };
  const Case cases[] = {{1, 1, 64, 64, false, false, 10000.f, 1.f},   {7, 3, 64, 64, true, false, 10000.f, 1.f},
                        {5, 4, 128, 128, false, true, 500000.f, 1.f}, {9, 2, 128, 128, true, true, 500000.f, 1.f},
                        {3, 5, 80, 32, true, false, 10000.f, 0.25f},  {4, 2, 96, 64, false, false, 1e6f, 0.5f}};
  for (const Case& c : cases) {
    SCOPED_TRACE("tokens " + std::to_string(c.n_tok) + " head_dim " + std::to_string(c.head_dim) + " n_rot " +
                 std::to_string(c.n_rot) + (c.neox ? " neox" : " normal") + (c.factors ? " factors" : ""));
    auto x = random_floats(rng, static_cast<size_t>(c.n_tok) * c.n_head * c.head_dim);
    std::vector<int32_t> pos(c.n_tok);
    for (auto& p : pos) p = static_cast<int32_t>(rng() % 2048);
    std::vector<float> ff = random_floats(rng, c.n_rot / 2, 1.f, 8.f);
    auto dx = to_device(*gpu, x);
    auto dpos = to_device(*gpu, pos);
    auto dff = to_device(*gpu, ff);
    gpu->check(gpu->api().rope(dx->as<float>(), dpos->as<int32_t>(), c.n_tok, c.n_head, c.head_dim, c.n_rot, c.base,
                               c.scale, c.factors ? dff->as<float>() : nullptr, c.neox ? 1 : 0, nullptr),
               "rope");
    const auto y = dx->download<float>(x.size());
    const auto ref = rope_ref(x, pos, c.n_head, c.head_dim, c.n_rot, c.base, c.scale, c.factors ? &ff : nullptr, c.neox);
    // fp32 angles of positions up to 2048 carry up to ~5e-4 rad of rounding (a wrong pairing or
    // frequency is off by O(1)).
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 2e-3) << "element " << i;
    // Dims past n_rot are untouched.
    for (int t = 0; t < c.n_tok; ++t)
      for (int h = 0; h < c.n_head; ++h)
        for (int d = c.n_rot; d < c.head_dim; ++d) {
          const size_t i = (static_cast<size_t>(t) * c.n_head + h) * c.head_dim + d;
          ASSERT_EQ(y[i], x[i]);
        }
  }
}

TEST(GpuElementwise, SwigluAndAdd) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (size_t n : {size_t{1}, size_t{1000}, size_t{14336}, size_t{1 << 20} + 3}) {
    const auto g = random_floats(rng, n, -8.f, 8.f);
    const auto u = random_floats(rng, n, -2.f, 2.f);
    auto dg = to_device(*gpu, g);
    auto du = to_device(*gpu, u);
    DeviceBuffer dout(*gpu, n * sizeof(float));
    dout.poison();
    gpu->check(gpu->api().swiglu(dg->as<float>(), du->as<float>(), dout.as<float>(), n, nullptr), "swiglu");
    auto out = dout.download<float>(n);
    for (size_t i = 0; i < n; ++i) {
      const double ref = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
      ASSERT_NEAR(out[i], ref, 1e-5 * (1 + std::fabs(ref))) << "swiglu n " << n << " i " << i;
    }
    dout.poison();
    gpu->check(gpu->api().add(dg->as<float>(), du->as<float>(), dout.as<float>(), n, nullptr), "add");
    out = dout.download<float>(n);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], g[i] + u[i]) << "add n " << n << " i " << i;
  }
}

// Decode fusions: residual add + RMSNorm (+ int8 quantization) and SwiGLU (+ int8), against the
// scalar references for the float outputs and byte-for-byte against quantize_q8 of those outputs.
TEST(GpuElementwise, FusedNormAndSwigluQuantizeLikeQuantizeQ8) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto& api = gpu->api();
  for (int n : {32, 96, 2048, 4096, 8192, 14336, 20480}) {  // float4 one-block path up to 16384, general above
    SCOPED_TRACE("n " + std::to_string(n));
    const float eps = 1e-5f;
    const auto x = random_floats(rng, n, -3.f, 3.f);
    const auto r = random_floats(rng, n, -1.f, 1.f);
    const auto w = random_floats(rng, n, 0.5f, 1.5f);
    auto dx = to_device(*gpu, x);
    auto dr = to_device(*gpu, r);
    auto dw = to_device(*gpu, w);
    const size_t qb = api.q8_bytes(n);
    DeviceBuffer dy(*gpu, n * sizeof(float)), dq(*gpu, qb), dq_ref(*gpu, qb);
    dy.poison();
    gpu->check(api.rmsnorm_q8(dx->as<float>(), dr->as<float>(), dw->as<float>(), dy.as<float>(), dq.get(), n, eps,
                              nullptr),
               "rmsnorm_q8");
    const auto xs = dx->download<float>(n);
    const auto y = dy.download<float>(n);
    double ss = 0;
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(xs[i], x[i] + r[i]) << "residual i " << i;
      ss += static_cast<double>(xs[i]) * xs[i];
    }
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) ASSERT_NEAR(y[i], xs[i] * inv * w[i], 1e-5 * (1 + std::fabs(xs[i] * inv * w[i]))) << i;
    gpu->check(api.quantize_q8(dy.as<float>(), n, dq_ref.get(), nullptr), "quantize_q8");
    EXPECT_EQ(dq.download<uint8_t>(qb), dq_ref.download<uint8_t>(qb)) << "rmsnorm_q8 int8 output";

    // swiglu_q8 on (x, r), output aliasing the gate.
    const auto g = random_floats(rng, n, -8.f, 8.f);
    auto dg = to_device(*gpu, g);
    gpu->check(api.swiglu_q8(dg->as<float>(), dr->as<float>(), dg->as<float>(), dq.get(), n, nullptr), "swiglu_q8");
    const auto out = dg->download<float>(n);
    for (int i = 0; i < n; ++i) {
      const double ref = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * r[i];
      ASSERT_NEAR(out[i], ref, 1e-5 * (1 + std::fabs(ref))) << "swiglu_q8 i " << i;
    }
    gpu->check(api.quantize_q8(dg->as<float>(), n, dq_ref.get(), nullptr), "quantize_q8");
    EXPECT_EQ(dq.download<uint8_t>(qb), dq_ref.download<uint8_t>(qb)) << "swiglu_q8 int8 output";
  }
}

// rmsnorm_q8_rows (decode steps of several sequences): each row bit-identical to rmsnorm_q8 of that
// row alone (residual sum and float output), the int8 output byte-for-byte quantize_q8 over all rows.
TEST(GpuElementwise, FusedNormOfSeveralRowsMatchesOneRowAtATime) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const auto& api = gpu->api();
  for (int n : {96, 2048, 4096, 20480}) {  // float4 path, and the general one above 16384
    for (int rows : {1, 2, 5}) {
      SCOPED_TRACE("n " + std::to_string(n) + " rows " + std::to_string(rows));
      const size_t all = static_cast<size_t>(n) * rows;
      const float eps = 1e-5f;
      const auto x = random_floats(rng, all, -3.f, 3.f);
      const auto r = random_floats(rng, all, -1.f, 1.f);
      const auto w = random_floats(rng, n, 0.5f, 1.5f);
      auto dx = to_device(*gpu, x), dx1 = to_device(*gpu, x);
      auto dr = to_device(*gpu, r);
      auto dw = to_device(*gpu, w);
      DeviceBuffer dy(*gpu, all * sizeof(float)), dy1(*gpu, all * sizeof(float));
      DeviceBuffer dq(*gpu, api.q8_bytes(static_cast<int>(all))), dq_ref(*gpu, api.q8_bytes(static_cast<int>(all)));
      DeviceBuffer dq1(*gpu, api.q8_bytes(n));
      dy.poison();
      dq.poison();
      gpu->check(api.rmsnorm_q8_rows(dx->as<float>(), dr->as<float>(), dw->as<float>(), dy.as<float>(), dq.get(), n,
                                     rows, eps, nullptr),
                 "rmsnorm_q8_rows");
      for (int k = 0; k < rows; ++k)
        gpu->check(api.rmsnorm_q8(dx1->as<float>() + static_cast<size_t>(k) * n, dr->as<float>() + static_cast<size_t>(k) * n,
                                  dw->as<float>(), dy1.as<float>() + static_cast<size_t>(k) * n, dq1.get(), n, eps, nullptr),
                   "rmsnorm_q8");
      EXPECT_EQ(dx->download<float>(all), dx1->download<float>(all)) << "residual sums";
      EXPECT_EQ(dy.download<float>(all), dy1.download<float>(all)) << "float output";
      gpu->check(api.quantize_q8(dy.as<float>(), static_cast<int>(all), dq_ref.get(), nullptr), "quantize_q8");
      const size_t qb = api.q8_bytes(static_cast<int>(all));
      EXPECT_EQ(dq.download<uint8_t>(qb), dq_ref.download<uint8_t>(qb)) << "int8 output";
    }
  }
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.rmsnorm_q8_rows(buf.as<float>(), nullptr, buf.as<float>(), nullptr, nullptr, 32, 0, 1e-5f, nullptr), 0);
}

}  // namespace
}  // namespace rocforge::test
