// cpu_forward.h - the transformer forward pass on the CPU, one stage at a time, so a hybrid
// executor can run some layers here and the rest on a GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "model/batch.h"
#include "rocforge/model.h"

namespace rocforge {

class CpuForward {
 public:
  // Owns the K/V storage of layers [first_layer, last_layer).
  CpuForward(const Model& m, const KvConfig& kv, cpu::ThreadPool& pool, int first_layer, int last_layer);
  ~CpuForward();

  // Bytes of weights this instance multiplies from its own copy on transparent huge pages (0: it
  // reads the model's mapping directly). See cpu_forward.cpp, HugeWeights.
  size_t huge_weight_bytes() const;

  // x[T, E] = token_embd[token]
  void embed(const Batch& b, float* x);
  // Layers [first, last) of this instance, in place on x[T, E].
  void layers(const Batch& b, float* x);
  // Final norm + output projection for the tokens that want logits: logits[n_logits, V].
  void head(const Batch& b, const float* x, std::vector<float>& logits);

  // The K (value = false) or V cache row of `slot` in layer l of this instance, as stored:
  // kv_row_bytes(kv type, kv_dim) bytes (tests check what a step stores).
  const uint8_t* cache_row(int l, bool value, int64_t slot) const;

 private:
  void attention_block(int l, const Batch& b, float* x);
  void ffn_block(int l, const Batch& b, float* x);
  void moe_block(int l, const Batch& b, float* x);
  void attend(int l, const Batch& b);
  void ensure_scratch(int64_t T);
  // The matrix to multiply: the huge-page copy of w where there is one, else the model's mapping.
  cpu::QMatrix qmat(const WeightRef& w, int64_t expert = 0) const;

  const Model& m_;
  const ModelConfig& c_;
  KvConfig kv_;
  cpu::ThreadPool& pool_;
  int first_, last_;
  // KV cache: per local layer, n_slots rows of kv_dim values of kv_.type (f32, f16 bits, or Q8_0
  // blocks), kv_row_bytes(kv_.type, kv_dim) bytes each.
  std::vector<std::vector<uint8_t>> kc_, vc_;
  // Scratch, sized for the largest batch seen: h[T,E] q[T,H*D] k,v[T,Hkv*D] att[T,H*D] g,u[T,F]
  std::vector<float> h_, q_, k_, v_, att_, g_, u_, router_;
  struct HugeWeights;
  std::unique_ptr<HugeWeights> huge_;
};

}  // namespace rocforge
