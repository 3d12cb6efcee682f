// Elementwise ops of ops.h at every ISA level against double references on fresh random inputs.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_features.h"
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
// underflows) and lengths with a partial 16-lane tail.
TEST_P(Ops, SwigluMatchesDoubleReference) {
  IsaGuard guard;
  if (set_isa_level(GetParam()) != GetParam()) GTEST_SKIP() << "this CPU cannot run " << isa_name(GetParam());
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::uniform_real_distribution<float> wide(-200.0f, 200.0f);
  for (int64_t n : {1, 15, 16, 17, 1000, 8192}) {
    std::vector<float> g(n), u(n);
    for (int64_t i = 0; i < n; ++i) {
      g[i] = i % 7 == 3 ? wide(rng) : nd(rng);
      u[i] = nd(rng);
    }
    std::vector<float> got = g;
    swiglu(got.data(), u.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = double(g[i]) / (1.0 + std::exp(-double(g[i]))) * u[i];
      ASSERT_NEAR(got[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "n=" << n << " i=" << i << " g=" << g[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Ops, ::testing::Values(IsaLevel::Scalar, IsaLevel::Avx2, IsaLevel::Avx512),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace rocforge::cpu
