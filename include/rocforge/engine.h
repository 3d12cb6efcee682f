// rocforge/engine.h - a loaded model ready to generate: weights, tokenizer, an executor on the
// chosen device, and the paged KV cache. Engine::step runs one batched forward for any number of
// sequences (the server's continuous batching); Generator drives a single sequence (CLI).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "rocforge/kv_type.h"
#include "rocforge/model.h"
#include "rocforge/sampler.h"
#include "rocforge/tokenizer.h"

namespace rocforge {

class Executor;
class KvPool;
struct Batch;
struct KvSequence;

struct EngineOptions {
  std::string model_path;
  int n_threads = 0;        // 0: all cores
  int ctx_size = 0;         // positions per sequence; 0: min(training context, 4096)
  int n_parallel = 1;       // sequences that may hold KV at once (KV pool = ctx_size * n_parallel)
  int n_batch = 512;        // max tokens per forward step (prompt chunks)
  KvType kv_type = KvType::F16;  // K/V cache element type (--kv-type f16 | f32 | q8_0)
  int kv_block_size = 16;
  std::string device = "auto";  // auto | cpu | gpu[:N]
  int gpu_layers = -1;          // -1: as many as fit (auto), else exactly N layers on the GPU
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const EngineOptions& opts);
  ~Engine();

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  Executor& executor() { return *executor_; }
  KvPool& kv_pool() { return *pool_; }
  const EngineOptions& options() const { return opts_; }
  int ctx_size() const { return opts_.ctx_size; }
  int n_vocab() const { return model_->config().n_vocab; }
  double load_seconds() const { return load_seconds_; }

  // One unit of work for a step: append `tokens` to `seq` (whose blocks were reserved by the
  // caller with KvSequence::reserve), and produce logits after the last one if want_logits.
  struct Work {
    KvSequence* seq;
    const int32_t* tokens;
    int32_t n_tokens;
    bool want_logits;
  };
  // Runs every work item in one forward pass. logits: one row of n_vocab per item wanting logits,
  // in work order. Commits the tokens to the sequences.
  void step(const std::vector<Work>& work, std::vector<float>& logits);
  // As step, returning a view of the logits rows (Executor::forward_view: the executor's buffer,
  // valid until the next step that lands logits on the host; executor().view_serial() tells).
  std::span<const float> step_view(const std::vector<Work>& work);
  // As step, with the next token of every item wanting logits sampled where the logits are (GPU:
  // only the ids come back): item i's row with *params[i], draw u[i] in [0, 1) and, where params[i]
  // has penalties, histories[i] (the sequence's tokens, this step's included; may be empty where no
  // item has penalties), into tokens (work order, items wanting logits only). Returns false, having
  // run and committed nothing, where the executor cannot (CPU, or parameters its sampler does not
  // reproduce): the caller then uses step.
  bool step_sample(const std::vector<Work>& work, const std::vector<const SamplingParams*>& params,
                   const std::vector<float>& u, const std::vector<std::span<const int32_t>>& histories,
                   std::vector<int32_t>& tokens);
  // Decode steps of one sequence chained where the logits are (Executor::forward_sample_steps):
  // w feeds its one token, then u.size() steps follow one another, step k sampling tokens[k] with p
  // and u[k] and feeding it to step k + 1; penalties count `history` (ending with w's token) and the
  // tokens sampled before. Reserves the positions and commits only w's token: a caller keeping
  // tokens[k] (k < u.size() - 1) commits it, step k + 1's input, with seq->commit. Returns false,
  // having committed nothing, where the executor cannot chain or the context or pool has no room for
  // the steps. chain_steps(): the chain length the executor prefers (0: none).
  bool step_sample_chain(const Work& w, const SamplingParams& p, const std::vector<float>& u,
                         std::span<const int32_t> history, std::vector<int32_t>& tokens);
  int chain_steps() const;

 private:
  Engine() = default;
  Batch batch_of(const std::vector<Work>& work) const;  // validated against the context size
  EngineOptions opts_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<KvPool> pool_;
  double load_seconds_ = 0;
};

// Why generation ended.
enum class StopReason { None, MaxTokens, EndOfGeneration, StopString, ContextFull, Cancelled };
const char* stop_reason_name(StopReason r);

struct GenerateOptions {
  int32_t max_tokens = 128;            // < 0: until EOG or context full
  std::vector<std::string> stop;       // stop strings (not included in the output)
  bool ignore_eos = false;
};

struct GenerateResult {
  std::string text;
  std::vector<int32_t> tokens;
  StopReason reason = StopReason::None;
  int32_t n_prompt = 0;
  double prompt_seconds = 0, gen_seconds = 0;
};

// One sequence on an Engine (the CLI, perplexity, bench). Not thread-safe.
class Generator {
 public:
  Generator(Engine& engine, const SamplingParams& params);
  ~Generator();

  // Feeds tokens (in chunks of n_batch) and returns the logits after the last one ([n_vocab]).
  // Throws Error if the context would overflow.
  const std::vector<float>& feed(const std::vector<int32_t>& tokens);
  // As feed, without copying the logits out of the executor: the view is valid until the next step
  // on this engine (sample() checks). Decode loops use it (a 128K vocabulary is 0.5 MB per token).
  std::span<const float> feed_view(const std::vector<int32_t>& tokens);
  // Logits of every fed position (for perplexity): feeds `tokens` and fills all_logits [n, n_vocab].
  void feed_all_logits(const std::vector<int32_t>& tokens, std::vector<float>& all_logits);
  int32_t sample();  // from the last logits (Error if another step has overwritten them since)
  void reset();
  // Keeps the first n fed tokens (rounded down to a KV block boundary) and drops the rest, so a
  // conversation can continue from a common prefix. Returns the tokens kept.
  int32_t rewind(int32_t n);
  int32_t n_past() const;
  const std::vector<int32_t>& history() const { return history_; }

  // Prompt tokens -> streamed text. on_text gets each complete UTF-8 piece; returning false cancels.
  GenerateResult generate(const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                          const std::function<bool(const std::string&)>& on_text = {});

 private:
  // Feeds tokens with the last chunk's step sampling the next token on the device (draw u); -1 where
  // the executor cannot (then fed as feed_view, and sample() picks on the host).
  int32_t feed_and_sample(const std::vector<int32_t>& tokens, float u);

  Engine& engine_;
  Sampler sampler_;
  std::unique_ptr<KvSequence> seq_;
  std::vector<int32_t> history_;
  std::span<const float> logits_;  // the last step's row: a view of the executor's buffer or of own_logits_
  uint64_t logits_serial_ = 0;     // the executor's view_serial() when logits_ was taken
  std::vector<float> own_logits_;  // feed's and feed_all_logits's copy of the last row
  std::vector<float> scratch_;     // sample()'s working copy (the sampler rewrites it)
};

}  // namespace rocforge
