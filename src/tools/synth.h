// synth.h - random-weight models with the shapes of real architectures (rocforge synth).
//
// Benchmarks need realistic tensor shapes, not trained weights: speed does not depend on the values.
// A preset fixes an architecture's shape; the tokenizer (and so the vocabulary size) comes from a
// real vocab GGUF, so the result tokenizes like the real model and llama.cpp loads it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tools/quant_plan.h"

namespace rocforge::tools {

struct Preset {
  std::string name;
  std::string arch;         // general.architecture: llama, qwen2, qwen3
  std::string summary;
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;     // 0: n_embd / n_head
  int64_t n_ff = 0;         // per expert for MoE
  int64_t n_vocab = 0;      // the real model's vocabulary (the vocab file decides; a mismatch warns)
  int64_t n_ctx = 0;
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  bool tied = false;        // no output.weight: the logits reuse token_embd
  bool qkv_bias = false;    // qwen2: attn_q/k/v biases
  bool qk_norm = false;     // qwen3: per-head RMS norms on q and k
  int64_t n_expert = 0;     // MoE (llama arch, mixtral naming) when > 0
  int64_t n_expert_used = 0;

  int64_t head_size() const { return head_dim ? head_dim : n_embd / n_head; }
};

const std::vector<Preset>& presets();
const Preset* find_preset(const std::string& name);

// One tensor of a synthetic model.
struct SynthTensor {
  enum class Kind { Weight, Bias, Norm };
  std::string name;
  std::vector<uint64_t> shape;  // ggml order (row length first)
  Kind kind;
};
std::vector<SynthTensor> synth_tensors(const Preset& p, int64_t n_vocab);

struct SynthOptions {
  std::string preset;
  std::string type = "q4_k_m";
  std::string vocab_path;
  std::string out_path;
  uint64_t seed = 42;
  int threads = 0;  // 0: all hardware threads
  float sigma = 0.02f;
  // (index, count, tensor name, type name) after each tensor is written.
  std::function<void(size_t, size_t, const std::string&, const std::string&)> progress;
};

struct SynthResult {
  int64_t n_vocab = 0;
  uint64_t n_params = 0;
  size_t n_tensors = 0;
};

// Generates and writes the model tensor by tensor (generate + quantize per tensor, streamed to
// disk). Throws rocforge::Error for an unknown preset/type or a vocab file without a tokenizer.
SynthResult synth_model(const SynthOptions& o);

}  // namespace rocforge::tools
