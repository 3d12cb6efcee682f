// model_loader.cpp - GGUF -> ModelConfig + WeightRefs, with every shape checked up front so the
// forward pass can trust them.
#include <cmath>
#include <cstring>

#include "core/log.h"
#include "rocforge/model.h"
#include "rocforge/quant.h"

namespace rocforge {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
  }
  return "?";
}

bool weight_type_supported(GgmlType t) { return quant::can_dequantize(t); }

class ModelLoader {
 public:
  explicit ModelLoader(Model& m) : m_(m), f_(*m.file_) {}

  void load() {
    read_config();
    auto& c = m_.cfg_;
    m_.token_embd_ = weight("token_embd.weight", c.n_embd, c.n_vocab);
    m_.output_norm_ = vec("output_norm.weight", c.n_embd);
    if (f_.tensor("output.weight")) {
      m_.output_ = weight("output.weight", c.n_embd, c.n_vocab);
    } else {
      m_.output_ = m_.token_embd_;
      c.tied_output = true;
    }
    if (const auto* rf = f_.tensor("rope_freqs.weight")) {
      if (rf->type != GgmlType::F32 || rf->n_elements != static_cast<uint64_t>(c.n_rot / 2))
        fail("rope_freqs.weight", "expected f32 [" + std::to_string(c.n_rot / 2) + "]");
      m_.rope_freqs_.resize(c.n_rot / 2);
      std::memcpy(m_.rope_freqs_.data(), rf->data, rf->n_bytes);
    }
    m_.layers_.resize(c.n_layer);
    for (int l = 0; l < c.n_layer; ++l) load_layer(l);
  }

 private:
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw Error(f_.path() + ": tensor " + tensor + ": " + what);
  }

  int64_t required_int(const std::string& key) const {
    auto v = f_.get_int(key);
    if (!v) throw Error(f_.path() + ": missing metadata key " + key);
    if (*v <= 0 || *v > (1ll << 31)) throw Error(f_.path() + ": metadata " + key + " = " + std::to_string(*v) + " is out of range");
    return *v;
  }

  void read_config() {
    auto& c = m_.cfg_;
    c.arch_key = f_.get_string("general.architecture").value_or("");
    if (c.arch_key == "llama") c.arch = Arch::Llama;
    else if (c.arch_key == "qwen2") c.arch = Arch::Qwen2;
    else if (c.arch_key == "qwen3") c.arch = Arch::Qwen3;
    else
      throw Error(f_.path() + ": unsupported architecture '" + c.arch_key +
                  "' (supported: llama (incl. Mistral, TinyLlama, Yi, Mixtral-style MoE), qwen2, qwen3)");
    const std::string a = c.arch_key + ".";
    c.n_embd = static_cast<int>(required_int(a + "embedding_length"));
    c.n_layer = static_cast<int>(required_int(a + "block_count"));
    c.n_head = static_cast<int>(required_int(a + "attention.head_count"));
    c.n_head_kv = static_cast<int>(f_.get_int(a + "attention.head_count_kv").value_or(c.n_head));
    c.n_ff = static_cast<int>(required_int(a + "feed_forward_length"));
    c.n_ctx_train = static_cast<int>(f_.get_int(a + "context_length").value_or(2048));
    c.head_dim = static_cast<int>(f_.get_int(a + "attention.key_length").value_or(c.n_embd / c.n_head));
    if (auto vl = f_.get_int(a + "attention.value_length"); vl && *vl != c.head_dim)
      throw Error(f_.path() + ": attention.value_length != key_length is not supported");
    c.rms_eps = static_cast<float>(f_.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
    c.rope_base = static_cast<float>(f_.get_float(a + "rope.freq_base").value_or(10000.0));
    c.n_rot = static_cast<int>(f_.get_int(a + "rope.dimension_count").value_or(c.head_dim));
    c.n_expert = static_cast<int>(f_.get_int(a + "expert_count").value_or(0));
    c.n_expert_used = static_cast<int>(f_.get_int(a + "expert_used_count").value_or(0));
    c.rope_style = c.arch == Arch::Llama ? RopeStyle::Normal : RopeStyle::NeoX;
    const std::string scaling = f_.get_string(a + "rope.scaling.type").value_or("none");
    if (scaling == "linear") {
      c.rope_scale = static_cast<float>(f_.get_float(a + "rope.scaling.factor").value_or(1.0));
    } else if (scaling != "none" && scaling != "llama3") {
      // llama3 scaling arrives as the rope_freqs tensor; yarn/longrope are not implemented.
      throw Error(f_.path() + ": rope scaling type '" + scaling + "' is not supported (supported: none, linear, llama3)");
    } else if (auto fac = f_.get_float(a + "rope.scale_linear")) {
      c.rope_scale = static_cast<float>(*fac);
    }
    if (!(c.rope_scale > 0)) throw Error(f_.path() + ": rope scale must be positive");

    if (c.n_head % c.n_head_kv != 0)
      throw Error(f_.path() + ": attention.head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                  std::to_string(c.n_head_kv));
    if (c.head_dim <= 0 || c.head_dim % 2 || c.n_rot <= 0 || c.n_rot > c.head_dim || c.n_rot % 2)
      throw Error(f_.path() + ": bad head_dim " + std::to_string(c.head_dim) + " / rope.dimension_count " + std::to_string(c.n_rot));
    if (c.n_expert > 0 && (c.n_expert_used <= 0 || c.n_expert_used > c.n_expert))
      throw Error(f_.path() + ": expert_used_count " + std::to_string(c.n_expert_used) + " out of range 1.." + std::to_string(c.n_expert));

    const auto* emb = f_.tensor("token_embd.weight");
    if (!emb) missing("token_embd.weight");
    if (emb->shape.size() != 2) fail("token_embd.weight", "expected 2 dimensions");
    c.n_vocab = static_cast<int>(emb->shape[1]);
  }

  [[noreturn]] void missing(const std::string& name) const {
    throw Error(f_.path() + ": missing tensor " + name + " (required by architecture " + m_.cfg_.arch_key + ")");
  }

  static std::string shape_str(const gguf::TensorInfo& t) {
    std::string s = "[";
    for (size_t k = 0; k < t.shape.size(); ++k) s += (k ? ", " : "") + std::to_string(t.shape[k]);
    return s + "]";
  }

  WeightRef bind(const gguf::TensorInfo& t) const {
    if (!weight_type_supported(t.type))
      fail(t.name, "weight type " + std::string(ggml_type_name(t.type)) + " is not supported by the forward pass");
    WeightRef w;
    w.data = t.data;
    w.type = t.type;
    w.cols = static_cast<int64_t>(t.shape[0]);
    w.rows = t.shape.size() > 1 ? static_cast<int64_t>(t.shape[1]) : 1;
    w.n_mats = t.shape.size() > 2 ? static_cast<int64_t>(t.shape[2]) : 1;
    w.row_bytes = ggml_row_bytes(ggml_type_traits(t.type), t.shape[0]);
    w.name = t.name;
    return w;
  }

  // A matrix with `cols` inputs and `rows` outputs (and `mats` experts if > 0).
  WeightRef weight(const std::string& name, int64_t cols, int64_t rows, int64_t mats = 0, bool optional = false) const {
    const auto* t = f_.tensor(name);
    if (!t) {
      if (optional) return {};
      missing(name);
    }
    const size_t want_dims = mats ? 3 : 2;
    if (t->shape.size() != want_dims || static_cast<int64_t>(t->shape[0]) != cols || static_cast<int64_t>(t->shape[1]) != rows ||
        (mats && static_cast<int64_t>(t->shape[2]) != mats)) {
      std::string want = "[" + std::to_string(cols) + ", " + std::to_string(rows) + (mats ? ", " + std::to_string(mats) : "") + "]";
      fail(name, "shape " + shape_str(*t) + ", expected " + want);
    }
    return bind(*t);
  }

  // 1-D vectors (norms, biases) are read as f32 by the forward pass.
  WeightRef vec(const std::string& name, int64_t n, bool optional = false) const {
    const auto* t = f_.tensor(name);
    if (!t) {
      if (optional) return {};
      missing(name);
    }
    if (t->n_elements != static_cast<uint64_t>(n) || t->shape[0] != static_cast<uint64_t>(n))
      fail(name, "shape " + shape_str(*t) + ", expected [" + std::to_string(n) + "]");
    if (t->type != GgmlType::F32) fail(name, "1-D tensors must be f32, found " + std::string(ggml_type_name(t->type)));
    return bind(*t);
  }

  void load_layer(int l) {
    const auto& c = m_.cfg_;
    auto& L = m_.layers_[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = vec(p + "attn_norm.weight", c.n_embd);
    L.wq = weight(p + "attn_q.weight", c.n_embd, c.q_dim());
    L.wk = weight(p + "attn_k.weight", c.n_embd, c.kv_dim());
    L.wv = weight(p + "attn_v.weight", c.n_embd, c.kv_dim());
    L.wo = weight(p + "attn_output.weight", c.q_dim(), c.n_embd);
    const bool biases = c.arch == Arch::Qwen2;
    L.bq = vec(p + "attn_q.bias", c.q_dim(), !biases);
    L.bk = vec(p + "attn_k.bias", c.kv_dim(), !biases);
    L.bv = vec(p + "attn_v.bias", c.kv_dim(), !biases);
    const bool qk_norm = c.arch == Arch::Qwen3;
    L.q_norm = vec(p + "attn_q_norm.weight", c.head_dim, !qk_norm);
    L.k_norm = vec(p + "attn_k_norm.weight", c.head_dim, !qk_norm);
    L.ffn_norm = vec(p + "ffn_norm.weight", c.n_embd);
    if (c.n_expert > 0) {
      L.ffn_router = weight(p + "ffn_gate_inp.weight", c.n_embd, c.n_expert);
      L.ffn_gate_exps = weight(p + "ffn_gate_exps.weight", c.n_embd, c.n_ff, c.n_expert);
      L.ffn_up_exps = weight(p + "ffn_up_exps.weight", c.n_embd, c.n_ff, c.n_expert);
      L.ffn_down_exps = weight(p + "ffn_down_exps.weight", c.n_ff, c.n_embd, c.n_expert);
    } else {
      L.ffn_gate = weight(p + "ffn_gate.weight", c.n_embd, c.n_ff);
      L.ffn_up = weight(p + "ffn_up.weight", c.n_embd, c.n_ff);
      L.ffn_down = weight(p + "ffn_down.weight", c.n_ff, c.n_embd);
    }
  }

  Model& m_;
  const gguf::File& f_;
};

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = gguf::File::open(path);
  ModelLoader(*m).load();
  return m;
}

uint64_t Model::decode_weight_bytes() const {
  uint64_t total = 0;
  auto add = [&](const WeightRef& w) {
    if (w.present()) total += w.row_bytes * w.rows * w.n_mats;
  };
  for (const auto& L : layers_) {
    for (const WeightRef* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.ffn_router})
      add(*w);
    // MoE: only the used experts are read per token.
    if (L.ffn_gate_exps.present() && cfg_.n_expert > 0)
      total += (L.ffn_gate_exps.row_bytes * L.ffn_gate_exps.rows + L.ffn_up_exps.row_bytes * L.ffn_up_exps.rows +
                L.ffn_down_exps.row_bytes * L.ffn_down_exps.rows) * cfg_.n_expert_used;
  }
  add(output_);
  return total;
}

}  // namespace rocforge
