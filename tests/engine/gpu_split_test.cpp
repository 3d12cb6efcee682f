// A model split over several GPU stages (--device gpu:A,B,...) against the same model on one GPU.
// Stages on one card (gpu:0,0) run wherever a GPU exists, so the hand-over between stages (the event,
// the peer copy, each stage's own graphs and K/V pools) is checked on every GPU run; two cards
// (gpu:0,1 and gpu:1,0) where the backend sees them, else that test SKIPs with why. SKIPPED where no
// GPU exists.
#include <cmath>
#include <fstream>
#include <sstream>

#include "gpu_engine_support.h"
#include "model/batch.h"
#include "model/executor.h"
#include "model/gpu_executor.h"
#include "rocforge/device.h"
#include "rocforge/engine.h"
#include "test_support.h"
#include "gpu/backend_api.h"

namespace rocforge {
namespace {

using test::have_gpu;

using test::rel_rms;

// Two sequences' worth of cache: the steps below decode two at once.
std::unique_ptr<Engine> load(const std::filesystem::path& model, const std::string& dev, int gpu_layers = -1) {
  return test::load_engine(model, dev, gpu_layers, /*n_parallel=*/2);
}

std::string reference_text() {
  std::ifstream in(test::data_dir() / "models/stories260K/greedy_bos_200.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `split` (several stages) against `one` (the same layers' placement on one stage): the reference
// greedy text, then the same batches through both executors - a prompt, decode steps (graphed),
// a two-sequence prompt and decode steps (the server's batches), one with the sequences' tokens
// in the other order (not graphed) - and device-sampled generation with a seed.
void expect_same_steps(Engine& split, Engine& one) {
  EXPECT_NE(split.executor().device_name().find("layers"), std::string::npos) << "not split";
  const int bs = split.executor().kv_config().block_size;
  ASSERT_EQ(bs, one.executor().kv_config().block_size);
  const auto a = one.tokenizer().encode("Once upon a time", true);
  const auto b = one.tokenizer().encode("The little cat sat on the mat and looked at the bird", true);
  const int per_seq = (static_cast<int>(b.size()) + 8) / bs + 1;
  std::vector<std::vector<int32_t>> tables(2);
  for (int s = 0; s < 2; ++s)
    for (int k = 0; k < per_seq; ++k) tables[s].push_back(s * per_seq + k);
  auto compare = [&](const Batch& batch, const char* step) {
    std::vector<float> ls, lo;
    split.executor().forward(batch, ls);
    one.executor().forward(batch, lo);
    ASSERT_EQ(ls.size(), lo.size()) << step;
    ASSERT_EQ(ls.size(), static_cast<size_t>(batch.n_logits()) * one.n_vocab()) << step;
    // The same kernels on the same values: the hand-over adds the residual as the next layer's
    // norm would, so the logits agree to rounding at most.
    EXPECT_LT(rel_rms(lo, ls), 1e-5) << step;
  };
  Batch p;  // sequence 0 alone: a prompt, then decode steps
  p.block_tables = {tables[0]};
  for (size_t i = 0; i < a.size(); ++i) p.add(a[i], static_cast<int32_t>(i), 0, i + 1 == a.size());
  compare(p, "prompt");
  int32_t na = static_cast<int32_t>(a.size());
  for (int32_t tok : {300, 301, 302}) {
    Batch d;
    d.block_tables = {tables[0]};
    d.add(tok, na++, 0, true);
    compare(d, "decode step");
  }
  compare(test::two_sequence_prompt(a, b, tables), "two-sequence prompt");  // fresh, on the blocks
  na = static_cast<int32_t>(a.size());
  int32_t nb = static_cast<int32_t>(b.size());
  for (int step = 0; step < 3; ++step)
    compare(test::two_sequence_decode(310 + step, na++, 320 + step, nb++, tables), "two-sequence decode step");
  Batch r;
  r.block_tables = tables;
  r.add(330, nb++, 1, true);
  r.add(331, na++, 0, true);
  compare(r, "two sequences, tokens in the other order");

  // Sampled on the head's device: the same tokens for the same seed.
  SamplingParams sp;
  sp.temperature = 0.9f, sp.top_k = 40, sp.top_p = 0.95f, sp.seed = 7;
  Generator gs(split, sp), go1(one, sp);
  GenerateOptions go;
  go.max_tokens = 48;
  go.ignore_eos = true;
  EXPECT_EQ(gs.generate({split.tokenizer().bos_id()}, go).tokens, go1.generate({one.tokenizer().bos_id()}, go).tokens);
}

// stories260K: the reference greedy text, then expect_same_steps.
void expect_split_matches(Engine& split, Engine& one, const std::string& what) {
  SCOPED_TRACE(what + " (" + split.executor().device_name() + ")");
  Generator g(split, SamplingParams::greedy());
  GenerateOptions go;
  go.max_tokens = 200;
  go.ignore_eos = true;
  EXPECT_EQ(g.generate({split.tokenizer().bos_id()}, go).text + "\n", reference_text());
  expect_same_steps(split, one);
}

TEST(GpuSplit, StagesOnOneGpuMatchOneStage) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  ROCFORGE_REQUIRE_FIXTURE(text, "models/stories260K/greedy_bos_200.txt");
  auto one = load(model, "gpu:0");
  const int n_layer = one->model().config().n_layer;
  ASSERT_GE(n_layer, 3);
  for (const char* dev : {"gpu:0,0", "gpu:0,0,0"}) {
    auto split = load(model, dev);
    expect_split_matches(*split, *one, dev);
  }
  // Hybrid: the first two layers on the CPU, the rest over two stages, against the same CPU layers
  // with the rest on one stage.
  auto hybrid_one = load(model, "gpu:0", n_layer - 2);
  auto hybrid_split = load(model, "gpu:0,0", n_layer - 2);
  EXPECT_NE(hybrid_split->executor().device_name().find("on the CPU"), std::string::npos)
      << hybrid_split->executor().device_name();
  expect_split_matches(*hybrid_split, *hybrid_one, "gpu:0,0, two layers on the CPU");
}

TEST(GpuSplit, TwoGpusMatchOne) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  ROCFORGE_REQUIRE_FIXTURE(text, "models/stories260K/greedy_bos_200.txt");
  const auto sel = device::select_device(device::parse_device_spec("gpu"), {}, /*quiet=*/true);
  if (sel.gpus.size() < 2) GTEST_SKIP() << "one GPU only (" << sel.description << ")";
  auto one = load(model, "gpu:0");
  for (const char* dev : {"gpu:0,1", "gpu:1,0"}) {
    auto split = load(model, dev);
    expect_split_matches(*split, *one, dev);
  }
}

// Synth models whose matrices take the staged int8 kernels (forced wherever they apply: shared
// memory beyond 48 KB, an attribute each device sets for itself) and MoE layers, over two GPUs
// (or, with one, two stages on it) against one.
TEST(GpuSplit, SynthModelsOverTwoGpusMatchOne) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(vocab, "vocab/ggml-vocab-llama-bpe.gguf");
  const auto sel = device::select_device(device::parse_device_spec("gpu"), {}, /*quiet=*/true);
  const std::string dev = sel.gpus.size() >= 2 ? "gpu:0,1" : "gpu:0,0";
  const auto dir = test::temp_dir();
  struct Staged {  // the staged kernels wherever they apply, for the engines made while this lives
    const rf_gpu_api& api;
    explicit Staged(const rf_gpu_api& a) : api(a) { api.matvec_q8_set_kernel(1); }
    ~Staged() { api.matvec_q8_set_kernel(-1); }
  } staged(sel.backend->api());
  for (const auto& [preset, type] : {std::pair{"tiny", "q4_k_m"}, std::pair{"tiny", "q8_0"}, std::pair{"moe-tiny", "q4_0"}}) {
    const std::string path = test::synth_file(dir, std::string(preset) + "-" + type + ".gguf", preset, type, vocab);
    SCOPED_TRACE(path + " on " + dev);
    auto one = load(path, "gpu:0");
    auto split = load(path, dev);
    expect_same_steps(*split, *one);
  }
}

// Plain --device gpu with the first GPU too small for the model: the layers that do not fit go to
// the next GPU (two or more here) or else to the CPU (one GPU), and the text stays the reference's.
// ROCFORGE_GPU_FREE_MB makes the first GPU small: the head and two layers' worth of free memory.
TEST(GpuSplit, PlainGpuSpillsToTheNextGpuThenTheCpu) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model_path, "models/stories260K/stories260K.gguf");
  ROCFORGE_REQUIRE_FIXTURE(text, "models/stories260K/greedy_bos_200.txt");
  EngineOptions o;
  o.model_path = model_path.string();
  o.device = "gpu";
  o.n_threads = 1;
  o.ctx_size = 65536;  // K/V pools of 32 MiB a layer here: the limit below falls between layers
  o.n_parallel = 4;
  const auto model = Model::load(o.model_path);
  KvConfig kv;
  kv.block_size = o.kv_block_size;
  kv.type = KvType::F16;
  kv.n_blocks = static_cast<int32_t>((o.ctx_size + kv.block_size - 1) / kv.block_size * o.n_parallel);
  device::GpuInfo big;
  big.free_memory = 1ull << 40;
  const GpuPlan two = plan_gpu_layers(*model, kv, big, 2, o.n_batch);
  const uint64_t mb = ((512ull << 20) + two.bytes + (1 << 20) - 1) >> 20;  // + the planner's reserve
  ::setenv("ROCFORGE_GPU_FREE_MB", std::to_string(mb).c_str(), 1);
  std::unique_ptr<Engine> e;
  try {
    e = Engine::load(o);
  } catch (...) {
    ::unsetenv("ROCFORGE_GPU_FREE_MB");
    throw;
  }
  ::unsetenv("ROCFORGE_GPU_FREE_MB");
  const std::string name = e->executor().device_name();
  const auto sel = device::select_device(device::parse_device_spec("gpu"), {}, /*quiet=*/true);
  const int n_layer = model->config().n_layer;
  if (sel.gpus.size() >= 2) {  // GPU 1 takes layers before GPU 0's two; the CPU at most what is left
    EXPECT_NE(name.find("gpu 1"), std::string::npos) << name;
    EXPECT_EQ(name.find("hybrid: " + std::to_string(n_layer - 2) + " of"), std::string::npos) << name;
  } else {
    EXPECT_NE(name.find("hybrid: " + std::to_string(n_layer - 2) + " of"), std::string::npos) << name;
  }
  Generator g(*e, SamplingParams::greedy());
  GenerateOptions go;
  go.max_tokens = 200;
  go.ignore_eos = true;
  EXPECT_EQ(g.generate({e->tokenizer().bos_id()}, go).text + "\n", reference_text()) << name;
}

// A list naming a GPU that does not exist: a clear error before anything loads.
TEST(GpuSplit, ListBeyondTheDevicesIsAClearError) {
  std::string why;
  if (!have_gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  ROCFORGE_REQUIRE_FIXTURE(model, "models/stories260K/stories260K.gguf");
  try {
    load(model, "gpu:0,63");
    ADD_FAILURE() << "gpu:0,63 loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gpu:63"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rocforge
