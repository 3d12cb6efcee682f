// Paged F16 KV cache store, split-K decode attention and causal prefill attention on the GPU against
// a double-precision reference, with GQA / MQA / MHA head layouts, block sizes 16 and 32, blocks
// scattered through the pool in random order, and odd sequence lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/half.h"
#include "gpu_test_support.h"

namespace rocforge::test {
namespace {

struct Layout {
  int n_head, n_kv_head, head_dim, block_size;
};

std::string name(const Layout& l) {
  return "heads " + std::to_string(l.n_head) + "/" + std::to_string(l.n_kv_head) + " dim " +
         std::to_string(l.head_dim) + " block " + std::to_string(l.block_size);
}

// Sequences' K/V in float ([len][n_kv_head][head_dim] each) plus their block tables into one pool.
struct Cache {
  std::vector<std::vector<float>> k, v;
  std::vector<int32_t> tables;  // [n_seq][max_blocks]
  int max_blocks = 0, n_blocks = 0;
};

Cache make_cache(const Layout& l, const std::vector<int>& lens, std::mt19937& rng) {
  Cache c;
  const int max_len = *std::max_element(lens.begin(), lens.end());
  c.max_blocks = (max_len + l.block_size - 1) / l.block_size;
  int total = 0;
  for (int len : lens) total += (len + l.block_size - 1) / l.block_size;
  c.n_blocks = total + 3;  // a few never used
  std::vector<int32_t> ids(c.n_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  c.tables.assign(lens.size() * c.max_blocks, -1);
  int next = 0;
  for (size_t s = 0; s < lens.size(); ++s) {
    for (int b = 0; b < (lens[s] + l.block_size - 1) / l.block_size; ++b) c.tables[s * c.max_blocks + b] = ids[next++];
    c.k.push_back(random_floats(rng, static_cast<size_t>(lens[s]) * l.n_kv_head * l.head_dim));
    c.v.push_back(random_floats(rng, static_cast<size_t>(lens[s]) * l.n_kv_head * l.head_dim));
  }
  return c;
}

float f16_round(float x) { return fp16_to_f32(f32_to_fp16(x)); }

// out[h][d] for one query (q: [n_head][head_dim]) attending positions [0, n) of one sequence.
void attend_ref(const Layout& l, const float* q, const std::vector<float>& k, const std::vector<float>& v, int n,
                float scale, float* out) {
  const int G = l.n_head / l.n_kv_head;
  for (int h = 0; h < l.n_head; ++h) {
    const int kvh = h / G;
    std::vector<double> s(n);
    double m = -INFINITY;
    for (int p = 0; p < n; ++p) {
      double acc = 0;
      for (int d = 0; d < l.head_dim; ++d)
        acc += static_cast<double>(q[h * l.head_dim + d]) * f16_round(k[(static_cast<size_t>(p) * l.n_kv_head + kvh) * l.head_dim + d]);
      s[p] = acc * scale;
      m = std::max(m, s[p]);
    }
    double sum = 0;
    for (auto& e : s) sum += (e = std::exp(e - m));
    for (int d = 0; d < l.head_dim; ++d) {
      double acc = 0;
      for (int p = 0; p < n; ++p) acc += s[p] * f16_round(v[(static_cast<size_t>(p) * l.n_kv_head + kvh) * l.head_dim + d]);
      out[h * l.head_dim + d] = static_cast<float>(acc / sum);
    }
  }
}

// Stores every sequence's K/V through the kv_store kernel.
void fill_pool(const device::GpuBackend& gpu, const Layout& l, const Cache& c, const std::vector<int>& lens,
               DeviceBuffer& kp, DeviceBuffer& vp, const DeviceBuffer& tables) {
  for (size_t s = 0; s < lens.size(); ++s) {
    std::vector<int32_t> pos(lens[s]);
    std::iota(pos.begin(), pos.end(), 0);
    std::shuffle(pos.begin(), pos.end(), std::mt19937(static_cast<uint32_t>(s)));
    // k/v rows in the order of pos
    std::vector<float> ks, vs;
    const size_t row = static_cast<size_t>(l.n_kv_head) * l.head_dim;
    for (int p : pos) {
      ks.insert(ks.end(), c.k[s].begin() + p * row, c.k[s].begin() + (p + 1) * row);
      vs.insert(vs.end(), c.v[s].begin() + p * row, c.v[s].begin() + (p + 1) * row);
    }
    auto dk = to_device(gpu, ks);
    auto dv = to_device(gpu, vs);
    auto dpos = to_device(gpu, pos);
    gpu.check(gpu.api().kv_store(dk->as<float>(), dv->as<float>(), dpos->as<int32_t>(), lens[s],
                                 tables.as<int32_t>() + s * c.max_blocks, l.block_size, l.n_kv_head, l.head_dim,
                                 kp.as<uint16_t>(), vp.as<uint16_t>(), nullptr),
              "kv_store");
    gpu.check(gpu.api().stream_sync(nullptr), "sync");
  }
}

const Layout kLayouts[] = {{8, 2, 64, 16}, {32, 8, 128, 32}, {4, 4, 128, 16}, {6, 1, 80, 32}};

TEST(GpuAttention, KvStoreWritesHalfValuesIntoTheRightSlots) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const Layout l{8, 2, 64, 16};
  const std::vector<int> lens = {5, 40};
  const Cache c = make_cache(l, lens, rng);
  const size_t pool = static_cast<size_t>(c.n_blocks) * l.n_kv_head * l.block_size * l.head_dim;
  DeviceBuffer kp(*gpu, pool * 2), vp(*gpu, pool * 2);
  kp.poison();
  vp.poison();
  auto tables = to_device(*gpu, c.tables);
  fill_pool(*gpu, l, c, lens, kp, vp, *tables);
  const auto k = kp.download<uint16_t>(pool), v = vp.download<uint16_t>(pool);
  for (size_t s = 0; s < lens.size(); ++s)
    for (int p = 0; p < lens[s]; ++p)
      for (int h = 0; h < l.n_kv_head; ++h)
        for (int d = 0; d < l.head_dim; ++d) {
          const int blk = c.tables[s * c.max_blocks + p / l.block_size];
          const size_t at = ((static_cast<size_t>(blk) * l.n_kv_head + h) * l.block_size + p % l.block_size) * l.head_dim + d;
          const size_t src = (static_cast<size_t>(p) * l.n_kv_head + h) * l.head_dim + d;
          ASSERT_EQ(k[at], f32_to_fp16(c.k[s][src]));
          ASSERT_EQ(v[at], f32_to_fp16(c.v[s][src]));
        }
}

// The decode step's fused rope + cache store (one launch for every sequence) against rope and
// kv_store launched apart: same rotated q and k, same cache contents.
TEST(GpuAttention, FusedRopeKvStoreMatchesSeparateLaunches) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const auto& api = gpu->api();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : {Layout{8, 2, 64, 16}, Layout{32, 8, 128, 32}}) {
    for (int n_rot : {l.head_dim, l.head_dim / 2}) {
      for (int neox : {0, 1}) {
        for (bool factors : {false, true}) {
          SCOPED_TRACE(name(l) + " n_rot " + std::to_string(n_rot) + " neox " + std::to_string(neox) +
                       (factors ? " freq factors" : ""));
          const int n_tok = 3, max_blocks = 4, n_blocks = n_tok * max_blocks;
          const std::vector<int32_t> pos = {0, 17, 40};
          std::vector<int32_t> tables(n_tok * max_blocks);
          std::iota(tables.begin(), tables.end(), 0);
          std::shuffle(tables.begin(), tables.end(), rng);
          const size_t qn = static_cast<size_t>(n_tok) * l.n_head * l.head_dim;
          const size_t kn = static_cast<size_t>(n_tok) * l.n_kv_head * l.head_dim;
          const auto q = random_floats(rng, qn, -2.f, 2.f), k = random_floats(rng, kn, -2.f, 2.f);
          const auto v = random_floats(rng, kn, -2.f, 2.f), ff = random_floats(rng, n_rot / 2, 1.f, 8.f);
          auto dpos = to_device(*gpu, pos);
          auto dtab = to_device(*gpu, tables);
          auto dff = to_device(*gpu, ff);
          auto dv = to_device(*gpu, v);
          const float* ffp = factors ? dff->as<float>() : nullptr;
          const size_t pool = static_cast<size_t>(n_blocks) * l.n_kv_head * l.block_size * l.head_dim;
          // separate launches
          auto q1 = to_device(*gpu, q), k1 = to_device(*gpu, k);
          DeviceBuffer kp1(*gpu, pool * 2), vp1(*gpu, pool * 2);
          gpu->check(api.memset(kp1.get(), 0, pool * 2, nullptr), "memset");
          gpu->check(api.memset(vp1.get(), 0, pool * 2, nullptr), "memset");
          gpu->check(api.rope(q1->as<float>(), dpos->as<int32_t>(), n_tok, l.n_head, l.head_dim, n_rot, 10000.f, 0.5f,
                              ffp, neox, nullptr), "rope q");
          gpu->check(api.rope(k1->as<float>(), dpos->as<int32_t>(), n_tok, l.n_kv_head, l.head_dim, n_rot, 10000.f,
                              0.5f, ffp, neox, nullptr), "rope k");
          for (int t = 0; t < n_tok; ++t) {
            const size_t off = static_cast<size_t>(t) * l.n_kv_head * l.head_dim;
            gpu->check(api.kv_store(k1->as<float>() + off, dv->as<float>() + off, dpos->as<int32_t>() + t, 1,
                                    dtab->as<int32_t>() + t * max_blocks, l.block_size, l.n_kv_head, l.head_dim,
                                    kp1.as<uint16_t>(), vp1.as<uint16_t>(), nullptr), "kv_store");
          }
          // fused
          auto q2 = to_device(*gpu, q), k2 = to_device(*gpu, k);
          DeviceBuffer kp2(*gpu, pool * 2), vp2(*gpu, pool * 2);
          gpu->check(api.memset(kp2.get(), 0, pool * 2, nullptr), "memset");
          gpu->check(api.memset(vp2.get(), 0, pool * 2, nullptr), "memset");
          gpu->check(api.rope_kv_store(q2->as<float>(), k2->as<float>(), dv->as<float>(), dpos->as<int32_t>(), n_tok,
                                       dtab->as<int32_t>(), max_blocks, l.block_size, l.n_head, l.n_kv_head,
                                       l.head_dim, n_rot, 10000.f, 0.5f, ffp, neox, kp2.as<uint16_t>(),
                                       vp2.as<uint16_t>(), nullptr),
                     "rope_kv_store");
          const auto a = q1->download<float>(qn), b = q2->download<float>(qn);
          for (size_t i = 0; i < qn; ++i) ASSERT_NEAR(a[i], b[i], 1e-6f * (1.f + std::fabs(a[i]))) << "q " << i;
          const auto c = k1->download<float>(kn), d = k2->download<float>(kn);
          for (size_t i = 0; i < kn; ++i) ASSERT_NEAR(c[i], d[i], 1e-6f * (1.f + std::fabs(c[i]))) << "k " << i;
          // Every rotated element moved (rope touched q), and the caches agree to the last half bit
          // bar a rounding tie.
          size_t moved = 0;
          for (size_t i = 0; i < qn; ++i) moved += a[i] != q[i];
          ASSERT_GT(moved, qn / 4);
          for (auto [p1, p2] : {std::pair{&kp1, &kp2}, std::pair{&vp1, &vp2}}) {
            const auto x = p1->download<uint16_t>(pool), y = p2->download<uint16_t>(pool);
            size_t nonzero = 0;
            for (size_t i = 0; i < pool; ++i) {
              nonzero += x[i] != 0;
              ASSERT_LE(std::abs(static_cast<int>(x[i]) - static_cast<int>(y[i])), 1) << "pool element " << i;
            }
            ASSERT_GE(nonzero, static_cast<size_t>(n_tok) * l.n_kv_head * l.head_dim / 2);
          }
        }
      }
    }
  }
}

// Runs the decode test body under each ROCFORGE_ATTN_ONEPASS mode: the default choice, the one-pass
// kernel (head_dim 64 / 128) over whole short contexts (1) or over the partial kernel's splits (2),
// and the split/combine pair it replaces (0), which other head sizes always use; the one-pass kernel
// also with each ROCFORGE_ATTN_HEADS choice (1: a query head per block, 0: a KV head's group).
struct DecodeMode {
  const char* onepass;
  const char* heads;
  const char* name;
};
class GpuAttentionDecode : public ::testing::TestWithParam<DecodeMode> {
 protected:
  void SetUp() override {
    set("ROCFORGE_ATTN_ONEPASS", GetParam().onepass);
    set("ROCFORGE_ATTN_HEADS", GetParam().heads);
  }
  void TearDown() override {
    unsetenv("ROCFORGE_ATTN_ONEPASS");
    unsetenv("ROCFORGE_ATTN_HEADS");
  }
  static void set(const char* var, const char* v) {
    if (*v) setenv(var, v, 1);
    else unsetenv(var);
  }
};
INSTANTIATE_TEST_SUITE_P(Kernels, GpuAttentionDecode,
                         ::testing::Values(DecodeMode{"", "", "Default"}, DecodeMode{"1", "1", "OnePassWholeHeadPerBlock"},
                                           DecodeMode{"1", "0", "OnePassWholeGroupPerBlock"},
                                           DecodeMode{"2", "1", "OnePassSplitsHeadPerBlock"},
                                           DecodeMode{"2", "0", "OnePassSplitsGroupPerBlock"},
                                           DecodeMode{"0", "", "SplitCombine"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_P(GpuAttentionDecode, MatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : kLayouts) {
    SCOPED_TRACE(name(l));
    const std::vector<int> lens = {1, 17, 300, 1029, 64};
    const int n_seq = static_cast<int>(lens.size());
    const int max_len = *std::max_element(lens.begin(), lens.end());
    const Cache c = make_cache(l, lens, rng);
    const size_t pool = static_cast<size_t>(c.n_blocks) * l.n_kv_head * l.block_size * l.head_dim;
    DeviceBuffer kp(*gpu, pool * 2), vp(*gpu, pool * 2);
    auto tables = to_device(*gpu, c.tables);
    fill_pool(*gpu, l, c, lens, kp, vp, *tables);
    const auto q = random_floats(rng, static_cast<size_t>(n_seq) * l.n_head * l.head_dim, -2.f, 2.f);
    auto dq = to_device(*gpu, q);
    auto dlens = to_device(*gpu, lens);
    const size_t ws = gpu->api().attn_decode_workspace(n_seq, l.n_head, l.head_dim, max_len);
    ASSERT_GT(ws, 0u);
    DeviceBuffer work(*gpu, ws);
    DeviceBuffer dout(*gpu, q.size() * sizeof(float));
    dout.poison();
    const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
    gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.as<uint16_t>(), vp.as<uint16_t>(), tables->as<int32_t>(),
                                      c.max_blocks, dlens->as<int32_t>(), n_seq, max_len, l.n_head, l.n_kv_head,
                                      l.head_dim, l.block_size, scale, dout.as<float>(), nullptr, work.get(), nullptr),
               "attn_decode");
    const auto out = dout.download<float>(q.size());
    std::vector<float> ref(static_cast<size_t>(l.n_head) * l.head_dim);
    for (int s = 0; s < n_seq; ++s) {
      attend_ref(l, q.data() + static_cast<size_t>(s) * ref.size(), c.k[s], c.v[s], lens[s], scale, ref.data());
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(out[s * ref.size() + i], ref[i], 1e-4) << "seq " << s << " (len " << lens[s] << ") element " << i;
    }
  }
}

// One sequence decoding (the graphed decode step): short contexts fit one block of the one-pass
// kernel, which then also writes the int8 form of its output; longer ones take the quantize launch.
// Either way the int8 output must be quantize_q8's rounding of the float output.
TEST_P(GpuAttentionDecode, SingleSequenceWithInt8Output) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : {Layout{32, 8, 128, 32}, Layout{8, 2, 64, 16}, Layout{4, 4, 128, 16}}) {
    for (int len : {1, 37, 256, 700}) {
      SCOPED_TRACE(name(l) + " len " + std::to_string(len));
      const std::vector<int> lens = {len};
      const int bucket = std::max(256, (len + 255) / 256 * 256);  // as the graphed step passes it
      Cache c = make_cache(l, lens, rng);
      const int max_blocks = bucket / l.block_size;
      std::vector<int32_t> tables(max_blocks, 0);
      std::copy(c.tables.begin(), c.tables.begin() + c.max_blocks, tables.begin());
      c.tables = tables;
      c.max_blocks = max_blocks;
      const size_t pool = static_cast<size_t>(c.n_blocks) * l.n_kv_head * l.block_size * l.head_dim;
      DeviceBuffer kp(*gpu, pool * 2), vp(*gpu, pool * 2);
      auto dtables = to_device(*gpu, c.tables);
      fill_pool(*gpu, l, c, lens, kp, vp, *dtables);
      const int qdim = l.n_head * l.head_dim;
      const auto q = random_floats(rng, qdim, -2.f, 2.f);
      auto dq = to_device(*gpu, q);
      auto dlens = to_device(*gpu, lens);
      DeviceBuffer work(*gpu, gpu->api().attn_decode_workspace(1, l.n_head, l.head_dim, bucket));
      DeviceBuffer dout(*gpu, qdim * sizeof(float)), dxq(*gpu, gpu->api().q8_bytes(qdim));
      dout.poison();
      dxq.poison();
      const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
      gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.as<uint16_t>(), vp.as<uint16_t>(), dtables->as<int32_t>(),
                                        max_blocks, dlens->as<int32_t>(), 1, bucket, l.n_head, l.n_kv_head, l.head_dim,
                                        l.block_size, scale, dout.as<float>(), dxq.get(), work.get(), nullptr),
                 "attn_decode");
      const auto out = dout.download<float>(qdim);
      std::vector<float> ref(qdim);
      attend_ref(l, q.data(), c.k[0], c.v[0], len, scale, ref.data());
      for (int i = 0; i < qdim; ++i) ASSERT_NEAR(out[i], ref[i], 1e-4) << "element " << i;
      const auto raw = dxq.download<uint8_t>(gpu->api().q8_bytes(qdim));
      const float* d = reinterpret_cast<const float*>(raw.data() + (qdim + 15) / 16 * 16);
      for (int b = 0; b < qdim / 32; ++b) {
        float amax = 0.f;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(out[32 * b + i]));
        ASSERT_FLOAT_EQ(d[b], amax / 127.f) << "chunk " << b;
        for (int i = 0; i < 32; ++i) {
          const int qv = static_cast<int8_t>(raw[32 * b + i]);
          const float want = amax > 0.f ? std::rint(out[32 * b + i] * (127.f / amax)) : 0.f;
          ASSERT_LE(std::fabs(qv - want), 1.f) << "element " << 32 * b + i;  // rint of a product may tie
        }
      }
    }
  }
}

TEST(GpuAttention, CausalPrefillMatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : kLayouts) {
    // 45 tokens: one query tile; 150: several query and key tiles of the tiled kernel.
    for (auto [pos0, n_tok] : {std::pair{0, 45}, std::pair{21, 45}, std::pair{0, 150}, std::pair{37, 150}}) {
      SCOPED_TRACE(name(l) + " pos0 " + std::to_string(pos0) + " tokens " + std::to_string(n_tok));
      const std::vector<int> lens = {pos0 + n_tok};
      const Cache c = make_cache(l, lens, rng);
      const size_t pool = static_cast<size_t>(c.n_blocks) * l.n_kv_head * l.block_size * l.head_dim;
      DeviceBuffer kp(*gpu, pool * 2), vp(*gpu, pool * 2);
      auto tables = to_device(*gpu, c.tables);
      fill_pool(*gpu, l, c, lens, kp, vp, *tables);
      const size_t qrow = static_cast<size_t>(l.n_head) * l.head_dim;
      const auto q = random_floats(rng, n_tok * qrow, -2.f, 2.f);
      auto dq = to_device(*gpu, q);
      DeviceBuffer dout(*gpu, q.size() * sizeof(float));
      dout.poison();
      const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
      gpu->check(gpu->api().attn_prefill(dq->as<float>(), kp.as<uint16_t>(), vp.as<uint16_t>(), tables->as<int32_t>(),
                                         pos0, n_tok, l.n_head, l.n_kv_head, l.head_dim, l.block_size, scale,
                                         dout.as<float>(), nullptr),
                 "attn_prefill");
      const auto out = dout.download<float>(q.size());
      std::vector<float> ref(qrow);
      for (int t = 0; t < n_tok; ++t) {
        attend_ref(l, q.data() + t * qrow, c.k[0], c.v[0], pos0 + t + 1, scale, ref.data());
        for (size_t i = 0; i < qrow; ++i) ASSERT_NEAR(out[t * qrow + i], ref[i], 1e-4) << "token " << t << " element " << i;
      }
    }
  }
}

}  // namespace
}  // namespace rocforge::test
