// gpu_bench - bandwidth of the GPU decode kernels against the card's copy bandwidth.
//
//   gpu_bench [--types q4_k,q4_0,...] [--reps N] [--matvec-only | --batched-only | --attention-only |
//             --sampling-only]
//             [--model 8b|1b] [--shape NAME_PART]   (only the matrices whose name contains it: profiling)
//
// Measures (1) device-to-device copy bandwidth (1 GiB, read + write counted), (2) the fused
// dequantize + matvec kernel on llama3-8b shaped matrices per weight format, rotating over enough
// weight copies (> 4x a 50 MB L2) that every call reads from HBM, and reports achieved GB/s =
// weight bytes / time, the fraction of copy bandwidth, and the 8B decode bound that implies;
// (3) small batches (2-64 tokens, decode steps of several sequences): matmul_f16 (the tensor-core
// kernel up to 64 tokens; ROCFORGE_GPU_MMA_MAX=0 gives the dequantize + cuBLAS path it replaces) and
// matvec_q8_multi (up to 16), in weight GB/s; (4) the prefill matmul (512 tokens) in TFLOP/s; (5)
// sampling over a 128256-entry row (back to back, and one call at a time with a stream sync). Times
// are medians of device-event timings.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gpu/backend_api.h"
#include "rocforge/device.h"
#include "rocforge/error.h"
#include "rocforge/ggml_type.h"

using namespace rocforge;

namespace {

struct Timer {
  const device::GpuBackend& b;
  rf_event e0 = nullptr, e1 = nullptr;
  explicit Timer(const device::GpuBackend& g) : b(g) {
    b.check(b.api().event_create(&e0), "event");
    b.check(b.api().event_create(&e1), "event");
  }
  ~Timer() {
    b.api().event_destroy(e0);
    b.api().event_destroy(e1);
  }
  // Median over `reps` of the per-call time (ms) of `calls` back-to-back calls of f(i).
  template <typename F>
  double median_ms(int reps, int calls, F&& f) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      b.check(b.api().event_record(e0, nullptr), "record");
      for (int i = 0; i < calls; ++i) f(i);
      b.check(b.api().event_record(e1, nullptr), "record");
      float ms = 0;
      b.check(b.api().event_elapsed_ms(e0, e1, &ms), "elapsed");
      t.push_back(ms / calls);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

void* dmalloc(const device::GpuBackend& b, size_t n) {
  void* p = nullptr;
  b.check(b.api().malloc(&p, n), "malloc");
  return p;
}

// Timing does not depend on the weight values (NaN/inf included), so weights are random bytes with
// every 16-bit word kept a finite half. One 64 MiB host pool is generated once and uploaded piecewise.
void fill_random(const device::GpuBackend& b, void* d, size_t n, std::mt19937& rng) {
  static std::vector<uint32_t> pool;
  if (pool.empty()) {
    pool.resize((size_t{64} << 20) / 4);
    for (auto& x : pool) x = rng() & 0x3bff3bffu;  // exponent < 15 in both halves
  }
  const size_t chunk = pool.size() * 4;
  for (size_t off = 0; off < n; off += chunk)
    b.check(b.api().memcpy_h2d(static_cast<uint8_t*>(d) + off, pool.data(), std::min(chunk, n - off), nullptr),
            "upload");
  b.check(b.api().stream_sync(nullptr), "sync");
}

// The GGUF type of a --types name and the backend type id to time it under: device-only layouts
// (backend_api.h RF_GPU_TYPE_*) time under their own names; the bytes are random either way, so no
// repacking is needed for a timing.
std::optional<GgmlType> bench_type(const std::string& name, uint32_t& id) {
  std::string base = name;
  id = 0;
  if (name == "q6_k_g8") base = "q6_k", id = RF_GPU_TYPE_Q6_K_G8;
  if (name == "q3_k_g8") base = "q3_k", id = RF_GPU_TYPE_Q3_K_G8;
  if (name == "q4_0_g8") base = "q4_0", id = RF_GPU_TYPE_Q4_0_G8;
  if (name == "q8_0_g8") base = "q8_0", id = RF_GPU_TYPE_Q8_0_G8;
  const auto t = ggml_type_from_name(base);
  if (t && !id) id = static_cast<uint32_t>(*t);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> types = {"q4_0", "q4_k", "q5_k", "q6_k", "q8_0", "f16", "bf16", "q4_1", "q5_0", "q5_1",
                                    "q2_k", "q3_k", "iq4_nl", "iq4_xs", "mxfp4", "f32"};
  int reps = 7;
  bool matvec_only = false;   // --matvec-only: stop after the matvec tables (tuning sweeps)
  bool batched_only = false;  // --batched-only: only the small-batch table
  bool small_model = false;   // --model 1b: llama3.2-1b shapes (default llama3-8b)
  bool attention_only = false;  // --attention-only: copy bandwidth and the attention table
  bool sampling_only = false;   // --sampling-only: the sampling table
  std::string shape_filter;     // --shape S: only the matrices whose name contains S (profiling one kernel)
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--types") && i + 1 < argc) {
      types.clear();
      std::string s = argv[++i];
      size_t p = 0;
      while (p != std::string::npos) {
        const size_t q = s.find(',', p);
        types.push_back(s.substr(p, q == std::string::npos ? q : q - p));
        p = q == std::string::npos ? q : q + 1;
      }
    } else if (!std::strcmp(argv[i], "--batched-only")) {
      batched_only = true;
    } else if (!std::strcmp(argv[i], "--matvec-only")) {
      matvec_only = true;
    } else if (!std::strcmp(argv[i], "--sampling-only")) {
      sampling_only = true;
    } else if (!std::strcmp(argv[i], "--attention-only")) {
      attention_only = true;
    } else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) {
      small_model = !std::strcmp(argv[++i], "1b");
    } else if (!std::strcmp(argv[i], "--shape") && i + 1 < argc) {
      shape_filter = argv[++i];
    } else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    }
  }
  if (attention_only || sampling_only) types.clear();  // no matvec or batched rows
  try {
    const auto sel = device::select_device(device::parse_device_spec("gpu"));
    const auto& b = *sel.backend;
    const auto& api = b.api();
    std::mt19937 rng(1234);
    Timer timer(b);
    std::printf("device: %s (%s, %s, wave %d, %d SMs)\n", sel.gpu.name.c_str(), sel.gpu.backend.c_str(),
                sel.gpu.arch.c_str(), sel.gpu.wave_size, sel.gpu.multiprocessors);

    // ---- copy bandwidth
    const size_t copy_bytes = size_t{1} << 30;
    void* a = dmalloc(b, copy_bytes);
    void* c = dmalloc(b, copy_bytes);
    b.check(api.memset(a, 1, copy_bytes, nullptr), "memset");
    const double copy_ms = timer.median_ms(reps, 3, [&](int) { b.check(api.memcpy_d2d(c, a, copy_bytes, nullptr), "copy"); });
    const double copy_gbs = 2.0 * copy_bytes / (copy_ms * 1e-3) / 1e9;
    std::printf("copy: 1 GiB d2d %.3f ms -> %.0f GB/s (read + write)\n\n", copy_ms, copy_gbs);
    api.free(a);
    api.free(c);

    // ---- matvec per format on 8B shapes
    struct Shape { const char* name; int rows, cols, per_layer; };
    // The decode step's matrices: q/k/v and gate/up fused (rows concatenated at upload).
    const std::vector<Shape> shapes =
        small_model ? std::vector<Shape>{{"attn_qkv 3072x2048", 3072, 2048, 1}, {"attn_o 2048x2048", 2048, 2048, 1},
                                         {"ffn_gate_up 16384x2048", 16384, 2048, 1}, {"ffn_down 2048x8192", 2048, 8192, 1},
                                         {"output 128256x2048", 128256, 2048, 0}}
                    : std::vector<Shape>{{"attn_qkv 6144x4096", 6144, 4096, 1}, {"attn_o 4096x4096", 4096, 4096, 1},
                                         {"ffn_gate_up 28672x4096", 28672, 4096, 1}, {"ffn_down 4096x14336", 4096, 14336, 1},
                                         {"output 128256x4096", 128256, 4096, 0}};
    if (!batched_only) {
      std::printf("matvec: float x (matvec) / int8 x (matvec_q8, the decode path where the format has it)\n");
      std::printf("%-8s %-24s %10s %10s %8s %10s %10s %8s\n", "type", "matrix", "us/call", "GB/s", "of copy",
                  "q8 us", "q8 GB/s", "of copy");
    }
    struct Row { std::string type; double token_ms; double bytes; };
    std::vector<Row> summary;
    void* x = dmalloc(b, 14336 * 4);
    void* xq = dmalloc(b, api.q8_bytes(14336));
    void* y = dmalloc(b, 128256 * 4);
    fill_random(b, x, 14336 * 4, rng);
    for (const auto& tn : batched_only ? std::vector<std::string>{} : types) {
      uint32_t id = 0;
      const auto t = bench_type(tn, id);
      if (!t) { std::printf("unknown type %s\n", tn.c_str()); continue; }
      const auto& tr = ggml_type_traits(*t);
      double token_ms = 0, token_bytes = 0;
      for (const Shape& s : shapes) {
        if (!shape_filter.empty() && !std::strstr(s.name, shape_filter.c_str())) continue;
        const size_t rb = ggml_row_bytes(tr, s.cols);
        const size_t bytes = rb * s.rows;
        const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
        std::vector<void*> w(copies);
        for (auto& p : w) { p = dmalloc(b, bytes); fill_random(b, p, bytes, rng); }
        auto call = [&](int i) {
          b.check(api.matvec(id, w[i % copies], rb, static_cast<float*>(x),
                             static_cast<float*>(y), s.rows, s.cols, nullptr), "matvec");
        };
        call(0);  // warm-up
        const double ms = timer.median_ms(reps, copies * 4, call);
        const double gbs = bytes / (ms * 1e-3) / 1e9;
        double best = ms;
        if (api.has_matvec_q8(id)) {
          b.check(api.quantize_q8(static_cast<float*>(x), s.cols, xq, nullptr), "quantize_q8");
          auto call_q8 = [&](int i) {
            b.check(api.matvec_q8(id, w[i % copies], rb, xq, static_cast<float*>(y), s.rows,
                                  s.cols, nullptr), "matvec_q8");
          };
          call_q8(0);
          const double qms = timer.median_ms(reps, copies * 4, call_q8);
          const double qgbs = bytes / (qms * 1e-3) / 1e9;
          std::printf("%-8s %-24s %10.1f %10.0f %7.0f%% %10.1f %10.0f %7.0f%%\n", tn.c_str(), s.name, ms * 1e3, gbs,
                      100 * gbs / copy_gbs, qms * 1e3, qgbs, 100 * qgbs / copy_gbs);
          best = std::min(best, qms);
        } else {
          std::printf("%-8s %-24s %10.1f %10.0f %7.0f%%\n", tn.c_str(), s.name, ms * 1e3, gbs, 100 * gbs / copy_gbs);
        }
        const int times = s.per_layer ? s.per_layer * (small_model ? 16 : 32) : 1;
        token_ms += best * times;
        token_bytes += static_cast<double>(bytes) * times;
        for (auto p : w) api.free(p);
      }
      summary.push_back({tn, token_ms, token_bytes});
    }
    if (!batched_only) {
      std::printf("\n%s decode, matvecs only (%d layers + output, all weights in one format, faster path):\n",
                  small_model ? "1B" : "8B", small_model ? 16 : 32);
      std::printf("%-8s %10s %10s %10s %12s\n", "type", "GB/token", "ms/token", "tok/s", "of bound");
    }
    for (const auto& r : summary) {
      const double bound = copy_gbs * 1e9 / r.bytes;
      std::printf("%-8s %10.2f %10.3f %10.1f %11.0f%%\n", r.type.c_str(), r.bytes / 1e9, r.token_ms, 1e3 / r.token_ms,
                  100 * (1e3 / r.token_ms) / bound);
    }

    if (matvec_only) return 0;

    // ---- small batches: the same matrices for 2-64 tokens
    std::printf("\nsmall batches: matmul_f16 / matvec_q8_multi us per call (weight GB/s)\n");
    std::printf("%-8s %-24s %6s %18s %18s\n", "type", "matrix", "tokens", "matmul_f16", "matvec_q8_multi");
    void* xb = dmalloc(b, size_t{64} * 14336 * 4);
    void* xbq = dmalloc(b, api.q8_bytes(16 * 14336));
    void* yb = dmalloc(b, size_t{64} * 128256 * 4);
    fill_random(b, xb, size_t{64} * 14336 * 4, rng);
    for (const auto& tn : types) {
      uint32_t id = 0;
      const auto t = bench_type(tn, id);
      if (!t) continue;
      for (const Shape& s : shapes) {
        if (!s.per_layer) continue;  // the output matrix: one per step, like gate/up in shape
        const size_t rb = ggml_row_bytes(ggml_type_traits(*t), s.cols);
        const size_t bytes = rb * s.rows;
        const int copies = static_cast<int>(std::max<size_t>(2, (size_t{256} << 20) / bytes + 1));
        std::vector<void*> w(copies);
        for (auto& p : w) { p = dmalloc(b, bytes); fill_random(b, p, bytes, rng); }
        for (int n : {2, 4, 8, 16, 32, 64}) {
          auto mm = [&](int i) {
            b.check(api.matmul_f16(id, w[i % copies], rb, static_cast<float*>(xb), static_cast<float*>(yb), s.rows,
                                   s.cols, n, nullptr), "matmul_f16");
          };
          mm(0);
          const double ms = timer.median_ms(reps, copies * 2, mm);
          std::printf("%-8s %-24s %6d %9.1f (%5.0f)", tn.c_str(), s.name, n, ms * 1e3, bytes / (ms * 1e-3) / 1e9);
          if (n <= 16 && api.has_matvec_q8(id)) {
            b.check(api.quantize_q8(static_cast<float*>(xb), n * s.cols, xbq, nullptr), "quantize_q8");
            auto mq = [&](int i) {
              b.check(api.matvec_q8_multi(id, w[i % copies], rb, xbq, static_cast<float*>(yb), s.rows, s.cols, n,
                                          nullptr), "matvec_q8_multi");
            };
            mq(0);
            const double qms = timer.median_ms(reps, copies * 2, mq);
            std::printf(" %9.1f (%5.0f)", qms * 1e3, bytes / (qms * 1e-3) / 1e9);
          }
          std::printf("\n");
        }
        for (auto p : w) api.free(p);
      }
    }
    api.free(xb);
    api.free(xbq);
    api.free(yb);
    if (batched_only) return 0;

    // ---- attention (llama3 heads: 32 query, 8 KV, head_dim 128 (8B) or 64 (1B); F16 paged cache, blocks of 16)
    if (!sampling_only) {
      const int n_head = 32, n_kv = 8, hd = small_model ? 64 : 128, bs = 16;
      std::printf("\nattention decode (1 sequence, split-K) and prefill, 32/8 heads x %d:\n", hd);
      for (int ctx : {128, 256, 512, 1024, 4096, 16384, 32768}) {
        const int n_blocks = ctx / bs;
        const size_t pool = static_cast<size_t>(n_blocks) * n_kv * bs * hd * 2;
        void* kp = dmalloc(b, pool);
        void* vp = dmalloc(b, pool);
        fill_random(b, kp, pool, rng);
        fill_random(b, vp, pool, rng);
        std::vector<int32_t> table(n_blocks);
        for (int i = 0; i < n_blocks; ++i) table[i] = (i * 7919) % n_blocks;  // scattered blocks
        void* dt = dmalloc(b, table.size() * 4);
        b.check(api.memcpy_h2d(dt, table.data(), table.size() * 4, nullptr), "upload");
        const int32_t len = ctx;
        void* dlen = dmalloc(b, 4);
        b.check(api.memcpy_h2d(dlen, &len, 4, nullptr), "upload");
        void* q = dmalloc(b, size_t{512} * n_head * hd * 4);
        void* o = dmalloc(b, size_t{512} * n_head * hd * 4);
        fill_random(b, q, size_t{512} * n_head * hd * 4, rng);
        const size_t wsb = api.attn_decode_workspace(1, n_head, hd, ctx);
        void* ws = dmalloc(b, wsb);
        // Both cache types over the same (random) bytes: a Q8_0 pool is the f16 pool's first 17/32.
        for (int kv_type : {RF_KV_F16, RF_KV_Q8_0}) {
          auto dec = [&](int) {
            b.check(api.attn_decode(static_cast<float*>(q), kp, vp, static_cast<int32_t*>(dt), n_blocks,
                                    static_cast<int32_t*>(dlen), 1, ctx, n_head, n_kv, hd, bs, kv_type, nullptr, nullptr,
                                    0.088f,
                                    static_cast<float*>(o), nullptr, ws, nullptr),
                    "attn_decode");
          };
          dec(0);
          const double ms = timer.median_ms(reps, 20, dec);
          const double kv_bytes = 2.0 * rf_kv_pool_bytes(kv_type, n_blocks, bs, n_kv, hd);
          std::printf("decode  ctx %5d %s: %8.1f us  %6.0f GB/s of K/V\n", ctx, kv_type == RF_KV_Q8_0 ? "q8_0" : "f16 ",
                      ms * 1e3, kv_bytes / (ms * 1e-3) / 1e9);
        }
        if (ctx == 512 || ctx == 4096) {
          const int n_tok = 512, pos0 = ctx - 512;
          auto pre = [&](int) {
            b.check(api.attn_prefill(static_cast<float*>(q), kp, vp, static_cast<int32_t*>(dt), pos0, n_tok, n_head, n_kv,
                                     hd, bs, RF_KV_F16, 0.088f, static_cast<float*>(o), nullptr),
                    "attn_prefill");
          };
          pre(0);
          const double pms = timer.median_ms(reps, 3, pre);
          const double flops = 4.0 * n_head * hd * (static_cast<double>(n_tok) * pos0 + n_tok * (n_tok + 1) / 2.0);
          std::printf("prefill 512 tokens at pos %4d: %8.3f ms  %5.1f TFLOP/s\n", pos0, pms, flops / (pms * 1e-3) / 1e12);
        }
        for (void* p : {kp, vp, dt, dlen, q, o, ws}) api.free(p);
      }
    }
    if (attention_only) return 0;

    // ---- sampling and norms
    {
      const int n_vocab = 128256;
      void* logits = dmalloc(b, n_vocab * 4);
      void* tok = dmalloc(b, 64 * 4);
      const int max_rows = 16;
      const size_t ws_bytes = api.sample_workspace(max_rows, n_vocab);
      void* ws = dmalloc(b, ws_bytes);
      b.check(api.memset(ws, 0, ws_bytes, nullptr), "memset");
      std::vector<float> h(n_vocab);
      struct P { const char* name; float t; int k; float p; float mp; };
      // Spread 3: a trained model's peaked logits; 0.5 and 0.02: nearly flat rows (an untrained
      // synth model's), where most entries share a few key bins and top-p keeps most of the vocabulary.
      for (const float spread : {0.02f, 0.5f, 3.f}) {
        std::normal_distribution<float> nd(0.f, spread);
        for (auto& v : h) v = nd(rng);
        b.check(api.memcpy_h2d(logits, h.data(), h.size() * 4, nullptr), "upload");
        std::printf("\nsampling over %d logits (normal, sd %.2f):\n", n_vocab, spread);
        const P cases[] = {{"greedy", 0.f, 0, 1.f, 0.f},
                           {"T1", 1.f, 0, 1.f, 0.f},
                           {"T0.8 top-k 40 top-p 0.95", 0.8f, 40, 0.95f, 0.f},
                           {"T1 top-p 0.9 min-p 0.05", 1.f, 0, 0.9f, 0.05f},
                           {"T1 top-p 0.9", 1.f, 0, 0.9f, 0.f},
                           {"T1 top-k 2000", 1.f, 2000, 1.f, 0.f}};
        for (const P& pr : cases) {
          auto smp = [&](int) {
            b.check(api.sample(static_cast<float*>(logits), n_vocab, pr.t, pr.k, pr.p, pr.mp, 0.37f,
                               static_cast<int32_t*>(tok), ws, ws_bytes, nullptr), "sample");
          };
          smp(0);
          // Back to back (the kernels' own time), and one call at a time with the stream synchronised
          // (what a decode step waits for: launches and the chain's latency included).
          std::vector<double> lat;
          for (int r = 0; r < 31; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            smp(0);
            b.check(api.stream_sync(nullptr), "sync");
            lat.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
          }
          std::sort(lat.begin(), lat.end());
          std::printf("%-28s %8.1f us  (one at a time %6.1f us)\n", pr.name, timer.median_ms(reps, 20, smp) * 1e3,
                      lat[lat.size() / 2]);
        }
      }
      // Rows of one batched step side by side (the server's decode steps), each row its own logits.
      {
        void* many = dmalloc(b, static_cast<size_t>(max_rows) * n_vocab * 4);
        for (int r = 0; r < max_rows; ++r)
          b.check(api.memcpy_h2d(static_cast<float*>(many) + static_cast<size_t>(r) * n_vocab, h.data(), h.size() * 4,
                                 nullptr), "upload");
        void* drows = dmalloc(b, max_rows * sizeof(rf_sample_row));
        const P row_cases[] = {{"16 rows T0.8 top-k 40 top-p", 0.8f, 40, 0.95f, 0.f}, {"16 rows T1 top-p 0.9", 1.f, 0, 0.9f, 0.f}};
        for (const P& pr : row_cases) {
          std::vector<rf_sample_row> rows(max_rows, rf_sample_row{pr.t, pr.k, pr.p, pr.mp, 0.37f});
          b.check(api.memcpy_h2d(drows, rows.data(), rows.size() * sizeof(rf_sample_row), nullptr), "upload");
          auto smp = [&](int) {
            b.check(api.sample_rows(static_cast<float*>(many), n_vocab, max_rows, static_cast<rf_sample_row*>(drows),
                                    rows.data(), static_cast<int32_t*>(tok), ws, ws_bytes, nullptr), "sample_rows");
          };
          smp(0);
          std::printf("%-28s %8.1f us\n", pr.name, timer.median_ms(reps, 20, smp) * 1e3);
        }
        api.free(drows);
        api.free(many);
      }
      api.free(ws);
      if (sampling_only) return 0;
      void* nw = dmalloc(b, 4096 * 4);
      fill_random(b, nw, 4096 * 4, rng);
      auto norm = [&](int) {
        b.check(api.rmsnorm(static_cast<float*>(logits), static_cast<float*>(nw), static_cast<float*>(logits), 4096, 1,
                            1e-5f, nullptr), "rmsnorm");
      };
      norm(0);
      std::printf("%-28s %8.1f us\n", "rmsnorm 4096", timer.median_ms(reps, 50, norm) * 1e3);
      api.free(nw);
      api.free(logits);
      api.free(tok);
    }

    // ---- prefill matmul, 512 tokens, 4096x4096
    std::printf("\nprefill matmul 512 tokens x 4096x4096:\n");
    void* X = dmalloc(b, size_t{512} * 14336 * 4);
    void* Y = dmalloc(b, size_t{512} * 14336 * 4);
    fill_random(b, X, size_t{512} * 4096 * 4, rng);
    for (const char* tn : {"q4_0", "q4_k", "q8_0", "f16"}) {
      const auto t = *ggml_type_from_name(tn);
      const size_t rb = ggml_row_bytes(ggml_type_traits(t), 4096);
      void* w = dmalloc(b, rb * 4096);
      fill_random(b, w, rb * 4096, rng);
      auto call = [&](int) {
        b.check(api.matmul(static_cast<uint32_t>(t), w, rb, static_cast<float*>(X), static_cast<float*>(Y), 4096, 4096,
                           512, nullptr), "matmul");
      };
      call(0);
      const double ms = timer.median_ms(reps, 3, call);
      std::printf("%-8s %8.3f ms  %6.1f TFLOP/s\n", tn, ms, 2.0 * 512 * 4096 * 4096 / (ms * 1e-3) / 1e12);
      api.free(w);
    }
    api.free(X);
    api.free(Y);
    api.free(x);
    api.free(xq);
    api.free(y);
  } catch (const Error& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
