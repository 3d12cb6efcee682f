// Generator::feed_view: the logits as a view of the executor's buffer, and sample()'s guard against
// a view another step has overwritten (never a silent wrong token).
#include <gtest/gtest.h>

#include "rocforge/engine.h"
#include "rocforge/error.h"
#include "test_support.h"

namespace rocforge {
namespace {

std::unique_ptr<Engine> load_stories(const std::filesystem::path& model) {
  EngineOptions o;
  o.model_path = model.string();
  o.device = "cpu";
  o.n_threads = 1;
  o.ctx_size = 256;
  return Engine::load(o);
}

TEST(GeneratorView, ViewHoldsWhatFeedCopies) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto e = load_stories(model);
  const auto prompt = e->tokenizer().encode("Once upon a time", true);
  Generator copied(*e, SamplingParams::greedy());
  const std::vector<float> expected = copied.feed(prompt);
  Generator viewed(*e, SamplingParams::greedy());
  const std::span<const float> view = viewed.feed_view(prompt);
  ASSERT_EQ(view.size(), expected.size());
  EXPECT_EQ(std::vector<float>(view.begin(), view.end()), expected);
  EXPECT_EQ(viewed.sample(), copied.sample());
}

TEST(GeneratorView, SampleRefusesAViewAnotherStepOverwrote) {
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  auto e = load_stories(model);
  const auto& tok = e->tokenizer();
  Generator a(*e, SamplingParams::greedy()), b(*e, SamplingParams::greedy());
  a.feed_view(tok.encode("Once upon a time", true));
  b.feed_view(tok.encode("The dog ran", true));  // rewrites the buffer behind a's view
  EXPECT_THROW(a.sample(), Error);
  EXPECT_NO_THROW(b.sample());
  // feed() keeps its own copy: later steps on the engine leave it intact.
  const std::vector<float> kept = a.feed(tok.encode(" there", false));
  const int32_t from_copy = a.sample();
  b.feed_view(tok.encode(" away", false));
  EXPECT_EQ(a.sample(), from_copy);
  EXPECT_EQ(kept.size(), static_cast<size_t>(e->n_vocab()));
}

}  // namespace
}  // namespace rocforge
