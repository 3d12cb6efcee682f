// synth.cpp - presets and the streaming writer of rocforge synth (see synth.h).
#include "tools/synth.h"

#include <algorithm>
#include <thread>

#include "core/log.h"
#include "rocforge/gguf.h"
#include "rocforge/quant.h"
#include "tools/gaussian.h"
#include "tools/row_convert.h"

namespace rocforge::tools {

const std::vector<Preset>& presets() {
  // Shapes: ../shared/notes/peer-baselines.md (Llama 3) and the models' published configs.
  static const std::vector<Preset> kPresets = [] {
    std::vector<Preset> v;
    Preset p;
    p = {};
    p.name = "tiny", p.arch = "llama", p.summary = "2-layer llama for tests (dim 256, GQA 4/2)";
    p.n_layer = 2, p.n_embd = 256, p.n_head = 4, p.n_head_kv = 2, p.n_ff = 512, p.n_ctx = 2048;
    v.push_back(p);

    p = {};
    p.name = "llama3.2-1b", p.arch = "llama", p.summary = "Llama 3.2 1B shape (tied output)";
    p.n_layer = 16, p.n_embd = 2048, p.n_head = 32, p.n_head_kv = 8, p.n_ff = 8192, p.n_vocab = 128256;
    p.n_ctx = 131072, p.rope_theta = 500000.0, p.tied = true;
    v.push_back(p);

    p = {};
    p.name = "llama3-8b", p.arch = "llama", p.summary = "Llama 3 8B shape";
    p.n_layer = 32, p.n_embd = 4096, p.n_head = 32, p.n_head_kv = 8, p.n_ff = 14336, p.n_vocab = 128256;
    p.n_ctx = 8192, p.rope_theta = 500000.0;
    v.push_back(p);

    p = {};
    p.name = "qwen2.5-0.5b", p.arch = "qwen2", p.summary = "Qwen2.5 0.5B shape (q/k/v biases, tied output)";
    p.n_layer = 24, p.n_embd = 896, p.n_head = 14, p.n_head_kv = 2, p.n_ff = 4864, p.n_vocab = 151936;
    p.n_ctx = 32768, p.rope_theta = 1000000.0, p.rms_eps = 1e-6, p.tied = true, p.qkv_bias = true;
    v.push_back(p);

    p = {};
    p.name = "qwen3-0.6b", p.arch = "qwen3", p.summary = "Qwen3 0.6B shape (q/k norms, head_dim 128, tied output)";
    p.n_layer = 28, p.n_embd = 1024, p.n_head = 16, p.n_head_kv = 8, p.head_dim = 128, p.n_ff = 3072;
    p.n_vocab = 151936, p.n_ctx = 40960, p.rope_theta = 1000000.0, p.rms_eps = 1e-6, p.tied = true, p.qk_norm = true;
    v.push_back(p);

    p = {};
    p.name = "qwen3-tiny", p.arch = "qwen3", p.summary = "2-layer qwen3 for tests (q/k norms, head_dim 128 != dim/heads)";
    p.n_layer = 2, p.n_embd = 256, p.n_head = 4, p.n_head_kv = 2, p.head_dim = 128, p.n_ff = 512;
    p.n_ctx = 4096, p.rope_theta = 1000000.0, p.rms_eps = 1e-6, p.tied = true, p.qk_norm = true;
    v.push_back(p);

    p = {};
    p.name = "moe-tiny", p.arch = "llama", p.summary = "2-layer mixtral-style MoE for tests (4 experts, 2 used)";
    p.n_layer = 2, p.n_embd = 256, p.n_head = 4, p.n_head_kv = 2, p.n_ff = 256, p.n_ctx = 4096;
    p.n_expert = 4, p.n_expert_used = 2;
    v.push_back(p);

    p = {};
    p.name = "moe-small", p.arch = "llama", p.summary = "8-layer mixtral-style MoE (dim 1024, 8 experts, 2 used)";
    p.n_layer = 8, p.n_embd = 1024, p.n_head = 16, p.n_head_kv = 4, p.n_ff = 1536, p.n_ctx = 8192;
    p.rope_theta = 1000000.0, p.n_expert = 8, p.n_expert_used = 2;
    v.push_back(p);

    p = {};
    p.name = "mixtral-4l", p.arch = "llama", p.summary = "4 layers of Mixtral 8x7B's shape (MoE prompt speed)";
    p.n_layer = 4, p.n_embd = 4096, p.n_head = 32, p.n_head_kv = 8, p.n_ff = 14336, p.n_vocab = 32000;
    p.n_ctx = 32768, p.rope_theta = 1000000.0, p.rms_eps = 1e-5, p.n_expert = 8, p.n_expert_used = 2;
    v.push_back(p);
    return v;
  }();
  return kPresets;
}

const Preset* find_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<SynthTensor> synth_tensors(const Preset& p, int64_t n_vocab) {
  using K = SynthTensor::Kind;
  const auto E = static_cast<uint64_t>(p.n_embd);
  const auto q_dim = static_cast<uint64_t>(p.n_head * p.head_size());
  const auto kv_dim = static_cast<uint64_t>(p.n_head_kv * p.head_size());
  const auto F = static_cast<uint64_t>(p.n_ff);
  const auto X = static_cast<uint64_t>(p.n_expert);
  std::vector<SynthTensor> t;
  t.push_back({"token_embd.weight", {E, static_cast<uint64_t>(n_vocab)}, K::Weight});  // [n_embd, n_vocab]
  for (int64_t l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t.push_back({b + "attn_norm.weight", {E}, K::Norm});
    t.push_back({b + "attn_q.weight", {E, q_dim}, K::Weight});    // x[n_embd] -> q[n_head * head_dim]
    t.push_back({b + "attn_k.weight", {E, kv_dim}, K::Weight});
    t.push_back({b + "attn_v.weight", {E, kv_dim}, K::Weight});
    if (p.qkv_bias) {
      t.push_back({b + "attn_q.bias", {q_dim}, K::Bias});
      t.push_back({b + "attn_k.bias", {kv_dim}, K::Bias});
      t.push_back({b + "attn_v.bias", {kv_dim}, K::Bias});
    }
    if (p.qk_norm) {
      t.push_back({b + "attn_q_norm.weight", {static_cast<uint64_t>(p.head_size())}, K::Norm});  // shared by heads
      t.push_back({b + "attn_k_norm.weight", {static_cast<uint64_t>(p.head_size())}, K::Norm});
    }
    t.push_back({b + "attn_output.weight", {q_dim, E}, K::Weight});
    t.push_back({b + "ffn_norm.weight", {E}, K::Norm});
    if (p.n_expert > 0) {
      t.push_back({b + "ffn_gate_inp.weight", {E, X}, K::Weight});       // router: x -> expert logits
      t.push_back({b + "ffn_gate_exps.weight", {E, F, X}, K::Weight});   // one [n_embd, n_ff] per expert
      t.push_back({b + "ffn_up_exps.weight", {E, F, X}, K::Weight});
      t.push_back({b + "ffn_down_exps.weight", {F, E, X}, K::Weight});
    } else {
      t.push_back({b + "ffn_gate.weight", {E, F}, K::Weight});
      t.push_back({b + "ffn_up.weight", {E, F}, K::Weight});
      t.push_back({b + "ffn_down.weight", {F, E}, K::Weight});
    }
  }
  t.push_back({"output_norm.weight", {E}, K::Norm});
  if (!p.tied) t.push_back({"output.weight", {E, static_cast<uint64_t>(n_vocab)}, K::Weight});
  return t;
}

namespace {

void set_metadata(gguf::Writer& w, const Preset& p, int64_t n_vocab, const QuantPlan& plan) {
  const std::string a = p.arch + ".";
  w.set_string("general.architecture", p.arch);
  w.set_string("general.name", "rocforge synth " + p.name);
  w.set_string("general.description", "random weights ~N(0, 0.02), norms 1.0: for speed tests only");
  w.set_u32("general.file_type", plan.file_type);
  w.set_u32("general.quantization_version", 2);
  w.set_u32(a + "context_length", static_cast<uint32_t>(p.n_ctx));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(p.n_embd));
  w.set_u32(a + "block_count", static_cast<uint32_t>(p.n_layer));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(p.n_head));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  if (p.head_dim) {
    w.set_u32(a + "attention.key_length", static_cast<uint32_t>(p.head_dim));
    w.set_u32(a + "attention.value_length", static_cast<uint32_t>(p.head_dim));
  }
  w.set_f32(a + "attention.layer_norm_rms_epsilon", static_cast<float>(p.rms_eps));
  w.set_f32(a + "rope.freq_base", static_cast<float>(p.rope_theta));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(p.head_size()));
  w.set_u32(a + "vocab_size", static_cast<uint32_t>(n_vocab));
  if (p.n_expert > 0) {
    w.set_u32(a + "expert_count", static_cast<uint32_t>(p.n_expert));
    w.set_u32(a + "expert_used_count", static_cast<uint32_t>(p.n_expert_used));
  }
}

}  // namespace

SynthResult synth_model(const SynthOptions& o) {
  const Preset* p = find_preset(o.preset);
  if (!p) {
    std::string names;
    for (const auto& q : presets()) names += (names.empty() ? "" : ", ") + q.name;
    throw Error("synth: unknown preset '" + o.preset + "' (presets: " + names + ")");
  }
  const auto plan = parse_plan(o.type);
  if (!plan) throw Error("synth: unknown --type '" + o.type + "'");
  if (o.out_path.empty()) throw Error("synth: no output path (-o)");
  if (!(o.sigma > 0.0f)) throw Error("synth: sigma must be positive");

  const auto vocab = gguf::File::open(o.vocab_path);
  const gguf::Value* tokens = vocab->find("tokenizer.ggml.tokens");
  if (!tokens || !tokens->is_array() || tokens->arr.empty())
    throw Error(o.vocab_path + ": no tokenizer.ggml.tokens array: not a vocab/model GGUF with a tokenizer");
  const auto n_vocab = static_cast<int64_t>(tokens->arr.size());
  if (p->n_vocab && p->n_vocab != n_vocab)
    log::warn("synth: {} has {} tokens; the real {} has {} (using the vocab file's size)", o.vocab_path, n_vocab, p->name,
              p->n_vocab);

  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  gguf::Writer w;
  set_metadata(w, *p, n_vocab, *plan);
  // The whole tokenizer: vocabulary, scores, types, merges, special ids, pre-tokenizer, template.
  for (const auto& kv : vocab->metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0) w.set(kv.key, kv.value);

  const ModelShape shape{p->n_layer, !p->tied};
  const auto tensors = synth_tensors(*p, n_vocab);
  std::vector<std::string> type_names;
  SynthResult result{n_vocab, 0, tensors.size()};
  for (const auto& t : tensors) {
    const GgmlType type = choose_type(*plan, shape, t.name, t.shape);
    type_names.emplace_back(ggml_type_name(type));
    uint64_t n = 1;
    for (uint64_t d : t.shape) n *= d;
    result.n_params += n;
    const auto row_len = static_cast<int64_t>(t.shape[0]);
    const auto nrows = static_cast<int64_t>(n / t.shape[0]);
    const uint64_t key = name_hash(t.name);
    const SynthTensor::Kind kind = t.kind;
    const uint64_t seed = o.seed;
    const float sigma = o.sigma;
    w.add_tensor(t.name, type, t.shape, [=](uint8_t* dst, size_t) {
      convert_rows(type, dst, nrows, row_len, threads, [=](float* rows, int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          float* row = rows + (r - r0) * row_len;
          if (kind == SynthTensor::Kind::Norm) std::fill(row, row + row_len, 1.0f);
          else fill_gaussian(row, row_len, sigma, seed, key, r);
        }
      });
    });
  }
  if (o.progress)
    w.on_progress([&](size_t k, size_t count, const std::string& name) { o.progress(k, count, name, type_names[k]); });
  w.write(o.out_path);
  return result;
}

}  // namespace rocforge::tools
