// Paged KV cache store (F16 and Q8_0), split-K decode attention and causal prefill attention on the
// GPU against a double-precision reference over the values the cache holds, with GQA / MQA / MHA head
// layouts, block sizes 16 and 32, blocks scattered through the pool in random order, and odd
// sequence lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
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

// A Q8_0 cache row block's f16 scale and codes, ggml's block_q8_0 rule (the CPU cache's, kv_q8.cpp):
// d = max|x| / 127, codes round(x / d) half away from zero from the f32 d.
struct Q8Block {
  uint16_t d;
  int8_t q[32];
};
Q8Block quantize_q8_block(const float* x) {
  float amax = 0.f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
  Q8Block b{f32_to_fp16(d), {}};
  for (int i = 0; i < 32; ++i) b.q[i] = static_cast<int8_t>(std::round(x[i] * id));
  return b;
}

// The values a cache of kv_type holds for rows x ([rows][head_dim]): f16-rounded, or Q8_0's
// d * q (rounded to f16 once more where the kernel stages them as f16: the tiled prefill).
std::vector<float> cached(const std::vector<float>& x, int head_dim, int kv_type, bool f16_tiles) {
  std::vector<float> out(x.size());
  if (kv_type == RF_KV_F16) {
    for (size_t i = 0; i < x.size(); ++i) out[i] = f16_round(x[i]);
    return out;
  }
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const Q8Block blk = quantize_q8_block(x.data() + 32 * b);
    for (int i = 0; i < 32; ++i) {
      const float v = fp16_to_f32(blk.d) * static_cast<float>(blk.q[i]);
      out[32 * b + i] = f16_tiles ? f16_round(v) : v;
    }
  }
  (void)head_dim;
  return out;
}

const char* kv_name(int kv_type) { return kv_type == RF_KV_Q8_0 ? "q8_0 cache" : "f16 cache"; }

size_t pool_bytes(const Layout& l, int n_blocks, int kv_type) {
  return rf_kv_pool_bytes(kv_type, static_cast<size_t>(n_blocks), l.block_size, l.n_kv_head, l.head_dim);
}

// Every value of a downloaded pool, in F16 pool order [n_blocks][n_kv_head][block_size][head_dim]
// (a Q8_0 block: the codes plane, then the f16 scales plane; gpu/kv_layout.h).
std::vector<float> pool_values(const Layout& l, int n_blocks, int kv_type, const std::vector<uint8_t>& bytes) {
  const size_t per_block = static_cast<size_t>(l.n_kv_head) * l.block_size * l.head_dim;
  std::vector<float> out(per_block * n_blocks);
  for (size_t i = 0; i < out.size(); ++i) {
    if (kv_type == RF_KV_F16) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[i] = fp16_to_f32(h);
      continue;
    }
    const size_t blk = i / per_block, in = i % per_block;
    const uint8_t* base = bytes.data() + blk * (per_block + per_block / 16);
    uint16_t d;
    std::memcpy(&d, base + per_block + in / 32 * 2, 2);
    out[i] = fp16_to_f32(d) * static_cast<float>(static_cast<int8_t>(base[in]));
  }
  return out;
}

// out[h][d] for one query (q: [n_head][head_dim]) attending positions [0, n) of one sequence whose
// cached rows are k, v (as the cache holds them: see cached()).
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
        acc += static_cast<double>(q[h * l.head_dim + d]) * k[(static_cast<size_t>(p) * l.n_kv_head + kvh) * l.head_dim + d];
      s[p] = acc * scale;
      m = std::max(m, s[p]);
    }
    double sum = 0;
    for (auto& e : s) sum += (e = std::exp(e - m));
    for (int d = 0; d < l.head_dim; ++d) {
      double acc = 0;
      for (int p = 0; p < n; ++p) acc += s[p] * v[(static_cast<size_t>(p) * l.n_kv_head + kvh) * l.head_dim + d];
      out[h * l.head_dim + d] = static_cast<float>(acc / sum);
    }
  }
}

// Stores every sequence's K/V through the kv_store kernel.
void fill_pool(const device::GpuBackend& gpu, const Layout& l, const Cache& c, const std::vector<int>& lens,
               DeviceBuffer& kp, DeviceBuffer& vp, const DeviceBuffer& tables, int kv_type = RF_KV_F16) {
  for (size_t s = 0; s < lens.size(); ++s) {
    if (lens[s] == 0) continue;
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
                                 kv_type, kp.get(), vp.get(), nullptr),
              "kv_store");
    gpu.check(gpu.api().stream_sync(nullptr), "sync");
  }
}

const Layout kLayouts[] = {{8, 2, 64, 16}, {32, 8, 128, 32}, {4, 4, 128, 16}, {6, 1, 80, 32}, {16, 2, 128, 16}};

// Each cache type: every stored value lands in its slot as the cache holds it (f16-rounded; Q8_0
// codes and scales exactly as the CPU cache's quantizer makes them).
TEST(GpuAttention, KvStoreWritesValuesIntoTheRightSlots) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout l : {Layout{8, 2, 64, 16}, Layout{4, 4, 128, 32}}) {
    for (int kv_type : {RF_KV_F16, RF_KV_Q8_0}) {
      SCOPED_TRACE(name(l) + " " + kv_name(kv_type));
      const std::vector<int> lens = {5, 40};
      const Cache c = make_cache(l, lens, rng);
      const size_t bytes = pool_bytes(l, c.n_blocks, kv_type);
      DeviceBuffer kp(*gpu, bytes), vp(*gpu, bytes);
      kp.poison();
      vp.poison();
      auto tables = to_device(*gpu, c.tables);
      fill_pool(*gpu, l, c, lens, kp, vp, *tables, kv_type);
      const auto k = pool_values(l, c.n_blocks, kv_type, kp.download<uint8_t>(bytes));
      const auto v = pool_values(l, c.n_blocks, kv_type, vp.download<uint8_t>(bytes));
      for (size_t s = 0; s < lens.size(); ++s) {
        const auto want_k = cached(c.k[s], l.head_dim, kv_type, false), want_v = cached(c.v[s], l.head_dim, kv_type, false);
        for (int p = 0; p < lens[s]; ++p)
          for (int h = 0; h < l.n_kv_head; ++h)
            for (int d = 0; d < l.head_dim; ++d) {
              const int blk = c.tables[s * c.max_blocks + p / l.block_size];
              const size_t at =
                  ((static_cast<size_t>(blk) * l.n_kv_head + h) * l.block_size + p % l.block_size) * l.head_dim + d;
              const size_t src = (static_cast<size_t>(p) * l.n_kv_head + h) * l.head_dim + d;
              ASSERT_EQ(k[at], want_k[src]) << "seq " << s << " pos " << p << " head " << h << " dim " << d;
              ASSERT_EQ(v[at], want_v[src]) << "seq " << s << " pos " << p << " head " << h << " dim " << d;
            }
      }
    }
  }
}

// A Q8_0 cache needs head_dim % 32 == 0: other heads get a clear error, not a wrong answer.
TEST(GpuAttention, Q8CacheRefusesHeadsItCannotHold) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const Layout l{6, 1, 80, 32};
  DeviceBuffer kp(*gpu, 1 << 16), vp(*gpu, 1 << 16), x(*gpu, 1 << 12);
  const std::vector<int32_t> zeros(4, 0);
  auto small = to_device(*gpu, zeros);
  const int rc = gpu->api().kv_store(x.as<float>(), x.as<float>(), small->as<int32_t>(), 1, small->as<int32_t>(),
                                     l.block_size, l.n_kv_head, l.head_dim, RF_KV_Q8_0, kp.get(), vp.get(), nullptr);
  ASSERT_NE(rc, 0);
  EXPECT_NE(std::string(gpu->api().last_error()).find("head_dim"), std::string::npos) << gpu->api().last_error();
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
        for (auto [factors, kv_type] : {std::pair{false, RF_KV_F16}, std::pair{true, RF_KV_F16},
                                        std::pair{true, RF_KV_Q8_0}}) {
          SCOPED_TRACE(name(l) + " n_rot " + std::to_string(n_rot) + " neox " + std::to_string(neox) +
                       (factors ? " freq factors " : " ") + kv_name(kv_type));
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
          const size_t bytes = pool_bytes(l, n_blocks, kv_type);
          // separate launches
          auto q1 = to_device(*gpu, q), k1 = to_device(*gpu, k);
          DeviceBuffer kp1(*gpu, bytes), vp1(*gpu, bytes);
          gpu->check(api.memset(kp1.get(), 0, bytes, nullptr), "memset");
          gpu->check(api.memset(vp1.get(), 0, bytes, nullptr), "memset");
          gpu->check(api.rope(q1->as<float>(), dpos->as<int32_t>(), n_tok, l.n_head, l.head_dim, n_rot, 10000.f, 0.5f,
                              ffp, neox, nullptr), "rope q");
          gpu->check(api.rope(k1->as<float>(), dpos->as<int32_t>(), n_tok, l.n_kv_head, l.head_dim, n_rot, 10000.f,
                              0.5f, ffp, neox, nullptr), "rope k");
          for (int t = 0; t < n_tok; ++t) {
            const size_t off = static_cast<size_t>(t) * l.n_kv_head * l.head_dim;
            gpu->check(api.kv_store(k1->as<float>() + off, dv->as<float>() + off, dpos->as<int32_t>() + t, 1,
                                    dtab->as<int32_t>() + t * max_blocks, l.block_size, l.n_kv_head, l.head_dim,
                                    kv_type, kp1.get(), vp1.get(), nullptr), "kv_store");
          }
          // fused
          auto q2 = to_device(*gpu, q), k2 = to_device(*gpu, k);
          DeviceBuffer kp2(*gpu, bytes), vp2(*gpu, bytes);
          gpu->check(api.memset(kp2.get(), 0, bytes, nullptr), "memset");
          gpu->check(api.memset(vp2.get(), 0, bytes, nullptr), "memset");
          gpu->check(api.rope_kv_store(q2->as<float>(), k2->as<float>(), dv->as<float>(), dpos->as<int32_t>(), n_tok,
                                       dtab->as<int32_t>(), max_blocks, l.block_size, l.n_head, l.n_kv_head,
                                       l.head_dim, n_rot, 10000.f, 0.5f, ffp, neox, kv_type, kp2.get(), vp2.get(),
                                       nullptr),
                     "rope_kv_store");
          const auto a = q1->download<float>(qn), b = q2->download<float>(qn);
          for (size_t i = 0; i < qn; ++i) ASSERT_NEAR(a[i], b[i], 1e-6f * (1.f + std::fabs(a[i]))) << "q " << i;
          const auto c = k1->download<float>(kn), d = k2->download<float>(kn);
          for (size_t i = 0; i < kn; ++i) ASSERT_NEAR(c[i], d[i], 1e-6f * (1.f + std::fabs(c[i]))) << "k " << i;
          // Every rotated element moved (rope touched q), and the caches agree to one step of their
          // element type (a half's last bit; one Q8_0 code of |x| <= 2 values) bar rounding ties.
          size_t moved = 0;
          for (size_t i = 0; i < qn; ++i) moved += a[i] != q[i];
          ASSERT_GT(moved, qn / 4);
          const float step = kv_type == RF_KV_Q8_0 ? 2.f / 127.f : 0.f;
          for (auto [p1, p2] : {std::pair{&kp1, &kp2}, std::pair{&vp1, &vp2}}) {
            const auto x = pool_values(l, n_blocks, kv_type, p1->download<uint8_t>(bytes));
            const auto y = pool_values(l, n_blocks, kv_type, p2->download<uint8_t>(bytes));
            size_t nonzero = 0;
            for (size_t i = 0; i < pool; ++i) {
              nonzero += x[i] != 0;
              ASSERT_LE(std::fabs(x[i] - y[i]), step + 1e-3f * (1.f + std::fabs(x[i]))) << "pool element " << i;
            }
            ASSERT_GE(nonzero, static_cast<size_t>(n_tok) * l.n_kv_head * l.head_dim / 2);
          }
        }
      }
    }
  }
}

// Runs the decode test body under each kernel choice: the default; the staged kernel (head_dim 64 /
// 128, attention_decode_staged.hip) with a query head or a KV head's group per block, in splits of
// the default length or of 512 positions (ROCFORGE_ATTN_SPLIT: more 64-row chunks than ring stages);
// the register one-pass kernel it replaces (ROCFORGE_ATTN_STAGED=0) over whole short contexts (ROCFORGE_ATTN_ONEPASS=1) or over the partial
// kernel's splits (2), with each ROCFORGE_ATTN_HEADS choice (1: a query head per block, 0: a KV
// head's group); and the split/combine pair (0), which other head sizes always use.
struct DecodeMode {
  const char* staged;
  const char* onepass;
  const char* heads;
  const char* split;
  const char* mma;
  const char* name;
};
class GpuAttentionDecode : public ::testing::TestWithParam<DecodeMode> {
 protected:
  static constexpr const char* kVars[] = {"ROCFORGE_ATTN_STAGED", "ROCFORGE_ATTN_ONEPASS", "ROCFORGE_ATTN_HEADS",
                                          "ROCFORGE_ATTN_SPLIT", "ROCFORGE_ATTN_MMA"};
  void SetUp() override {
    const DecodeMode& m = GetParam();
    const char* values[] = {m.staged, m.onepass, m.heads, m.split, m.mma};
    for (int i = 0; i < 5; ++i) {
      if (*values[i]) setenv(kVars[i], values[i], 1);
      else unsetenv(kVars[i]);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
  }
};
INSTANTIATE_TEST_SUITE_P(Kernels, GpuAttentionDecode,
                         ::testing::Values(DecodeMode{"", "", "", "", "", "Default"},
                                           DecodeMode{"1", "", "1", "", "", "StagedHeadPerBlock"},
                                           DecodeMode{"1", "", "0", "", "", "StagedGroupPerBlock"},
                                           DecodeMode{"1", "", "0", "", "0", "StagedGroupPerBlockNoMma"},
                                           DecodeMode{"1", "", "1", "512", "", "StagedSplit512HeadPerBlock"},
                                           DecodeMode{"1", "", "0", "512", "", "StagedSplit512GroupPerBlock"},
                                           DecodeMode{"1", "", "0", "512", "0", "StagedSplit512GroupPerBlockNoMma"},
                                           DecodeMode{"0", "1", "1", "", "", "OnePassWholeHeadPerBlock"},
                                           DecodeMode{"0", "1", "0", "", "", "OnePassWholeGroupPerBlock"},
                                           DecodeMode{"0", "2", "1", "", "", "OnePassSplitsHeadPerBlock"},
                                           DecodeMode{"0", "2", "0", "", "", "OnePassSplitsGroupPerBlock"},
                                           DecodeMode{"", "0", "", "", "", "SplitCombine"}),
                         [](const auto& info) { return std::string(info.param.name); });

// Tolerance of a decode attention output against the double reference: the matrix-unit kernel
// (contexts of several splits, head_dim 64 / 128, a KV head's group per block) rounds q * scale, the
// softmax weights and a Q8_0 cache's values to f16 (relative 2^-11 each: ~1e-3 of V's range at
// worst); the other kernels are fp32 throughout.
double decode_tolerance(const device::GpuBackend& gpu, const Layout& l, int kv_type) {
  (void)kv_type;
  const char* off = std::getenv("ROCFORGE_ATTN_MMA");
  const bool mma = (l.head_dim == 64 || l.head_dim == 128) && !(off && std::string(off) == "0") &&
                   std::string(gpu.api().prompt_attention(nullptr)) == "matrix units";
  return mma ? 3e-3 : 1e-4;
}

TEST_P(GpuAttentionDecode, MatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : kLayouts) for (int kv_type : {RF_KV_F16, RF_KV_Q8_0}) {
    if (kv_type == RF_KV_Q8_0 && l.head_dim % 32 != 0) continue;  // refused (Q8CacheRefusesHeadsItCannotHold)
    SCOPED_TRACE(name(l) + " " + kv_name(kv_type));
    const std::vector<int> lens = {1, 17, 300, 1029, 64};
    const int n_seq = static_cast<int>(lens.size());
    const int max_len = *std::max_element(lens.begin(), lens.end());
    const Cache c = make_cache(l, lens, rng);
    DeviceBuffer kp(*gpu, pool_bytes(l, c.n_blocks, kv_type)), vp(*gpu, pool_bytes(l, c.n_blocks, kv_type));
    auto tables = to_device(*gpu, c.tables);
    fill_pool(*gpu, l, c, lens, kp, vp, *tables, kv_type);
    const auto q = random_floats(rng, static_cast<size_t>(n_seq) * l.n_head * l.head_dim, -2.f, 2.f);
    auto dq = to_device(*gpu, q);
    auto dlens = to_device(*gpu, lens);
    const size_t ws = gpu->api().attn_decode_workspace(n_seq, l.n_head, l.head_dim, max_len);
    ASSERT_GT(ws, 0u);
    DeviceBuffer work(*gpu, ws);
    DeviceBuffer dout(*gpu, q.size() * sizeof(float));
    dout.poison();
    const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
    gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.get(), vp.get(), tables->as<int32_t>(), c.max_blocks,
                                      dlens->as<int32_t>(), n_seq, max_len, l.n_head, l.n_kv_head, l.head_dim,
                                      l.block_size, kv_type, nullptr, nullptr, scale, dout.as<float>(), nullptr,
                                      work.get(), nullptr),
               "attn_decode");
    const auto out = dout.download<float>(q.size());
    std::vector<float> ref(static_cast<size_t>(l.n_head) * l.head_dim);
    for (int s = 0; s < n_seq; ++s) {
      attend_ref(l, q.data() + static_cast<size_t>(s) * ref.size(), cached(c.k[s], l.head_dim, kv_type, false),
                 cached(c.v[s], l.head_dim, kv_type, false), lens[s], scale, ref.data());
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(out[s * ref.size() + i], ref[i], decode_tolerance(*gpu, l, kv_type))
            << "seq " << s << " (len " << lens[s] << ") element " << i;
    }
  }
}

// The step's own K/V rows handed to attn_decode (d_cur_k / d_cur_v: a Q8_0 cache's decode step, whose
// q/k/v matvec cannot quantize them): the cache holds every position but each sequence's last, which
// attn_decode must store (as kv_store would) and attend to.
TEST_P(GpuAttentionDecode, StoresAndAttendsToTheStepsOwnRows) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout l : {Layout{32, 8, 128, 32}, Layout{8, 2, 64, 16}}) for (int kv_type : {RF_KV_F16, RF_KV_Q8_0}) {
    SCOPED_TRACE(name(l) + " " + kv_name(kv_type));
    const std::vector<int> lens = {1, 17, 300, 64};
    const int n_seq = static_cast<int>(lens.size());
    const int max_len = *std::max_element(lens.begin(), lens.end());
    const Cache c = make_cache(l, lens, rng);
    const size_t bytes = pool_bytes(l, c.n_blocks, kv_type);
    DeviceBuffer kp(*gpu, bytes), vp(*gpu, bytes);
    kp.poison();
    vp.poison();
    auto tables = to_device(*gpu, c.tables);
    std::vector<int> before(lens);
    for (int& n : before) --n;
    fill_pool(*gpu, l, c, before, kp, vp, *tables, kv_type);  // every position but the last
    const size_t row = static_cast<size_t>(l.n_kv_head) * l.head_dim;
    std::vector<float> ck, cv;  // [n_seq][n_kv_head][head_dim]: each sequence's last row
    for (int s = 0; s < n_seq; ++s) {
      ck.insert(ck.end(), c.k[s].begin() + (lens[s] - 1) * row, c.k[s].begin() + lens[s] * row);
      cv.insert(cv.end(), c.v[s].begin() + (lens[s] - 1) * row, c.v[s].begin() + lens[s] * row);
    }
    auto dck = to_device(*gpu, ck), dcv = to_device(*gpu, cv);
    const auto q = random_floats(rng, static_cast<size_t>(n_seq) * l.n_head * l.head_dim, -2.f, 2.f);
    auto dq = to_device(*gpu, q);
    auto dlens = to_device(*gpu, lens);
    DeviceBuffer work(*gpu, gpu->api().attn_decode_workspace(n_seq, l.n_head, l.head_dim, max_len));
    DeviceBuffer dout(*gpu, q.size() * sizeof(float));
    const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
    gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.get(), vp.get(), tables->as<int32_t>(), c.max_blocks,
                                      dlens->as<int32_t>(), n_seq, max_len, l.n_head, l.n_kv_head, l.head_dim,
                                      l.block_size, kv_type, dck->as<float>(), dcv->as<float>(), scale,
                                      dout.as<float>(), nullptr, work.get(), nullptr),
               "attn_decode");
    const auto out = dout.download<float>(q.size());
    const auto kvals = pool_values(l, c.n_blocks, kv_type, kp.download<uint8_t>(bytes));
    const auto vvals = pool_values(l, c.n_blocks, kv_type, vp.download<uint8_t>(bytes));
    std::vector<float> ref(static_cast<size_t>(l.n_head) * l.head_dim);
    for (int s = 0; s < n_seq; ++s) {
      const auto kc = cached(c.k[s], l.head_dim, kv_type, false), vc = cached(c.v[s], l.head_dim, kv_type, false);
      attend_ref(l, q.data() + static_cast<size_t>(s) * ref.size(), kc, vc, lens[s], scale, ref.data());
      for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_NEAR(out[s * ref.size() + i], ref[i], decode_tolerance(*gpu, l, kv_type))
            << "seq " << s << " (len " << lens[s] << ") element " << i;
      const int p = lens[s] - 1, blk = c.tables[s * c.max_blocks + p / l.block_size];
      for (int h = 0; h < l.n_kv_head; ++h)
        for (int d = 0; d < l.head_dim; ++d) {
          const size_t at = ((static_cast<size_t>(blk) * l.n_kv_head + h) * l.block_size + p % l.block_size) * l.head_dim + d;
          ASSERT_EQ(kvals[at], kc[p * row + h * l.head_dim + d]) << "stored k, seq " << s << " head " << h << " dim " << d;
          ASSERT_EQ(vvals[at], vc[p * row + h * l.head_dim + d]) << "stored v, seq " << s << " head " << h << " dim " << d;
        }
    }
  }
}

// A Q8_0 cache's decode step with its own rows handed over (d_cur_k / d_cur_v; one block of each KV
// head also stores them while the others attend): the same output bits run after run, each run on a
// fresh copy of the cache.
TEST_P(GpuAttentionDecode, OwnRowsOfAQ8CacheGiveTheSameBitsEveryRun) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout l : {Layout{32, 8, 64, 16}, Layout{32, 8, 128, 32}}) {
    for (int len : {37, 300}) {
      SCOPED_TRACE(name(l) + " len " + std::to_string(len));
      const Cache c = make_cache(l, {len}, rng);
      const size_t bytes = pool_bytes(l, c.n_blocks, RF_KV_Q8_0);
      auto tables = to_device(*gpu, c.tables);
      const size_t row = static_cast<size_t>(l.n_kv_head) * l.head_dim;
      auto dck = to_device(*gpu, std::vector<float>(c.k[0].begin() + (len - 1) * row, c.k[0].begin() + len * row));
      auto dcv = to_device(*gpu, std::vector<float>(c.v[0].begin() + (len - 1) * row, c.v[0].begin() + len * row));
      const int qdim = l.n_head * l.head_dim;
      auto dq = to_device(*gpu, random_floats(rng, qdim, -2.f, 2.f));
      auto dlens = to_device(*gpu, std::vector<int>{len});
      DeviceBuffer work(*gpu, gpu->api().attn_decode_workspace(1, l.n_head, l.head_dim, len));
      const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
      std::vector<float> first;
      for (int run = 0; run < 4; ++run) {
        DeviceBuffer kp(*gpu, bytes), vp(*gpu, bytes), dout(*gpu, qdim * sizeof(float));
        fill_pool(*gpu, l, c, {len - 1}, kp, vp, *tables, RF_KV_Q8_0);
        gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.get(), vp.get(), tables->as<int32_t>(), c.max_blocks,
                                          dlens->as<int32_t>(), 1, len, l.n_head, l.n_kv_head, l.head_dim,
                                          l.block_size, RF_KV_Q8_0, dck->as<float>(), dcv->as<float>(), scale,
                                          dout.as<float>(), nullptr, work.get(), nullptr),
                   "attn_decode");
        const auto out = dout.download<float>(qdim);
        if (run == 0) first = out;
        else ASSERT_EQ(out, first) << "run " << run;
      }
    }
  }
}

// The graphed decode step of one or several sequences: short contexts fit one block of the one-pass
// kernel, which then also writes the int8 form of its output (all sequences' rows as one quantize_q8
// over them); longer ones take the combine or the quantize launch. Either way the int8 output must be
// quantize_q8's rounding of the float output.
TEST_P(GpuAttentionDecode, SequencesWithInt8Output) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const Layout& l : {Layout{32, 8, 128, 32}, Layout{8, 2, 64, 16}, Layout{4, 4, 128, 16}}) {
    for (auto [len, kv_type] : {std::pair{1, RF_KV_F16}, std::pair{37, RF_KV_F16}, std::pair{256, RF_KV_F16},
                                std::pair{700, RF_KV_F16}, std::pair{37, RF_KV_Q8_0}, std::pair{700, RF_KV_Q8_0}}) {
      for (int n_seq : {1, 3}) {
        SCOPED_TRACE(name(l) + " len " + std::to_string(len) + " " + kv_name(kv_type) + " sequences " +
                     std::to_string(n_seq));
        std::vector<int> lens = {len};
        if (n_seq == 3) lens = {len, std::max(1, len / 2), len + 5};
        const int longest = *std::max_element(lens.begin(), lens.end());
        const int bucket = std::max(256, (longest + 255) / 256 * 256);  // as the graphed step passes it
        Cache c = make_cache(l, lens, rng);
        const int max_blocks = bucket / l.block_size;
        std::vector<int32_t> tables(static_cast<size_t>(n_seq) * max_blocks, 0);
        for (int s = 0; s < n_seq; ++s)
          std::copy(c.tables.begin() + static_cast<size_t>(s) * c.max_blocks,
                    c.tables.begin() + static_cast<size_t>(s + 1) * c.max_blocks,
                    tables.begin() + static_cast<size_t>(s) * max_blocks);
        c.tables = tables;
        c.max_blocks = max_blocks;
        DeviceBuffer kp(*gpu, pool_bytes(l, c.n_blocks, kv_type)), vp(*gpu, pool_bytes(l, c.n_blocks, kv_type));
        auto dtables = to_device(*gpu, c.tables);
        fill_pool(*gpu, l, c, lens, kp, vp, *dtables, kv_type);
        const int qdim = l.n_head * l.head_dim, n = n_seq * qdim;
        const auto q = random_floats(rng, n, -2.f, 2.f);
        auto dq = to_device(*gpu, q);
        auto dlens = to_device(*gpu, lens);
        DeviceBuffer work(*gpu, gpu->api().attn_decode_workspace(n_seq, l.n_head, l.head_dim, bucket));
        DeviceBuffer dout(*gpu, n * sizeof(float)), dxq(*gpu, gpu->api().q8_bytes(n));
        dout.poison();
        dxq.poison();
        const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
        gpu->check(gpu->api().attn_decode(dq->as<float>(), kp.get(), vp.get(), dtables->as<int32_t>(), max_blocks,
                                          dlens->as<int32_t>(), n_seq, bucket, l.n_head, l.n_kv_head, l.head_dim,
                                          l.block_size, kv_type, nullptr, nullptr, scale, dout.as<float>(), dxq.get(),
                                          work.get(), nullptr),
                   "attn_decode");
        const auto out = dout.download<float>(n);
        std::vector<float> ref(n);
        for (int s = 0; s < n_seq; ++s)
          attend_ref(l, q.data() + static_cast<size_t>(s) * qdim, cached(c.k[s], l.head_dim, kv_type, false),
                     cached(c.v[s], l.head_dim, kv_type, false), lens[s], scale, ref.data() + static_cast<size_t>(s) * qdim);
        const double tol = decode_tolerance(*gpu, l, kv_type);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(out[i], ref[i], tol) << "element " << i;
        const auto raw = dxq.download<uint8_t>(gpu->api().q8_bytes(n));
        const float* d = reinterpret_cast<const float*>(raw.data() + (n + 15) / 16 * 16);
        for (int b = 0; b < n / 32; ++b) {
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
}

// Which prefill kernel serves here: the matrix units (tensor cores, MFMA, WMMA) where the device has
// them and their kernel passed its first-use check, else the fp32 tiles. An sm_80+ NVIDIA device must
// use the matrix units unless they are switched off (ROCFORGE_GPU_FA_MMA=0) or the check is spoiled
// on purpose (ROCFORGE_GPU_FA_FAULT=1).
bool prefill_on_matrix_units(const device::GpuBackend& gpu) {
  const std::string kind = gpu.api().prompt_attention(nullptr);
  rf_gpu_device_info info{};
  gpu.check(gpu.api().device_info(0, &info), "device info");
  const char* off = std::getenv("ROCFORGE_GPU_FA_MMA");
  const char* fault = std::getenv("ROCFORGE_GPU_FA_FAULT");
  const bool switched_off = (off && std::string(off) == "0") || (fault && std::string(fault) == "1");
  if (std::string(gpu.api().backend_name) == "cuda" && info.cc_major >= 8 && !switched_off) {
    EXPECT_EQ(kind, "matrix units") << "an sm_80+ NVIDIA device must run prefill attention on the tensor cores";
  }
  if (switched_off) {
    EXPECT_EQ(kind, "fp32 tiles");
  }
  return kind == "matrix units";
}

TEST(GpuAttention, CausalPrefillMatchesReference) {
  ROCFORGE_REQUIRE_GPU(gpu);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const bool mma = prefill_on_matrix_units(*gpu);
  SCOPED_TRACE(mma ? "matrix-unit kernel" : "fp32 kernels");
  // The matrix-unit kernel's blocks of four and of eight waves (chosen by the prompt's size).
  const std::vector<const char*> block_sizes = mma ? std::vector<const char*>{"4", "8"} : std::vector<const char*>{""};
  for (const char* waves : block_sizes) for (const Layout& l : kLayouts) for (int kv_type : {RF_KV_F16, RF_KV_Q8_0}) {
    if (*waves) setenv("ROCFORGE_GPU_FA_WAVES", waves, 1);
    SCOPED_TRACE(std::string("waves ") + waves);
    if (kv_type == RF_KV_Q8_0 && l.head_dim % 32 != 0) continue;  // refused (Q8CacheRefusesHeadsItCannotHold)
    // 45 tokens: one query tile; 150: several query and key tiles; 70 after 130 cached positions:
    // key tiles every row sees whole, then the causal edge.
    for (auto [pos0, n_tok] : {std::pair{0, 45}, std::pair{21, 45}, std::pair{0, 150}, std::pair{37, 150},
                               std::pair{130, 70}}) {
      SCOPED_TRACE(name(l) + " " + kv_name(kv_type) + " pos0 " + std::to_string(pos0) + " tokens " + std::to_string(n_tok));
      const std::vector<int> lens = {pos0 + n_tok};
      const Cache c = make_cache(l, lens, rng);
      DeviceBuffer kp(*gpu, pool_bytes(l, c.n_blocks, kv_type)), vp(*gpu, pool_bytes(l, c.n_blocks, kv_type));
      auto tables = to_device(*gpu, c.tables);
      fill_pool(*gpu, l, c, lens, kp, vp, *tables, kv_type);
      const size_t qrow = static_cast<size_t>(l.n_head) * l.head_dim;
      const auto q = random_floats(rng, n_tok * qrow, -2.f, 2.f);
      auto dq = to_device(*gpu, q);
      DeviceBuffer dout(*gpu, q.size() * sizeof(float));
      dout.poison();
      const float scale = 1.f / std::sqrt(static_cast<float>(l.head_dim));
      gpu->check(gpu->api().attn_prefill(dq->as<float>(), kp.get(), vp.get(), tables->as<int32_t>(), pos0, n_tok,
                                         l.n_head, l.n_kv_head, l.head_dim, l.block_size, kv_type, scale,
                                         dout.as<float>(), nullptr),
                 "attn_prefill");
      const auto out = dout.download<float>(q.size());
      std::vector<float> ref(qrow);
      // The tiled kernels (head_dim 64 / 128) stage a Q8_0 cache's values as f16. The matrix-unit
      // kernel also rounds q * scale to f16 (mirrored here) and the softmax weights to f16: relative
      // 2^-11 each, so its outputs, means of V values in [-1, 1], agree to ~1e-3.
      const bool tiles = l.head_dim == 64 || l.head_dim == 128;
      const bool mma_here = mma && tiles;
      const auto kc = cached(c.k[0], l.head_dim, kv_type, tiles), vc = cached(c.v[0], l.head_dim, kv_type, tiles);
      std::vector<float> qs(qrow);
      for (int t = 0; t < n_tok; ++t) {
        for (size_t i = 0; i < qrow; ++i) qs[i] = mma_here ? f16_round(q[t * qrow + i] * scale) : q[t * qrow + i];
        attend_ref(l, qs.data(), kc, vc, pos0 + t + 1, mma_here ? 1.f : scale, ref.data());
        for (size_t i = 0; i < qrow; ++i)
          ASSERT_NEAR(out[t * qrow + i], ref[i], mma_here ? 2e-3 : 1e-4) << "token " << t << " element " << i;
      }
    }
  }
  unsetenv("ROCFORGE_GPU_FA_WAVES");
}

// The matrix-unit kernel's guard: when its first-use check disagrees with the fp32 kernel (forced by
// ROCFORGE_GPU_FA_FAULT=1), the fp32 kernel serves. Runs as ctest gpu_attn_prefill_fault, with
// CausalPrefillMatchesReference, which then checks the fp32 kernel's results (the check runs once a
// process).
TEST(PrefillAttentionSelfCheck, AFailedCheckKeepsTheFp32Kernel) {
  const char* fault = std::getenv("ROCFORGE_GPU_FA_FAULT");
  if (!fault || std::string(fault) != "1") GTEST_SKIP() << "runs as ctest gpu_attn_prefill_fault (ROCFORGE_GPU_FA_FAULT=1)";
  ROCFORGE_REQUIRE_GPU(gpu);
  EXPECT_FALSE(prefill_on_matrix_units(*gpu));
}

}  // namespace
}  // namespace rocforge::test
