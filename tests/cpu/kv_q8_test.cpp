// The Q8_0 K/V cache (rocforge/kv_type.h, cpu/kv_q8.h): rows quantized as ggml's block_q8_0, and
// every attention path that reads them (per-token kernel at each ISA level, the AVX2 and AVX-512
// tile kernels) against the scalar reference on fresh random inputs of odd sizes: head sizes that
// are odd multiples of 32, odd GQA groups, position counts that end inside a softmax block.
// The seed changes every run and is printed with any failure (set ROCFORGE_TEST_SEED to replay).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "cpu/attention.h"
#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kv_q8.h"
#include "quant/blocks.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

struct IsaGuard {
  IsaLevel saved = active_isa();
  ~IsaGuard() { set_isa_level(saved); }
};

uint32_t fresh_seed() {
  if (const char* s = std::getenv("ROCFORGE_TEST_SEED")) return static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
  return std::random_device{}();
}

// A row with a few outliers (they set the block scale, as in real K/V) and one all-zero block.
std::vector<float> random_row(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(0.01f, 4.0f);
  std::vector<float> x(n);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float m = mag(rng);
    for (int i = 0; i < 32; ++i) x[b * 32 + i] = nd(rng) * m;
    x[b * 32 + rng() % 32] *= 8.0f;
  }
  if (n >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  return x;
}

TEST(KvQ8, QuantizeRowIsGgmlBlockQ8_0) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int64_t n : {32, 96, 160, 544}) {
    const std::vector<float> x = random_row(n, rng);
    std::vector<uint8_t> q(kv_row_bytes(KvType::Q8_0, n), 0xAB);
    quantize_kv_row_q8_0(x.data(), n, q.data());
    ASSERT_EQ(q.size(), static_cast<size_t>(n / 32 * 34));
    std::vector<float> back(n);
    dequantize_kv_row_q8_0(q.data(), n, back.data());
    for (int64_t b = 0; b < n / 32; ++b) {
      quant::BlockQ8_0 blk;
      std::memcpy(&blk, q.data() + b * 34, 34);  // ggml's layout: f16 scale, then 32 int8 codes
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      const float d = amax / 127.0f;
      ASSERT_EQ(blk.d, f32_to_fp16(d)) << "n=" << n << " block " << b;
      int max_code = 0;
      for (int i = 0; i < 32; ++i) {
        const float xi = x[b * 32 + i];
        if (amax == 0) {
          ASSERT_EQ(blk.qs[i], 0);
          continue;
        }
        // Round to nearest: within half a step of x / d (a hair more for the f32 reciprocal).
        ASSERT_LE(std::fabs(blk.qs[i] - xi / d), 0.5f + 1e-4f) << "n=" << n << " block " << b << " value " << i;
        ASSERT_EQ(back[b * 32 + i], fp16_to_f32(blk.d) * blk.qs[i]);
        ASSERT_LE(std::fabs(back[b * 32 + i] - xi), 0.5f * d + 1e-3f * amax);
        max_code = std::max(max_code, std::abs(static_cast<int>(blk.qs[i])));
      }
      if (amax > 0) {
        EXPECT_EQ(max_code, 127) << "the largest magnitude gets the full code";
      }
    }
  }
}

// A paged cache of n_slots rows (n_kv heads of D) in Q8_0, from random K/V.
struct Q8Cache {
  int64_t row = 0;
  std::vector<uint8_t> k, v;
  std::vector<float> kf, vf;  // the dequantized values (what the kernels must see)
  float vmax = 0;             // max |v|
  // f32 rounding (scores of a few units, sums over ~200 positions) moves an output by a few 1e-7
  // of the largest |v| (outliers reach ~100 here): an allowance for that on top of a relative one.
  double tol(double ref) const { return 2e-5 * (1 + std::fabs(ref)) + 2e-6 * vmax; }
};

Q8Cache make_cache(int n_kv, int D, int n_slots, std::mt19937& rng) {
  Q8Cache c;
  c.row = static_cast<int64_t>(n_kv) * D;
  const size_t rb = kv_row_bytes(KvType::Q8_0, c.row);
  c.k.resize(n_slots * rb), c.v.resize(n_slots * rb);
  c.kf.resize(n_slots * c.row), c.vf.resize(n_slots * c.row);
  for (int s = 0; s < n_slots; ++s) {
    std::vector<float> kr = random_row(c.row, rng), vr = random_row(c.row, rng);
    for (auto& x : kr) x *= 0.7f;  // scores of a few units: a peaked but not one-hot softmax
    quantize_kv_row_q8_0(kr.data(), c.row, c.k.data() + s * rb);
    quantize_kv_row_q8_0(vr.data(), c.row, c.v.data() + s * rb);
    dequantize_kv_row_q8_0(c.k.data() + s * rb, c.row, c.kf.data() + s * c.row);
    dequantize_kv_row_q8_0(c.v.data() + s * rb, c.row, c.vf.data() + s * c.row);
  }
  for (float x : c.vf) c.vmax = std::max(c.vmax, std::fabs(x));
  return c;
}

class KvQ8Attention : public ::testing::TestWithParam<IsaLevel> {};

// The per-token kernel (decode below kDecodeTileMinPos positions, and heads without a tile kernel):
// attend() (the active ISA's) against attend_scalar on the same Q8_0 cache, and attend_scalar
// against a two-pass softmax in double on the dequantized values.
TEST_P(KvQ8Attention, PerTokenKernelMatchesScalar) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n_kv = 3, kvh = 2, n_slots = 211;
  for (int D : {32, 96, 64, 160}) {
    const Q8Cache c = make_cache(n_kv, D, n_slots, rng);
    for (int group : {1, 3, 5}) {
      for (int64_t n_pos : {1, 7, 33, 95, 211}) {
        std::vector<int64_t> slots(n_pos);
        for (int64_t j = 0; j < n_pos; ++j) slots[j] = (j * 53 + 11) % n_slots;  // paged: scattered
        std::vector<float> q(group * D), out(group * D, NAN), ref(group * D, NAN);
        for (auto& x : q) x = nd(rng);
        std::vector<float> scratch(attend_scratch_floats(group, D));
        AttnArgs a;
        a.q = q.data();
        a.group = group;
        a.D = D;
        a.scale = 1.0f / std::sqrt(static_cast<float>(D));
        a.n_pos = n_pos;
        a.slots = slots.data();
        a.k = c.k.data();
        a.v = c.v.data();
        a.row_elems = c.row;
        a.head_off = kvh * D;
        a.kv_type = KvType::Q8_0;
        a.scratch = scratch.data();
        a.out = ref.data();
        attend_scalar(a);
        a.out = out.data();
        attend(a);
        for (int g = 0; g < group; ++g) {
          std::vector<double> s(n_pos);
          double mx = -INFINITY, den = 0;
          for (int64_t j = 0; j < n_pos; ++j) {
            double d = 0;
            for (int i = 0; i < D; ++i) d += double(q[g * D + i]) * c.kf[slots[j] * c.row + kvh * D + i];
            mx = std::max(mx, s[j] = d * a.scale);
          }
          for (auto& x : s) den += (x = std::exp(x - mx));
          for (int i = 0; i < D; ++i) {
            double exact = 0;
            for (int64_t j = 0; j < n_pos; ++j) exact += s[j] / den * c.vf[slots[j] * c.row + kvh * D + i];
            const int e = g * D + i;
            ASSERT_NEAR(ref[e], exact, c.tol(exact))
                << "scalar: D=" << D << " group=" << group << " n_pos=" << n_pos << " element " << e;
            ASSERT_NEAR(out[e], ref[e], c.tol(ref[e]))
                << isa_name(active_isa()) << ": D=" << D << " group=" << group << " n_pos=" << n_pos << " element " << e;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, KvQ8Attention, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// The prompt path: the AVX2 and AVX-512 tile kernels, called directly (attend_tile would fall back
// to the per-token kernel if one declined), against attend_scalar per token.
TEST(KvQ8AttentionTile, TileKernelsMatchScalar) {
  struct Kernel {
    IsaLevel isa;
    bool (*fn)(const AttnTileArgs&, float*);
  };
  int ran = 0;
  for (const Kernel k : {Kernel{IsaLevel::Avx2, avx2_attend_tile}, Kernel{IsaLevel::Avx512, avx512_attend_tile}}) {
    IsaGuard guard;
    if (set_isa_level(k.isa) != k.isa) continue;
    ++ran;
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE(std::string(isa_name(k.isa)) + " seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    const int n_kv = 3, kvh = 1, n_slots = 401;
    for (int D : {32, 64, 128}) {
      const Q8Cache c = make_cache(n_kv, D, n_slots, rng);
      for (int group : {1, 3, 5}) {
        // Consecutive prompt tokens whose limits end inside, at and across 16-position blocks; an
        // odd tile of a later chunk; tokens out of order.
        const std::vector<std::vector<int64_t>> limits = {
            {1, 2, 3, 4, 5, 6, 7}, {15, 16, 17, 18, 19}, {397, 398, 399}, {45, 3, 17, 33, 101}};
        for (const auto& n_pos : limits) {
          const int n_tok = static_cast<int>(n_pos.size());
          const int64_t max_pos = *std::max_element(n_pos.begin(), n_pos.end());
          std::vector<int64_t> slots(max_pos);
          for (int64_t j = 0; j < max_pos; ++j) slots[j] = (j * 37 + 5) % n_slots;
          const int64_t stride = static_cast<int64_t>(n_kv) * group * D + 3;
          std::vector<float> q(n_tok * stride), out(n_tok * stride, NAN), ref(group * D);
          for (auto& x : q) x = nd(rng);
          AttnTileArgs a;
          a.q = q.data() + kvh * group * D;
          a.q_stride = stride;
          a.n_tok = n_tok;
          a.n_pos = n_pos.data();
          a.group = group;
          a.D = D;
          a.scale = 1.0f / std::sqrt(static_cast<float>(D));
          a.slots = slots.data();
          a.k = c.k.data();
          a.v = c.v.data();
          a.row_elems = c.row;
          a.head_off = kvh * D;
          a.kv_type = KvType::Q8_0;
          a.out = out.data() + kvh * group * D;
          a.out_stride = stride;
          std::vector<float> scratch(attend_tile_scratch_floats(n_tok, group, D));
          ASSERT_TRUE(k.fn(a, scratch.data())) << "tile kernel declined D=" << D;
          std::vector<float> sscratch(attend_scratch_floats(group, D));
          for (int t = 0; t < n_tok; ++t) {
            AttnArgs s;
            s.q = a.q + t * stride;
            s.group = group;
            s.D = D;
            s.scale = a.scale;
            s.n_pos = n_pos[t];
            s.slots = slots.data();
            s.k = a.k;
            s.v = a.v;
            s.row_elems = c.row;
            s.head_off = a.head_off;
            s.kv_type = KvType::Q8_0;
            s.out = ref.data();
            s.scratch = sscratch.data();
            attend_scalar(s);
            for (int i = 0; i < group * D; ++i)
              ASSERT_NEAR(a.out[t * stride + i], ref[i], c.tol(ref[i]))
                  << "D=" << D << " group=" << group << " token " << t << " (n_pos " << n_pos[t] << ") element " << i;
          }
        }
      }
    }
  }
  if (ran == 0) GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512";
}

}  // namespace
}  // namespace rocforge::cpu
