// The tiled prompt attention (attend_tile) against attend_scalar run per token, on fresh random
// K/V in a paged cache: f16, f32 and Q8_0 caches, GQA groups, head sizes with and without the tiled
// kernel, causal limits that end inside, at and across 16-position blocks, and tokens that are
// not consecutive positions (a tile's tokens need not be).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/half.h"
#include "cpu/attention.h"
#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/kv_q8.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

struct IsaGuard {
  IsaLevel saved = active_isa();
  ~IsaGuard() { set_isa_level(saved); }
};

struct Case {
  KvType kv;
  int D, group, n_tok;
  std::vector<int64_t> n_pos;  // per token
};

// A tile kernel called directly (avx2_attend_tile, ...): nullptr runs attend_tile's dispatch.
using TileFn = bool (*)(const AttnTileArgs&, float*);

// same_as: a kernel attend_tile's dispatch must have taken for this case; its output on the same
// inputs must be bit-identical (so the case tests that kernel, not a silent fallback).
void check(const Case& c, std::mt19937& rng, TileFn direct = nullptr, TileFn same_as = nullptr) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int n_kv = 2, kvh = 1, n_slots = 700;
  const int64_t row = static_cast<int64_t>(n_kv) * c.D;
  const int64_t max_pos = *std::max_element(c.n_pos.begin(), c.n_pos.end());
  std::vector<float> k32(n_slots * row), v32(n_slots * row);
  for (int64_t i = 0; i < n_slots * row; ++i) k32[i] = nd(rng) * 2.0f, v32[i] = nd(rng);
  // The cache in c.kv's layout (rows of kv_row_bytes): both kernels read the same stored values.
  const size_t rb = kv_row_bytes(c.kv, row);
  std::vector<uint8_t> kc(n_slots * rb), vc(n_slots * rb);
  for (int64_t r = 0; r < n_slots; ++r)
    for (auto [src, dst] : {std::pair{k32.data(), kc.data()}, std::pair{v32.data(), vc.data()}}) {
      const float* x = src + r * row;
      uint8_t* out = dst + r * rb;
      if (c.kv == KvType::F32) std::memcpy(out, x, rb);
      else if (c.kv == KvType::Q8_0) quantize_kv_row_q8_0(x, row, out);
      else
        for (int64_t i = 0; i < row; ++i) {
          const uint16_t h = f32_to_fp16(x[i]);
          std::memcpy(out + 2 * i, &h, 2);
        }
    }
  std::vector<int64_t> slots(max_pos);  // paged: scattered slots
  for (int64_t j = 0; j < max_pos; ++j) slots[j] = (j * 37 + 5) % n_slots;
  const int64_t stride = static_cast<int64_t>(n_kv) * c.group * c.D + 3;  // q/out rows of other heads in between
  std::vector<float> q(c.n_tok * stride), out(c.n_tok * stride, NAN), ref(c.group * c.D);
  for (auto& x : q) x = nd(rng);

  AttnTileArgs a;
  a.q = q.data() + kvh * c.group * c.D;
  a.q_stride = stride;
  a.n_tok = c.n_tok;
  a.n_pos = c.n_pos.data();
  a.group = c.group;
  a.D = c.D;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.D));
  a.slots = slots.data();
  a.k = kc.data();
  a.v = vc.data();
  a.row_elems = row;
  a.head_off = kvh * c.D;
  a.kv_type = c.kv;
  a.out = out.data() + kvh * c.group * c.D;
  a.out_stride = stride;
  std::vector<float> scratch(attend_tile_scratch_floats(c.n_tok, c.group, c.D));
  if (direct) {
    // The kernel must take the shape itself: a silent fallback would not test it.
    ASSERT_TRUE(direct(a, scratch.data())) << "tile kernel declined D=" << c.D << " group=" << c.group;
  } else {
    attend_tile(a, scratch.data());
  }
  if (same_as) {
    std::vector<float> again(out.size(), NAN);
    AttnTileArgs b = a;
    b.out = again.data() + kvh * c.group * c.D;
    ASSERT_TRUE(same_as(b, scratch.data())) << "tile kernel declined D=" << c.D << " group=" << c.group;
    for (int t = 0; t < c.n_tok; ++t)
      for (int i = 0; i < c.group * c.D; ++i)
        ASSERT_EQ(std::memcmp(&a.out[t * stride + i], &b.out[t * stride + i], sizeof(float)), 0)
            << "attend_tile did not take the tile kernel: kv=" << kv_type_name(c.kv) << " D=" << c.D
            << " group=" << c.group << " n_pos " << c.n_pos[t];
  }

  std::vector<float> sscratch(attend_scratch_floats(c.group, c.D));
  for (int t = 0; t < c.n_tok; ++t) {
    AttnArgs s;
    s.q = a.q + t * stride;
    s.group = c.group;
    s.D = c.D;
    s.scale = a.scale;
    s.n_pos = c.n_pos[t];
    s.slots = slots.data();
    s.k = a.k;
    s.v = a.v;
    s.row_elems = row;
    s.head_off = a.head_off;
    s.kv_type = c.kv;
    s.out = ref.data();
    s.scratch = sscratch.data();
    attend_scalar(s);
    for (int i = 0; i < c.group * c.D; ++i)
      ASSERT_NEAR(a.out[t * stride + i], ref[i], 2e-5 * (1 + std::fabs(ref[i])))
          << "kv=" << kv_type_name(c.kv) << " D=" << c.D << " group=" << c.group << " token " << t << " (n_pos "
          << c.n_pos[t] << ") element " << i << " isa=" << isa_name(active_isa());
  }
  // Nothing outside this kv head's columns was written.
  for (int t = 0; t < c.n_tok; ++t) {
    for (int64_t i = 0; i < stride; ++i) {
      if (i < kvh * c.group * c.D || i >= (kvh + 1) * c.group * c.D) {
        ASSERT_TRUE(std::isnan(out[t * stride + i])) << "wrote outside the head, token " << t << " index " << i;
      }
    }
  }
}

class AttentionTile : public ::testing::TestWithParam<IsaLevel> {};

TEST_P(AttentionTile, MatchesPerTokenScalar) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(31);
  for (KvType kv : {KvType::F16, KvType::F32, KvType::Q8_0}) {
    // 40: no tiled kernel, per-token fallback (Q8_0 needs a multiple of 32: 96 instead).
    for (int D : {64, 128, 32, kv == KvType::Q8_0 ? 96 : 40}) {
      for (int group : {4, 1, 3, 8}) {
        // A prompt's consecutive tokens (causal limits 1..8, 13..20, crossing block edges).
        check({kv, D, group, 8, {1, 2, 3, 4, 5, 6, 7, 8}}, rng);
        check({kv, D, group, 8, {13, 14, 15, 16, 17, 18, 19, 20}}, rng);
        // Later chunk of a long prompt; a tile of 3 tokens; tokens with gaps and out of order.
        check({kv, D, group, 5, {596, 597, 598, 599, 600}}, rng);
        check({kv, D, group, 3, {33, 34, 35}}, rng);
        check({kv, D, group, 4, {50, 3, 17, 32}}, rng);
      }
    }
  }
  // One token (decode): the tile kernel from kDecodeTileMinPos positions, per token below.
  check({KvType::F16, 64, 4, 1, {77}}, rng);
  check({KvType::Q8_0, 64, 4, 1, {77}}, rng);
}

// A decode token (a tile of one) through attend_tile's dispatch: short contexts (per-token kernel),
// and from kDecodeTileMinPos positions on, where it must take the ISA's tile kernel (checked
// bit-exact against it), all against attend_scalar. Fresh random inputs each run (the seed is
// printed on failure); odd head counts, positions ending inside, at and past block edges, and a
// context of 699 positions (most of the 700 scattered slots).
TEST_P(AttentionTile, DecodeTokenMatchesScalar) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  const TileFn kernel = GetParam() == IsaLevel::Avx512 ? avx512_attend_tile
                        : GetParam() == IsaLevel::Avx2 ? avx2_attend_tile
                                                       : nullptr;
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (KvType kv : {KvType::F16, KvType::Q8_0, KvType::F32}) {
    for (int D : {64, 128, 32, kv == KvType::Q8_0 ? 96 : 40}) {
      const bool has_kernel = kernel && (D == 32 || D == 64 || D == 128);
      for (int group : {4, 1, 3, 5, 8}) {
        for (int64_t n_pos : {1, 5, 7, 8, 9, 15, 16, 17, 31, 33, 250, 699}) {
          const bool tiled = has_kernel && n_pos >= kDecodeTileMinPos;
          check({kv, D, group, 1, {n_pos}}, rng, nullptr, tiled ? kernel : nullptr);
        }
      }
    }
  }
}

// The AVX2 tile kernel itself (attend_tile at the AVX2 level dispatches to it, but would fall back
// to the per-token kernel silently if it declined): every head size it claims, f16, f32 and Q8_0 caches,
// GQA groups that do and do not fill its 4-row score blocks, causal limits inside and across blocks.
TEST(AttentionTileKernel, Avx2MatchesPerTokenScalar) {
  IsaGuard guard;
  if (set_isa_level(IsaLevel::Avx2) != IsaLevel::Avx2) GTEST_SKIP() << "this CPU cannot run avx2";
  std::mt19937 rng(57);
  for (KvType kv : {KvType::F16, KvType::F32, KvType::Q8_0}) {
    for (int D : {32, 64, 128}) {
      for (int group : {4, 1, 5}) {
        check({kv, D, group, 8, {1, 2, 3, 4, 5, 6, 7, 8}}, rng, avx2_attend_tile);
        check({kv, D, group, 6, {9, 15, 16, 17, 31, 33}}, rng, avx2_attend_tile);
        check({kv, D, group, 2, {300, 301}}, rng, avx2_attend_tile);
      }
    }
  }
  // Shapes it has no kernel for are declined (the caller then runs attend per token).
  AttnTileArgs a;
  const int64_t n_pos[2] = {1, 2};
  a.n_tok = 2;
  a.n_pos = n_pos;
  a.D = 40;
  EXPECT_FALSE(avx2_attend_tile(a, nullptr));
}

INSTANTIATE_TEST_SUITE_P(Isa, AttentionTile, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace rocforge::cpu
