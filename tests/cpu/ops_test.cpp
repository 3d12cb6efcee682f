// Elementwise ops of ops.h at every ISA level against double references on fresh random inputs.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "test_support.h"

namespace rocforge::cpu {
namespace {

struct IsaGuard {
  IsaLevel saved = active_isa();
  ~IsaGuard() { set_isa_level(saved); }
};

class Ops : public ::testing::TestWithParam<IsaLevel> {};

// silu(g) * u over typical activations, saturating ones (|g| up to 200, where e^-g over- or
// underflows) and lengths with a partial 8- or 16-lane tail, against a double reference.
void check_swiglu(void (*fn)(float*, const float*, int64_t)) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::uniform_real_distribution<float> wide(-200.0f, 200.0f);
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 1000, 8192}) {
    std::vector<float> g(n), u(n);
    for (int64_t i = 0; i < n; ++i) {
      g[i] = i % 7 == 3 ? wide(rng) : nd(rng);
      u[i] = nd(rng);
    }
    // Guard elements after the end: a tail that writes past n would change them.
    std::vector<float> got = g;
    got.resize(n + 8, 12345.0f);
    fn(got.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = double(g[i]) / (1.0 + std::exp(-double(g[i]))) * u[i];
      ASSERT_NEAR(got[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "n=" << n << " i=" << i << " g=" << g[i];
    }
    for (int64_t i = n; i < n + 8; ++i) ASSERT_EQ(got[i], 12345.0f) << "wrote past the end, n=" << n;
  }
}

// Through ops.h's dispatch at each level.
TEST_P(Ops, SwigluMatchesDoubleReference) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  check_swiglu(swiglu);
}

// The AVX2 kernel itself, so the test fails if it is wrong even should the dispatch skip it.
TEST(OpsKernel, Avx2SwigluMatchesDoubleReference) {
  IsaGuard guard;
  if (set_isa_level(IsaLevel::Avx2) != IsaLevel::Avx2) GTEST_SKIP() << "this CPU cannot run avx2";
  check_swiglu(avx2_swiglu);
}

INSTANTIATE_TEST_SUITE_P(Isa, Ops, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace rocforge::cpu
