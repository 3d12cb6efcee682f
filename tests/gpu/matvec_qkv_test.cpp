// matvec_q8_qkv (the decode token's q/k/v projection in one launch). Without rope it must give
// exactly what separate matvec_q8 calls give: the same per-row code runs in both, so any difference
// is a bug in the pairing (row-block bookkeeping, the output offset of B, a format mix-up). With rope
// it must match that projection followed by rope_kv_store: rotated q and k, K/V in the cache. Fresh
// random weights each run, odd row counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "gpu/repack.h"
#include "gpu_test_support.h"
#include "gpu_test_weights.h"
#include "rocforge/ggml_type.h"
#include "rocforge/quant.h"

namespace rocforge::test {
namespace {

// Weights of type t in their device layout (gpu/repack.h), and that layout's id.
std::vector<uint8_t> device_weights(GgmlType t, int rows, int cols, std::mt19937& rng, uint32_t* layout) {
  auto w = random_weights(t, rows, cols, rng, false);
  *layout = gpu::device_layout(static_cast<uint32_t>(t), cols);
  if (*layout == static_cast<uint32_t>(t)) return w;
  std::vector<uint8_t> g(w.size());
  gpu::repack_rows(static_cast<uint32_t>(t), w.data(), g.data(), rows, cols, quant::row_bytes(t, cols));
  return g;
}

// Runs the pair and the separate matvecs on one kind of kernel: the register kernels, or the staged ones where all three launches take them (sm_90+; a pair whose
// rows or row bytes the staged kernel does not take runs on the register kernels and is skipped there).
class PairMatches : public ::testing::TestWithParam<bool> {};

TEST_P(PairMatches, TwoSeparateMatvecs) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const bool staged = GetParam();
  api.matvec_q8_set_kernel(staged ? 1 : 0);
  struct Restore {
    const rf_gpu_api& api;
    ~Restore() { api.matvec_q8_set_kernel(-1); }
  } restore{api};
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  int tested = 0;
  // b == a: A alone ([q | k | v] in one format, type_b 0), the rows of "b" then A's too.
  struct Case { GgmlType a, b; bool big; };
  std::vector<Case> cases = {{GgmlType::Q4_K, GgmlType::Q6_K, true}, {GgmlType::Q5_K, GgmlType::Q6_K, true},
                             {GgmlType::Q4_K, GgmlType::Q5_K, false}, {GgmlType::Q3_K, GgmlType::Q4_K, false},
                             {GgmlType::Q3_K, GgmlType::Q5_K, false}, {GgmlType::Q2_K, GgmlType::Q3_K, false},
                             {GgmlType::Q2_K, GgmlType::Q4_K, false}};
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K,
                     GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                     GgmlType::MXFP4})
    cases.push_back({t, t, false});
  for (const Case& cs : cases) {
    const bool alone = cs.a == cs.b;
    const GgmlType ta = cs.a, tbt = cs.b;
    for (int cols : cs.big ? std::vector<int>{2048, 4096, 2304} : std::vector<int>{2048, 2304}) {
      for (auto [rows_a, rows_b] : {std::pair{37, 515}, std::pair{5120, 1024}, std::pair{1, 1}}) {
        if (!cs.big && rows_a > 1000) continue;
        uint32_t la = 0, lb = 0;
        if (alone) rows_a += rows_b, rows_b = 0;
        const auto wa = device_weights(ta, rows_a, cols, rng, &la);
        const auto wb = alone ? std::vector<uint8_t>(16) : device_weights(tbt, rows_b, cols, rng, &lb);
        const std::string what = std::string(ggml_type_name(ta)) + " + " +
                                 (alone ? std::string("-") : std::string(ggml_type_name(tbt)));
        ASSERT_EQ(api.has_matvec_q8_qkv(la, lb), 1) << what;
        SCOPED_TRACE(what + " layouts " + std::to_string(la) + " + " + std::to_string(lb) + " cols " +
                     std::to_string(cols) + " rows " + std::to_string(rows_a) + " + " + std::to_string(rows_b));
        const size_t rba = quant::row_bytes(ta, cols), rbb = alone ? 0 : quant::row_bytes(tbt, cols);
        auto dwa = to_device(*gpu, wa);
        auto dwb = to_device(*gpu, wb);
        if (staged) {
          const std::string ka = api.matvec_q8_kernel(la, dwa->get(), rba, rows_a, cols);
          const std::string kb = alone ? ka : api.matvec_q8_kernel(lb, dwb->get(), rbb, rows_b, cols);
          if (ka != "staged" || kb != "staged" || (!alone && rows_a % 2 != 0)) continue;
        }
        auto dx = to_device(*gpu, random_floats(rng, cols, -2.f, 2.f));
        DeviceBuffer dq(*gpu, api.q8_bytes(cols));
        gpu->check(api.quantize_q8(dx->as<float>(), cols, dq.get(), nullptr), "quantize_q8");
        const size_t n = static_cast<size_t>(rows_a) + rows_b;
        DeviceBuffer fused(*gpu, n * sizeof(float)), apart(*gpu, n * sizeof(float));
        fused.poison();
        apart.poison();
        const int rc = api.matvec_q8_qkv(la, dwa->get(), rba, rows_a, lb, dwb->get(), rbb, rows_b, cols, dq.get(),
                                         fused.as<float>(), nullptr, nullptr);
        if (rc < 0) {  // declined, nothing launched: only the register kernels' 4-row formats do
          EXPECT_FALSE(staged) << api.last_error();
          EXPECT_TRUE(ta == GgmlType::Q2_K || ta == GgmlType::Q4_1 || ta == GgmlType::Q5_1) << "declined";
          continue;
        }
        gpu->check(rc, "matvec_q8_qkv");
        gpu->check(api.matvec_q8(la, dwa->get(), rba, dq.get(), apart.as<float>(), rows_a, cols, nullptr), "matvec_q8 a");
        if (!alone)
          gpu->check(api.matvec_q8(lb, dwb->get(), rbb, dq.get(), apart.as<float>() + rows_a, rows_b, cols, nullptr),
                     "matvec_q8 b");
        const auto yf = fused.download<float>(n), ya = apart.download<float>(n);
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(yf[i], ya[i]) << "output " << i << (i < size_t(rows_a) ? " (a)" : " (b)");
        ++tested;
      }
    }
  }
  if (staged && tested == 0) GTEST_SKIP() << "no staged kernel on this device (sm_90+ only)";
  EXPECT_GT(tested, 0) << "no pair was served";
  // Layouts it does not serve are refused with an error, not computed wrongly.
  EXPECT_EQ(api.has_matvec_q8_qkv(static_cast<uint32_t>(GgmlType::Q4_0), static_cast<uint32_t>(GgmlType::Q8_0)), 0);
  DeviceBuffer buf(*gpu, 4096);
  EXPECT_NE(api.matvec_q8_qkv(static_cast<uint32_t>(GgmlType::Q4_0), buf.get(), 18, 1,
                              static_cast<uint32_t>(GgmlType::Q8_0), buf.get(), 34, 1, 32, buf.get(), buf.as<float>(),
                              nullptr, nullptr),
            0);
}

// The rope epilogue against the projection without it followed by rope_kv_store (llama-style pairs).
INSTANTIATE_TEST_SUITE_P(GpuMatvecQkv, PairMatches, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("Staged") : std::string("Registers"); });

TEST(GpuMatvecQkv, RopeEpilogueMatchesRopeKvStore) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int n_head = 8, n_kv = 2, hd = 64, bs = 16, max_blocks = 4, cols = 2048;
  const int qd = n_head * hd, kd = n_kv * hd, rows = qd + 2 * kd;
  struct Case { GgmlType a; GgmlType b; };  // b == a: one matrix [q | k | v]
  int tested = 0;
  for (const Case& cs : {Case{GgmlType::Q4_K, GgmlType::Q6_K}, Case{GgmlType::Q4_0, GgmlType::Q4_0},
                         Case{GgmlType::Q8_0, GgmlType::Q8_0}, Case{GgmlType::Q4_K, GgmlType::Q4_K},
                         Case{GgmlType::Q4_K, GgmlType::Q5_K}, Case{GgmlType::Q3_K, GgmlType::Q5_K},
                         Case{GgmlType::Q2_K, GgmlType::Q4_K}, Case{GgmlType::Q3_K, GgmlType::Q3_K},
                         Case{GgmlType::IQ4_XS, GgmlType::IQ4_XS}, Case{GgmlType::Q5_0, GgmlType::Q5_0}}) {
    for (int n_rot : {hd, hd / 2}) {
      for (bool factors : {false, true}) {
        const bool pair = cs.b != cs.a;
        const int rows_a = pair ? qd + kd : rows, rows_b = pair ? kd : 0;
        uint32_t la = 0, lb = 0;
        const auto wa = device_weights(cs.a, rows_a, cols, rng, &la);
        const auto wb = pair ? device_weights(cs.b, rows_b, cols, rng, &lb) : std::vector<uint8_t>(16);
        if (!api.has_matvec_q8_qkv(la, lb)) continue;
        SCOPED_TRACE(std::string(ggml_type_name(cs.a)) + (pair ? " + " + std::string(ggml_type_name(cs.b)) : std::string()) +
                     " n_rot " + std::to_string(n_rot) + (factors ? " freq factors" : ""));
        auto dwa = to_device(*gpu, wa);
        auto dwb = to_device(*gpu, wb);
        auto dx = to_device(*gpu, random_floats(rng, cols, -2.f, 2.f));
        DeviceBuffer dq(*gpu, api.q8_bytes(cols));
        gpu->check(api.quantize_q8(dx->as<float>(), cols, dq.get(), nullptr), "quantize_q8");
        const std::vector<int32_t> pos = {37};
        std::vector<int32_t> table(max_blocks);
        std::iota(table.begin(), table.end(), 0);
        std::shuffle(table.begin(), table.end(), rng);
        auto dpos = to_device(*gpu, pos);
        auto dtab = to_device(*gpu, table);
        auto dff = to_device(*gpu, random_floats(rng, n_rot / 2, 1.f, 8.f));
        const size_t pool = static_cast<size_t>(max_blocks) * n_kv * bs * hd;
        const size_t rba = quant::row_bytes(cs.a, cols), rbb = pair ? quant::row_bytes(cs.b, cols) : 0;
        // reference: projection, then rope_kv_store
        DeviceBuffer y1(*gpu, rows * sizeof(float)), kp1(*gpu, pool * 2), vp1(*gpu, pool * 2);
        gpu->check(api.memset(kp1.get(), 0, pool * 2, nullptr), "memset");
        gpu->check(api.memset(vp1.get(), 0, pool * 2, nullptr), "memset");
        const int rc = api.matvec_q8_qkv(la, dwa->get(), rba, rows_a, lb, dwb->get(), rbb, rows_b, cols, dq.get(),
                                         y1.as<float>(), nullptr, nullptr);
        if (rc < 0) {  // declined (the register kernels' 4-row formats): the caller projects apart
          EXPECT_EQ(cs.a, GgmlType::Q2_K) << api.last_error();
          continue;
        }
        gpu->check(rc, "matvec_q8_qkv");
        const auto unrotated = y1.download<float>(rows);
        const float* ffp = factors ? dff->as<float>() : nullptr;
        gpu->check(api.rope_kv_store(y1.as<float>(), y1.as<float>() + qd, y1.as<float>() + qd + kd, dpos->as<int32_t>(), 1,
                                     dtab->as<int32_t>(), max_blocks, bs, n_head, n_kv, hd, n_rot, 10000.f, 0.5f, ffp, 0,
                                     RF_KV_F16, kp1.get(), vp1.get(), nullptr),
                   "rope_kv_store");
        // fused
        DeviceBuffer y2(*gpu, rows * sizeof(float)), kp2(*gpu, pool * 2), vp2(*gpu, pool * 2);
        gpu->check(api.memset(kp2.get(), 0, pool * 2, nullptr), "memset");
        gpu->check(api.memset(vp2.get(), 0, pool * 2, nullptr), "memset");
        const rf_qkv_rope rope{qd, kd, hd, n_rot, 10000.f, 0.5f, ffp, dpos->as<int32_t>(), dtab->as<int32_t>(), bs, n_kv,
                               kp2.as<uint16_t>(), vp2.as<uint16_t>()};
        gpu->check(api.matvec_q8_qkv(la, dwa->get(), rba, rows_a, lb, dwb->get(), rbb, rows_b, cols, dq.get(),
                                     y2.as<float>(), &rope, nullptr),
                   "matvec_q8_qkv (rope)");
        const auto a = y1.download<float>(rows), b = y2.download<float>(rows);
        size_t moved = 0;
        for (int i = 0; i < rows; ++i) {
          ASSERT_NEAR(a[i], b[i], 1e-6f * (1.f + std::fabs(a[i]))) << "y " << i;
          moved += a[i] != unrotated[i];
        }
        ASSERT_GT(moved, static_cast<size_t>(qd + kd) * n_rot / hd / 2) << "rope rotated too little";
        // Without pools (a Q8_0 cache, which attn_decode fills) the launch rotates alone: same y.
        DeviceBuffer y3(*gpu, rows * sizeof(float));
        rf_qkv_rope rotate_only = rope;
        rotate_only.d_k_pool = rotate_only.d_v_pool = nullptr;
        gpu->check(api.matvec_q8_qkv(la, dwa->get(), rba, rows_a, lb, dwb->get(), rbb, rows_b, cols, dq.get(),
                                     y3.as<float>(), &rotate_only, nullptr),
                   "matvec_q8_qkv (rope, no pools)");
        const auto c3 = y3.download<float>(rows);
        for (int i = 0; i < rows; ++i) ASSERT_EQ(c3[i], b[i]) << "y " << i << " (no pools)";
        for (auto [p1, p2] : {std::pair{&kp1, &kp2}, std::pair{&vp1, &vp2}}) {
          const auto x = p1->download<uint16_t>(pool), y = p2->download<uint16_t>(pool);
          size_t nonzero = 0;
          for (size_t i = 0; i < pool; ++i) {
            nonzero += x[i] != 0;
            ASSERT_LE(std::abs(static_cast<int>(x[i]) - static_cast<int>(y[i])), 1) << "pool element " << i;
          }
          ASSERT_GE(nonzero, static_cast<size_t>(kd) / 2);  // the token's K/V row was stored
        }
        ++tested;
      }
    }
  }
  EXPECT_GE(tested, 36);  // 40, or 36 where Q2_K + Q4_K declines (no staged kernel at these sizes)
  // A rope layout that does not match the rows is refused.
  DeviceBuffer buf(*gpu, 1 << 16);
  const rf_qkv_rope bad{qd, kd, hd, hd, 10000.f, 1.f, nullptr, buf.as<int32_t>(), buf.as<int32_t>(), bs, n_kv,
                        buf.as<uint16_t>(), buf.as<uint16_t>()};
  EXPECT_NE(api.matvec_q8_qkv(static_cast<uint32_t>(GgmlType::Q8_0), buf.get(), 34 * 8, rows + 2, 0, nullptr, 0, 0,
                              256, buf.get(), buf.as<float>(), &bad, nullptr),
            0);
}

}  // namespace
}  // namespace rocforge::test
