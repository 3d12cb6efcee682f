// gpu_executor.cpp - the forward pass of cpu_forward.cpp, step for step, as kernel launches on one
// stream: weights uploaded once, K/V in device pools, only token ids / positions / block tables go
// up and the wanted logits come down.
//
// Hybrid: layers [0, n_cpu) run in a CpuForward, whose output hidden state is uploaded; layers
// [n_cpu, L) and the head run here. With n_cpu == 0 the embedding lookup runs on the GPU too.
#include "model/gpu_executor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/log.h"
#include "cpu/thread_pool.h"
#include "gpu/backend_api.h"
#include "gpu/repack.h"
#include "model/cpu_forward.h"

namespace rocforge {
namespace {

uint64_t weight_bytes(const WeightRef& w) { return w.present() ? w.row_bytes * w.rows * w.n_mats : 0; }

uint64_t layer_weight_bytes(const LayerWeights& L) {
  uint64_t b = 0;
  for (const WeightRef* w : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm, &L.ffn_norm,
                             &L.ffn_gate, &L.ffn_up, &L.ffn_down, &L.ffn_router, &L.ffn_gate_exps, &L.ffn_up_exps,
                             &L.ffn_down_exps})
    b += weight_bytes(*w);
  return b;
}

uint64_t kv_bytes_per_layer(const ModelConfig& c, const KvConfig& kv) {
  return 2ull * static_cast<uint64_t>(kv.n_slots()) * c.kv_dim() * sizeof(uint16_t);
}

// Scratch activations for a step of T tokens (floats).
uint64_t activation_bytes(const ModelConfig& c, int T) {
  const uint64_t per_tok = 2ull * c.n_embd + 2ull * c.q_dim() + 2ull * c.kv_dim() + 2ull * c.n_ff + c.n_vocab;
  return per_tok * T * sizeof(float) + (64ull << 20);  // + attention workspace, q8 copies, tables
}

// Steps of at least this many tokens multiply through matmul_f16; below, dequantizing whole weight
// slices to f16 costs more than the fp32 tile kernel's work.
constexpr int kF16MinTokens = 6;
// Below this many tokens a step multiplies token by token with int8 matvecs.
constexpr int kSmallBatchTokens = 6;

// True when the environment variable is set to "0" (switches for A/B measurements).
bool env_off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

}  // namespace

GpuPlan plan_gpu_layers(const Model& m, const KvConfig& kv, const device::GpuInfo& gpu, int requested, int max_batch) {
  const auto& c = m.config();
  GpuPlan p;
  // Fixed cost: output head (+ token table when no layer stays on the CPU) and activations.
  const uint64_t reserve = 512ull << 20;  // the runtime's own allocations, fragmentation
  uint64_t fixed = weight_bytes(m.output()) + weight_bytes(m.output_norm()) + activation_bytes(c, max_batch);
  const uint64_t embd = c.tied_output ? 0 : weight_bytes(m.token_embd());
  const uint64_t avail = gpu.free_memory > reserve ? gpu.free_memory - reserve : 0;
  int fit = 0;
  uint64_t used = fixed;
  for (int l = c.n_layer - 1; l >= 0; --l) {
    const uint64_t need = layer_weight_bytes(m.layer(l)) + kv_bytes_per_layer(c, kv) + (l == 0 ? embd : 0);
    if (used + need > avail) break;
    used += need;
    ++fit;
  }
  if (used > avail) fit = 0;
  const int want = requested < 0 ? c.n_layer : std::min(requested, c.n_layer);
  p.gpu_layers = std::min(want, fit);
  if (p.gpu_layers < want)
    p.reason = "only " + std::to_string(fit) + " of " + std::to_string(c.n_layer) + " layers fit in " +
               std::to_string(gpu.free_memory >> 20) + " MiB of free GPU memory";
  p.bytes = fixed;
  for (int l = c.n_layer - p.gpu_layers; l < c.n_layer; ++l)
    p.bytes += layer_weight_bytes(m.layer(l)) + kv_bytes_per_layer(c, kv) + (l == 0 ? embd : 0);
  return p;
}

namespace {

// A device allocation released with the backend's free.
class DevBuf {
 public:
  DevBuf() = default;
  DevBuf(const device::GpuBackend* be, size_t bytes) : be_(be), bytes_(bytes) {
    if (bytes) be->check(be->api().malloc(&p_, bytes), "allocating " + std::to_string(bytes >> 20) + " MiB on the GPU");
  }
  ~DevBuf() { reset(); }
  DevBuf(DevBuf&& o) noexcept : be_(o.be_), p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, p_ = o.p_, bytes_ = o.bytes_;
      o.p_ = nullptr;
    }
    return *this;
  }
  void reset() {
    if (p_) be_->api().free(p_);
    p_ = nullptr;
  }
  template <typename T = void>
  T* get() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  const device::GpuBackend* be_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

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
  DevBuf k_pool, v_pool;  // [n_blocks][Hkv][B][D] half
  DevWeight router, gate_exps, up_exps, down_exps;  // MoE: [E -> n_expert], [n_expert][F x E] ...
};

// Graph cache key of a decode step: sequences in the batch and the attention length bucket.
struct GraphKey {
  int n_seq, bucket;
  bool operator==(const GraphKey& o) const { return n_seq == o.n_seq && bucket == o.bucket; }
};

class GpuExecutor final : public Executor {
 public:
  GpuExecutor(const Model& m, const KvConfig& kv, const device::Selection& sel, const GpuPlan& plan, int n_threads,
              int max_batch)
      : m_(m), c_(m.config()), kv_(kv), sel_(sel), be_(sel.backend.get()), api_(be_->api()),
        n_cpu_(c_.n_layer - plan.gpu_layers), pool_(n_threads) {
    kv_.f16 = true;  // device pools are f16
    be_->check(api_.set_device(sel.gpu.index), "selecting the GPU");
    be_->check(api_.stream_create(&stream_), "creating a stream");
    if (n_cpu_ > 0) cpu_ = std::make_unique<CpuForward>(m, kv, pool_, 0, n_cpu_);
    fuse_ = !env_off("ROCFORGE_GPU_FUSE");
    use_graphs_ = !env_off("ROCFORGE_GPU_GRAPHS");
    if (const char* e = std::getenv("ROCFORGE_GPU_SKIP")) skip_ = std::atoi(e);
    upload_weights();
    reserve_scratch(std::max(1, max_batch));
    warm_up(max_batch);
  }

  ~GpuExecutor() override {
    clear_graphs();
    if (stream_) {
      api_.stream_sync(stream_);
      api_.stream_destroy(stream_);
    }
  }

  std::string device_name() const override {
    std::string s = "gpu " + std::to_string(sel_.gpu.index) + " (" + sel_.gpu.name + ", " + be_->name() + ")";
    if (n_cpu_ > 0) s += ", hybrid: " + std::to_string(n_cpu_) + " of " + std::to_string(c_.n_layer) + " layers on the CPU";
    return s;
  }
  const KvConfig& kv_config() const override { return kv_; }

  void forward(const Batch& b, std::vector<float>& logits) override;
  bool forward_sample(const Batch& b, const SamplingParams& p, float u, int32_t* token) override;

 private:
  // One prompt step of the largest batch and one decode step on the first KV blocks, at load: the
  // backend's one-off costs (vendor BLAS handle and scratch, module loading, the first graph capture)
  // leave the first request. Harmless to the cache: a sequence writes every position's K/V before it
  // attends to it, and nothing is cached yet.
  void warm_up(int max_batch) {
    if (n_cpu_ > 0) return;
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
  }

  // Lays the batch out, uploads its inputs (one copy) and runs the step up to the logits of the rows
  // that want them (left in logits_); returns that row count. Nothing is synchronised.
  int run_step(const Batch& b);
  // The launches of one step (recorded into a graph, or run directly).
  void launch_step(const Batch& b, int T, int n_seq, bool all_rows_out);
  void clear_graphs() {
    for (auto& [k, g] : graphs_) api_.graph_destroy(g);
    graphs_.clear();
  }

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
    const uint64_t pool_bytes = static_cast<uint64_t>(kv_.n_slots()) * c_.kv_dim() * sizeof(uint16_t);
    layers_.resize(c_.n_layer);
    for (int l = n_cpu_; l < c_.n_layer; ++l) {
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
    if (n_cpu_ == 0) token_embd_ = upload(m_.token_embd());
    output_norm_ = upload(m_.output_norm());
    // A tied output reuses the uploaded token table.
    if (!(c_.tied_output && n_cpu_ == 0)) output_w_ = upload(m_.output());
    if (!m_.rope_freq_factors().empty()) {
      const size_t bytes = m_.rope_freq_factors().size() * sizeof(float);
      freq_ = DevBuf(be_, bytes);
      be_->check(api_.memcpy_h2d(freq_.get(), m_.rope_freq_factors().data(), bytes, stream_), "uploading rope factors");
    }
    be_->check(api_.stream_sync(stream_), "uploading weights");
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
    logits_ = fbuf(int64_t(T) * c_.n_vocab);
    const int max_in = std::max({c_.n_embd, c_.q_dim(), c_.n_ff});
    xq_ = DevBuf(be_, api_.q8_bytes((max_in + 31) / 32 * 32));
    token_d_ = DevBuf(be_, sizeof(int32_t));
    if (c_.n_expert > 0) {
      moe_router_ = fbuf(int64_t(T) * c_.n_expert);
      moe_y_ = fbuf(int64_t(T) * c_.n_expert_used * c_.n_embd);
    }
  }

  // Step inputs in one device buffer (one upload per step): tokens [cap], positions [cap], sequence
  // lengths [cap], block tables [n_seq][stride]. Fixed offsets, so captured graphs read new values.
  int32_t* in_tokens() const { return in_.get<int32_t>(); }
  int32_t* in_pos() const { return in_.get<int32_t>() + cap_; }
  int32_t* in_lens() const { return in_.get<int32_t>() + 2 * cap_; }
  int32_t* in_tables() const { return in_.get<int32_t>() + 3 * cap_; }

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
    } else if (T < kSmallBatchTokens && use_q8_ && api_.has_matvec_q8(w.type) && w.cols % 32 == 0) {
      // A few sequences decoding together: one int8 matvec per token reads the weights T times, yet
      // costs less than dequantizing them for a GEMM (bench-serve, 8B Q4_K_M on an H200).
      for (int t = 0; t < T; ++t) {
        be_->check(api_.quantize_q8(x + int64_t(t) * w.cols, w.cols, xq_.get(), stream_), "quantize_q8");
        be_->check(api_.matvec_q8(w.type, w.d, w.row_bytes, xq_.get(), y + int64_t(t) * w.rows, w.rows, w.cols, stream_),
                   *w.name);
      }
    } else if (T >= kF16MinTokens) {  // tensor cores: a weight slice dequantized once serves T tokens
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
  // `rope` is given; returns false, having launched nothing, where it does not.
  bool proj_qkv(const Mat& a, const Mat* b, const float* x, float* y, bool* xq_ready, const rf_qkv_rope* rope) {
    const uint32_t tb = b ? b->type : 0;
    if (!use_q8_ || a.cols % 32 != 0 || (b && b->cols != a.cols) || !api_.has_matvec_q8_qkv(a.type, tb)) return false;
    if (!*xq_ready) {
      be_->check(api_.quantize_q8(x, a.cols, xq_.get(), stream_), "quantize_q8");
      *xq_ready = true;
    }
    be_->check(api_.matvec_q8_qkv(a.type, a.d, a.row_bytes, a.rows, tb, b ? b->d : nullptr, b ? b->row_bytes : 0,
                                  b ? b->rows : 0, a.cols, xq_.get(), y, rope, stream_),
               *a.name + (b ? " + " + *b->name : std::string()));
    return true;
  }

  // Decode: y = [a | b] rmsnorm(resid + add) in one launch where the backend has the fused kernel
  // (matvec_q8_norm), the residual sum going to the other buffer; returns false, having launched
  // nothing, where it does not.
  bool proj_with_norm(const Mat& a, const Mat* b, const DevWeight& norm_w, const float* add, float* y,
                      const rf_qkv_rope* rope, bool ffn) {
    if (!use_q8_ || !norm_fused(ffn) || a.cols % 32 != 0 || (b && b->cols != a.cols)) return false;
    float* out = add ? (resid_ == x_.get<float>() ? x2_.get<float>() : x_.get<float>()) : nullptr;
    const rf_norm_in in{resid_, add, norm_w.buf.get<float>(), c_.rms_eps, out};
    const int rc = api_.matvec_q8_norm(a.type, a.d, a.row_bytes, a.rows, b ? b->type : 0, b ? b->d : nullptr,
                                       b ? b->row_bytes : 0, b ? b->rows : 0, a.cols, &in, y, rope, stream_);
    if (rc < 0) return false;
    be_->check(rc, *a.name + " (with its norm)");
    if (out) resid_ = out;
    return true;
  }

  void add_bias(const DevWeight& bias, float* y, int T, int n) {
    if (!bias.present()) return;
    // One launch per token: biases only exist on qwen2, and per-token adds are cheap beside matmuls.
    for (int t = 0; t < T; ++t)
      be_->check(api_.add(y + int64_t(t) * n, bias.buf.get<float>(), y + int64_t(t) * n, n, stream_), "bias");
  }

  // ROCFORGE_GPU_SKIP (profiling only: the logits are wrong): bit set = that decode-layer launch is
  // left out, to measure what each kind costs inside the real graph.
  enum Skip { kSkipMatvec = 1, kSkipNorm = 2, kSkipRope = 4, kSkipAttn = 8, kSkipSwiglu = 16 };
  bool skip(int what) const { return (skip_ & what) != 0; }

  void layer(int l, const Batch& b, int T);
  void moe(const GpuLayer& L, float* h, int T);

  const Model& m_;
  const ModelConfig& c_;
  KvConfig kv_;
  device::Selection sel_;
  const device::GpuBackend* be_;
  const rf_gpu_api& api_;
  int n_cpu_;
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
  bool pending_ = false;    // decode: h_ holds the last residual branch, not yet added to x_
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
  DevBuf x_, h_, qkv_, att_, gu_, logits_, xq_, in_, token_d_, workspace_, moe_router_, moe_y_;
  std::vector<float> moe_host_, moe_mix_;
  size_t in_ints_ = 0;            // capacity of in_, in int32
  std::vector<int32_t> in_host_;  // staging of in_
  std::vector<std::pair<GraphKey, rf_graph>> graphs_;
  std::vector<float> host_x_;
  // Per-step sequence layout: tokens of sequence s are [seq_begin[s], seq_begin[s] + seq_len[s]).
  std::vector<int32_t> seq_begin_, seq_ntok_, flat_tables_;
  int32_t max_blocks_ = 0;
  bool all_decode_ = false;
  int32_t max_seq_len_ = 0;  // attention length bound passed to attn_decode (a bucket when graphed)
};

int GpuExecutor::run_step(const Batch& b) {
  const int T = b.size();
  reserve_scratch(T);
  const int n_seq = static_cast<int>(b.block_tables.size());

  // Sequence layout. The engine lays each sequence's tokens out contiguously, in order.
  seq_begin_.assign(n_seq, -1);
  seq_ntok_.assign(n_seq, 0);
  for (int t = 0; t < T; ++t) {
    const int s = b.seq[t];
    if (s < 0 || s >= n_seq) throw Error("batch: token " + std::to_string(t) + " has no sequence");
    if (seq_begin_[s] < 0) seq_begin_[s] = t;
    else if (seq_begin_[s] + seq_ntok_[s] != t || b.pos[t] != b.pos[t - 1] + 1)
      throw Error("batch: the GPU executor needs each sequence's tokens contiguous and in order");
    ++seq_ntok_[s];
  }
  // Decode attention indexes q by sequence: it needs token s to be sequence s's only token.
  all_decode_ = n_seq == T;
  for (int s = 0; s < n_seq && all_decode_; ++s) all_decode_ = seq_ntok_[s] == 1 && seq_begin_[s] == s;
  bool all_rows_out = true;
  for (int t = 0; t < T; ++t) all_rows_out = all_rows_out && b.logits[t];

  std::vector<int32_t> lens(n_seq, 0);
  max_seq_len_ = 1;
  for (int s = 0; s < n_seq; ++s) {
    const auto& tbl = b.block_tables[s];
    for (int32_t blk : tbl)
      if (blk < 0 || blk >= kv_.n_blocks) throw Error("batch: KV block " + std::to_string(blk) + " out of range");
    if (seq_ntok_[s] > 0) {
      const int last_pos = b.pos[seq_begin_[s] + seq_ntok_[s] - 1];
      if (last_pos / kv_.block_size >= static_cast<int>(tbl.size()))
        throw Error("batch: position " + std::to_string(last_pos) + " is beyond its sequence's KV blocks");
      lens[s] = last_pos + 1;
      max_seq_len_ = std::max(max_seq_len_, lens[s]);
    }
  }

  // A graph replays fixed launch shapes: attention is sized for a length bucket (a power of two
  // >= 256; split blocks past a sequence's real end add nothing) and the tables get that stride.
  // MoE routes on the host (a sync per layer), which a captured graph cannot contain.
  const bool graphed = use_graphs_ && n_cpu_ == 0 && all_decode_ && all_rows_out && c_.n_expert == 0;
  if (graphed) {
    int bucket = 256;
    while (bucket < max_seq_len_) bucket *= 2;
    bucket = (bucket + kv_.block_size - 1) / kv_.block_size * kv_.block_size;
    max_seq_len_ = bucket;
    max_blocks_ = bucket / kv_.block_size;
  } else {
    max_blocks_ = 1;
    for (const auto& tbl : b.block_tables) max_blocks_ = std::max<int32_t>(max_blocks_, static_cast<int32_t>(tbl.size()));
  }

  // Inputs, staged into one upload.
  const size_t n_in = 3 * size_t(cap_) + size_t(n_seq) * max_blocks_;
  if (in_ints_ < n_in) {
    clear_graphs();
    in_ints_ = n_in * 2;
    in_ = DevBuf(be_, in_ints_ * sizeof(int32_t));
  }
  in_host_.assign(n_in, 0);
  if (n_cpu_ == 0)
    for (int t = 0; t < T; ++t) {
      if (b.token[t] < 0 || b.token[t] >= c_.n_vocab) throw Error("token id " + std::to_string(b.token[t]) + " out of range");
      in_host_[t] = b.token[t];
    }
  std::copy(b.pos.begin(), b.pos.end(), in_host_.begin() + cap_);
  std::copy(lens.begin(), lens.end(), in_host_.begin() + 2 * cap_);
  for (int s = 0; s < n_seq; ++s) {
    const auto& tbl = b.block_tables[s];
    const size_t n = std::min<size_t>(tbl.size(), size_t(max_blocks_));
    std::copy(tbl.begin(), tbl.begin() + n, in_host_.begin() + 3 * cap_ + size_t(s) * max_blocks_);
  }
  be_->check(api_.memcpy_h2d(in_.get(), in_host_.data(), n_in * sizeof(int32_t), stream_), "step inputs");

  if (all_decode_) {
    const size_t ws = api_.attn_decode_workspace(n_seq, c_.n_head, c_.head_dim, max_seq_len_);
    if (workspace_.bytes() < ws) {
      clear_graphs();
      workspace_ = DevBuf(be_, ws * 2);
    }
  }

  // Hidden state in from the CPU layers (hybrid); the GPU-only step embeds on the device.
  if (n_cpu_ > 0) {
    host_x_.resize(size_t(T) * c_.n_embd);
    cpu_->embed(b, host_x_.data());
    cpu_->layers(b, host_x_.data());
    be_->check(api_.memcpy_h2d(x_.get(), host_x_.data(), host_x_.size() * sizeof(float), stream_), "hidden state");
  }

  if (graphed) {
    const GraphKey key{n_seq, max_seq_len_};
    rf_graph g = nullptr;
    for (auto& [k, gr] : graphs_)
      if (k == key) g = gr;
    if (!g) {
      be_->check(api_.graph_capture_begin(stream_), "capturing the decode step");
      try {
        launch_step(b, T, n_seq, true);
      } catch (...) {
        rf_graph junk = nullptr;
        api_.graph_capture_end(stream_, &junk);
        if (junk) api_.graph_destroy(junk);
        throw;
      }
      be_->check(api_.graph_capture_end(stream_, &g), "capturing the decode step");
      graphs_.push_back({key, g});
    }
    be_->check(api_.graph_launch(g, stream_), "decode step (graph)");
    return T;
  }
  launch_step(b, T, n_seq, all_rows_out);
  return b.n_logits();
}

void GpuExecutor::launch_step(const Batch& b, int T, int n_seq, bool all_rows_out) {
  resid_ = x_.get<float>();
  if (n_cpu_ == 0) {
    const WeightRef& e = m_.token_embd();
    be_->check(api_.embed(dev_type(e), token_embd_.buf.get(), e.row_bytes, c_.n_embd, in_tokens(), T, resid_, stream_),
               "embedding");
  }
  pending_ = false;
  for (int l = n_cpu_; l < c_.n_layer; ++l) layer(l, b, T);

  // Head: the rows that want logits (all of them: straight from x), norm, project.
  int n_out = 0;
  const float* hx = resid_;
  if (!all_rows_out) {
    if (pending_) {
      be_->check(api_.add(resid_, h_.get<float>(), resid_, size_t(T) * c_.n_embd, stream_), "residual");
      pending_ = false;
    }
    for (int t = 0; t < T; ++t) {
      if (!b.logits[t]) continue;
      be_->check(api_.memcpy_d2d(h_.get<float>() + int64_t(n_out) * c_.n_embd, resid_ + int64_t(t) * c_.n_embd,
                                 sizeof(float) * c_.n_embd, stream_), "gather");
      ++n_out;
    }
    hx = h_.get<float>();
  } else {
    n_out = T;
  }
  (void)n_seq;
  if (pending_ && n_out == 1 && all_rows_out) {
    // Decode: the last residual add, the output norm and the int8 input of the head in one launch.
    void* xq = c_.n_embd % 32 == 0 ? xq_.get() : nullptr;
    be_->check(api_.rmsnorm_q8(resid_, h_.get<float>(), output_norm_.buf.get<float>(), h_.get<float>(), xq,
                               c_.n_embd, c_.rms_eps, stream_), "output norm");
    bool ready = xq != nullptr;
    proj(output_weight(), h_.get<float>(), logits_.get<float>(), 1, &ready);
  } else if (n_out > 0) {
    if (pending_) be_->check(api_.add(resid_, h_.get<float>(), resid_, size_t(T) * c_.n_embd, stream_), "residual");
    be_->check(api_.rmsnorm(hx, output_norm_.buf.get<float>(), h_.get<float>(), c_.n_embd, n_out, c_.rms_eps, stream_), "output norm");
    proj(output_weight(), h_.get<float>(), logits_.get<float>(), n_out);
  }
}

void GpuExecutor::forward(const Batch& b, std::vector<float>& logits) {
  if (b.size() == 0) {
    logits.clear();
    return;
  }
  const int n_out = run_step(b);
  logits.resize(size_t(n_out) * c_.n_vocab);
  be_->check(api_.memcpy_d2h(logits.data(), logits_.get(), logits.size() * sizeof(float), stream_), "logits");
  be_->check(api_.stream_sync(stream_), "forward step");
}

bool GpuExecutor::forward_sample(const Batch& b, const SamplingParams& p, float u, int32_t* token) {
  if (b.size() == 0 || b.n_logits() != 1) return false;
  // The host Sampler filters (top-k, top-p, min-p) on the model's probabilities and applies the
  // temperature to the draw; the kernel filters on temperature-scaled logits. They select the same
  // candidates when greedy, at temperature 1, or without top-p: top-k does not depend on the scale
  // and min-p on the scaled logits with min_p^(1/T) is min-p on the unscaled ones. Otherwise the host
  // samples (forward() then the Sampler).
  const bool greedy = p.temperature <= 0.f;
  if (!greedy && p.temperature != 1.f && p.top_p < 1.f) return false;
  const float min_p = !greedy && p.min_p > 0.f ? std::pow(p.min_p, 1.f / p.temperature) : p.min_p;
  run_step(b);
  be_->check(api_.sample(logits_.get<float>(), c_.n_vocab, p.temperature, p.top_k, p.top_p, min_p, u,
                         token_d_.get<int32_t>(), stream_), "sampling");
  be_->check(api_.memcpy_d2h(token, token_d_.get(), sizeof(int32_t), stream_), "sampled token");
  be_->check(api_.stream_sync(stream_), "forward step");
  return true;
}

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
  auto mv = [&](const auto& w, const float* in, float* out, bool* in_q8) {
    if (!(fz && skip(kSkipMatvec))) proj(w, in, out, T, in_q8);
  };

  // Attention block. Decode with fused weights: one matvec writes [q | k | v]; where the backend can,
  // the norm (and the previous layer's pending residual add) is made inside that launch.
  // Decode of one sequence, llama-style rope (pairs 2i, 2i + 1) and nothing between the projection and
  // the rotation (biases, q/k norms): the q/k/v matvec also rotates and stores K/V.
  const bool rope_fusable = fz && all_decode_ && qkv_rope_ && c_.rope_style != RopeStyle::NeoX && !L.q_norm.present() &&
                            !L.bq.present() && !L.bk.present() && !L.bv.present();
  rf_qkv_rope rope{};
  if (rope_fusable) {
    rope = {qd, kvd, D, c_.n_rot, c_.rope_base, 1.0f / c_.rope_scale, freq_.get<float>(), in_pos(), in_tables(),
            kv_.block_size, Hkv, L.k_pool.get<uint16_t>(), L.v_pool.get<uint16_t>()};
  }
  bool roped = false;  // rope and the KV store are done
  bool hq = false;
  const bool fused_qkv = T == 1 && (L.qkv.present() || L.qk.present());
  const Mat& qkv_a = L.qkv.present() ? L.qkv : L.qk;
  const Mat* qkv_b = L.qkv.present() ? nullptr : &L.v;
  if (fz && fused_qkv && !skip(kSkipNorm) && !skip(kSkipMatvec) && (!qkv_b || pair_ || rope_fusable) &&
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
    } else {
      ok(api_.rmsnorm(x, L.attn_norm.buf.get<float>(), h, E, T, c_.rms_eps, stream_), "attn_norm");
    }
    if (fused_qkv) {
      if (fz && skip(kSkipMatvec)) {
        roped = rope_fusable;
      } else if (((qkv_b && pair_) || rope_fusable) &&
                 proj_qkv(qkv_a, qkv_b, h, q, &hq, rope_fusable ? &rope : nullptr)) {
        roped = rope_fusable;
      } else {
        proj(qkv_a, h, q, T, &hq);
        if (qkv_b) proj(*qkv_b, h, v, T, &hq);
      }
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
  uint16_t* kp = L.k_pool.get<uint16_t>();
  uint16_t* vp = L.v_pool.get<uint16_t>();
  const int32_t* tables = in_tables();
  const int n_seq = static_cast<int>(seq_begin_.size());
  if (roped) {
    // done by the q/k/v matvec
  } else if (all_decode_ && fuse_) {
    // Decode (token s is sequence s's only token): rope and the cache store in one launch.
    if (!skip(kSkipRope))
      ok(api_.rope_kv_store(q, k, v, pos, T, tables, max_blocks_, kv_.block_size, H, Hkv, D, c_.n_rot, c_.rope_base,
                          fscale, freq_.get<float>(), neox, kp, vp, stream_), "rope + kv_store");
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
                     tables + int64_t(s) * max_blocks_, kv_.block_size, Hkv, D, kp, vp, stream_), "kv_store");
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  // Decode of one token: attention also writes the int8 input of the output projection.
  bool hatt = false;
  if (all_decode_) {
    void* xq_att = fz && qd % 32 == 0 ? xq_.get() : nullptr;
    if (!skip(kSkipAttn))
      ok(api_.attn_decode(q, kp, vp, tables, max_blocks_, in_lens(), n_seq, max_seq_len_, H, Hkv, D,
                        kv_.block_size, scale, att, xq_att, workspace_.get(), stream_), "attn_decode");
    hatt = xq_att != nullptr;
  } else {
    for (int s = 0; s < n_seq; ++s) {
      if (seq_ntok_[s] == 0) continue;
      const int t0 = seq_begin_[s];
      ok(api_.attn_prefill(q + int64_t(t0) * qd, kp, vp, tables + int64_t(s) * max_blocks_, b.pos[t0], seq_ntok_[s], H,
                           Hkv, D, kv_.block_size, scale, att + int64_t(t0) * qd, stream_), "attn_prefill");
    }
  }
  mv(L.wo, att, h, &hatt);

  // Feed-forward block. Decode with fused weights: one matvec writes [gate | up], with the norm and
  // the residual add inside it where the backend can.
  bool hq2 = false;
  bool gu_done = false;
  if (fz && T == 1 && c_.n_expert == 0 && L.gu.present() && !skip(kSkipNorm) && !skip(kSkipMatvec) &&
      proj_with_norm(L.gu, nullptr, L.ffn_norm, h, g, nullptr, true)) {
    x = resid_;
    gu_done = true;
  } else if (fz) {
    if (!skip(kSkipNorm))
      ok(api_.rmsnorm_q8(x, h, L.ffn_norm.buf.get<float>(), h, xq_e, E, c_.rms_eps, stream_), "residual + ffn_norm");
    hq2 = xq_e != nullptr;
  } else {
    ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
    ok(api_.rmsnorm(x, L.ffn_norm.buf.get<float>(), h, E, T, c_.rms_eps, stream_), "ffn_norm");
  }
  if (c_.n_expert > 0) {
    moe(L, h, T);  // h: normed input in, mixed expert output out
    if (fz) pending_ = true;
    else ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
    return;
  }
  if (gu_done) {
    // done with the norm
  } else if (T == 1 && L.gu.present()) {
    mv(L.gu, h, g, &hq2);
  } else {
    mv(L.gate, h, g, &hq2);
    mv(L.up, h, u, &hq2);
  }
  bool gq = false;
  if (fz && c_.n_ff % 32 == 0) {
    if (!skip(kSkipSwiglu))
      ok(api_.swiglu_q8(g, u, g, xq_.get(), c_.n_ff, stream_), "swiglu");
    gq = true;
  } else {
    ok(api_.swiglu(g, u, g, size_t(T) * c_.n_ff, stream_), "swiglu");
  }
  mv(L.ffn_down, g, h, &gq);
  if (fz) pending_ = true;
  else ok(api_.add(x, h, x, size_t(T) * E, stream_), "residual");
}

// Mixtral-style MoE: router logits come to the host, which picks the top-k experts per token (as
// CpuForward::moe_block does: softmax, top-k, renormalised weights); each chosen expert's SwiGLU
// runs on the device into its own row of moe_y_, and the host mixes the rows back into h.
void GpuExecutor::moe(const GpuLayer& L, float* h, int T) {
  const int E = c_.n_embd, F = c_.n_ff, NE = c_.n_expert, K = c_.n_expert_used;
  float* g = gu_.get<float>();
  float* u = g + int64_t(T) * F;
  proj(L.router, h, moe_router_.get<float>(), T);
  moe_host_.resize(size_t(T) * NE);
  be_->check(api_.memcpy_d2h(moe_host_.data(), moe_router_.get(), moe_host_.size() * sizeof(float), stream_), "router");
  be_->check(api_.stream_sync(stream_), "router");
  std::vector<std::vector<std::pair<int, float>>> chosen(T);
  std::vector<int> idx(NE);
  for (int t = 0; t < T; ++t) {
    float* r = moe_host_.data() + int64_t(t) * NE;
    const float mx = *std::max_element(r, r + NE);
    double sum = 0;
    for (int e = 0; e < NE; ++e) sum += r[e] = std::exp(r[e] - mx);
    for (int e = 0; e < NE; ++e) r[e] = static_cast<float>(r[e] / sum);
    for (int e = 0; e < NE; ++e) idx[e] = e;
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int c) { return r[a] > r[c] || (r[a] == r[c] && a < c); });
    float wsum = 0;
    for (int k = 0; k < K; ++k) wsum += r[idx[k]];
    for (int k = 0; k < K; ++k) chosen[t].emplace_back(idx[k], r[idx[k]] / wsum);
  }
  auto expert = [&](const DevWeight& w, int e) {
    Mat m = mat_of(w);
    m.d = static_cast<const uint8_t*>(m.d) + int64_t(e) * m.rows * m.row_bytes;
    return m;
  };
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const int e = chosen[t][k].first;
      proj(expert(L.gate_exps, e), h + int64_t(t) * E, g, 1);
      proj(expert(L.up_exps, e), h + int64_t(t) * E, u, 1);
      be_->check(api_.swiglu(g, u, g, size_t(F), stream_), "expert swiglu");
      proj(expert(L.down_exps, e), g, moe_y_.get<float>() + (int64_t(t) * K + k) * E, 1);
    }
  moe_host_.resize(size_t(T) * K * E);
  be_->check(api_.memcpy_d2h(moe_host_.data(), moe_y_.get(), moe_host_.size() * sizeof(float), stream_), "experts");
  be_->check(api_.stream_sync(stream_), "experts");
  moe_mix_.assign(size_t(T) * E, 0.0f);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const float w = chosen[t][k].second;
      const float* y = moe_host_.data() + (int64_t(t) * K + k) * E;
      for (int i = 0; i < E; ++i) moe_mix_[size_t(t) * E + i] += w * y[i];
    }
  be_->check(api_.memcpy_h2d(h, moe_mix_.data(), moe_mix_.size() * sizeof(float), stream_), "expert mix");
}

}  // namespace

std::unique_ptr<Executor> make_gpu_executor(const Model& m, const KvConfig& kv, const device::Selection& sel,
                                            const GpuPlan& plan, int n_threads, int max_batch) {
  if (!sel.backend) throw Error("no GPU backend loaded");
  return std::make_unique<GpuExecutor>(m, kv, sel, plan, n_threads, max_batch);
}

}  // namespace rocforge
