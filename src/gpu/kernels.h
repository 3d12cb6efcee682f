// kernels.h - host-side launchers of the GPU kernels (one definition per .hip file) and the error
// plumbing they share with backend.hip. Launchers validate their arguments, launch asynchronously and
// return 0, or non-zero after recording a message for rocforge_gpu_api()->last_error().
#pragma once

#include <atomic>

#include "gpu/backend_api.h"
#include "gpu/hip_compat.h"

namespace rocforge::gpu {

// $name as an integer (atoi), or fallback when unset or empty: the ROCFORGE_* tuning switches.
int env_int(const char* name, int fallback);

// Records a printf-style message as the calling thread's last error; returns 1.
int fail(const char* fmt, ...);
// Whether p is 16-byte aligned (the vector loads and copies of the GEMM and matvec kernels).
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
// 0 if e is hipSuccess, else records "<what>: <runtime message>" and returns 1.
int check(hipError_t e, const char* what);
// Wave width of the current device (cached per device).
int wave_size();
// Multiprocessor count of the current device (cached per device).
int multiprocessors();
// Compute capability major of the current device (CUDA; the gfx major on HIP).
int compute_major();
// Peak memory bandwidth of the current device in bytes/s, from its memory clock and bus width (0
// where the runtime does not report them).
double memory_bandwidth();

// Dynamic shared memory a block of `kernel` may take on the current device: the opt-in limit less
// its static shared memory on CUDA, where the kernel's own limit is raised to that on first use
// (above 48 KB a kernel must opt in); 64 KB of LDS on AMD. `limits` is the caller's cache for this
// kernel, a slot per device (0 = not asked yet, -1 = refused).
template <class K>
inline int dynamic_smem_limit(K kernel, std::atomic<int>* limits) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return 48 * 1024;
  int v = limits[dev].load(std::memory_order_acquire);
  if (v != 0) return v;
#if defined(__HIP__) || defined(__HIPCC__)
  (void)kernel;
  v = 64 * 1024;
#else
  int optin = 0;
  cudaFuncAttributes attr{};
  v = -1;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
      cudaFuncGetAttributes(&attr, kernel) == cudaSuccess) {
    const int dyn = optin - static_cast<int>(attr.sharedSizeBytes);
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn) == cudaSuccess) v = dyn;
  }
  (void)cudaGetLastError();  // a refused attribute is an answer here, not the next launch's error
#endif
  limits[dev].store(v, std::memory_order_release);
  return v;
}

int matvec(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
           hipStream_t s);
size_t q8_bytes(int n);
int quantize_q8(const float* x, int n, void* xq, hipStream_t s);
int has_matvec_q8(uint32_t type);
int matvec_q8(uint32_t type, const void* w, size_t row_stride, const void* xq, float* y, int rows, int cols,
              hipStream_t s);
int has_matvec_q8_qkv(uint32_t type_a, uint32_t type_b);
int matvec_q8_qkv(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                  size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                  hipStream_t s);
int matvec_q8_norm(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                   size_t stride_b, int rows_b, int cols, const rf_norm_in* norm, float* y, const rf_qkv_rope* rope,
                   hipStream_t s);
int matvec_q8_swiglu(uint32_t type, const void* w, size_t stride, int n_ff, int cols, const void* xq,
                     const rf_norm_in* norm, float* y, void* yq, hipStream_t s);
int matmul(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
           int n_tok, hipStream_t s);
int matmul_f16(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
               int n_tok, hipStream_t s);
// The prompt GEMM on the matrix units (tensor cores, MFMA, WMMA) with f16 tiles dequantized in shared
// memory (matmul_mc.hip): where no vendor BLAS serves matmul_f16. Returns -1, having launched
// nothing, where the device has no matrix unit, ROCFORGE_GPU_MC=0, or its first-use self-check
// against matmul failed.
int matmul_mc(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
              int n_tok, hipStream_t s);
// The same product through hgemm.hip's f16 GEMM on the weights dequantized to f16 slices (the path
// matmul_f16 takes before matmul_mc where no vendor BLAS serves). Returns -1, having launched nothing,
// where the device has no matrix unit, ROCFORGE_GPU_HGEMM=0, cols % 8 != 0, its first-use check failed
// or no scratch could be had.
int matmul_hgemm(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
                 int n_tok, hipStream_t s);
// C [m x n] (column-major, ldc) = A^T B with A [k x m] (lda) and B [k x n] (ldb) in f16 - a BLAS's
// gemm(T, N) - on the matrix units (hgemm.hip); k, lda, ldb multiples of 8, A and B 16-byte aligned.
int hgemm_tn(int m, int n, int k, const uint16_t* a, int lda, const uint16_t* b, int ldb, float* c, int ldc,
             hipStream_t s);
// Whether the current device has a matrix unit the kernels of this build use (the architecture's
// name or compute capability; each kernel's own check then confirms its fragment layouts there).
bool device_has_matrix_unit();
// Whether matmul_mc serves on the current device: 1 yes, -1 no, 0 not decided (its check cannot run
// while `s` is captured into a graph). Runs the check on first use.
int matmul_mc_ready(hipStream_t s);
// The GEMM matmul_f16 runs for batches beyond its small-batch kernel on the current device, deciding
// it now where not yet decided (the checks run; not while `s` is being captured): "cuBLAS",
// "rocBLAS", "matrix units (hgemm on f16 slices)", "matrix units (matmul_mc)", "fp32 tiles", or
// "undecided".
const char* prompt_gemm(hipStream_t s);
// Tensor-core GEMM of up to mma_max_tokens() tokens with the weights dequantized in registers
// (matmul_mma.hip; matmul_small.hip's kernel on the HIP build); returns -1, having launched nothing,
// where it does not serve the call (no matrix unit, cols % 32 != 0, too many tokens).
int mma_max_tokens();
int matmul_mma(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
               int n_tok, hipStream_t s);
// The same over n_parts (1..3) matrices stored one after another (a fused q/k/v or gate/up buffer),
// part i's rows going to its own y[i] [n_tok][part_rows[i]].
int matmul_mma_parts(uint32_t type, const void* w, size_t row_stride, const float* x, int cols, int n_tok, int n_parts,
                     const int* part_rows, float* const* y, hipStream_t s);
// A per-stream slot of static device memory for the small-batch GEMMs' X prepared once a call as
// f16 (x_slot.hip): kXSlotTokens x kXSlotMaxCols halves; nullptr where the device's four slots are
// taken. A stream about to be destroyed gives its slot back (x_slot_release).
constexpr int kXSlotTokens = 64, kXSlotMaxCols = 32768;
constexpr size_t kXSlotBytes = size_t(kXSlotTokens) * kXSlotMaxCols * 2;
uint4* x_slot(hipStream_t s);
void x_slot_release(hipStream_t s);
// A stream about to be destroyed gives back the device's one-launch sampler if it held it
// (sampling_state.h's whole_claim).
void whole_release(hipStream_t s);
// The small-batch GEMM for every matrix unit (matmul_small.hip): AMD's matmul_mma, and NVIDIA's
// where ROCFORGE_GPU_MMA_SMALL=1 selects it (tests, benchmarks). small_gemm_selected: whether it
// stands in for the tensor-core kernel in this build and process; small_max_tokens: the tokens it
// takes on the current device, 0 where it does not serve (no matrix unit, switched off, or its
// first-use check against the fp32 kernel failed: the check runs here, once a device);
// matmul_small_parts: as matmul_mma_parts, -1 where it does not serve the call.
bool small_gemm_selected();
int small_max_tokens();
int matmul_small_parts(uint32_t type, const void* w, size_t row_stride, const float* x, int cols, int n_tok,
                       int n_parts, const int* part_rows, float* const* y, hipStream_t s);
int embed(uint32_t type, const void* table, size_t row_stride, int cols, const int32_t* tokens, int n_tok,
          float* out, hipStream_t s);
int rmsnorm(const float* x, const float* w, float* y, int n, int n_rows, float eps, hipStream_t s);
int rope(float* x, const int32_t* pos, int n_tok, int n_head, int head_dim, int n_rot, float base, float freq_scale,
         const float* freq_factors, int neox, hipStream_t s);
int rmsnorm_q8(float* x, const float* add, const float* w, float* y, void* xq, int n, float eps, hipStream_t s);
// rmsnorm_q8 of `rows` rows of n, one block each; xq laid out as one quantize_q8 over rows x n.
int rmsnorm_q8_rows(float* x, const float* add, const float* w, float* y, void* xq, int n, int rows, float eps,
                    hipStream_t s);
int swiglu_q8(const float* gate, const float* up, float* y, void* xq, int n, hipStream_t s);
int swiglu(const float* gate, const float* up, float* out, size_t n, hipStream_t s);
int add(const float* a, const float* b, float* out, size_t n, hipStream_t s);
int kv_store(const float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* block_table,
             int block_size, int n_kv_head, int head_dim, int kv_type, void* k_pool, void* v_pool, hipStream_t s);
int rope_kv_store(float* q, float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* block_tables,
                  int max_blocks, int block_size, int n_head, int n_kv_head, int head_dim, int n_rot, float base,
                  float freq_scale, const float* freq_factors, int neox, int kv_type, void* k_pool, void* v_pool,
                  hipStream_t s);
size_t attn_decode_workspace(int n_seq, int n_head, int head_dim, int max_seq_len);
int attn_decode(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                const int32_t* seq_lens, int n_seq, int max_seq_len, int n_head, int n_kv_head, int head_dim,
                int block_size, int kv_type, const float* cur_k, const float* cur_v, float scale, float* out, void* xq,
                void* workspace, hipStream_t s);
// The staged decode kernel (attention_decode_staged.hip) for head_dim 64 / 128: grid (n_split,
// n_head / gb, n_seq), each sequence's positions split evenly (whole 64-row chunks) over n_split
// blocks; with n_split == 1 it writes out (and xq / xd when given), else the partials
// decode_combine reads. Returns -1, having launched nothing, where it does not apply (head_dim,
// alignment, shared memory, gb > 8).
int attn_decode_staged(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                       const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim, int block_size,
                       int kv_type, const float* cur_k, const float* cur_v, float scale, int n_split, int gb,
                       float* part_o, float* part_ml, float* out, int8_t* xq, float* xd, hipStream_t s);
// Decode attention of contexts split n_split > 1 ways on the matrix units (attention_decode_mma.hip):
// head_dim 64 / 128, F16 or Q8_0 cache (a Q8_0 cache's own rows, cur_k / cur_v, quantized and stored
// as attn_decode does), a KV head's <= 16 query heads per block; the staged kernel's splits and
// partial outputs (decode_combine adds them). Returns -1, having launched nothing, where it does not
// serve (those shapes, ROCFORGE_ATTN_MMA=0, or attention_mma_ready is not yes).
int attn_decode_mma(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                    const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim, int block_size,
                    int kv_type, const float* cur_k, const float* cur_v, float scale, int n_split, float* part_o,
                    float* part_ml, hipStream_t s);
int attn_prefill(const float* q, const void* k_pool, const void* v_pool, const int32_t* block_table, int pos0,
                 int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                 float* out, hipStream_t s);
// Which kernel prompts' attention runs on the current device, deciding it now where not yet (the
// matrix-unit kernel's check runs; not while `s` is being captured): "matrix units", "fp32 tiles" or
// "undecided".
const char* prompt_attention(hipStream_t s);
// matvec_q8_multi over up to 3 parts of w's rows, each into its own output; -1 where not served here.
int matvec_q8_multi_parts(uint32_t type, const void* w, size_t row_stride, const void* xq, int cols, int n_tok,
                          int n_parts, const int* part_rows, float* const* y, hipStream_t s);
int matvec_q8_multi(uint32_t type, const void* w, size_t row_stride, const void* xq, float* y, int rows, int cols,
                    int n_tok, hipStream_t s);
int matvec_experts(uint32_t type, const void* w, size_t expert_stride, size_t row_stride, int n_expert, int rows,
                   int cols, const int32_t* ids, int n_slots, int x_div, const float* x, const void* xq, float* y,
                   hipStream_t s);
int moe_route(const float* logits, int n_tok, int n_expert, int k, int32_t* ids, float* weights, hipStream_t s);
int moe_mix(const float* y, const float* weights, int n_tok, int k, int n, float* out, hipStream_t s);
// Sampling (sampling.hip): vocabularies up to kSampleMaxVocab; workspace from sample_workspace.
constexpr int kSampleMaxVocab = 2048 * 1024;
size_t sample_workspace(int n_rows, int n_vocab);
int sample_launches(const rf_sample_row* h_rows, int n_rows, int n_vocab);
int sample_rows(const float* logits, int n_vocab, int n_rows, const rf_sample_row* rows, const rf_sample_row* h_rows,
                int32_t* tokens, void* ws, size_t ws_bytes, hipStream_t s);
int sample(const float* logits, int n_vocab, float temperature, int top_k, float top_p, float min_p, float u,
           int32_t* token, void* ws, size_t ws_bytes, hipStream_t s);
// Penalties ahead of the sampler (penalties.hip).
int penalize_rows(float* logits, int n_vocab, int n_rows, const rf_penalty_row* rows, const int32_t* pairs,
                  const int32_t* chain, hipStream_t s);

}  // namespace rocforge::gpu
