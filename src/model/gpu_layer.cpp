// gpu_layer.cpp - one decoder layer of the GPU executor as kernel launches (GpuExecutor::layer), and
// the mixture-of-experts feed-forward block (GpuExecutor::moe); the class is in gpu_executor_impl.h.
#include "model/gpu_executor_impl.h"

namespace rocforge::gpu_detail {

void GpuExecutor::layer(int l, const Batch& b, int T) {
  const GpuLayer& L = layers_[l];
  const int E = c_.n_embd, D = c_.head_dim, H = c_.n_head, Hkv = c_.n_head_kv, qd = c_.q_dim(), kvd = c_.kv_dim();
  float *x = resid_, *h = h_.get<float>(), *att = att_.get<float>();
  float* q = qkv_.get<float>();
  float* k = q + int64_t(T) * qd;
  float* v = k + int64_t(T) * kvd;
  float* g = gu_.get<float>();
  float* u = g + int64_t(T) * c_.n_ff;
  int32_t* pos = in_pos();
  auto ok = [&](int rc, const char* what) { be_->check(rc, std::string(what) + " (layer " + std::to_string(l) + ")"); };

  // Decode (one token) fuses launches: the previous layer's residual add, the norm and the int8
  // quantization of its output are one kernel; SwiGLU quantizes for the down projection; the
  // layer's own last residual is left pending (h) for the next layer's (or the head's) norm.
  const bool fz = T == 1 && fuse_;
  void* xq_e = fz && E % 32 == 0 ? xq_.get() : nullptr;
  // Decode of a few sequences (one token each; the int8 matvecs' steps): the fusions whose kernels
  // take several rows. Each norm adds the pending residual and quantizes for the projections (one
  // launch, not add + rmsnorm + quantize_q8), attention quantizes for the o projection, swiglu_q8 for
  // the down projection.
  // (Beyond one matvec_q8_multi chunk the projections quantize x per chunk themselves, and xq_ holds
  // one chunk's rows.)
  const bool fm = T > 1 && T <= multi_max_tokens_ && T <= kMultiTokens && all_decode_ && fuse_ && multi_fuse_ &&
                  use_q8_ && E % 32 == 0;
  auto mv = [&](const auto& w, const float* in, float* out, bool* in_q8) {
    if (!(fz && skip(kSkipMatvec))) proj(w, in, out, T, in_q8);
  };

  // Attention block. Decode with fused weights: one matvec writes [q | k | v]; where the backend can,
  // the norm (and the previous layer's pending residual add) is made inside that launch.
  // Decode of one sequence, llama-style rope (pairs 2i, 2i + 1) and nothing between the projection and
  // the rotation (biases, q/k norms): the q/k/v matvec also rotates and stores K/V.
  // A Q8_0 cache quantizes a row per 32 values, which that per-element store cannot: there the matvec
  // only rotates, and the attention launch stores the token's K/V (d_cur_k / d_cur_v).
  const int kv_type = gpu_detail::device_kv_type(kv_);
  const bool rope_fusable = fz && all_decode_ && qkv_rope_ && c_.rope_style != RopeStyle::NeoX && !L.q_norm.present() &&
                            !L.bq.present() && !L.bk.present() && !L.bv.present();
  const bool f16_pools = kv_type == RF_KV_F16;
  rf_qkv_rope rope{};
  if (rope_fusable) {
    rope = {qd, kvd, D, c_.n_rot, c_.rope_base, 1.0f / c_.rope_scale, freq_.get<float>(), in_pos(), in_tables(),
            kv_.block_size, Hkv, f16_pools ? L.k_pool.get<uint16_t>() : nullptr,
            f16_pools ? L.v_pool.get<uint16_t>() : nullptr};
  }
  bool roped = false;  // rope and the KV store are done
  bool hq = false;
  const bool fused_qkv = T == 1 && (L.qkv.present() || L.qk.present());
  const Mat& qkv_a = L.qkv.present() ? L.qkv : L.qk;
  const Mat* qkv_b = L.qkv.present() ? nullptr : &L.v;
  // Decode: each projection pulls the next one's first weights into L2 as it ends (l2_prefetch.h).
  if (fz || fm) prefetch_next(fused_qkv ? qkv_a : L.q, mat_of(L.wo));
  if (fz && fused_qkv && !skip(kSkipNorm) && !skip(kSkipMatvec | kSkipQkv) && (!qkv_b || pair_ || rope_fusable) &&
      proj_with_norm(qkv_a, qkv_b, L.attn_norm, pending_ ? h : nullptr, q, rope_fusable ? &rope : nullptr, false)) {
    x = resid_;
    pending_ = false;
    roped = rope_fusable;
  } else {
    if (fz) {
      if (!skip(kSkipNorm))
        ok(api_.rmsnorm_q8(x, pending_ ? h : nullptr, L.attn_norm.buf.get<float>(), h, xq_e, E, c_.rms_eps, stream_),
           "attn_norm");
      hq = xq_e != nullptr;
      pending_ = false;
    } else if (fm) {
      ok(api_.rmsnorm_q8_rows(x, pending_ ? h : nullptr, L.attn_norm.buf.get<float>(), h, xq_.get(), E, T, c_.rms_eps,
                              stream_),
         "attn_norm");
      hq = true;
      pending_ = false;
    } else {
      ok(api_.rmsnorm(x, L.attn_norm.buf.get<float>(), h, E, T, c_.rms_eps, stream_), "attn_norm");
    }
    if (fused_qkv) {
      if (fz && skip(kSkipMatvec | kSkipQkv)) {
        roped = rope_fusable;
      } else if (((qkv_b && pair_) || rope_fusable) &&
                 proj_qkv(qkv_a, qkv_b, h, q, &hq, rope_fusable ? &rope : nullptr)) {
        roped = rope_fusable;
      } else {
        proj(qkv_a, h, q, T, &hq);
        if (qkv_b) proj(*qkv_b, h, v, T, &hq);
      }
    } else if (proj_parts(L.qkv, {&L.q, &L.k, &L.v}, h, {q, k, v}, T, &hq)) {
    } else if (proj_parts(L.qk, {&L.q, &L.k}, h, {q, k}, T, &hq)) {
      mv(L.v, h, v, &hq);
    } else {
      mv(L.q, h, q, &hq);
      mv(L.k, h, k, &hq);
      mv(L.v, h, v, &hq);
    }
  }
  add_bias(L.bq, q, T, qd);
  add_bias(L.bk, k, T, kvd);
  add_bias(L.bv, v, T, kvd);
  if (L.q_norm.present()) {
    ok(api_.rmsnorm(q, L.q_norm.buf.get<float>(), q, D, T * H, c_.rms_eps, stream_), "q_norm");
    ok(api_.rmsnorm(k, L.k_norm.buf.get<float>(), k, D, T * Hkv, c_.rms_eps, stream_), "k_norm");
  }
  const int neox = c_.rope_style == RopeStyle::NeoX;
  const float fscale = 1.0f / c_.rope_scale;
  void* kp = L.k_pool.get();
  void* vp = L.v_pool.get();
  const int32_t* tables = in_tables();
  const int n_seq = static_cast<int>(seq_begin_.size());
  if (roped) {
    // done by the q/k/v matvec
  } else if (all_decode_ && fuse_) {
    // Decode (token s is sequence s's only token): rope and the cache store in one launch.
    if (!skip(kSkipRope))
      ok(api_.rope_kv_store(q, k, v, pos, T, tables, max_blocks_, kv_.block_size, H, Hkv, D, c_.n_rot, c_.rope_base,
                            fscale, freq_.get<float>(), neox, kv_type, kp, vp, stream_),
         "rope + kv_store");
  } else if (T == 1) {  // k follows q directly: one launch rotates the H + Hkv heads
    ok(api_.rope(q, pos, 1, H + Hkv, D, c_.n_rot, c_.rope_base, fscale, freq_.get<float>(), neox, stream_), "rope q+k");
  } else {
    ok(api_.rope(q, pos, T, H, D, c_.n_rot, c_.rope_base, fscale, freq_.get<float>(), neox, stream_), "rope q");
    ok(api_.rope(k, pos, T, Hkv, D, c_.n_rot, c_.rope_base, fscale, freq_.get<float>(), neox, stream_), "rope k");
  }
  for (int s = 0; s < n_seq && !(all_decode_ && fuse_); ++s) {
    if (seq_ntok_[s] == 0) continue;
    const int t0 = seq_begin_[s];
    ok(api_.kv_store(k + int64_t(t0) * kvd, v + int64_t(t0) * kvd, pos + t0, seq_ntok_[s],
                     tables + int64_t(s) * max_blocks_, kv_.block_size, Hkv, D, kv_type, kp, vp, stream_),
       "kv_store");
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Decode of one token: attention also writes the int8 input of the output projection.
  bool hatt = false;
  if (all_decode_) {
    void* xq_att = (fz || fm) && qd % 32 == 0 ? xq_.get() : nullptr;
    if (!skip(kSkipAttn))
      ok(api_.attn_decode(q, kp, vp, tables, max_blocks_, in_lens(), n_seq, max_seq_len_, H, Hkv, D, kv_.block_size,
                          kv_type, roped && !f16_pools ? k : nullptr, roped && !f16_pools ? v : nullptr, scale, att,
                          xq_att, workspace_.get(), stream_),
         "attn_decode");
    hatt = xq_att != nullptr;
  } else {
    for (int s = 0; s < n_seq; ++s) {
      if (seq_ntok_[s] == 0) continue;
      const int t0 = seq_begin_[s];
      ok(api_.attn_prefill(q + int64_t(t0) * qd, kp, vp, tables + int64_t(s) * max_blocks_, b.pos[t0], seq_ntok_[s], H,
                           Hkv, D, kv_.block_size, kv_type, scale, att + int64_t(t0) * qd, stream_),
         "attn_prefill");
    }
  }
  if (fz || fm) prefetch_next(mat_of(L.wo), L.gu.present() ? L.gu : L.gate);
  if (!(fz && skip(kSkipO))) mv(L.wo, att, h, &hatt);

  // Feed-forward block. Decode with fused weights: one matvec writes [gate | up], where the backend
  // can with the norm and the residual add inside it, and SwiGLU in its epilogue (proj_swiglu: the
  // down projection's int8 input is then left in xq_ff_, ff_q8).
  bool hq2 = false;
  bool gu_done = false, ff_q8 = false;
  const Mat down = mat_of(L.ffn_down);
  const bool swi = fz && c_.n_expert == 0 && L.gu.present() && !skip(kSkipSwiglu) && !skip(kSkipMatvec | kSkipGateUp) &&
                   api_.has_matvec_q8(down.type) && down.cols % 32 == 0;
  if ((fz || fm) && c_.n_expert == 0) prefetch_next(L.gu.present() ? L.gu : L.gate, down);
  const bool norm_in = fz && c_.n_expert == 0 && L.gu.present() && !skip(kSkipNorm) && !skip(kSkipMatvec | kSkipGateUp);
  if (norm_in && swi && proj_swiglu(L.gu, &L.ffn_norm, h, g)) {
    x = resid_;
    gu_done = ff_q8 = true;
  } else if (norm_in && proj_with_norm(L.gu, nullptr, L.ffn_norm, h, g, nullptr, true)) {
    x = resid_;
    gu_done = true;
  } else if (fz) {
    if (!skip(kSkipNorm))
      ok(api_.rmsnorm_q8(x, h, L.ffn_norm.buf.get<float>(), h, xq_e, E, c_.rms_eps, stream_), "residual + ffn_norm");
    hq2 = xq_e != nullptr;
  } else if (fm) {
    ok(api_.rmsnorm_q8_rows(x, h, L.ffn_norm.buf.get<float>(), h, xq_.get(), E, T, c_.rms_eps, stream_),
       "residual + ffn_norm");
    hq2 = true;
  } else {
    ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
    ok(api_.rmsnorm(x, L.ffn_norm.buf.get<float>(), h, E, T, c_.rms_eps, stream_), "ffn_norm");
  }
  if (c_.n_expert > 0) {
    moe(L, h, T, hq2);  // h: normed input in, mixed expert output out
    if (fz || fm) pending_ = true;
    else ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
    return;
  }
  if (gu_done) {
    // done with the norm
  } else if (T == 1 && L.gu.present()) {
    if (swi && hq2 && proj_swiglu(L.gu, nullptr, nullptr, g)) ff_q8 = true;
    else if (!skip(kSkipGateUp)) mv(L.gu, h, g, &hq2);
  } else if (proj_parts(L.gu, {&L.gate, &L.up}, h, {g, u}, T, &hq2)) {
  } else {
    mv(L.gate, h, g, &hq2);
    mv(L.up, h, u, &hq2);
  }
  bool gq = false;
  if (ff_q8) {
    // done in the gate/up launch
  } else if ((fz || fm) && c_.n_ff % 32 == 0) {
    if (!skip(kSkipSwiglu))
      ok(api_.swiglu_q8(g, u, g, xq_.get(), T * c_.n_ff, stream_), "swiglu");
    gq = true;
  } else {
    ok(api_.swiglu(g, u, g, size_t(T) * c_.n_ff, stream_), "swiglu");
  }
  if (fz || fm) {
    // The next projection of this stage: the next layer's q/k/v, the head, or none where the stage
    // hands its output to the next GPU.
    const GpuLayer* next = l + 1 < end_ ? &layers_[l + 1] : nullptr;
    const Mat nq = next ? (next->qkv.present() ? next->qkv : next->qk.present() ? next->qk : next->q)
                        : head_ ? mat_of(output_weight()) : Mat{};
    prefetch_next(down, nq);
  }
  if (fz && skip(kSkipDown)) {
  } else if (ff_q8) {
    proj_q8(down, xq_ff_.get(), h);
  } else {
    mv(L.ffn_down, g, h, &gq);
  }
  if (fz || fm) pending_ = true;
  else ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
}

// Mixtral-style MoE, all on the device, kMoeChunkTokens tokens at a time: the router's logits, then
// moe_route picks each token's k experts (softmax, top-k, renormalised: CpuForward::moe_block's
// rule); the chosen experts' SwiGLU runs as three matvec_experts launches over all (token, expert)
// slots of the chunk, and moe_mix weighs the slots back into h. No host round trip, so decode steps
// of MoE models are captured as graphs too. `hq`: decode, and the norm left h quantized in xq_.
// Prompt chunks of kMoeGroupMinTokens and more multiply each expert once over its tokens instead
// (moe_grouped), with one host round trip for the routing.
void GpuExecutor::moe(const GpuLayer& L, float* h, int T, bool hq) {
  const int E = c_.n_embd, F = c_.n_ff, NE = c_.n_expert, K = c_.n_expert_used;
  const Mat gate = mat_of(L.gate_exps), up = mat_of(L.up_exps), down = mat_of(L.down_exps);
  auto q8 = [&](const Mat& w) { return use_q8_ && api_.has_matvec_q8(w.type) && w.cols % 32 == 0; };
  auto ok = [&](int rc, const char* what) { be_->check(rc, what); };
  for (int t0 = 0; t0 < T; t0 += kMoeChunkTokens) {
    const int n = std::min(kMoeChunkTokens, T - t0), S = n * K;
    float* hc = h + int64_t(t0) * E;     // [n][E]: normed input in, mixed expert output out
    float* g = moe_gu_.get<float>();     // [S][F]
    float* u = g + int64_t(S) * F;       // [S][F]
    float* y = moe_y_.get<float>();      // [S][E]
    const bool decode_q = hq && T == 1;  // h is already int8 in xq_
    bool router_q = decode_q;
    proj(L.router, hc, moe_router_.get<float>(), n, &router_q);
    ok(api_.moe_route(moe_router_.get<float>(), n, NE, K, moe_ids_.get<int32_t>(), moe_w_.get<float>(), stream_),
       "moe_route");
    if (!all_decode_ && n >= kMoeGroupMinTokens && moe_grouped(L)) {
      moe_grouped(gate, up, down, n, hc);  // y: the slots' outputs, as below
      ok(api_.moe_mix(y, moe_w_.get<float>(), n, K, E, hc, stream_), "moe_mix");
      continue;
    }
    const void* xq = nullptr;  // the chunk's inputs as int8, where gate or up takes them
    if (q8(gate) || q8(up)) {
      if (decode_q) {
        xq = xq_.get();
      } else {
        ok(api_.quantize_q8(hc, n * E, moe_xq_.get(), stream_), "quantize_q8 (experts)");
        xq = moe_xq_.get();
      }
    }
    experts(gate, S, K, hc, xq, g);
    experts(up, S, K, hc, xq, u);
    if (q8(down)) {  // gate/up are done with moe_xq_: it now takes the down projection's inputs
      ok(api_.swiglu_q8(g, u, g, moe_xq_.get(), S * F, stream_), "expert swiglu");
      experts(down, S, 1, g, moe_xq_.get(), y);
    } else {
      ok(api_.swiglu(g, u, g, size_t(S) * F, stream_), "expert swiglu");
      experts(down, S, 1, g, nullptr, y);
    }
    ok(api_.moe_mix(y, moe_w_.get<float>(), n, K, E, hc, stream_), "moe_mix");
  }
}

// A prompt chunk's experts as one product each over the tokens routed to it, instead of a matvec
// per (token, expert) slot that reads the expert's weights once per slot: the routing comes to the
// host (one small copy and a sync; prompt steps are not graphs), the slots are sorted by expert, x's
// rows gathered in that order (`embed` on an F32 table), gate / up / down multiplied per expert with
// proj (tensor cores from kF16MinTokens rows), and the down rows put back in slot order into moe_y_.
void GpuExecutor::moe_grouped(const Mat& gate, const Mat& up, const Mat& down, int n, const float* x) {
  const int E = c_.n_embd, F = c_.n_ff, NE = c_.n_expert, K = c_.n_expert_used, S = n * K;
  auto ok = [&](int rc, const char* what) { be_->check(rc, what); };
  moe_ids_host_.resize(S);
  ok(api_.memcpy_d2h(moe_ids_host_.data(), moe_ids_.get(), S * sizeof(int32_t), stream_), "expert ids");
  ok(api_.stream_sync(stream_), "expert ids");
  // Counting sort of the slots by expert: sorted place i holds slot order[i] (token order[i] / K).
  std::vector<int> first(NE + 1, 0);
  for (int s = 0; s < S; ++s) {
    const int e = moe_ids_host_[s];
    if (e < 0 || e >= NE)
      throw Error("MoE routing chose expert " + std::to_string(e) + " of " + std::to_string(NE) +
                  " (non-finite router logits?)");
    ++first[e + 1];
  }
  for (int e = 0; e < NE; ++e) first[e + 1] += first[e];
  moe_perm_host_.assign(2 * size_t(S), 0);
  int32_t* tok = moe_perm_host_.data();  // [S]: the token of sorted place i
  int32_t* place = tok + S;              // [S]: the sorted place of slot s
  std::vector<int> next(first.begin(), first.end() - 1);
  for (int s = 0; s < S; ++s) {
    const int i = next[moe_ids_host_[s]]++;
    tok[i] = s / K;
    place[s] = i;
  }
  ok(api_.memcpy_h2d(moe_perm_.get(), tok, 2 * size_t(S) * sizeof(int32_t), stream_), "expert order");
  const int32_t* d_tok = moe_perm_.get<int32_t>();
  float* xs = moe_x_.get<float>();  // [S][E]: x's rows in sorted order, later the down rows (sorted)
  float* g = moe_gu_.get<float>();  // [S][F]
  float* u = g + int64_t(S) * F;    // [S][F]
  ok(api_.embed(0 /* F32 */, x, E * sizeof(float), E, d_tok, S, xs, stream_), "gather (experts)");
  auto expert = [](const Mat& w, int e) {
    Mat m = w;
    m.d = static_cast<const uint8_t*>(w.d) + size_t(e) * w.rows * w.row_bytes;
    return m;
  };
  for (int e = 0; e < NE; ++e) {
    const int r0 = first[e], c = first[e + 1] - first[e];
    if (c == 0) continue;
    proj(expert(gate, e), xs + int64_t(r0) * E, g + int64_t(r0) * F, c);
    proj(expert(up, e), xs + int64_t(r0) * E, u + int64_t(r0) * F, c);
  }
  ok(api_.swiglu(g, u, g, size_t(S) * F, stream_), "expert swiglu");
  for (int e = 0; e < NE; ++e) {
    const int r0 = first[e], c = first[e + 1] - first[e];
    if (c > 0) proj(expert(down, e), g + int64_t(r0) * F, xs + int64_t(r0) * E, c);
  }
  ok(api_.embed(0 /* F32 */, xs, E * sizeof(float), E, d_tok + S, S, moe_y_.get<float>(), stream_), "scatter (experts)");
}

// y[s] = w[expert of slot s] x[s / x_div] for the slots moe_route filled (moe_ids_); xq: x as int8
// (formats with an int8 path), else float x.
void GpuExecutor::experts(const Mat& w, int n_slots, int x_div, const float* x, const void* xq, float* y) {
  const bool q8 = xq && api_.has_matvec_q8(w.type);
  be_->check(api_.matvec_experts(w.type, w.d, size_t(w.rows) * w.row_bytes, w.row_bytes, c_.n_expert, w.rows, w.cols,
                                 moe_ids_.get<int32_t>(), n_slots, x_div, x, q8 ? xq : nullptr, y, stream_),
             *w.name);
}

}  // namespace rocforge::gpu_detail
