// cpu_forward.cpp - the forward pass, read top to bottom:
//
//   x = embed(tokens)                                   [T, E]
//   for each layer:
//     h = rmsnorm(x) * attn_norm
//     q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)      [T, H*D], [T, Hkv*D] x2
//     (qwen3) q, k = per-head rmsnorm
//     q, k = rope(q, k, pos)
//     cache[slot(t)] = k, v
//     x += attention(q, cache) Wo                       causal, GQA: head h reads kv head h/(H/Hkv)
//     h = rmsnorm(x) * ffn_norm
//     x += (silu(h Wgate) * (h Wup)) Wdown              dense, or top-k experts mixed by the router
//   logits = (rmsnorm(x) * output_norm) Wout            only for tokens that want logits
#include "model/cpu_forward.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <unordered_map>

#include "core/half.h"
#include "cpu/attention.h"
#include "cpu/kv_q8.h"
#include "rocforge/quant.h"

namespace rocforge {
namespace {

const float* f32(const WeightRef& w) { return reinterpret_cast<const float*>(w.data); }

void add_bias(float* y, const WeightRef& bias, int64_t T, int64_t n) {
  if (!bias.present()) return;
  const float* b = f32(bias);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
}

// /proc/meminfo's MemAvailable in bytes (0 if unknown).
size_t mem_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024;
    f.ignore(256, '\n');
  }
  return 0;
}

// Whether madvise(MADV_HUGEPAGE) can give this process huge pages.
bool thp_usable() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.find("[always]") != std::string::npos || s.find("[madvise]") != std::string::npos;
}

// fn(t0, t1) over token ranges of [0, T): split over the pool for prompt-sized batches (the
// per-token norms, rope and cache stores between the matmuls ran on one thread while the other
// waited: ~3-4% of a 1B pp512 step), inline for decode.
template <class Fn>
void per_token(cpu::ThreadPool& pool, int64_t T, Fn&& fn) {
  if (T >= 16 && pool.size() > 1) pool.parallel_for(T, [&](int64_t t0, int64_t t1, int) { fn(t0, t1); });
  else fn(0, T);
}

}  // namespace

// Decode streams every weight from memory once per token, and the model's file mapping is made of
// 4 KiB pages: a TLB miss (a nested page walk in a VM) every 4 KiB, and the L2 hardware prefetcher
// stops at each page boundary. One copy of the matrices in memory advised MADV_HUGEPAGE (2 MiB
// pages) made 1B Q4_0 decode ~20% faster on the dev VM (2 threads: 34-35 -> 41-42 tok/s, see
// docs/perf/cpu.md). Same bytes, same layout: only the addresses change, so results are
// bit-identical. Made only when it costs at most half of MemAvailable and THP is on;
// ROCFORGE_CPU_HUGEPAGES=0 turns it off. The model's mapping stays (embeddings, other executors);
// its pages are clean file cache the kernel can drop.
struct CpuForward::HugeWeights {
  uint8_t* base = nullptr;
  size_t size = 0;
  std::unordered_map<const uint8_t*, const uint8_t*> copy_of;  // model mapping -> copy
  ~HugeWeights() { std::free(base); }
};

CpuForward::~CpuForward() = default;

size_t CpuForward::huge_weight_bytes() const { return huge_ ? huge_->size : 0; }

cpu::QMatrix CpuForward::qmat(const WeightRef& w, int64_t expert) const {
  const uint8_t* data = w.data;
  if (huge_) {
    const auto it = huge_->copy_of.find(w.data);
    if (it != huge_->copy_of.end()) data = it->second;
  }
  return {data + expert * w.rows * w.row_bytes, w.type, w.cols, w.rows, w.row_bytes};
}

CpuForward::CpuForward(const Model& m, const KvConfig& kv, cpu::ThreadPool& pool, int first_layer, int last_layer)
    : m_(m), c_(m.config()), kv_(kv), pool_(pool), first_(first_layer), last_(last_layer) {
  {  // the matrices this instance multiplies, onto huge pages (HugeWeights above)
    std::vector<const WeightRef*> mats;
    for (int l = first_; l < last_; ++l) {
      const LayerWeights& L = m.layer(l);
      for (const WeightRef* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.ffn_router,
                                 &L.ffn_gate_exps, &L.ffn_up_exps, &L.ffn_down_exps})
        if (w->present()) mats.push_back(w);
    }
    if (last_ == c_.n_layer && m.output().present()) mats.push_back(&m.output());  // this instance runs the head
    auto bytes_of = [](const WeightRef* w) { return w->row_bytes * static_cast<size_t>(w->rows * w->n_mats); };
    size_t total = 0;
    for (const WeightRef* w : mats) total += (bytes_of(w) + 63) / 64 * 64;
    const char* env = std::getenv("ROCFORGE_CPU_HUGEPAGES");
    const bool wanted = !(env && std::string(env) == "0");
    constexpr size_t kHuge = size_t(2) << 20;
    const size_t rounded = (total + kHuge - 1) / kHuge * kHuge;
    if (wanted && total > 0 && rounded <= mem_available() / 2 && thp_usable()) {
      auto hw = std::make_unique<HugeWeights>();
      hw->base = static_cast<uint8_t*>(std::aligned_alloc(kHuge, rounded));
      if (hw->base) {
        madvise(hw->base, rounded, MADV_HUGEPAGE);
        hw->size = total;
        // Copied in 1 MiB pieces over the pool: the page faults (huge-page zeroing) and the reads
        // of the file mapping run on every thread (1B Q4_0, 2 threads: ~1 s instead of ~2).
        struct Piece {
          uint8_t* dst;
          const uint8_t* src;
          size_t n;
        };
        std::vector<Piece> pieces;
        size_t off = 0;
        for (const WeightRef* w : mats) {
          if (hw->copy_of.count(w->data)) continue;  // one tensor seen twice
          for (size_t k = 0; k < bytes_of(w); k += size_t(1) << 20)
            pieces.push_back({hw->base + off + k, w->data + k, std::min(size_t(1) << 20, bytes_of(w) - k)});
          hw->copy_of[w->data] = hw->base + off;
          off += (bytes_of(w) + 63) / 64 * 64;
        }
        // Each piece's source pages then leave this process (MADV_DONTNEED on the read-only shared
        // file mapping: they stay in the page cache, and a later read - embeddings, another
        // executor - faults them back in), so resident memory peaks near one copy of the weights,
        // not two (1B Q4_0: see docs/perf/cpu.md).
        const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
        pool_.for_each_task(static_cast<int64_t>(pieces.size()), [&](int64_t i, int) {
          std::memcpy(pieces[i].dst, pieces[i].src, pieces[i].n);
          const uintptr_t a = (reinterpret_cast<uintptr_t>(pieces[i].src) + page - 1) / page * page;
          const uintptr_t b = (reinterpret_cast<uintptr_t>(pieces[i].src) + pieces[i].n) / page * page;
          if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
        });
        huge_ = std::move(hw);
      }
    }
  }
  check_kv_type_fits(kv.type, c_.head_dim);
  const size_t n = static_cast<size_t>(kv.n_slots()) * kv_row_bytes(kv.type, c_.kv_dim());
  const int n_local = last_ - first_;
  kc_.assign(n_local, std::vector<uint8_t>(n));
  vc_.assign(n_local, std::vector<uint8_t>(n));
}

const uint8_t* CpuForward::cache_row(int l, bool value, int64_t slot) const {
  if (l < first_ || l >= last_ || slot < 0 || slot >= kv_.n_slots())
    throw Error("cache_row: layer " + std::to_string(l) + " slot " + std::to_string(slot) + " is not in this instance");
  const auto& c = value ? vc_[l - first_] : kc_[l - first_];
  return c.data() + slot * kv_row_bytes(kv_.type, c_.kv_dim());
}

void CpuForward::ensure_scratch(int64_t T) {
  auto grow = [](std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  };
  grow(h_, T * c_.n_embd);
  grow(q_, T * c_.q_dim());
  grow(k_, T * c_.kv_dim());
  grow(v_, T * c_.kv_dim());
  grow(att_, T * c_.q_dim());
  grow(g_, T * c_.n_ff);
  grow(u_, T * c_.n_ff);
  grow(router_, T * std::max(c_.n_expert, 1));
}

void CpuForward::embed(const Batch& b, float* x) {
  const WeightRef& e = m_.token_embd();
  for (int32_t t = 0; t < b.size(); ++t) {
    const int32_t tok = b.token[t];
    if (tok < 0 || tok >= c_.n_vocab) throw Error("token id " + std::to_string(tok) + " out of range [0, " + std::to_string(c_.n_vocab) + ")");
    quant::dequantize_row(e.type, e.row(tok), x + static_cast<int64_t>(t) * c_.n_embd, c_.n_embd);
  }
}

void CpuForward::layers(const Batch& b, float* x) {
  ensure_scratch(b.size());
  for (int l = first_; l < last_; ++l) {
    attention_block(l, b, x);
    if (c_.n_expert > 0) moe_block(l, b, x);
    else ffn_block(l, b, x);
  }
}

void CpuForward::attention_block(int l, const Batch& b, float* x) {
  const LayerWeights& L = m_.layer(l);
  const int64_t T = b.size(), E = c_.n_embd, D = c_.head_dim;
  per_token(pool_, T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) cpu::rmsnorm(x + t * E, f32(L.attn_norm), h_.data() + t * E, E, c_.rms_eps);
  });

  {  // one pass: h is quantized once and the three projections share one thread wake-up
    const cpu::QMatrix ws[3] = {qmat(L.wq), qmat(L.wk), qmat(L.wv)};
    float* const ys[3] = {q_.data(), k_.data(), v_.data()};
    cpu::matmul_multi(ws, ys, 3, h_.data(), T, pool_);
  }
  add_bias(q_.data(), L.bq, T, c_.q_dim());
  add_bias(k_.data(), L.bk, T, c_.kv_dim());
  add_bias(v_.data(), L.bv, T, c_.kv_dim());

  const float* freq = m_.rope_freq_factors().empty() ? nullptr : m_.rope_freq_factors().data();
  const bool neox = c_.rope_style == RopeStyle::NeoX;
  // Rope, then this batch's K/V into the cache before attending (a token sees its own position).
  const int local = l - first_;
  const int64_t kvd = c_.kv_dim();
  const size_t row_bytes = kv_row_bytes(kv_.type, kvd);
  per_token(pool_, T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* q = q_.data() + t * c_.q_dim();
      float* k = k_.data() + t * c_.kv_dim();
      if (L.q_norm.present()) {
        for (int h = 0; h < c_.n_head; ++h) cpu::rmsnorm(q + h * D, f32(L.q_norm), q + h * D, D, c_.rms_eps);
        for (int h = 0; h < c_.n_head_kv; ++h) cpu::rmsnorm(k + h * D, f32(L.k_norm), k + h * D, D, c_.rms_eps);
      }
      const float pos = static_cast<float>(b.pos[t]) / c_.rope_scale;
      cpu::rope(q, c_.n_head, D, c_.n_rot, pos, c_.rope_base, neox, freq);
      cpu::rope(k, c_.n_head_kv, D, c_.n_rot, pos, c_.rope_base, neox, freq);

      const int64_t slot = kv_slot(b.block_tables[b.seq[t]], b.pos[t], kv_.block_size);
      const float* ks = k_.data() + t * kvd;
      const float* vs = v_.data() + t * kvd;
      uint8_t* kd = kc_[local].data() + slot * row_bytes;
      uint8_t* vd = vc_[local].data() + slot * row_bytes;
      switch (kv_.type) {
        case KvType::F16:
          for (int64_t i = 0; i < kvd; ++i) {
            const uint16_t kh = f32_to_fp16(ks[i]), vh = f32_to_fp16(vs[i]);
            std::memcpy(kd + 2 * i, &kh, 2);
            std::memcpy(vd + 2 * i, &vh, 2);
          }
          break;
        case KvType::F32:
          std::memcpy(kd, ks, row_bytes);
          std::memcpy(vd, vs, row_bytes);
          break;
        case KvType::Q8_0:  // blocks of 32 never straddle two heads (head_dim % 32 == 0)
          cpu::quantize_kv_row_q8_0(ks, kvd, kd);
          cpu::quantize_kv_row_q8_0(vs, kvd, vd);
          break;
      }
    }
  });

  attend(l, b);

  // x += att Wo
  cpu::matmul(qmat(L.wo), att_.data(), T, h_.data(), pool_);
  per_token(pool_, T, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0 * E; i < t1 * E; ++i) x[i] += h_[i];
  });
}

// Causal attention with an online softmax (cpu/attention.h: blocks of positions, no [T, ctx]
// score matrix), reading K/V straight from the paged cache. One task per (tile, kv head): a tile
// is a run of up to kTileTokens consecutive batch tokens of one sequence (a prompt), whose
// tokens x H/Hkv query heads go through attend_tile together, so every K/V block is read once per
// tile; a decode step's tokens are tiles of one (the tile kernel from 8 positions, else attend).
void CpuForward::attend(int l, const Batch& b) {
  const int local = l - first_;
  const int64_t D = c_.head_dim, kvd = c_.kv_dim(), group = c_.n_head / c_.n_head_kv;
  // Cache slot of every position each sequence attends to (shared by its tokens and heads).
  std::vector<std::vector<int64_t>> slots(b.block_tables.size());
  for (int32_t t = 0; t < b.size(); ++t) {
    auto& sl = slots[b.seq[t]];
    const auto& table = b.block_tables[b.seq[t]];
    for (int32_t j = static_cast<int32_t>(sl.size()); j <= b.pos[t]; ++j) sl.push_back(kv_slot(table, j, kv_.block_size));
  }
  const void* kc = kc_[local].data();
  const void* vc = vc_[local].data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Tiles of ~32 query rows (8 tokens of a 4-head group): enough rows to amortise converting a K/V
  // block, few enough that a 512-token prompt still gives 64 tiles per kv head to share out.
  const int kTileTokens = static_cast<int>(std::max<int64_t>(1, 32 / group));
  std::vector<int64_t> n_pos(b.size());
  std::vector<int32_t> tile_start;
  for (int32_t t = 0; t < b.size(); ++t) {
    n_pos[t] = b.pos[t] + 1;
    const bool new_tile = t == 0 || b.seq[t] != b.seq[t - 1] || t - tile_start.back() == kTileTokens;
    if (new_tile) tile_start.push_back(t);
  }
  tile_start.push_back(b.size());
  const int64_t n_tiles = static_cast<int64_t>(tile_start.size()) - 1;
  // Work ~ tokens x query heads x positions x D; small steps run on this thread (see ThreadPool).
  int64_t work = 0;
  for (int32_t t = 0; t < b.size(); ++t) work += static_cast<int64_t>(b.pos[t] + 1) * c_.n_head * D;
  const int64_t n_tasks = n_tiles * c_.n_head_kv;
  auto task_fn = [&](int64_t task, int) {
    const int64_t tile = task / c_.n_head_kv, kvh = task % c_.n_head_kv;
    const int32_t t0 = tile_start[tile];
    const int n_tok = tile_start[tile + 1] - t0;
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(cpu::attend_tile_scratch_floats(kTileTokens, static_cast<int>(group), static_cast<int>(D))));
    cpu::AttnTileArgs a;
    a.q = q_.data() + t0 * c_.q_dim() + kvh * group * D;
    a.q_stride = c_.q_dim();
    a.n_tok = n_tok;
    a.n_pos = n_pos.data() + t0;
    a.group = static_cast<int>(group);
    a.D = static_cast<int>(D);
    a.scale = scale;
    a.slots = slots[b.seq[t0]].data();
    a.k = kc;
    a.v = vc;
    a.row_elems = kvd;
    a.head_off = kvh * D;
    a.kv_type = kv_.type;
    a.out = att_.data() + t0 * c_.q_dim() + kvh * group * D;
    a.out_stride = c_.q_dim();
    cpu::attend_tile(a, scratch.data());
  };
  // `work` counts the QK products only (the PV pass doubles it) and each task streams its K/V rows
  // from the cache, so splitting pays from a quarter of the matmuls' threshold (1B decode: from
  // ~16 positions instead of 64).
  if (cpu::ThreadPool::worth_splitting(4 * work)) pool_.for_each_task(n_tasks, task_fn);
  else
    for (int64_t task = 0; task < n_tasks; ++task) task_fn(task, 0);
}

void CpuForward::ffn_block(int l, const Batch& b, float* x) {
  const LayerWeights& L = m_.layer(l);
  const int64_t T = b.size(), E = c_.n_embd, F = c_.n_ff;
  per_token(pool_, T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) cpu::rmsnorm(x + t * E, f32(L.ffn_norm), h_.data() + t * E, E, c_.rms_eps);
  });
  {
    const cpu::QMatrix ws[2] = {qmat(L.ffn_gate), qmat(L.ffn_up)};
    float* const ys[2] = {g_.data(), u_.data()};
    cpu::matmul_multi(ws, ys, 2, h_.data(), T, pool_);
  }
  // One expf per element (1B: 8192 per token and layer, ~40 us on one core): split over the pool.
  if (cpu::ThreadPool::worth_splitting(T * F * 16))
    pool_.parallel_for(T * F, [&](int64_t b0, int64_t b1, int) { cpu::swiglu(g_.data() + b0, u_.data() + b0, b1 - b0); }, 1024);
  else
    cpu::swiglu(g_.data(), u_.data(), T * F);
  cpu::matmul(qmat(L.ffn_down), g_.data(), T, h_.data(), pool_);
  per_token(pool_, T, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0 * E; i < t1 * E; ++i) x[i] += h_[i];
  });
}

// Mixtral-style MoE: softmax over the router's logits, keep the top-k experts, renormalise their
// weights, and mix the experts' SwiGLU outputs.
void CpuForward::moe_block(int l, const Batch& b, float* x) {
  const LayerWeights& L = m_.layer(l);
  const int64_t T = b.size(), E = c_.n_embd, F = c_.n_ff, NE = c_.n_expert, K = c_.n_expert_used;
  for (int64_t t = 0; t < T; ++t) cpu::rmsnorm(x + t * E, f32(L.ffn_norm), h_.data() + t * E, E, c_.rms_eps);
  cpu::matmul(qmat(L.ffn_router), h_.data(), T, router_.data(), pool_);
  std::vector<float> out(E), g(F), u(F), y(E);
  std::vector<int> idx(NE);
  for (int64_t t = 0; t < T; ++t) {
    float* r = router_.data() + t * NE;
    cpu::softmax(r, NE);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int c) { return r[a] > r[c] || (r[a] == r[c] && a < c); });
    float wsum = 0;
    for (int64_t k = 0; k < K; ++k) wsum += r[idx[k]];
    std::fill(out.begin(), out.end(), 0.0f);
    const float* h = h_.data() + t * E;
    for (int64_t k = 0; k < K; ++k) {
      const int e = idx[k];
      cpu::matmul(qmat(L.ffn_gate_exps, e), h, 1, g.data(), pool_);
      cpu::matmul(qmat(L.ffn_up_exps, e), h, 1, u.data(), pool_);
      cpu::swiglu(g.data(), u.data(), F);
      cpu::matmul(qmat(L.ffn_down_exps, e), g.data(), 1, y.data(), pool_);
      const float w = r[e] / wsum;
      for (int64_t i = 0; i < E; ++i) out[i] += w * y[i];
    }
    for (int64_t i = 0; i < E; ++i) x[t * E + i] += out[i];
  }
}

void CpuForward::head(const Batch& b, const float* x, std::vector<float>& logits) {
  const int64_t E = c_.n_embd, V = c_.n_vocab;
  std::vector<float> hn;
  for (int32_t t = 0; t < b.size(); ++t) {
    if (!b.logits[t]) continue;
    hn.resize(hn.size() + E);
    cpu::rmsnorm(x + t * E, f32(m_.output_norm()), hn.data() + hn.size() - E, E, c_.rms_eps);
  }
  const int64_t n = static_cast<int64_t>(hn.size()) / E;
  logits.resize(static_cast<size_t>(n * V));
  if (n) cpu::matmul(qmat(m_.output()), hn.data(), n, logits.data(), pool_);
}

}  // namespace rocforge
