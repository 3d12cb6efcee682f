// plan_gpu_layers / plan_gpu_stages (host side of the GPU executor): how many layers fit a device's
// free memory, with the K/V pools counted at the size the device allocates for the cache type (a
// Q8_0 pool is 17/32 of an f16 one), so a Q8_0 cache keeps more layers on the GPU where memory is
// tight; and how a model splits over several devices. No GPU needed.
#include <gtest/gtest.h>

#include "gpu/backend_api.h"
#include "model/gpu_executor.h"
#include "rocforge/model.h"
#include "test_support.h"

namespace rocforge {
namespace {

device::GpuInfo card(uint64_t free_bytes, int index = 0) {
  device::GpuInfo g;
  g.index = index;
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

constexpr uint64_t kReserve = 512ull << 20;  // what the planner keeps back on every device

// The plan's stages cover layers [n_layer - gpu_layers, n_layer) in order, each fits its device's
// free memory, and the head's stage ends at the last layer.
void expect_consistent(const GpuPlan& p, const ModelConfig& c, const std::vector<device::GpuInfo>& gpus) {
  ASSERT_FALSE(p.stages.empty());
  EXPECT_EQ(p.stages.front().first, c.n_layer - p.gpu_layers);
  EXPECT_EQ(p.stages.back().end, c.n_layer);
  uint64_t sum = 0;
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const GpuStage& st = p.stages[i];
    EXPECT_LT(st.first, st.end) << "stage " << i;
    if (i > 0) {
      EXPECT_EQ(st.first, p.stages[i - 1].end) << "stage " << i;
    }
    uint64_t free = 0;
    for (const auto& g : gpus)
      if (g.index == st.device) free = g.free_memory;
    EXPECT_LE(st.bytes + kReserve, free) << "stage " << i << " on GPU " << st.device;
    sum += st.bytes;
  }
  EXPECT_EQ(sum, p.bytes);
}

TEST(GpuPlan, ModelThatFitsTheFirstGpuStaysOnIt) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  const auto& c = model->config();
  const std::vector<device::GpuInfo> gpus = {card(64ull << 30, 1), card(64ull << 30, 0)};
  const GpuPlan p = plan_gpu_stages(*model, cache(KvType::F16), gpus, /*spread=*/false, -1, 8);
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_EQ(p.stages[0].device, 1) << "the first choice holds the whole model";
  EXPECT_EQ(p.gpu_layers, c.n_layer);
  expect_consistent(p, c, gpus);
  const GpuPlan one = plan_gpu_layers(*model, cache(KvType::F16), gpus[0], -1, 8);
  EXPECT_EQ(one.bytes, p.bytes);
  EXPECT_EQ(one.stages.size(), 1u);
}

// Layers that do not fit the first GPU go to the next one before any goes to the CPU: the first
// keeps the head and the last layers, the next the layers before them (the pipeline's order is the
// layers', so the next GPU's stage comes first).
TEST(GpuPlan, LayersSpillToTheNextGpuBeforeTheCpu) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  const auto& c = model->config();
  ASSERT_GE(c.n_layer, 3);
  const KvConfig kv = cache(KvType::F16);
  // The head's stage with its last two layers: what a single card of exactly that much holds.
  const GpuPlan last2 = plan_gpu_layers(*model, kv, card(64ull << 30), 2, 8);
  ASSERT_EQ(last2.gpu_layers, 2);
  const std::vector<device::GpuInfo> gpus = {card(kReserve + last2.bytes, 0), card(64ull << 30, 1)};
  const GpuPlan p = plan_gpu_stages(*model, kv, gpus, false, -1, 8);
  EXPECT_EQ(p.gpu_layers, c.n_layer);
  EXPECT_TRUE(p.reason.empty()) << p.reason;
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].device, 1);
  EXPECT_EQ(p.stages[0].end, c.n_layer - 2);
  EXPECT_EQ(p.stages[1].device, 0);
  EXPECT_EQ(p.stages[1].first, c.n_layer - 2);
  EXPECT_EQ(p.stages[1].bytes, last2.bytes);
  expect_consistent(p, c, gpus);

  // Neither card holds the rest: the first layers go to the CPU, with the reason.
  const GpuPlan first_card_only = plan_gpu_layers(*model, kv, gpus[0], -1, 8);
  EXPECT_EQ(first_card_only.gpu_layers, 2);
  const GpuPlan one_more = plan_gpu_layers(*model, kv, card(64ull << 30), 1, 8);  // a stage of one layer
  const std::vector<device::GpuInfo> tight = {gpus[0], card(kReserve + one_more.bytes, 1)};
  const GpuPlan q = plan_gpu_stages(*model, kv, tight, false, -1, 8);
  EXPECT_EQ(q.gpu_layers, 3);
  EXPECT_NE(q.reason.find("only 3 of " + std::to_string(c.n_layer) + " layers fit"), std::string::npos) << q.reason;
  expect_consistent(q, c, tight);
  // --gpu-layers caps the total over all GPUs.
  const GpuPlan capped = plan_gpu_stages(*model, kv, gpus, false, 3, 8);
  EXPECT_EQ(capped.gpu_layers, 3);
  EXPECT_TRUE(capped.reason.empty()) << capped.reason;
  expect_consistent(capped, c, gpus);
}

// An explicit list (gpu:A,B) spreads the layers in the list's order, the head on its last device,
// by the devices' free memory; a device may repeat (two stages on one card).
TEST(GpuPlan, SpreadDividesLayersByFreeMemoryInListOrder) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  const auto& c = model->config();
  const KvConfig kv = cache(KvType::F16);
  const std::vector<device::GpuInfo> even = {card(64ull << 30, 0), card(64ull << 30, 1)};
  const GpuPlan p = plan_gpu_stages(*model, kv, even, /*spread=*/true, -1, 8);
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].device, 0);
  EXPECT_EQ(p.stages[1].device, 1);
  EXPECT_EQ(p.gpu_layers, c.n_layer);
  const int n0 = p.stages[0].end - p.stages[0].first, n1 = p.stages[1].end - p.stages[1].first;
  EXPECT_LE(std::abs(n0 - n1), 2) << n0 << " / " << n1;
  expect_consistent(p, c, even);

  const std::vector<device::GpuInfo> twice = {card(64ull << 30, 0), card(64ull << 30, 0), card(64ull << 30, 0)};
  const GpuPlan t = plan_gpu_stages(*model, kv, twice, true, -1, 8);
  EXPECT_EQ(t.stages.size(), std::min<size_t>(3, c.n_layer));
  EXPECT_EQ(t.gpu_layers, c.n_layer);
  expect_consistent(t, c, twice);

  // Three times the free memory on the second card (both with room for the whole model): it takes
  // more of the layers.
  const std::vector<device::GpuInfo> uneven = {card(kReserve + 2 * p.bytes, 0), card(kReserve + 6 * p.bytes, 1)};
  const GpuPlan u = plan_gpu_stages(*model, kv, uneven, true, -1, 8);
  ASSERT_EQ(u.stages.size(), 2u);
  EXPECT_GT(u.stages[1].end - u.stages[1].first, u.stages[0].end - u.stages[0].first);
  expect_consistent(u, c, uneven);
}

}  // namespace
}  // namespace rocforge
