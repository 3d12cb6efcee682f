// backend.hip - the exported C table of a GPU backend library (see backend_api.h): runtime calls
// (devices, memory, streams, events) and the kernel launchers, with per-thread error messages.
#include <algorithm>
#include <cstdlib>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "gpu/kernels.h"
#include "gpu/l2_prefetch.h"
#include "gpu/matvec_staged.h"

#if !(defined(__HIP__) || defined(__HIPCC__))
bool rf_pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("ROCFORGE_GPU_PDL");
    return !(e && e[0] == '0');
  }();
  return on;
}
#endif

namespace rocforge::gpu {

namespace {
thread_local char g_error[512] = "";

hipStream_t st(rf_stream s) { return static_cast<hipStream_t>(s); }

// Per-device properties the launchers need, read once.
struct DeviceCache {
  int wave = 0;
  int sms = 0;
  int cc_major = 0;
  double mem_bw = 0;  // peak memory bandwidth, bytes/s (memory clock x bus width; 0: unknown)
};
constexpr int kMaxDevices = 64;
DeviceCache g_cache[kMaxDevices];

const DeviceCache& cache() {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= kMaxDevices) dev = 0;
  DeviceCache& c = g_cache[dev];
  if (c.wave == 0) {
    hipDeviceProp_t p{};
    if (hipGetDeviceProperties(&p, dev) == hipSuccess) {
      c.sms = p.multiProcessorCount > 0 ? p.multiProcessorCount : 1;
      c.wave = p.warpSize > 0 ? p.warpSize : 32;
      c.cc_major = p.major;
      int khz = 0, bits = 0;
#if defined(__HIP__) || defined(__HIPCC__)
      const bool ok = hipDeviceGetAttribute(&khz, hipDeviceAttributeMemoryClockRate, dev) == hipSuccess &&
                      hipDeviceGetAttribute(&bits, hipDeviceAttributeMemoryBusWidth, dev) == hipSuccess;
#else
      const bool ok = cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) == cudaSuccess &&
                      cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) == cudaSuccess;
#endif
      (void)hipGetLastError();
      c.mem_bw = ok ? 2.0 * khz * 1e3 * bits / 8 : 0;  // two transfers a clock
    } else {
      c.sms = 1;
      c.wave = 64;  // a wrong guess is safe only this way round: it gives fewer waves per block
    }
  }
  return c;
}
}  // namespace

int env_int(const char* name, int fallback) {
  const char* e = std::getenv(name);
  return e && *e ? std::atoi(e) : fallback;
}

int fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  return 1;
}

int check(hipError_t e, const char* what) {
  if (e == hipSuccess) return 0;
  return fail("%s: %s", what, hipGetErrorString(e));
}

int wave_size() { return cache().wave; }
int multiprocessors() { return cache().sms; }
int compute_major() { return cache().cc_major; }
double memory_bandwidth() { return cache().mem_bw; }

namespace {

const char* last_error() { return g_error; }

int device_count(int* n) {
  *n = 0;
  int c = 0;
  // No driver or no device is not an error for callers: it means "no GPU here".
  if (hipGetDeviceCount(&c) != hipSuccess) {
    (void)hipGetLastError();
    return 0;
  }
  *n = c;
  return 0;
}

int device_info(int device, rf_gpu_device_info* out) {
  std::memset(out, 0, sizeof *out);
  hipDeviceProp_t p{};
  if (int rc = check(hipGetDeviceProperties(&p, device), "device properties")) return rc;
  std::snprintf(out->name, sizeof out->name, "%s", p.name);
  out->wave_size = p.warpSize;
  out->multiprocessors = p.multiProcessorCount;
  out->cc_major = p.major;
  out->cc_minor = p.minor;
#if defined(__HIP__) || defined(__HIPCC__)
  std::snprintf(out->arch, sizeof out->arch, "%s", p.gcnArchName);
#else
  std::snprintf(out->arch, sizeof out->arch, "sm_%d%d", p.major, p.minor);
#endif
  int prev = 0;
  if (int rc = check(hipGetDevice(&prev), "get device")) return rc;
  if (int rc = check(hipSetDevice(device), "set device")) return rc;
  size_t free_b = 0, total_b = 0;
  const int rc = check(hipMemGetInfo(&free_b, &total_b), "memory info");
  (void)hipSetDevice(prev);
  out->free_memory = free_b;
  out->total_memory = total_b ? total_b : p.totalGlobalMem;
  return rc;
}

int set_device(int device) { return check(hipSetDevice(device), "set device"); }
int dev_malloc(void** p, size_t n) {
  *p = nullptr;
  if (n == 0) return 0;
  if (hipMalloc(p, n) != hipSuccess) {
    (void)hipGetLastError();
    *p = nullptr;
    return fail("out of device memory allocating %zu bytes", n);
  }
  return 0;
}
int dev_free(void* p) { return p ? check(hipFree(p), "free") : 0; }
// Page-locked host memory: device-to-host copies into it are one DMA, with no staging copy.
int host_malloc(void** p, size_t n) {
  *p = nullptr;
  if (n == 0) return 0;
  // Mapped: kernels may store straight into it (host_device_ptr), e.g. the head's logits; portable:
  // whichever device is current when it is used.
  if (hipHostMalloc(p, n, hipHostMallocMapped | hipHostMallocPortable) != hipSuccess) {
    (void)hipGetLastError();
    *p = nullptr;
    return fail("out of page-locked host memory allocating %zu bytes", n);
  }
  return 0;
}
int host_free(void* p) { return p ? check(hipHostFree(p), "free host") : 0; }
int host_device_ptr(void* host, void** d) {
  *d = nullptr;
  if (!host) return fail("host_device_ptr: null host pointer");
  if (const hipError_t e = hipHostGetDevicePointer(d, host, 0); e != hipSuccess) {
    (void)hipGetLastError();  // not sticky: later launches must not report it
    *d = nullptr;
    return check(e, "host_device_ptr (memory not from malloc_host?)");
  }
  return *d ? 0 : fail("host_device_ptr: the device cannot address this host memory");
}
int memcpy_h2d(void* d, const void* s, size_t n, rf_stream q) {
  return n ? check(hipMemcpyAsync(d, s, n, hipMemcpyHostToDevice, st(q)), "copy to device") : 0;
}
int memcpy_d2h(void* d, const void* s, size_t n, rf_stream q) {
  return n ? check(hipMemcpyAsync(d, s, n, hipMemcpyDeviceToHost, st(q)), "copy to host") : 0;
}
int memcpy_d2d(void* d, const void* s, size_t n, rf_stream q) {
  return n ? check(hipMemcpyAsync(d, s, n, hipMemcpyDeviceToDevice, st(q)), "device copy") : 0;
}
int dev_memset(void* d, int v, size_t n, rf_stream q) { return n ? check(hipMemsetAsync(d, v, n, st(q)), "memset") : 0; }
int stream_create(rf_stream* s) {
  hipStream_t h = nullptr;
  const int rc = check(hipStreamCreate(&h), "stream create");
  *s = h;
  return rc;
}
int stream_destroy(rf_stream s) {
  if (!s) return 0;
  x_slot_release(st(s));
  whole_release(st(s));
  return check(hipStreamDestroy(st(s)), "stream destroy");
}
int stream_sync(rf_stream s) { return check(hipStreamSynchronize(st(s)), "stream sync"); }
int event_create(rf_event* e) {
  hipEvent_t h = nullptr;
  const int rc = check(hipEventCreate(&h), "event create");
  *e = h;
  return rc;
}
int event_destroy(rf_event e) { return e ? check(hipEventDestroy(static_cast<hipEvent_t>(e)), "event destroy") : 0; }
int event_record(rf_event e, rf_stream s) { return check(hipEventRecord(static_cast<hipEvent_t>(e), st(s)), "event record"); }
int stream_wait_event(rf_stream s, rf_event e) {
  return check(hipStreamWaitEvent(st(s), static_cast<hipEvent_t>(e), 0), "stream wait event");
}
int memcpy_peer(void* d, int dd, const void* s, int sd, size_t n, rf_stream q) {
  return n ? check(hipMemcpyPeerAsync(d, dd, s, sd, n, st(q)), "copy between GPUs") : 0;
}
int event_elapsed_ms(rf_event a, rf_event b, float* ms) {
  if (int rc = check(hipEventSynchronize(static_cast<hipEvent_t>(b)), "event sync")) return rc;
  return check(hipEventElapsedTime(ms, static_cast<hipEvent_t>(a), static_cast<hipEvent_t>(b)), "event time");
}

int graph_capture_begin(rf_stream s) {
  if (!s) return fail("graph capture needs a created stream, not the default stream");
  return check(hipStreamBeginCapture(st(s), hipStreamCaptureModeThreadLocal), "begin graph capture");
}
int graph_capture_end(rf_stream s, rf_graph* out) {
  *out = nullptr;
  hipGraph_t g = nullptr;
  if (int rc = check(hipStreamEndCapture(st(s), &g), "end graph capture")) return rc;
  hipGraphExec_t exec = nullptr;
  const int rc = check(rf_graph_instantiate(&exec, g), "instantiate graph");
  (void)hipGraphDestroy(g);  // the executable graph keeps what it needs
  *out = exec;
  return rc;
}
int graph_launch(rf_graph g, rf_stream s) { return check(hipGraphLaunch(static_cast<hipGraphExec_t>(g), st(s)), "graph launch"); }
int graph_destroy(rf_graph g) { return g ? check(hipGraphExecDestroy(static_cast<hipGraphExec_t>(g)), "graph destroy") : 0; }

// ---- kernel entry points: the C signatures of backend_api.h over the launchers of kernels.h
int k_matvec(uint32_t t, const void* w, size_t rs, const float* x, float* y, int rows, int cols, rf_stream s) {
  return matvec(t, w, rs, x, y, rows, cols, st(s));
}
int k_matmul(uint32_t t, const void* w, size_t rs, const float* x, float* y, int rows, int cols, int n_tok,
             rf_stream s) {
  return matmul(t, w, rs, x, y, rows, cols, n_tok, st(s));
}
int k_matmul_f16(uint32_t t, const void* w, size_t rs, const float* x, float* y, int rows, int cols, int n_tok,
                 rf_stream s) {
  return matmul_f16(t, w, rs, x, y, rows, cols, n_tok, st(s));
}
int k_rmsnorm_q8(float* x, const float* add, const float* w, float* y, void* xq, int n, float eps, rf_stream s) {
  return rmsnorm_q8(x, add, w, y, xq, n, eps, st(s));
}
int k_swiglu_q8(const float* g, const float* u, float* y, void* xq, int n, rf_stream s) {
  return swiglu_q8(g, u, y, xq, n, st(s));
}
int k_embed(uint32_t t, const void* tab, size_t rs, int cols, const int32_t* tok, int n, float* out, rf_stream s) {
  return embed(t, tab, rs, cols, tok, n, out, st(s));
}
int k_quantize_q8(const float* x, int n, void* xq, rf_stream s) { return quantize_q8(x, n, xq, st(s)); }
int k_matvec_q8(uint32_t t, const void* w, size_t rs, const void* xq, float* y, int rows, int cols, rf_stream s) {
  return matvec_q8(t, w, rs, xq, y, rows, cols, st(s));
}
int k_rmsnorm(const float* x, const float* w, float* y, int n, int rows, float eps, rf_stream s) {
  return rmsnorm(x, w, y, n, rows, eps, st(s));
}
int k_rope(float* x, const int32_t* pos, int n_tok, int n_head, int hd, int n_rot, float base, float fs,
           const float* ff, int neox, rf_stream s) {
  return rope(x, pos, n_tok, n_head, hd, n_rot, base, fs, ff, neox, st(s));
}
int k_swiglu(const float* g, const float* u, float* o, size_t n, rf_stream s) { return swiglu(g, u, o, n, st(s)); }
int k_add(const float* a, const float* b, float* o, size_t n, rf_stream s) { return add(a, b, o, n, st(s)); }
int k_kv_store(const float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* table, int bs, int nkv,
               int hd, int kv_type, void* kp, void* vp, rf_stream s) {
  return kv_store(k, v, pos, n_tok, table, bs, nkv, hd, kv_type, kp, vp, st(s));
}
int k_rope_kv_store(float* q, float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* tables,
                    int max_blocks, int bs, int nh, int nkv, int hd, int n_rot, float base, float fs, const float* ff,
                    int neox, int kv_type, void* kp, void* vp, rf_stream s) {
  return rope_kv_store(q, k, v, pos, n_tok, tables, max_blocks, bs, nh, nkv, hd, n_rot, base, fs, ff, neox, kv_type, kp,
                       vp, st(s));
}
int k_attn_decode(const float* q, void* kp, void* vp, const int32_t* tables, int max_blocks, const int32_t* lens,
                  int n_seq, int max_len, int n_head, int nkv, int hd, int bs, int kv_type, const float* cur_k,
                  const float* cur_v, float scale, float* out, void* xq, void* ws, rf_stream s) {
  return attn_decode(q, kp, vp, tables, max_blocks, lens, n_seq, max_len, n_head, nkv, hd, bs, kv_type, cur_k, cur_v,
                     scale, out, xq, ws, st(s));
}
int k_attn_prefill(const float* q, const void* kp, const void* vp, const int32_t* table, int pos0, int n_tok,
                   int n_head, int nkv, int hd, int bs, int kv_type, float scale, float* out, rf_stream s) {
  return attn_prefill(q, kp, vp, table, pos0, n_tok, n_head, nkv, hd, bs, kv_type, scale, out, st(s));
}
int k_matvec_q8_qkv(uint32_t ta, const void* wa, size_t sa, int ra, uint32_t tb, const void* wb, size_t sb, int rb,
                    int cols, const void* xq, float* y, const rf_qkv_rope* rope, rf_stream s) {
  return matvec_q8_qkv(ta, wa, sa, ra, tb, wb, sb, rb, cols, xq, y, rope, st(s));
}
int k_matvec_q8_norm(uint32_t ta, const void* wa, size_t sa, int ra, uint32_t tb, const void* wb, size_t sb, int rb,
                     int cols, const rf_norm_in* norm, float* y, const rf_qkv_rope* rope, rf_stream s) {
  return matvec_q8_norm(ta, wa, sa, ra, tb, wb, sb, rb, cols, norm, y, rope, st(s));
}
int k_matvec_q8_swiglu(uint32_t t, const void* w, size_t rs, int n_ff, int cols, const void* xq, const rf_norm_in* norm,
                       float* y, void* yq, rf_stream s) {
  return matvec_q8_swiglu(t, w, rs, n_ff, cols, xq, norm, y, yq, st(s));
}
void matvec_prefetch_next(const void* next, size_t bytes) {
  const bool ok = next && reinterpret_cast<uintptr_t>(next) % 16 == 0;
  const size_t b = std::min<size_t>(bytes, 0xffffffffu) / 16 * 16;
  pending_l2_prefetch() = ok && b ? L2Prefetch{static_cast<const uint8_t*>(next), static_cast<uint32_t>(b)} : L2Prefetch{};
}
const char* matvec_q8_kernel(uint32_t type, const void* w, size_t stride, int rows, int cols) {
  if (!has_matvec_q8(type)) return nullptr;
  return matvec_q8_staged_applies(type, w, stride, rows, cols) ? "staged" : "registers";
}
int k_sample(const float* logits, int n, float temp, int top_k, float top_p, float min_p, float u, int32_t* tok,
             void* ws, size_t ws_bytes, rf_stream s) {
  return sample(logits, n, temp, top_k, top_p, min_p, u, tok, ws, ws_bytes, st(s));
}

int k_moe_route(const float* logits, int n_tok, int n_expert, int k, int32_t* ids, float* weights, rf_stream s) {
  return moe_route(logits, n_tok, n_expert, k, ids, weights, st(s));
}
int k_matvec_experts(uint32_t t, const void* w, size_t es, size_t rs, int ne, int rows, int cols, const int32_t* ids,
                     int n_slots, int x_div, const float* x, const void* xq, float* y, rf_stream s) {
  return matvec_experts(t, w, es, rs, ne, rows, cols, ids, n_slots, x_div, x, xq, y, st(s));
}
int k_matmul_f16_parts(uint32_t t, const void* w, size_t rs, const float* x, int cols, int n_tok, int n_parts,
                       const int* part_rows, float* const* y, rf_stream s) {
  const int rc = matmul_mma_parts(t, w, rs, x, cols, n_tok, n_parts, part_rows, y, st(s));
  return rc < 0 ? fail("matmul_f16_parts: not served (type %u, %d columns, %d tokens, %d parts)", t, cols, n_tok,
                       n_parts)
                : rc;
}
int k_matvec_q8_multi(uint32_t t, const void* w, size_t rs, const void* xq, float* y, int rows, int cols, int n_tok,
                      rf_stream s) {
  return matvec_q8_multi(t, w, rs, xq, y, rows, cols, n_tok, st(s));
}
int k_matvec_q8_multi_parts(uint32_t t, const void* w, size_t rs, const void* xq, int cols, int n_tok, int n_parts,
                            const int* part_rows, float* const* y, rf_stream s) {
  return matvec_q8_multi_parts(t, w, rs, xq, cols, n_tok, n_parts, part_rows, y, st(s));
}
int k_sample_rows(const float* logits, int n, int n_rows, const rf_sample_row* rows, const rf_sample_row* h_rows,
                  int32_t* tokens, void* ws, size_t ws_bytes, rf_stream s) {
  return sample_rows(logits, n, n_rows, rows, h_rows, tokens, ws, ws_bytes, st(s));
}
int k_rmsnorm_q8_rows(float* x, const float* add, const float* w, float* y, void* xq, int n, int rows, float eps,
                      rf_stream s) {
  return rmsnorm_q8_rows(x, add, w, y, xq, n, rows, eps, st(s));
}
int k_matmul_mc(uint32_t t, const void* w, size_t rs, const float* x, float* y, int rows, int cols, int n_tok,
                rf_stream s) {
  return matmul_mc(t, w, rs, x, y, rows, cols, n_tok, st(s));
}
const char* k_prompt_gemm(rf_stream s) { return prompt_gemm(st(s)); }
const char* k_prompt_attention(rf_stream s) { return prompt_attention(st(s)); }
int k_matmul_hgemm(uint32_t t, const void* w, size_t rs, const float* x, float* y, int rows, int cols, int n_tok,
                   rf_stream s) {
  return matmul_hgemm(t, w, rs, x, y, rows, cols, n_tok, st(s));
}
int k_penalize_rows(float* logits, int n, int n_rows, const rf_penalty_row* rows, const int32_t* pairs,
                    const int32_t* chain, rf_stream s) {
  return penalize_rows(logits, n, n_rows, rows, pairs, chain, st(s));
}
int k_moe_mix(const float* y, const float* w, int n_tok, int k, int n, float* out, rf_stream s) {
  return moe_mix(y, w, n_tok, k, n, out, st(s));
}

const rf_gpu_api kApi = {
    RF_GPU_API_VERSION, RF_BACKEND_NAME, last_error,
    device_count, device_info, set_device, dev_malloc, dev_free, memcpy_h2d, memcpy_d2h, memcpy_d2d, dev_memset,
    stream_create, stream_destroy, stream_sync, event_create, event_destroy, event_record, event_elapsed_ms,
    graph_capture_begin, graph_capture_end, graph_launch, graph_destroy,
    k_matvec, k_matmul, k_embed, k_rmsnorm, k_rope, k_swiglu, k_add, q8_bytes, k_quantize_q8, has_matvec_q8,
    k_matvec_q8, k_kv_store, attn_decode_workspace,
    k_attn_decode, k_attn_prefill, k_sample, k_matmul_f16, k_rmsnorm_q8, k_swiglu_q8, k_rope_kv_store,
    has_matvec_q8_qkv, k_matvec_q8_qkv, matvec_q8_kernel, matvec_q8_staged_mode,
    k_matvec_q8_norm, k_moe_route, k_matvec_experts, k_moe_mix, host_malloc, host_free, k_matvec_q8_multi, k_sample_rows,
    mma_max_tokens, k_matmul_f16_parts, matvec_prefetch_next, k_matvec_q8_swiglu, k_rmsnorm_q8_rows,
    k_matvec_q8_multi_parts, host_device_ptr, sample_workspace, k_matmul_mc, k_prompt_gemm, k_matmul_hgemm,
    k_prompt_attention, sample_launches, k_penalize_rows, stream_wait_event, memcpy_peer,
};

}  // namespace
}  // namespace rocforge::gpu

extern "C" __attribute__((visibility("default"))) const rf_gpu_api* rocforge_gpu_api(void) {
  return &rocforge::gpu::kApi;
}
