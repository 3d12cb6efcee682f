// The attention kernel (every ISA level) against a two-pass softmax computed in double.
#include <cmath>
#include <random>
#include <vector>

#include "core/half.h"
#include "cpu/attention.h"
#include "cpu/cpu_features.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

struct IsaGuard {
  IsaLevel saved = active_isa();
  ~IsaGuard() { set_isa_level(saved); }
};

class Attention : public ::testing::TestWithParam<IsaLevel> {};

TEST_P(Attention, MatchesTwoPassSoftmaxForGqaPagedCache) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(17);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (bool f16 : {true, false}) {
    for (int D : {64, 40, 7}) {
      for (int64_t n_pos : {1, 2, 31, 32, 33, 100}) {
        const int group = 4, n_kv = 2, n_slots = 128;
        const int64_t row = static_cast<int64_t>(n_kv) * D;
        std::vector<float> k32(n_slots * row), v32(n_slots * row);
        std::vector<uint16_t> k16(n_slots * row), v16(n_slots * row);
        for (int64_t i = 0; i < n_slots * row; ++i) {
          k16[i] = f32_to_fp16(nd(rng) * 2.0f);
          v16[i] = f32_to_fp16(nd(rng));
          // The reference sees exactly the stored values.
          k32[i] = f16 ? fp16_to_f32(k16[i]) : nd(rng) * 2.0f;
          v32[i] = f16 ? fp16_to_f32(v16[i]) : nd(rng);
        }
        // Paged: positions land on scattered slots.
        std::vector<int64_t> slots(n_pos);
        for (int64_t j = 0; j < n_pos; ++j) slots[j] = (j * 37 + 5) % n_slots;
        std::vector<float> q(group * D), out(group * D, NAN);
        for (auto& x : q) x = nd(rng);
        std::vector<float> scratch(attend_scratch_floats(group, D));
        const int kvh = 1;
        AttnArgs a;
        a.q = q.data();
        a.group = group;
        a.D = D;
        a.scale = 1.0f / std::sqrt(static_cast<float>(D));
        a.n_pos = n_pos;
        a.slots = slots.data();
        a.k = f16 ? static_cast<const void*>(k16.data()) : k32.data();
        a.v = f16 ? static_cast<const void*>(v16.data()) : v32.data();
        a.row_elems = row;
        a.head_off = kvh * D;
        a.kv_type = f16 ? KvType::F16 : KvType::F32;
        a.out = out.data();
        a.scratch = scratch.data();
        attend(a);
        for (int g = 0; g < group; ++g) {
          std::vector<double> s(n_pos);
          double mx = -INFINITY, den = 0;
          for (int64_t j = 0; j < n_pos; ++j) {
            double d = 0;
            for (int i = 0; i < D; ++i) d += double(q[g * D + i]) * k32[slots[j] * row + kvh * D + i];
            s[j] = d * a.scale;
            mx = std::max(mx, s[j]);
          }
          for (auto& x : s) den += (x = std::exp(x - mx));
          for (int i = 0; i < D; ++i) {
            double ref = 0;
            for (int64_t j = 0; j < n_pos; ++j) ref += s[j] / den * v32[slots[j] * row + kvh * D + i];
            ASSERT_NEAR(out[g * D + i], ref, 2e-5 * (1 + std::fabs(ref)))
                << "f16=" << f16 << " D=" << D << " n_pos=" << n_pos << " head " << g << " dim " << i;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Attention, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace rocforge::cpu
