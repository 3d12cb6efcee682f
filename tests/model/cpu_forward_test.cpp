// CpuForward's huge-page copy of the weights (cpu_forward.cpp, HugeWeights) must change addresses
// only: the logits of a prompt and of decode steps must be bit-identical with and without it.
#include <cstdlib>
#include <cstring>

#include "model/cpu_forward.h"
#include "test_support.h"

namespace rocforge {
namespace {

// Runs a 5-token prompt then 3 decode steps on one sequence; returns every logits row.
std::vector<float> run(const Model& m, cpu::ThreadPool& pool, size_t* huge_bytes) {
  KvConfig kv;
  kv.n_blocks = 4;
  kv.block_size = 16;
  CpuForward fwd(m, kv, pool, 0, m.config().n_layer);
  *huge_bytes = fwd.huge_weight_bytes();
  std::vector<float> all, logits, x;
  const int32_t toks[8] = {1, 403, 385, 11, 27, 99, 5, 250};
  auto step = [&](int32_t first, int32_t count) {
    Batch b;
    b.block_tables = {{0, 1, 2, 3}};
    for (int32_t t = 0; t < count; ++t) b.add(toks[first + t] % m.config().n_vocab, first + t, 0, true);
    x.assign(static_cast<size_t>(count) * m.config().n_embd, 0.0f);
    fwd.embed(b, x.data());
    fwd.layers(b, x.data());
    fwd.head(b, x.data(), logits);
    all.insert(all.end(), logits.begin(), logits.end());
  };
  step(0, 5);
  for (int32_t p = 5; p < 8; ++p) step(p, 1);
  return all;
}

TEST(CpuForward, HugePageWeightCopyGivesIdenticalLogits) {
  ROCFORGE_REQUIRE_FIXTURE(path, "models/stories260K/stories260K.gguf");
  const auto model = Model::load(path.string());
  cpu::ThreadPool pool(2);
  const char* saved = std::getenv("ROCFORGE_CPU_HUGEPAGES");
  const std::string saved_value = saved ? saved : "";
  size_t with_bytes = 0, without_bytes = 0;
  unsetenv("ROCFORGE_CPU_HUGEPAGES");
  const auto with = run(*model, pool, &with_bytes);
  setenv("ROCFORGE_CPU_HUGEPAGES", "0", 1);
  const auto without = run(*model, pool, &without_bytes);
  if (saved) setenv("ROCFORGE_CPU_HUGEPAGES", saved_value.c_str(), 1);
  else unsetenv("ROCFORGE_CPU_HUGEPAGES");

  EXPECT_EQ(without_bytes, 0u) << "ROCFORGE_CPU_HUGEPAGES=0 must read the model's mapping";
  ASSERT_EQ(with.size(), without.size());
  ASSERT_EQ(with.size(), static_cast<size_t>(8) * model->config().n_vocab);
  EXPECT_EQ(std::memcmp(with.data(), without.data(), with.size() * sizeof(float)), 0);
  if (with_bytes == 0) GTEST_SKIP() << "no huge-page copy on this machine (THP off or too little memory): only the plain path ran";
}

}  // namespace
}  // namespace rocforge
