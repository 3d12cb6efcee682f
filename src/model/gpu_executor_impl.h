// gpu_executor_impl.h - the GPU executor's class (gpu_executor.cpp: set-up, planning and the step;
// gpu_layer.cpp: one decoder layer as launches). Internal to src/model: include it from those two
// files only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "cpu/thread_pool.h"
#include "gpu/backend_api.h"
#include "gpu/repack.h"
#include "model/cpu_forward.h"
#include "model/gpu_buffers.h"
#include "model/gpu_executor.h"

namespace rocforge::gpu_detail {

inline uint64_t weight_bytes(const WeightRef& w) { return w.present() ? w.row_bytes * w.rows * w.n_mats : 0; }

inline uint64_t layer_weight_bytes(const LayerWeights& L) {
  uint64_t b = 0;
  for (const WeightRef* w : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.ffn_norm,
                             &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.ffn_router, &L.ffn_gate_exps, &L.ffn_up_exps,
                             &L.ffn_down_exps})
    b += weight_bytes(*w);
  return b;
}

// The device cache's element type: Q8_0 where asked for, else f16 (an f32 request keeps f16 pools).
inline int device_kv_type(const KvConfig& kv) { return kv.type == KvType::Q8_0 ? RF_KV_Q8_0 : RF_KV_F16; }

// Bytes of one layer's K and V pools on the device.
inline uint64_t kv_bytes_per_layer(const ModelConfig& c, const KvConfig& kv) {
  return 2ull * rf_kv_pool_bytes(device_kv_type(kv), static_cast<size_t>(kv.n_blocks), kv.block_size, c.n_head_kv,
                                 c.head_dim);
}

// Scratch activations for a step of T tokens (floats).
// MoE layers run their experts this many tokens at a time (GpuExecutor::moe): scratch for every
// (token, expert) slot of a whole prompt step would grow with the step. A prompt chunk multiplies
// each expert once over the tokens routed to it (moe_grouped): 256 tokens give an expert of 8 with 2
// used ~64 of them, what matmul_mma takes in one pass over the weights.
constexpr int kMoeChunkTokens = 256;
// Prompt chunks of at least this many tokens take moe_grouped; fewer (and decode steps, which are
// graphs: no host round trip) go slot by slot through matvec_experts.
constexpr int kMoeGroupMinTokens = 16;
constexpr uint64_t kMoeGroupMinBytes = uint64_t(64) << 20;  // a layer's experts: beyond an L2 cache

inline uint64_t activation_bytes(const ModelConfig& c, int T) {
  const uint64_t per_tok = 2ull * c.n_embd + 2ull * c.q_dim() + 2ull * c.kv_dim() + 2ull * c.n_ff + c.n_vocab;
  uint64_t moe = 0;
  if (c.n_expert > 0) {  // router logits; per slot g, u, y and int8 copies
    const uint64_t slots = static_cast<uint64_t>(std::min(T, kMoeChunkTokens)) * c.n_expert_used;
    moe = static_cast<uint64_t>(T) * c.n_expert * sizeof(float) + slots * (2ull * c.n_ff + 2ull * c.n_embd) * sizeof(float) +
          slots * (c.n_ff + c.n_embd) * 2 + slots * 2 * sizeof(int32_t);
  }
  return per_tok * T * sizeof(float) + moe + (64ull << 20);  // + attention workspace, q8 copies, tables
}

// Steps of at least this many tokens multiply through matmul_f16; below, dequantizing whole weight
// slices to f16 costs more than the fp32 tile kernel's work.
constexpr int kF16MinTokens = 5;
// Tokens per matvec_q8_multi launch (the backend's limit).
constexpr int kMultiTokens = 16;
// Steps up to this many tokens use the int8 matvecs where matmul_f16 has no small-batch kernel on
// the matrix units (the constructor says why).
constexpr int kMultiMaxWithoutMma = 48;

// True when the environment variable is set to "0" (switches for A/B measurements).
inline bool env_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

// Bytes from an environment variable given in MiB (negative: 0), else `def`.
inline size_t env_mb(const char* name, size_t def) {
  const char* v = std::getenv(name);
  return v && *v ? static_cast<size_t>(std::max(0, std::atoi(v))) << 20 : def;
}

struct DevWeight {
  DevBuf buf;
  const WeightRef* ref = nullptr;
  bool present() const { return ref && ref->present(); }
};

// A weight matrix on the device: `rows` rows of `cols` elements, row r at d + r * row_bytes.
struct Mat {
  const void* d = nullptr;
  uint32_t type = 0;
  size_t row_bytes = 0;
  int rows = 0, cols = 0;
  const std::string* name = nullptr;
  bool present() const { return d != nullptr; }
};

struct GpuLayer {
  DevWeight attn_norm, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, ffn_down;
  // q/k/v rows live back to back in one buffer when their format and width agree (then qkv views all
  // of them and decode runs one matvec); likewise gate/up. Prefill multiplies each part on its own.
  // When only q and k agree (Q4_K_M keeps v in Q6_K), qk views those two and v stays apart.
  DevBuf qkv_buf, gu_buf;
  Mat q, k, v, qkv, qk, gate, up, gu;
  DevBuf k_pool, v_pool;  // [n_blocks][Hkv][B][D] half, or Q8_0 blocks (gpu/kv_layout.h)
  DevWeight router, gate_exps, up_exps, down_exps;  // MoE: [E -> n_expert], [n_expert][F x E] ...
};

// Graph cache key of a decode step: sequences in the batch, the attention length bucket, and whether
// the head writes the logits into host memory (steps whose logits go to the host) or the device's.
// A chain of decode steps (forward_sample_steps) also keys on its length and the sampler launches it
// recorded (sample_launches: greedy and the default chain share one); a single step has steps == 0.
struct GraphKey {
  int n_seq, bucket;
  bool host_logits;
  int steps = 0, sampler = 0;
  bool operator==(const GraphKey& o) const {
    return n_seq == o.n_seq && bucket == o.bucket && host_logits == o.host_logits && steps == o.steps &&
           sampler == o.sampler;
  }
};
// Longest chain of decode steps in one graph, and how many such graphs (sampling chains) are kept.
constexpr int kMaxChainSteps = 16;
constexpr int kMaxChainGraphs = 8;  // the warm-up captures 3; more buckets and sampling chains come later
// A chain's GraphKey::sampler bit for its penalize_rows launches (above sample_launches' mask).
constexpr int kPenaltyLaunch = 1 << 8;

// One stage of the plan (plan.stages[stage]): its layers on its device. A model on one GPU is one
// stage. Split over several, each stage after the first owns the one before it (`upstream`) and
// asks it for the step's hidden state: the stage holding the head is the executor the engine gets,
// and a step runs the stages in layer order, each on its own device and stream, handing the
// residual stream on device to device (an event and a peer copy: the host does not wait between
// them). The first stage runs the CPU's layers, if any.
class GpuExecutor final : public Executor {
 public:
  GpuExecutor(const Model& m, const KvConfig& kv, const device::Selection& sel, const GpuPlan& plan, size_t stage,
              int n_threads, int max_batch, std::unique_ptr<GpuExecutor> upstream)
      : upstream_(std::move(upstream)), m_(m), c_(m.config()), kv_(kv), sel_(sel), be_(sel.backend.get()),
        api_(be_->api()), dev_(plan.stages.at(stage).device), first_(plan.stages[stage].first),
        end_(plan.stages[stage].end), head_(end_ == c_.n_layer), n_cpu_(stage == 0 ? first_ : 0),
        pool_(n_cpu_ > 0 ? n_threads : 1) {
    kv_.type = device_kv_type(kv) == RF_KV_Q8_0 ? KvType::Q8_0 : KvType::F16;  // device pools: f16 or Q8_0
    split_ = upstream_ != nullptr || !head_;
    gpu_name_ = sel.gpu.name;
    for (const auto& g : sel.gpus)
      if (g.index == dev_) gpu_name_ = g.name;
    be_->check(api_.set_device(dev_), "selecting GPU " + std::to_string(dev_));
    be_->check(api_.stream_create(&stream_), "creating a stream");
    if (!head_) be_->check(api_.event_create(&done_), "creating an event");
    if (n_cpu_ > 0) cpu_ = std::make_unique<CpuForward>(m, kv, pool_, 0, n_cpu_);
    fuse_ = !env_off("ROCFORGE_GPU_FUSE");
    use_graphs_ = !env_off("ROCFORGE_GPU_GRAPHS");
    if (const char* e = std::getenv("ROCFORGE_GPU_SKIP")) skip_ = std::atoi(e);
    // Where matmul_f16 runs the tensor-core kernel on the quantized weights it beats the int8
    // matvecs from 5 tokens (H100, matvecs -> matmul_f16, twenty-fourth pass: 8B Q4_K_M pp5 771 / 768
    // -> 912 / 906 tok/s, 1B Q4_0 pp5 2704 / 2702 -> 3404 / 3606, bench-serve 8B 5 streams 834 / 872
    // -> 930 / 945 agg tok/s; pp4 stays on the matvecs: 8B 739 / 738 -> 724 / 731, 1B 3053 / 2989 ->
    // 2887 / 2980).
    // AMD's small-batch kernel (matmul_small.hip, the same interface) takes the same policy: with
    // AMD's switches on the H100 (ROCFORGE_GPU_MMA_SMALL=1 ROCFORGE_GPU_BLAS=0 ROCFORGE_MV_STAGED=0,
    // twenty-eighth pass), matvecs -> matmul_small's first version (runs through dequant8), 8B Q4_K_M
    // pp5 / 8 / 16 641 / 865 / 1084 -> 593 / 950 / 1854, 1B Q4_0 2209 / 2994 / 4212 -> 2836 / 4542 /
    // 8625; with FastB runs (landed) 8B pp5 / 6 643 / 722 -> 810 / 969, 1B 2224 / 2513 -> 3082 /
    // 3683: the line stays at 5.
    // Without a small-batch kernel (a device whose check of it failed) matmul_f16 is matmul_mc, which
    // reads the weights once but decodes them at a fixed cost per 128-token tile, so steps stay on the
    // int8 matvecs (chunks of kMultiTokens) up to kMultiMaxWithoutMma tokens. AMD's kernels on an H100
    // (ROCFORGE_GPU_MMA_MAX=0 ROCFORGE_GPU_BLAS=0 ROCFORGE_MV_STAGED=0), Q4_K_M pp9 / 16 / 32 / 64 /
    // 128 tok/s, matmul_mc -> matvecs: 8B 196 / 337 / 664 / 1303 / 2474 -> 866 / 1078 / 1138 / 1176 /
    // 1195, 1B 688 / 1201 / 2392 / 4668 / 8882 -> 3557 / 4890 / 5163 / 5494 / 5620.
    mma_max_tokens_ = api_.matmul_f16_mma_max();
    multi_max_tokens_ = mma_max_tokens_ >= 8 ? kF16MinTokens - 1 : kMultiMaxWithoutMma;
    if (const char* e = std::getenv("ROCFORGE_GPU_MULTI_MAX"); e && *e) multi_max_tokens_ = std::atoi(e);
    upload_weights();
    reserve_scratch(std::max(1, max_batch));
    warm_up(max_batch);
    // Which GEMM prompts take on this device, decided now (its checks run at load, not in the first
    // request): a user on AMD sees whether rocBLAS was found.
    const std::string gpu = split_ ? "GPU " + std::to_string(dev_) + " " : "GPU ";
    log::info("{}prompt GEMM: {}", gpu, api_.prompt_gemm(stream_));
    log::info("{}prompt attention: {}", gpu, api_.prompt_attention(stream_));
  }

  // The stages' memory goes device by device: this one's (the body and the members after upstream_,
  // on this device), then the stages before it (upstream_, declared first, destroyed last).
  ~GpuExecutor() override {
    (void)api_.set_device(dev_);
    clear_graphs();
    if (stream_) {
      api_.stream_sync(stream_);
      api_.stream_destroy(stream_);
    }
    if (done_) api_.event_destroy(done_);
  }

  std::string device_name() const override {
    std::string s = "gpu " + std::to_string(dev_) + " (" + gpu_name_ + ", " + be_->name() + ")";
    if (split_) {
      s += ": layers " + std::to_string(first_) + "-" + std::to_string(end_ - 1) + (head_ ? " + head" : "");
      if (upstream_) s = upstream_->device_name() + "; " + s;
    }
    if (n_cpu_ > 0) s += ", hybrid: " + std::to_string(n_cpu_) + " of " + std::to_string(c_.n_layer) + " layers on the CPU";
    return s;
  }
  const KvConfig& kv_config() const override { return kv_; }

  void forward(const Batch& b, std::vector<float>& logits) override;
  std::span<const float> forward_view(const Batch& b) override;
  // Runs the step and brings its logits rows to the host: the page-locked buffer when they fit,
  // else `spill` (resized). Returns where they landed.
  std::span<const float> step_to_host(const Batch& b, std::vector<float>& spill);
  bool forward_sample(const Batch& b, const SamplingParams& p, float u, History history, int32_t* token) override;
  bool forward_sample_rows(const Batch& b, const std::vector<const SamplingParams*>& params, const std::vector<float>& u,
                           const std::vector<History>& histories, std::vector<int32_t>& tokens) override;
  int forward_sample_steps(const Batch& b, const SamplingParams& p, const std::vector<float>& u, History history,
                           std::vector<int32_t>& tokens) override;
  int chain_steps() const override {
    return n_cpu_ == 0 && !split_ && use_graphs_ && chain_steps_ >= 2 ? chain_steps_ : 0;
  }

 private:
  // A stage before the head's: runs the step's layers on its device (inputs uploaded, nothing
  // synchronised) and records done_ after them; returns the device pointer of its output, the
  // residual stream [T][n_embd] after its last layer.
  const float* run_stage(const Batch& b) {
    use_device();
    run_step(b);
    if (const int rc = api_.event_record(done_, stream_)) be_->check(rc, "GPU " + std::to_string(dev_) + ": end of its layers");
    return x_.get<float>();
  }
  // Whether any stage runs layers on the CPU (no warm-up then: it would run them).
  bool hybrid() const { return n_cpu_ > 0 || (upstream_ && upstream_->hybrid()); }
  // Calls into the backend go to the current device (a thread-wide setting): each step makes this
  // stage's current first, since another stage or another executor may have made another one current.
  void use_device() const {
    if (const int rc = api_.set_device(dev_)) be_->check(rc, "selecting GPU " + std::to_string(dev_));
  }
  // One prompt step of the largest batch and one decode step on the first KV blocks, at load: the
  // backend's one-off costs (vendor BLAS handle and scratch, module loading, the first graph capture)
  // leave the first request. Harmless to the cache: a sequence writes every position's K/V before it
  // attends to it, and nothing is cached yet. The decode step runs twice: with its logits to the host
  // (bench, `rocforge logits`) and sampled on the device (generation), whose graph keeps the logits
  // on the device and is another capture; the default chain loads every sampler kernel.
  void warm_up(int max_batch) {
    if (!head_ || hybrid()) return;
    const int T = static_cast<int>(std::min<int64_t>(std::max(1, max_batch), kv_.n_slots() - 1));
    if (T < kF16MinTokens) return;
    Batch b;
    b.block_tables.emplace_back();
    for (int i = 0; i * kv_.block_size < T + 1; ++i) b.block_tables[0].push_back(i);
    for (int t = 0; t < T; ++t) b.add(0, t, 0, t == T - 1);
    std::vector<float> logits;
    forward(b, logits);
    Batch d;
    d.block_tables = b.block_tables;
    d.add(0, T, 0, true);
    forward(d, logits);
    const SamplingParams chain;
    std::vector<int32_t> token;
    (void)forward_sample_rows(d, {&chain}, {0.5f}, {}, token);  // false: no device sampler for this vocabulary
    // Generation's chained steps (Generator::generate, serve --chain-decode) for the first attention
    // length bucket: with the default chain (greedy records the same sampler launches) and with
    // OpenAI's default (temperature 1, no top-k: a draw over the whole vocabulary), and the default
    // chain with penalties (another launch: `run --repeat-penalty`; greedy with penalties shares it).
    // OpenAI's with penalties (serve --chain-decode only) is left to its first request: each chain
    // captured here adds to every load.
    if (chain_steps_ >= 2 && chain_steps_ < kv_.n_slots()) {
      Batch c;
      c.block_tables.emplace_back();
      for (int i = 0; i * kv_.block_size < chain_steps_; ++i) c.block_tables[0].push_back(i);
      c.add(0, 0, 0, true);
      const SamplingParams openai = [] {
        SamplingParams p;
        p.temperature = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f;
        return p;
      }();
      SamplingParams chain_pen = chain;
      chain_pen.repeat_penalty = 1.1f;
      const std::vector<const SamplingParams*> chains = {&chain, &openai, &chain_pen};
      const std::vector<int32_t> history = {0};  // ends with the chain's first token, as it must
      for (const SamplingParams* p : chains)
        (void)forward_sample_steps(c, *p, std::vector<float>(static_cast<size_t>(chain_steps_), 0.5f), history, token);
    }
  }

  // A row's penalties for penalize_rows: its parameters, the (id, count) pairs the host counted, and
  // the range of the chain's sampled ids (chain_tok_d_) it counts too.
  struct PenaltyRow {
    const SamplingParams* p;
    std::vector<std::pair<int32_t, int32_t>> counts;
    int chain_begin = 0, chain_end = 0;
    int same_as = -1;  // >= 0: counts are that earlier row's (sent once)
  };
  static rf_sample_row sample_row(const SamplingParams& p, float u, const char* what, int i);
  void reserve_sample_workspace(size_t bytes);
  // Uploads the rows' penalties to pen_d_ (pen_rows_cap_ rf_penalty_row, then the pairs; one copy).
  // Where they outgrow it, pen_d_ grows and the chains of steps that recorded its addresses go.
  void upload_penalties(const std::vector<PenaltyRow>& rows);
  const rf_penalty_row* pen_rows() const { return pen_d_.get<rf_penalty_row>(); }
  const int32_t* pen_pairs() const {
    return reinterpret_cast<const int32_t*>(pen_d_.get<char>() + pen_rows_cap_ * sizeof(rf_penalty_row));
  }

  // Lays the batch out, uploads its inputs (one copy) and runs the step up to the logits of the rows
  // that want them; returns that row count. Nothing is synchronised. The logits land in logits_, or
  // with `to_host` where they fit in the page-locked buffer straight in logits_host_ (head_to_host_).
  int run_step(const Batch& b, bool to_host = false);
  // The launches of one step (recorded into a graph, or run directly).
  void launch_step(const Batch& b, int T, int n_seq, bool all_rows_out);
  void clear_graphs() {
    for (auto& [k, g] : graphs_) api_.graph_destroy(g);
    graphs_.clear();
  }
  // The graph of `key`, recorded from `record`'s launches the first time (`what` names it in errors).
  template <class Record>
  rf_graph graph_for(const GraphKey& key, const char* what, Record&& record) {
    for (auto& [k, g] : graphs_)
      if (k == key) return g;
    const std::string capturing = std::string("capturing ") + what;
    be_->check(api_.graph_capture_begin(stream_), capturing);
    try {
      record();
    } catch (...) {
      rf_graph junk = nullptr;
      api_.graph_capture_end(stream_, &junk);
      if (junk) api_.graph_destroy(junk);
      throw;
    }
    rf_graph g = nullptr;
    be_->check(api_.graph_capture_end(stream_, &g), capturing);
    graphs_.push_back({key, g});
    return g;
  }
  // A graphed step's attention length: the bucket of `len` positions, and the tables' stride.
  void set_graph_bucket(int len);
  // in_ (and its page-locked staging) for n_in ints, in_host_ zeroed to that length.
  void reserve_inputs(size_t n_in);
  // in_host_'s first n_in ints up to in_ in one copy.
  void upload_inputs(size_t n_in);
  // Decode attention's split workspace for n_seq sequences of max_seq_len_.
  void reserve_attn_workspace(int n_seq);

  Mat mat_of(const DevWeight& w) const {
    Mat m;
    if (!w.present()) return m;
    const WeightRef& r = *w.ref;
    m.d = w.buf.get();
    m.type = dev_type(r);
    m.row_bytes = r.row_bytes;
    m.rows = static_cast<int>(r.rows);
    m.cols = static_cast<int>(r.cols);
    m.name = &r.name;
    return m;
  }

  // Uploads the given matrices into one buffer, rows back to back, when they share format and row
  // size; fills the per-part views and `all` (the concatenation). Otherwise separate buffers, `all`
  // empty. `keep` holds the separate uploads.
  bool fusable(std::initializer_list<const WeightRef*> parts) const {
    bool same = true;
    const WeightRef& first = **parts.begin();
    for (const WeightRef* w : parts)
      same = same && w->present() && w->n_mats == 1 && w->type == first.type && w->cols == first.cols &&
             w->row_bytes == first.row_bytes;
    return same;
  }
  void upload_fused(std::initializer_list<const WeightRef*> parts, DevBuf& buf, std::vector<DevWeight>& keep,
                    std::initializer_list<Mat*> views, Mat& all) {
    const WeightRef& first = **parts.begin();
    const bool same = fusable(parts);
    auto vit = views.begin();
    if (!same || !fuse_) {
      for (const WeightRef* w : parts) {
        keep.push_back(upload(*w));
        **vit++ = mat_of(keep.back());
      }
      all = Mat{};
      return;
    }
    uint64_t total = 0;
    for (const WeightRef* w : parts) total += weight_bytes(*w);
    buf = DevBuf(be_, total);
    uint64_t off = 0;
    int rows = 0;
    for (const WeightRef* w : parts) {
      uint8_t* d = buf.get<uint8_t>() + off;
      copy_weight(d, *w);
      Mat& m = **vit++;
      m = Mat{d, dev_type(*w), w->row_bytes, static_cast<int>(w->rows), static_cast<int>(w->cols), &w->name};
      off += weight_bytes(*w);
      rows += static_cast<int>(w->rows);
    }
    all = Mat{buf.get(), dev_type(first), first.row_bytes, rows, static_cast<int>(first.cols), &first.name};
  }

  DevWeight upload(const WeightRef& w) {
    DevWeight d;
    d.ref = &w;
    if (!w.present()) return d;
    d.buf = DevBuf(be_, weight_bytes(w));
    copy_weight(d.buf.get<uint8_t>(), w);
    return d;
  }

  // The type id the kernels get for w: its GGUF type, or a device layout of it (gpu/repack.h) that
  // copy_weight writes. ROCFORGE_GPU_REPACK=0 keeps every GGUF layout (A/B runs).
  uint32_t dev_type(const WeightRef& w) const {
    const auto t = static_cast<uint32_t>(w.type);
    return repack_ ? gpu::device_layout(t, w.cols) : t;
  }
  void copy_weight(uint8_t* d, const WeightRef& w) {
    std::vector<uint8_t> staged;
    if (dev_type(w) != static_cast<uint32_t>(w.type)) {
      staged.resize(weight_bytes(w));
      if (!gpu::repack_rows(static_cast<uint32_t>(w.type), w.data, staged.data(),
                            static_cast<int64_t>(w.rows) * w.n_mats, w.cols, w.row_bytes))
        staged.clear();  // a layout of the same bytes in the same order
    }
    be_->check(api_.memcpy_h2d(d, staged.empty() ? w.data : staged.data(), weight_bytes(w), stream_),
               "uploading " + w.name);
    if (!staged.empty()) be_->check(api_.stream_sync(stream_), "uploading " + w.name);  // `staged` dies here
  }

  void upload_weights() {
    const uint64_t pool_bytes = kv_bytes_per_layer(c_, kv_) / 2;
    layers_.resize(c_.n_layer);
    for (int l = first_; l < end_; ++l) {
      const LayerWeights& L = m_.layer(l);
      GpuLayer& g = layers_[l];
      g.attn_norm = upload(L.attn_norm), g.wo = upload(L.wo);
      g.bq = upload(L.bq), g.bk = upload(L.bk), g.bv = upload(L.bv);
      g.q_norm = upload(L.q_norm), g.k_norm = upload(L.k_norm), g.ffn_norm = upload(L.ffn_norm);
      if (fusable({&L.wq, &L.wk, &L.wv}) || !fusable({&L.wq, &L.wk})) {
        upload_fused({&L.wq, &L.wk, &L.wv}, g.qkv_buf, separate_, {&g.q, &g.k, &g.v}, g.qkv);
      } else {
        upload_fused({&L.wq, &L.wk}, g.qkv_buf, separate_, {&g.q, &g.k}, g.qk);
        separate_.push_back(upload(L.wv));
        g.v = mat_of(separate_.back());
      }
      if (c_.n_expert > 0) {
        g.router = upload(L.ffn_router);
        g.gate_exps = upload(L.ffn_gate_exps), g.up_exps = upload(L.ffn_up_exps), g.down_exps = upload(L.ffn_down_exps);
      } else {
        g.ffn_down = upload(L.ffn_down);
        upload_fused({&L.ffn_gate, &L.ffn_up}, g.gu_buf, separate_, {&g.gate, &g.up}, g.gu);
      }
      g.k_pool = DevBuf(be_, pool_bytes);
      g.v_pool = DevBuf(be_, pool_bytes);
    }
    if (first_ == 0) token_embd_ = upload(m_.token_embd());
    if (head_) {
      output_norm_ = upload(m_.output_norm());
      // A tied output reuses the uploaded token table.
      if (!(c_.tied_output && first_ == 0)) output_w_ = upload(m_.output());
    }
    if (!m_.rope_freq_factors().empty()) {
      const size_t bytes = m_.rope_freq_factors().size() * sizeof(float);
      freq_ = DevBuf(be_, bytes);
      be_->check(api_.memcpy_h2d(freq_.get(), m_.rope_freq_factors().data(), bytes, stream_), "uploading rope factors");
    }
    be_->check(api_.stream_sync(stream_), "uploading weights");
    if (head_) {
      const Mat o = mat_of(output_weight());
      head_stores_to_host_ = use_q8_ && api_.has_matvec_q8(o.type) && o.cols % 32 == 0;
    }
  }

  const DevWeight& output_weight() const { return output_w_.present() ? output_w_ : token_embd_; }

  void reserve_scratch(int T) {
    if (T <= cap_) return;
    clear_graphs();  // they captured the old buffers
    cap_ = T;
    auto fbuf = [&](int64_t n) { return DevBuf(be_, static_cast<size_t>(n) * sizeof(float)); };
    x_ = fbuf(int64_t(T) * c_.n_embd);
    x2_ = fbuf(int64_t(T) * c_.n_embd);
    h_ = fbuf(int64_t(T) * c_.n_embd);
    // q, k, v: [T][q_dim] then [T][kv_dim] twice, back to back, so that for T == 1 the fused qkv
    // matvec's output [q | k | v] is exactly this layout; likewise gate then up.
    qkv_ = fbuf(int64_t(T) * (c_.q_dim() + 2 * c_.kv_dim()));
    att_ = fbuf(int64_t(T) * c_.q_dim());
    gu_ = fbuf(int64_t(T) * 2 * c_.n_ff);
    logits_ = head_ ? fbuf(int64_t(T) * c_.n_vocab) : DevBuf();
    // Decode steps copy their logits through page-locked memory: one DMA instead of the runtime's
    // staged copy into pageable memory (ROCFORGE_GPU_PINNED_LOGITS=0: straight into the vector).
    pinned_rows_ = env_off("ROCFORGE_GPU_PINNED_LOGITS") || !head_ ? 0 : std::min(T, kPinnedLogitRows);
    logits_host_ = pinned_rows_ ? HostBuf(be_, size_t(pinned_rows_) * c_.n_vocab * sizeof(float)) : HostBuf();
    if (!logits_host_.floats()) pinned_rows_ = 0;
    // Steps whose logits go to the host have the head store them straight into that page-locked
    // buffer through its device address: no copy after the step (the DMA cost ~16 us a token, ~3% of
    // a 1B's). ROCFORGE_GPU_DIRECT_LOGITS=0: the head writes logits_ and a copy follows.
    logits_host_dev_ = nullptr;
    if (pinned_rows_ && !env_off("ROCFORGE_GPU_DIRECT_LOGITS")) {
      void* d = nullptr;
      if (api_.host_device_ptr(logits_host_.floats(), &d) == 0) logits_host_dev_ = static_cast<float*>(d);
    }
    const int max_in = std::max({c_.n_embd, c_.q_dim(), c_.n_ff});
    xq_ = DevBuf(be_, api_.q8_bytes(std::min(T, kMultiTokens) * ((max_in + 31) / 32 * 32)));
    // Its own buffer: the gate/up blocks still read xq_ while others write their SwiGLU outputs.
    xq_ff_ = c_.n_expert == 0 && c_.n_ff % 32 == 0 ? DevBuf(be_, api_.q8_bytes(c_.n_ff)) : DevBuf();
    token_d_ = DevBuf(be_, sizeof(int32_t) * T);  // a sampled id per logits row
    sample_rows_ = DevBuf(be_, sizeof(rf_sample_row) * std::max(T, kMaxChainSteps));
    if (std::max(T, kMaxChainSteps) > pen_rows_cap_) {  // the pairs' offset moves: reallocated on next use
      pen_rows_cap_ = std::max(T, kMaxChainSteps);
      pen_d_ = DevBuf();
      pen_pairs_cap_ = 0;
    }
    if (c_.n_expert > 0) {
      const int64_t slots = int64_t(std::min(T, kMoeChunkTokens)) * c_.n_expert_used;
      moe_router_ = fbuf(int64_t(std::min(T, kMoeChunkTokens)) * c_.n_expert);
      moe_ids_ = DevBuf(be_, static_cast<size_t>(slots) * sizeof(int32_t));
      moe_w_ = fbuf(slots);
      moe_gu_ = fbuf(slots * 2 * c_.n_ff);
      moe_y_ = fbuf(slots * c_.n_embd);
      moe_x_ = fbuf(slots * c_.n_embd);
      moe_perm_ = DevBuf(be_, static_cast<size_t>(slots) * 2 * sizeof(int32_t));
      const int64_t max_x = std::max<int64_t>(slots * c_.n_ff, int64_t(std::min(T, kMoeChunkTokens)) * c_.n_embd);
      moe_xq_ = DevBuf(be_, api_.q8_bytes(static_cast<int>((max_x + 31) / 32 * 32)));
    }
  }

  // Step inputs in one device buffer (one upload per step): tokens [cap], positions [cap], sequence
  // lengths [cap], block tables [n_seq][stride]. Fixed offsets, so captured graphs read new values.
  // A chain of steps (forward_sample_steps) gives each step its own such region (in_off_), and a step
  // after the first reads its token where the sampler of the step before left it (tok_src_).
  const int32_t* in_tokens() const { return tok_src_ ? tok_src_ : in_.get<int32_t>() + in_off_; }
  int32_t* in_pos() const { return in_.get<int32_t>() + in_off_ + cap_; }
  int32_t* in_lens() const { return in_.get<int32_t>() + in_off_ + 2 * cap_; }
  int32_t* in_tables() const { return in_.get<int32_t>() + in_off_ + 3 * cap_; }

  // y[T, rows] = x[T, cols] W^T. Decode (T == 1) uses the int8-activation path where the backend has
  // one; `xq_ready` says x is already quantized in xq_ (qkv and gate/up share one quantization).
  void proj(const Mat& w, const float* x, float* y, int T, bool* xq_ready = nullptr) {
    if (T == 1 && use_q8_ && api_.has_matvec_q8(w.type) && w.cols % 32 == 0) {
      if (!xq_ready || !*xq_ready) {
        be_->check(api_.quantize_q8(x, w.cols, xq_.get(), stream_), "quantize_q8");
        if (xq_ready) *xq_ready = true;
      }
      be_->check(api_.matvec_q8(w.type, w.d, w.row_bytes, xq_.get(), y, w.rows, w.cols, stream_), *w.name);
    } else if (T == 1) {
      be_->check(api_.matvec(w.type, w.d, w.row_bytes, x, y, w.rows, w.cols, stream_), *w.name);
    } else if (T <= multi_max_tokens_ && use_q8_ && api_.has_matvec_q8(w.type) && w.cols % 32 == 0) {
      // A few sequences decoding together: matvec_q8_multi reads each weight once for up to
      // kMultiTokens of them, where dequantizing the weights for a GEMM costs more. One chunk: x's
      // quantization is shared by the projections of one input (xq_ready), as for one token.
      for (int t0 = 0; t0 < T; t0 += kMultiTokens) {
        const int n = std::min(kMultiTokens, T - t0);
        if (T > kMultiTokens || !xq_ready || !*xq_ready) {
          be_->check(api_.quantize_q8(x + int64_t(t0) * w.cols, n * w.cols, xq_.get(), stream_), "quantize_q8");
          if (xq_ready && T <= kMultiTokens) *xq_ready = true;
        }
        be_->check(api_.matvec_q8_multi(w.type, w.d, w.row_bytes, xq_.get(), y + int64_t(t0) * w.rows, w.rows, w.cols,
                                        n, stream_),
                   *w.name);
      }
    } else if (T >= f16_min_tokens_) {  // tensor cores (matmul_mma up to 64 tokens, else cuBLAS slices)
      be_->check(api_.matmul_f16(w.type, w.d, w.row_bytes, x, y, w.rows, w.cols, T, stream_), *w.name);
    } else {
      be_->check(api_.matmul(w.type, w.d, w.row_bytes, x, y, w.rows, w.cols, T, stream_), *w.name);
    }
  }
  void proj(const DevWeight& w, const float* x, float* y, int T, bool* xq_ready = nullptr) {
    proj(mat_of(w), x, y, T, xq_ready);
  }
  // Decode of one token: y = [a x | b x] (b's rows right after a's; b may be absent) in one launch
  // where the backend serves the formats (matvec_q8_qkv), with rope and the KV store applied when
  // `rope` is given; returns false, having launched nothing but perhaps x's quantization, where it
  // does not (or declines: the format's fused launch does not pay on this device).
  bool proj_qkv(const Mat& a, const Mat* b, const float* x, float* y, bool* xq_ready, const rf_qkv_rope* rope) {
    const uint32_t tb = b ? b->type : 0;
    if (!use_q8_ || a.cols % 32 != 0 || (b && b->cols != a.cols) || !api_.has_matvec_q8_qkv(a.type, tb)) return false;
    if (!*xq_ready) {
      be_->check(api_.quantize_q8(x, a.cols, xq_.get(), stream_), "quantize_q8");
      *xq_ready = true;
    }
    const int rc = api_.matvec_q8_qkv(a.type, a.d, a.row_bytes, a.rows, tb, b ? b->d : nullptr, b ? b->row_bytes : 0,
                                      b ? b->rows : 0, a.cols, xq_.get(), y, rope, stream_);
    if (rc < 0) return false;  // declined where the one launch does not pay: x stays quantized for the parts
    be_->check(rc, *a.name + (b ? " + " + *b->name : std::string()));
    return true;
  }

  // Steps the tensor-core GEMM or the multi-token matvec takes multiply a fused buffer's matrices
  // (q/k/v or q/k, gate/up) in one launch, each part's rows into its own output; false, having
  // launched nothing but perhaps x's quantization (then *xq_ready), where they do not.
  bool proj_parts(const Mat& fused, std::initializer_list<const Mat*> parts, const float* x,
                  std::initializer_list<float*> ys, int T, bool* xq_ready = nullptr) {
    if (!parts_ || !fused.present() || fused.cols % 32 != 0) return false;
    int rows[3];
    float* y[3];
    int n = 0;
    for (const Mat* m : parts) rows[n++] = m->rows;
    n = 0;
    for (float* p : ys) y[n++] = p;
    if (T > 1 && T <= multi_max_tokens_ && T <= kMultiTokens && use_q8_ && api_.has_matvec_q8(fused.type)) {
      if (!xq_ready || !*xq_ready) {
        be_->check(api_.quantize_q8(x, T * fused.cols, xq_.get(), stream_), "quantize_q8");
        if (xq_ready) *xq_ready = true;
      }
      const int rc = api_.matvec_q8_multi_parts(fused.type, fused.d, fused.row_bytes, xq_.get(), fused.cols, T, n, rows,
                                                y, stream_);
      if (rc < 0) return false;  // not on this device: a part at a time (x stays quantized)
      be_->check(rc, *fused.name);
      return true;
    }
    const bool f16 = fused.type == static_cast<uint32_t>(GgmlType::F16);  // cuBLAS reads those as they are
    if (f16 || T <= multi_max_tokens_ || T < f16_min_tokens_ || T > mma_max_tokens_) return false;
    be_->check(api_.matmul_f16_parts(fused.type, fused.d, fused.row_bytes, x, fused.cols, T, n, rows, y, stream_),
               *fused.name);
    return true;
  }

  // The residual buffer a fused norm writes its sum to: the one resid_ is not (its blocks still read that).
  float* other_resid() const { return resid_ == x_.get<float>() ? x2_.get<float>() : x_.get<float>(); }
  // Decode: y = [a | b] rmsnorm(resid + add) in one launch where the backend has the fused kernel
  // (matvec_q8_norm), the residual sum going to the other buffer; returns false, having launched
  // nothing, where it does not.
  bool proj_with_norm(const Mat& a, const Mat* b, const DevWeight& norm_w, const float* add, float* y,
                      const rf_qkv_rope* rope, bool ffn) {
    if (!use_q8_ || !norm_fused(ffn) || a.cols % 32 != 0 || (b && b->cols != a.cols)) return false;
    float* out = add ? other_resid() : nullptr;
    const rf_norm_in in{resid_, add, norm_w.buf.get<float>(), c_.rms_eps, out};
    const int rc = api_.matvec_q8_norm(a.type, a.d, a.row_bytes, a.rows, b ? b->type : 0, b ? b->d : nullptr,
                                       b ? b->row_bytes : 0, b ? b->rows : 0, a.cols, &in, y, rope, stream_);
    if (rc < 0) return false;
    be_->check(rc, *a.name + " (with its norm)");
    if (out) resid_ = out;
    return true;
  }

  // Decode: [gate | up] and SwiGLU in one launch (matvec_q8_swiglu), the down projection's int8 input
  // left in xq_ff_; x from xq_ (quantized by the norm before) or, with norm_w, the norm made inside as
  // proj_with_norm does. False, having launched nothing, where the backend has no such kernel.
  bool proj_swiglu(const Mat& gu, const DevWeight* norm_w, const float* add, float* g) {
    if (!swiglu_fuse_ || !use_q8_ || !xq_ff_.get() || gu.cols % 32 != 0 || gu.rows != 2 * c_.n_ff) return false;
    if (norm_w && !norm_fused(true)) return false;
    float* out = norm_w && add ? other_resid() : nullptr;
    const rf_norm_in in{resid_, add, norm_w ? norm_w->buf.get<float>() : nullptr, c_.rms_eps, out};
    const int rc = api_.matvec_q8_swiglu(gu.type, gu.d, gu.row_bytes, c_.n_ff, gu.cols, norm_w ? nullptr : xq_.get(),
                                         norm_w ? &in : nullptr, g, xq_ff_.get(), stream_);
    if (rc < 0) return false;
    be_->check(rc, *gu.name + " (with SwiGLU" + (norm_w ? " and its norm)" : ")"));
    if (out) resid_ = out;
    return true;
  }
  // Decode: y = W xq for an x already quantized (int8 input of matvec_q8) in `xq`.
  void proj_q8(const Mat& w, const void* xq, float* y) {
    be_->check(api_.matvec_q8(w.type, w.d, w.row_bytes, xq, y, w.rows, w.cols, stream_), *w.name);
  }

  // Decode: the int8 launch of `current` (the next one on this thread) pulls the first
  // prefetch_bytes_ of `next` into L2 as its blocks finish (matvec_prefetch_next, gpu/l2_prefetch.h).
  void prefetch_next(const Mat& current, const Mat& next) {
    if (!prefetch_bytes_ || !use_q8_ || !current.present() || !next.present() || !api_.has_matvec_q8(current.type))
      return;
    api_.matvec_prefetch_next(next.d, std::min<size_t>(prefetch_bytes_, size_t(next.rows) * next.row_bytes));
  }
  void add_bias(const DevWeight& bias, float* y, int T, int n) {
    if (!bias.present()) return;
    // One launch per token: biases only exist on qwen2, and per-token adds are cheap beside matmuls.
    for (int t = 0; t < T; ++t)
      be_->check(api_.add(y + int64_t(t) * n, bias.buf.get<float>(), y + int64_t(t) * n, n, stream_), "bias");
  }

  // ROCFORGE_GPU_SKIP (profiling only: the logits are wrong): bit set = that decode-layer launch is
  // left out, to measure what each kind costs inside the real graph.
  // kSkipLogitsCopy leaves out forward()'s copy of the logits to the host, kSkipLogitsHostCopy only
  // its second half (page-locked buffer -> the caller's vector). kSkipQkv .. kSkipDown leave out one
  // projection of the layer (with what rides inside it: rope and the cache store, a fused norm).
  enum Skip {
    kSkipMatvec = 1, kSkipNorm = 2, kSkipRope = 4, kSkipAttn = 8, kSkipSwiglu = 16, kSkipLogitsCopy = 32,
    kSkipLogitsHostCopy = 64, kSkipQkv = 128, kSkipO = 256, kSkipGateUp = 512, kSkipDown = 1024
  };
  bool skip(int what) const { return (skip_ & what) != 0; }

  void layer(int l, const Batch& b, int T);
  void moe(const GpuLayer& L, float* h, int T, bool hq);
  void experts(const Mat& w, int n_slots, int x_div, const float* x, const void* xq, float* y);
  void moe_grouped(const Mat& gate, const Mat& up, const Mat& down, int n, const float* x);

  std::unique_ptr<GpuExecutor> upstream_;  // the stage before this one (split models), or null
  const Model& m_;
  const ModelConfig& c_;
  KvConfig kv_;
  device::Selection sel_;
  const device::GpuBackend* be_;
  const rf_gpu_api& api_;
  int dev_;           // this stage's device
  int first_, end_;   // its layers [first_, end_)
  bool head_;         // it holds the last layer: the output norm and head run here
  int n_cpu_;         // layers [0, n_cpu_) on the CPU before this stage (the first stage only)
  bool split_ = false;  // the model spans several stages
  std::string gpu_name_;
  rf_event done_ = nullptr;  // a stage before the head's: recorded after its layers (run_stage)
  cpu::ThreadPool pool_;
  std::unique_ptr<CpuForward> cpu_;
  rf_stream stream_ = nullptr;
  bool use_q8_ = true;
  bool repack_ = !env_off("ROCFORGE_GPU_REPACK");
  bool fuse_ = true;  // ROCFORGE_GPU_FUSE=0: q/k/v and gate/up apart, no fused decode kernels (A/B runs)
  bool use_graphs_ = true;  // ROCFORGE_GPU_GRAPHS=0 launches every decode step directly
  bool pair_ = !env_off("ROCFORGE_GPU_PAIR");  // =0: [q | k] and v in two launches (A/B runs)
  bool qkv_rope_ = !env_off("ROCFORGE_GPU_QKV_ROPE");  // =0: rope + KV store in their own launch (A/B runs)
  // Which decode norms ride inside the next projection (matvec_q8_norm): ROCFORGE_GPU_NORM_FUSE=0 none,
  // 1 both, 2 the FFN's only; unset: see norm_fused().
  int norm_fuse_env_ = [] {
    const char* v = std::getenv("ROCFORGE_GPU_NORM_FUSE");
    return v && *v ? std::atoi(v) : -1;
  }();
  // Whether the attention (ffn = false) or FFN norm is fused. By default both for models up to 2048
  // wide, none beyond: the saved launch pays where the matrices are small, while on an 8B each of the
  // ~260 blocks making the norm itself delays its first product by more than a launch costs (H200,
  // tg128 medians of 3, fused vs not: 1B Q4_K_M / Q4_0 / Q8_0 +1.9 / +2.2 / +6.0%; 8B Q8_0 -2.2% with
  // both fused, -1.2% with the FFN's only; 8B Q4_K_M -0.7%).
  bool norm_fused(bool ffn) const {
    if (norm_fuse_env_ >= 0) return norm_fuse_env_ == 1 || (norm_fuse_env_ == 2 && ffn);
    return c_.n_embd <= 2048;
  }
  // Steps of up to this many tokens multiply with int8 matvecs (matvec_q8_multi, in chunks of
  // kMultiTokens) instead of matmul_f16 (set in the constructor; ROCFORGE_GPU_MULTI_MAX overrides).
  int multi_max_tokens_ = 8;
  int mma_max_tokens_ = 0;  // matmul_f16's tensor-core kernel serves up to this many tokens
  // One launch over the parts of a fused buffer for steps it serves (ROCFORGE_GPU_PARTS=0: one a part).
  bool parts_ = !env_off("ROCFORGE_GPU_PARTS");
  // SwiGLU in the gate/up projection's epilogue (proj_swiglu); ROCFORGE_GPU_SWIGLU_FUSE=0: its own launch.
  bool swiglu_fuse_ = !env_off("ROCFORGE_GPU_SWIGLU_FUSE");
  // Decode steps of a few sequences with the several-row fusions (gpu_layer.cpp; =0: off, for A/B).
  bool multi_fuse_ = !env_off("ROCFORGE_GPU_MULTI_FUSE");
  // Steps of at least this many tokens (and more than multi_max_tokens_) go to matmul_f16;
  // ROCFORGE_GPU_F16_MIN overrides (A/B runs).
  int f16_min_tokens_ = [] {
    const char* v = std::getenv("ROCFORGE_GPU_F16_MIN");
    return v && *v ? std::max(2, std::atoi(v)) : kF16MinTokens;
  }();
  bool pending_ = false;    // decode: h_ holds the last residual branch, not yet added to x_
  // Bytes of the next projection each decode projection pulls into L2 (prefetch_next): about what
  // DRAM moves during the short kernels between two projections. H100, tg128 (means of two alternated
  // runs), MB 0 / 2 / 4 / 6 / 8:
  // 8B Q4_K_M 396.4 / 402.4 / 409.3 / 411.3 / 409.4, 1B Q4_K_M 1536.5 / 1570.3 / 1574.0 / 1559.0 /
  // 1521.0 (a larger share only competes with the next kernels' own reads). The size of the gap
  // (attention or a norm) made no difference. ROCFORGE_GPU_PREFETCH_MB overrides, 0 turns it off.
  size_t prefetch_bytes_ = env_mb("ROCFORGE_GPU_PREFETCH_MB", static_cast<size_t>(c_.n_embd <= 2048 ? 4 : 6) << 20);
  int skip_ = 0;            // ROCFORGE_GPU_SKIP, see Skip
  std::vector<GpuLayer> layers_;
  std::vector<DevWeight> separate_;  // matrices that could not be fused
  DevWeight token_embd_, output_norm_, output_w_;
  DevBuf freq_;
  int cap_ = 0;
  // The residual stream lives in x_ or x2_: a projection with its norm fused in reads it from one and
  // writes the sum to the other (its blocks cannot update it in place: others still read it); resid_
  // is the current one, x_ at the start of every step.
  DevBuf x2_;
  float* resid_ = nullptr;
  DevBuf x_, h_, qkv_, att_, gu_, logits_, xq_, in_, token_d_, workspace_;
  DevBuf xq_ff_;  // decode: the down projection's int8 input when SwiGLU rides in gate/up (proj_swiglu)
  static constexpr int kPinnedLogitRows = 8;
  HostBuf logits_host_;  // page-locked staging of up to pinned_rows_ rows of logits
  float* logits_host_dev_ = nullptr;  // logits_host_ as kernels address it (null: copy after the step)
  float* head_out_ = nullptr;         // where the step being launched writes its logits
  bool head_to_host_ = false;         // ... and whether that is logits_host_
  // Whether the head may store into logits_host_ at all: where it runs an int8 kernel, whose stores
  // are whole rows of a block. The plain F16 / BF16 / F32 kernels store each row's sum from its own
  // thread, one PCIe write each: H200, 1B tg128 direct -> copied after the step: F16 913 / 913 ->
  // 1014 / 1010, BF16 911 / 914 -> 998 / 1000 (Q8_0 1531 / 1518 -> 1502 / 1502: stays direct).
  bool head_stores_to_host_ = false;
  DevBuf sample_rows_;   // forward_sample_rows: the rows' sampling parameters
  DevBuf sample_ws_;     // the device sampler's workspace (grown on demand)
  std::vector<rf_sample_row> sample_host_;
  int pinned_rows_ = 0;
  // MoE scratch for kMoeChunkTokens tokens: router logits [tok][n_expert], the chosen experts and
  // their weights [slot], gate then up [slot][n_ff] each, expert outputs [slot][n_embd], int8 copies.
  DevBuf moe_router_, moe_ids_, moe_w_, moe_gu_, moe_y_, moe_xq_;
  DevBuf moe_x_, moe_perm_;  // moe_grouped: rows sorted by expert; [token of sorted slot | sorted place of slot]
  std::vector<int32_t> moe_ids_host_, moe_perm_host_;
  // Whether prompt chunks multiply each expert once over its tokens (moe_grouped): where a layer's
  // experts outgrow the L2 cache (kMoeGroupMinBytes), i.e. where the slot-by-slot matvecs read each
  // expert from memory once per slot. Small experts stay in L2 and the slot path is faster (H100,
  // moe-small, 21 MB of experts a layer: pp512 42296 / 40882 slot by slot, 18674 / 27969 grouped).
  // ROCFORGE_GPU_MOE_GROUPED=0: never, 2: always (A/B runs, tests).
  bool moe_grouped(const GpuLayer& L) const {
    if (moe_group_env_ != 1) return moe_group_env_ == 2;
    const auto bytes = [](const DevWeight& w) {
      return w.present() ? uint64_t(w.ref->n_mats) * uint64_t(w.ref->rows) * w.ref->row_bytes : uint64_t{0};
    };
    return bytes(L.gate_exps) + bytes(L.up_exps) + bytes(L.down_exps) >= kMoeGroupMinBytes;
  }
  int moe_group_env_ = [] {
    const char* v = std::getenv("ROCFORGE_GPU_MOE_GROUPED");
    return v && *v ? std::atoi(v) : 1;
  }();
  size_t in_ints_ = 0;            // capacity of in_, in int32
  std::vector<int32_t> in_host_;  // staging of in_
  // Page-locked copy of in_host_ the upload reads (one DMA; from pageable memory the runtime stages
  // the bytes itself before the step can start). H100 tg128, medians of 3 rounds, pageable -> pinned:
  // 1B Q8_0 1310.7 -> 1325.2, Q4_K_M 1667.6 -> 1674.3, Q4_0 1738.9 -> 1739.9. =0: upload from in_host_.
  HostBuf in_pinned_;
  bool pinned_inputs_ = !env_off("ROCFORGE_GPU_PINNED_INPUTS");
  std::vector<std::pair<GraphKey, rf_graph>> graphs_;
  // Chained decode steps (forward_sample_steps): the input region of the step being recorded, the
  // token it reads (null: its region's), and the sampled ids, on the device and copied back.
  size_t in_off_ = 0;
  const int32_t* tok_src_ = nullptr;
  DevBuf chain_tok_d_;
  HostBuf chain_tok_h_;
  // Penalties (upload_penalties): rows then pairs on the device, and their staging.
  int pen_rows_cap_ = 0;  // set with the scratch: the most rows sampled at once, at least a chain's steps
  DevBuf pen_d_;
  size_t pen_pairs_cap_ = 0;
  std::vector<int32_t> pen_host_;
  // Steps a generation chains per launch (Generator::generate asks for up to this many);
  // ROCFORGE_GPU_CHAIN=N overrides (0 or 1: one step at a time).
  int chain_steps_ = [] {
    const char* v = std::getenv("ROCFORGE_GPU_CHAIN");
    return v && *v ? std::clamp(std::atoi(v), 0, kMaxChainSteps) : 8;
  }();
  std::vector<float> host_x_;
  // Per-step sequence layout: tokens of sequence s are [seq_begin[s], seq_begin[s] + seq_len[s]).
  std::vector<int32_t> seq_begin_, seq_ntok_, flat_tables_;
  int32_t max_blocks_ = 0;
  bool all_decode_ = false;
  int32_t max_seq_len_ = 0;  // attention length bound passed to attn_decode (a bucket when graphed)
};

}  // namespace rocforge::gpu_detail
