// rocforge/model.h - a transformer loaded from GGUF: hyper-parameters and memory-mapped weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rocforge/ggml_type.h"
#include "rocforge/gguf.h"

namespace rocforge {

enum class Arch { Llama, Qwen2, Qwen3 };
const char* arch_name(Arch a);

enum class RopeStyle {
  Normal,  // rotates adjacent pairs (x[2i], x[2i+1]) - llama GGUFs (q/k rows permuted at conversion)
  NeoX,    // rotates (x[i], x[i + n_rot/2]) - qwen2, qwen3
};

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_key;     // general.architecture as written in the file
  int n_vocab = 0;
  int n_embd = 0;           // E
  int n_layer = 0;
  int n_head = 0;           // H
  int n_head_kv = 0;        // Hkv (GQA: H % Hkv == 0; MQA: Hkv == 1)
  int head_dim = 0;         // D (attention.key_length, else E / H)
  int n_ff = 0;             // F (per expert for MoE)
  int n_expert = 0;         // 0 = dense
  int n_expert_used = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_scale = 1.0f;  // linear position scaling (positions are divided by this)
  int n_rot = 0;            // rotary dims per head (rope.dimension_count, default D)
  RopeStyle rope_style = RopeStyle::Normal;
  bool tied_output = false;  // output projection reuses token_embd

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// A 2-D (or 3-D for MoE experts) weight matrix inside the mapped file.
// Shape in ggml order: cols = shape[0] (input length, quantized along it), rows = shape[1] (outputs).
struct WeightRef {
  const uint8_t* data = nullptr;
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  int64_t n_mats = 1;    // experts for 3-D tensors
  size_t row_bytes = 0;  // bytes of one row
  std::string name;

  bool present() const { return data != nullptr; }
  const uint8_t* row(int64_t r, int64_t mat = 0) const { return data + (mat * rows + r) * row_bytes; }
};

struct LayerWeights {
  WeightRef attn_norm, wq, wk, wv, wo, bq, bk, bv;  // biases: 1-D (qwen2)
  WeightRef q_norm, k_norm;                          // per-head RMSNorm weights [D] (qwen3)
  WeightRef ffn_norm, ffn_gate, ffn_up, ffn_down;    // dense FFN
  WeightRef ffn_router, ffn_gate_exps, ffn_up_exps, ffn_down_exps;  // MoE: [E, n_expert], [E, F, n_expert]...
};

class Model {
 public:
  // Loads and validates; throws rocforge::Error naming the file and the missing/mis-shaped tensor or
  // the unsupported architecture.
  static std::unique_ptr<Model> load(const std::string& path);

  const ModelConfig& config() const { return cfg_; }
  const gguf::File& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }

  const WeightRef& token_embd() const { return token_embd_; }
  const WeightRef& output_norm() const { return output_norm_; }
  const WeightRef& output() const { return output_; }   // == token_embd when tied
  const std::vector<float>& rope_freq_factors() const { return rope_freqs_; }  // empty or [n_rot/2]
  const LayerWeights& layer(int l) const { return layers_[l]; }

  // Bytes of weights one decode step reads (all layers + output head; embedding rows excluded).
  uint64_t decode_weight_bytes() const;

 private:
  ModelConfig cfg_;
  std::unique_ptr<gguf::File> file_;
  WeightRef token_embd_, output_norm_, output_;
  std::vector<float> rope_freqs_;
  std::vector<LayerWeights> layers_;
  friend class ModelLoader;
};

// Weight types the forward pass can run (those rocforge::quant can dequantize).
bool weight_type_supported(GgmlType t);

}  // namespace rocforge
