// plan_gpu_layers (host side of the GPU executor): how many layers fit a device's free memory, with
// the K/V pools counted at the size the device allocates for the cache type (a Q8_0 pool is 17/32
// of an f16 one), so a Q8_0 cache keeps more layers on the GPU where memory is tight. No GPU needed.
#include <gtest/gtest.h>

#include "gpu/backend_api.h"
#include "model/gpu_executor.h"
#include "rocforge/model.h"
#include "test_support.h"

namespace rocforge {
namespace {

device::GpuInfo card(uint64_t free_bytes) {
  device::GpuInfo g;
  g.name = "test card";
  g.free_memory = free_bytes;
  return g;
}

KvConfig cache(KvType t) {
  KvConfig kv;
  kv.n_blocks = 4096;  // 65536 positions: the pools dominate this tiny model's weights
  kv.block_size = 16;
  kv.type = t;
  return kv;
}

TEST(GpuPlan, PoolsCountAtTheDevicesCacheType) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  const auto& c = model->config();
  const uint64_t plenty = 64ull << 30;
  const GpuPlan f16 = plan_gpu_layers(*model, cache(KvType::F16), card(plenty), -1, 8);
  const GpuPlan q8 = plan_gpu_layers(*model, cache(KvType::Q8_0), card(plenty), -1, 8);
  const GpuPlan f32 = plan_gpu_layers(*model, cache(KvType::F32), card(plenty), -1, 8);
  ASSERT_EQ(f16.gpu_layers, c.n_layer);
  ASSERT_EQ(q8.gpu_layers, c.n_layer);
  // Per layer, K and V pools: f16 2 bytes a value, Q8_0 34 bytes per 32 values.
  const uint64_t f16_pools = 2 * rf_kv_pool_bytes(RF_KV_F16, 4096, 16, c.n_head_kv, c.head_dim);
  const uint64_t q8_pools = 2 * rf_kv_pool_bytes(RF_KV_Q8_0, 4096, 16, c.n_head_kv, c.head_dim);
  EXPECT_EQ(f16_pools, 2ull * 4096 * 16 * c.kv_dim() * 2);
  EXPECT_EQ(q8_pools, 2ull * 4096 * 16 * c.kv_dim() / 32 * 34);
  EXPECT_EQ(f16.bytes - q8.bytes, static_cast<uint64_t>(c.n_layer) * (f16_pools - q8_pools));
  EXPECT_EQ(f32.bytes, f16.bytes) << "an f32 request keeps f16 pools on the device";
}

TEST(GpuPlan, Q8CacheKeepsMoreLayersWhereMemoryIsTight) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  const int n_layer = model->config().n_layer;
  const GpuPlan all16 = plan_gpu_layers(*model, cache(KvType::F16), card(64ull << 30), -1, 8);
  // Room for everything but the last f16 layer's worth: the f16 plan drops a layer (hybrid, with its
  // reason), the Q8_0 plan still fits all of them.
  const uint64_t reserve = 512ull << 20;  // plan_gpu_layers keeps this much back
  const device::GpuInfo tight = card(reserve + all16.bytes - 1);
  const GpuPlan f16 = plan_gpu_layers(*model, cache(KvType::F16), tight, -1, 8);
  const GpuPlan q8 = plan_gpu_layers(*model, cache(KvType::Q8_0), tight, -1, 8);
  EXPECT_EQ(f16.gpu_layers, n_layer - 1);
  EXPECT_NE(f16.reason.find("of " + std::to_string(n_layer) + " layers fit"), std::string::npos) << f16.reason;
  EXPECT_EQ(q8.gpu_layers, n_layer);
  EXPECT_TRUE(q8.reason.empty()) << q8.reason;
  EXPECT_LE(f16.bytes, tight.free_memory - reserve);
  EXPECT_LE(q8.bytes, tight.free_memory - reserve);
}

}  // namespace
}  // namespace rocforge
