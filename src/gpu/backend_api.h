// backend_api.h - the C ABI between the rocforge binary and a GPU backend library
// (librocforge-cuda.so / librocforge-hip.so), which the binary dlopen()s at run time so that it never
// links a GPU runtime itself.
//
// The library exports one symbol, `rocforge_gpu_api`, returning a table of plain C function
// pointers. Every function returns 0 on success and non-zero on failure; `last_error()` then gives
// the message (per thread). All pointers named d_* are device pointers; all launches are
// asynchronous on the given stream (nullptr = the default stream).
//
// This header is plain C++ with no GPU includes: src/device includes it on machines without GPUs.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

#define RF_GPU_API_VERSION 26u  // bump whenever this table changes: binary and library must agree

// Weight type ids the kernels take: GGUF type ids, plus device-only layouts of the same bytes that
// the host writes while uploading (gpu/repack.h).
#define RF_GPU_TYPE_Q4_0_G8 1002u  // Q4_0, eight blocks as planes [d x 8][qs x 8]
#define RF_GPU_TYPE_Q8_0_G8 1008u  // Q8_0, likewise
#define RF_GPU_TYPE_Q3_K_G8 1011u  // Q3_K, eight super-blocks as aligned planes
#define RF_GPU_TYPE_Q6_K_G8 1014u  // Q6_K, eight super-blocks as 16-byte aligned planes

// K/V cache element types (the kv_type arguments of the cache and attention calls).
#define RF_KV_F16 0
#define RF_KV_Q8_0 1  // int8 codes + an f16 scale per 32 values; layout in gpu/kv_layout.h

// Bytes of one layer's K (or V) pool of n_blocks cache blocks.
static inline size_t rf_kv_pool_bytes(int kv_type, size_t n_blocks, int block_size, int n_kv_head, int head_dim) {
  const size_t values = n_blocks * static_cast<size_t>(block_size) * static_cast<size_t>(n_kv_head) * head_dim;
  return kv_type == RF_KV_Q8_0 ? values + values / 32 * 2 : values * 2;
}

typedef void* rf_stream;
typedef void* rf_event;
typedef void* rf_graph;

struct rf_gpu_device_info {
  char name[256];
  uint64_t total_memory;  // bytes
  uint64_t free_memory;   // bytes, at the time of the query
  int wave_size;          // 32 (NVIDIA, RDNA) or 64 (CDNA)
  int multiprocessors;    // SMs / CUs
  int cc_major, cc_minor; // compute capability (CUDA) or gfx major/minor (HIP)
  char arch[64];          // "sm_90", "gfx942", ...
};

// The rope + KV-store epilogue of matvec_q8_qkv (one token of one sequence).
struct rf_qkv_rope {
  int q_rows, k_rows;             // y = [q (q_rows) | k (k_rows) | v (the rest)]
  int head_dim, n_rot;            // rotated: pairs (2i, 2i + 1), i < n_rot / 2, of each q and k head
  float base, freq_scale;
  const float* d_freq_factors;    // nullable (llama3 scaling passes its factors)
  const int32_t* d_pos;           // the token's position
  const int32_t* d_block_table;   // the sequence's KV blocks
  int block_size, n_kv_head;
  uint16_t* d_k_pool;             // the layer's F16 pools, as kv_store's; null: rotate only (a Q8_0 cache
                                  // quantizes per 32 values, which this per-element epilogue cannot: then
                                  // attn_decode's d_cur_k / d_cur_v store the token)
  uint16_t* d_v_pool;
};

// One row's parameters for sample_rows (as sample's arguments).
struct rf_sample_row {
  float temperature;
  int top_k;
  float top_p, min_p, u;
};

// One row of penalize_rows: SamplingParams' penalties (repeat 1, presence 0, frequency 0: none) and
// the tokens they count. Those are the (id, count) pairs d_pairs[2 * begin, 2 * (begin + count)),
// distinct ids by increasing id, the host's counts, plus the ids d_chain[chain_begin, chain_end) sampled on the device
// since (a chain of decode steps), each adding one to its id's count.
struct rf_penalty_row {
  float repeat, presence, frequency;
  int32_t begin, count;
  int32_t chain_begin, chain_end;
  int32_t pad;
};

// The rmsnorm fused into matvec_q8_norm: x = d_x + d_add (d_add nullable; the sum also written to
// d_x_out when set, which must not alias d_x or d_add), y = quantize_q8(x / rms(x) * d_w).
struct rf_norm_in {
  const float* d_x;
  const float* d_add;
  const float* d_w;
  float eps;
  float* d_x_out;
};

struct rf_gpu_api {
  uint32_t version;          // RF_GPU_API_VERSION
  const char* backend_name;  // "cuda" or "hip"
  const char* (*last_error)(void);

  // ---- runtime
  int (*device_count)(int* n);
  int (*device_info)(int device, rf_gpu_device_info* out);
  int (*set_device)(int device);
  int (*malloc)(void** d_ptr, size_t bytes);
  int (*free)(void* d_ptr);
  int (*memcpy_h2d)(void* d_dst, const void* src, size_t bytes, rf_stream s);
  int (*memcpy_d2h)(void* dst, const void* d_src, size_t bytes, rf_stream s);
  int (*memcpy_d2d)(void* d_dst, const void* d_src, size_t bytes, rf_stream s);
  int (*memset)(void* d_dst, int value, size_t bytes, rf_stream s);
  int (*stream_create)(rf_stream* s);
  int (*stream_destroy)(rf_stream s);
  int (*stream_sync)(rf_stream s);
  int (*event_create)(rf_event* e);
  int (*event_destroy)(rf_event e);
  int (*event_record)(rf_event e, rf_stream s);
  int (*event_elapsed_ms)(rf_event start, rf_event stop, float* ms);  // waits for `stop`

  // ---- graphs: everything launched on stream `s` (a created stream, not the default one) between
  // begin and end is recorded instead of run; the instantiated graph then replays it with one launch
  // (the decode step: no per-kernel launch cost, no host round trip). Replays read the same device
  // pointers, so inputs change by writing into the captured buffers.
  int (*graph_capture_begin)(rf_stream s);
  int (*graph_capture_end)(rf_stream s, rf_graph* g);
  int (*graph_launch)(rf_graph g, rf_stream s);
  int (*graph_destroy)(rf_graph g);

  // ---- kernels. `type` is a GgmlType id (include/rocforge/ggml_type.h). Weight matrices are in
  // the GGUF layout: `rows` rows of `cols` elements, row r at d_w + r * row_stride bytes.

  // y[r] = sum_c W[r][c] * x[c]                       x: [cols], y: [rows]
  int (*matvec)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, float* d_y, int rows,
                int cols, rf_stream s);
  // Y[t][r] = sum_c W[r][c] * X[t][c]                 X: [n_tok][cols], Y: [n_tok][rows]
  int (*matmul)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, float* d_y, int rows,
                int cols, int n_tok, rf_stream s);
  // out[t][:] = dequantized row tokens[t] of the table   table: [n_rows][cols], out: [n_tok][cols]
  int (*embed)(uint32_t type, const void* d_table, size_t row_stride, int cols, const int32_t* d_tokens,
               int n_tok, float* d_out, rf_stream s);
  // y[i][:] = x[i][:] / sqrt(mean(x[i]^2) + eps) * w     x, y: [n_rows][n], w: [n]; y may alias x
  int (*rmsnorm)(const float* d_x, const float* d_w, float* d_y, int n, int n_rows, float eps, rf_stream s);
  // In-place rotary embedding of x: [n_tok][n_head][head_dim], the first n_rot dims of each head.
  // theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_factors[i] (freq_factors may be null: llama3
  // scaling passes its per-frequency factors). neox != 0 rotates (i, i + n_rot/2), else (2i, 2i+1).
  int (*rope)(float* d_x, const int32_t* d_pos, int n_tok, int n_head, int head_dim, int n_rot, float base,
              float freq_scale, const float* d_freq_factors, int neox, rf_stream s);
  // out[i] = silu(gate[i]) * up[i]; out may alias either input
  int (*swiglu)(const float* d_gate, const float* d_up, float* d_out, size_t n, rf_stream s);
  // out[i] = a[i] + b[i]; out may alias either input
  int (*add)(const float* d_a, const float* d_b, float* d_out, size_t n, rf_stream s);

  // Decode hot path: x quantized once to int8 (32 values per scale) and reused by every matvec that
  // reads it (q/k/v, gate/up). q8_bytes(n) = workspace bytes of a quantized x of n (a multiple of 32)
  // elements; has_matvec_q8(type) != 0 for the weight types matvec_q8 takes (others: use matvec).
  // Results differ from matvec by the int8 rounding of x (~0.3% of sum |w*x|).
  size_t (*q8_bytes)(int n);
  int (*quantize_q8)(const float* d_x, int n, void* d_xq, rf_stream s);
  int (*has_matvec_q8)(uint32_t type);
  int (*matvec_q8)(uint32_t type, const void* d_w, size_t row_stride, const void* d_xq, float* d_y, int rows,
                   int cols, rf_stream s);

  // ---- paged KV cache. One pool per layer and per K/V, of kv_type RF_KV_F16:
  //   pool: [n_blocks][n_kv_head][block_size][head_dim] half
  // or RF_KV_Q8_0 (head_dim a multiple of 32): per block, int8 codes then f16 scales (gpu/kv_layout.h;
  // rf_kv_pool_bytes). A sequence's position p lives in block block_table[p / block_size], slot
  // p % block_size. Stores k, v: [n_tok][n_kv_head][head_dim] (float) at positions pos[t] of one sequence.
  int (*kv_store)(const float* d_k, const float* d_v, const int32_t* d_pos, int n_tok, const int32_t* d_block_table,
                  int block_size, int n_kv_head, int head_dim, int kv_type, void* d_k_pool, void* d_v_pool,
                  rf_stream s);
  // Bytes of workspace attn_decode needs.
  size_t (*attn_decode_workspace)(int n_seq, int n_head, int head_dim, int max_seq_len);
  // Decode attention, one query token per sequence (split-K flash decoding; GQA reads each K/V head
  // once for all its query heads).  q, out: [n_seq][n_head][head_dim]; block_tables: [n_seq][max_blocks];
  // seq_lens[i] = positions of sequence i to attend (>= 1, <= max_seq_len). d_xq (nullable, 16-byte
  // aligned, q8_bytes(n_seq * n_head * head_dim)): also writes out in quantize_q8's int8 layout.
  // d_cur_k, d_cur_v (nullable, both or neither): the step's own k and v rows [n_seq][n_kv_head][head_dim],
  // not yet in the cache: attn_decode stores them at position seq_lens[i] - 1 first (kv_store's
  // result) and attends to them, in the same launch where it can.
  int (*attn_decode)(const float* d_q, void* d_k_pool, void* d_v_pool, const int32_t* d_block_tables,
                     int max_blocks, const int32_t* d_seq_lens, int n_seq, int max_seq_len, int n_head, int n_kv_head,
                     int head_dim, int block_size, int kv_type, const float* d_cur_k, const float* d_cur_v, float scale,
                     float* d_out, void* d_xq, void* d_workspace, rf_stream s);
  // Causal prefill attention for one sequence: query t sits at position pos0 + t and attends to
  // positions [0, pos0 + t] (already stored in the cache).  q, out: [n_tok][n_head][head_dim].
  int (*attn_prefill)(const float* d_q, const void* d_k_pool, const void* d_v_pool, const int32_t* d_block_table,
                      int pos0, int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type,
                      float scale, float* d_out, rf_stream s);

  // ---- sampling. Writes one token id to *d_token. temperature <= 0 -> greedy (lowest index wins
  // ties). Otherwise the candidates are the logits l >= every one of: the top_k-th largest (top_k <=
  // 0: no limit), the smallest top set whose mass (within the top-k set) reaches ceil(top_p * that
  // mass) (top_p >= 1: no limit), and max + ln(min_p) (min_p <= 0: no limit): filters on the
  // model's distribution, as the host Sampler's. Masses are fixed point, q(l) = floor(exp(l - max) *
  // 2^40) (exact integer sums). The draw weighs each candidate by q at the temperature, of
  // l * (1 / temperature) against max * (1 / temperature) (the reciprocal rounded to float): the
  // token is the first candidate in index order whose running weight exceeds floor(u * total), u in
  // [0, 1). (v17; before it, the filters too acted on the scaled logits.) d_ws is a device workspace of
  // sample_workspace(1, n_vocab) bytes, 256-byte aligned, zeroed once before its first use (calls
  // leave it so); calls on one workspace must be stream-ordered. n_vocab up to 2097152.
  int (*sample)(const float* d_logits, int n_vocab, float temperature, int top_k, float top_p, float min_p,
                float u, int32_t* d_token, void* d_ws, size_t ws_bytes, rf_stream s);

  // ---- v3. As matmul, with W and X rounded to f16 and fp32 accumulation (tensor cores: vendor BLAS
  // where the backend finds one at run time, else the fp32 kernel of matmul). For prompt processing;
  // results differ from matmul by the f16 rounding (~1e-3 of sum |w*x|).
  int (*matmul_f16)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, float* d_y, int rows,
                    int cols, int n_tok, rf_stream s);

  // ---- v4. Decode fusions (one row each; fewer launches per token). The int8 output d_xq is in
  // quantize_q8's layout and rounding (n a multiple of 32), ready for matvec_q8.
  // x += add (add may be null; it may alias y); y = x / sqrt(mean(x^2) + eps) * w (y may be null);
  // xq = quantize_q8(y) (xq may be null).                                  x, add, y, w: [n]
  int (*rmsnorm_q8)(float* d_x, const float* d_add, const float* d_w, float* d_y, void* d_xq, int n, float eps,
                    rf_stream s);
  // y = silu(gate) * up (y may be null, or alias an input); xq = quantize_q8(y).   [n]
  int (*swiglu_q8)(const float* d_gate, const float* d_up, float* d_y, void* d_xq, int n, rf_stream s);

  // ---- v5. Decode of n_tok sequences, one token each (token t is sequence t: block table row t of
  // d_block_tables [n_tok][max_blocks], position d_pos[t]): rope as `rope` on q [n_tok][n_head][head_dim]
  // and k [n_tok][n_kv_head][head_dim] in place, then kv_store of the rotated k and of v, in one launch.
  int (*rope_kv_store)(float* d_q, float* d_k, const float* d_v, const int32_t* d_pos, int n_tok,
                       const int32_t* d_block_tables, int max_blocks, int block_size, int n_head, int n_kv_head,
                       int head_dim, int n_rot, float base, float freq_scale, const float* d_freq_factors, int neox,
                       int kv_type, void* d_k_pool, void* d_v_pool, rf_stream s);

  // ---- v6. The decode token's q/k/v projection in one launch: y = [A x | B x] (B's rows right after
  // A's; rows_b = 0: A alone), int8 x as matvec_q8, both matrices `cols` wide. With `rope` (nullable):
  // y = [q | k | v] of one token: q and k rotated (llama-style pairs (2i, 2i + 1) of each head's
  // first n_rot dims, the math of `rope`), and k, v stored in the cache at *d_pos, as rope_kv_store
  // would. has_matvec_q8_qkv(type_a, type_b) != 0 for the type pairs it serves (type_b 0: A alone).
  // v24: matvec_q8_qkv returns -1, having launched nothing, where the one launch would not pay for
  // the formats on this device (the caller then projects apart, and rotates with rope_kv_store).
  int (*has_matvec_q8_qkv)(uint32_t type_a, uint32_t type_b);
  int (*matvec_q8_qkv)(uint32_t type_a, const void* d_wa, size_t stride_a, int rows_a, uint32_t type_b,
                       const void* d_wb, size_t stride_b, int rows_b, int cols, const void* d_xq, float* d_y,
                       const struct rf_qkv_rope* rope, rf_stream s);

  // ---- v7. Which kernel matvec_q8 runs for this matrix on the current device: "staged" (weights
  // streamed through shared memory by the copy engine, sm_90+), "registers", or nullptr for a type
  // without an int8 path. matvec_q8_set_kernel: -1 staged where it pays (large matrices; default, or
  // $ROCFORGE_MV_STAGED unset), 0 never ($ROCFORGE_MV_STAGED=0), 1 wherever it applies (=1); for tests
  // and A/B runs, it changes later launches only (captured graphs keep theirs).
  const char* (*matvec_q8_kernel)(uint32_t type, const void* d_w, size_t row_stride, int rows, int cols);
  void (*matvec_q8_set_kernel)(int mode);
  // As matvec_q8_qkv (type_b 0: A alone; rope nullable), with the rmsnorm of `norm` made inside the
  // launch instead of taking quantized x: saves the rmsnorm_q8 launch. Returns -1, having launched
  // nothing, where this device or layout has no such kernel (callers then norm and project apart).
  int (*matvec_q8_norm)(uint32_t type_a, const void* d_wa, size_t stride_a, int rows_a, uint32_t type_b,
                        const void* d_wb, size_t stride_b, int rows_b, int cols, const struct rf_norm_in* norm,
                        float* d_y, const struct rf_qkv_rope* rope, rf_stream s);

  // ---- v9 (v8 was an intermediate table of the same pass). Mixture of experts on the device (no host
  // round trip; decode steps stay graphs).
  // Routing: ids[t][j], weights[t][j] (j < k <= 32) = the k most probable experts of
  // softmax(logits[t]) (ties: the lower id), their probabilities renormalised to sum 1.
  //                                                    logits: [n_tok][n_expert], ids, weights: [n_tok][k]
  int (*moe_route)(const float* d_logits, int n_tok, int n_expert, int k, int32_t* d_ids, float* d_weights,
                   rf_stream s);
  // y[s] = W[ids[s]] x[s / x_div] for each slot s < n_slots, W[e] at d_w + e * expert_stride (rows x
  // cols, row_stride apart). Types with has_matvec_q8 read x as d_xq, quantize_q8 of all
  // ceil(n_slots / x_div) rows of x in one call; the others read float d_x. An id outside
  // [0, n_expert) gives NaN rows.                     y: [n_slots][rows]
  int (*matvec_experts)(uint32_t type, const void* d_w, size_t expert_stride, size_t row_stride, int n_expert,
                        int rows, int cols, const int32_t* d_ids, int n_slots, int x_div, const float* d_x,
                        const void* d_xq, float* d_y, rf_stream s);
  // out[t][i] = sum_j weights[t][j] * y[t * k + j][i] (out must not alias y).   y: [n_tok * k][n]
  int (*moe_mix)(const float* d_y, const float* d_weights, int n_tok, int k, int n, float* d_out, rf_stream s);
  // Page-locked host memory (memcpy_d2h into it is a single DMA); free_host(nullptr) is a no-op.
  int (*malloc_host)(void** ptr, size_t bytes);
  int (*free_host)(void* ptr);
  // As matvec_q8 for n_tok (1..16) tokens at once, each weight read once for all of them: decode
  // steps of several sequences. d_xq: quantize_q8 of X [n_tok][cols] in one call.  Y: [n_tok][rows]
  int (*matvec_q8_multi)(uint32_t type, const void* d_w, size_t row_stride, const void* d_xq, float* d_y, int rows,
                         int cols, int n_tok, rf_stream s);
  // As sample for each row r of logits [n_rows][n_vocab] with d_rows[r]'s parameters (a device array,
  // checked by the caller as sample checks its arguments), into d_tokens[r]; rows run side by side.
  // h_rows (nullable) is the same parameters on the host: launches no row needs are skipped.
  // d_ws: sample_workspace(n_rows, n_vocab) bytes, as sample's.
  int (*sample_rows)(const float* d_logits, int n_vocab, int n_rows, const struct rf_sample_row* d_rows,
                     const struct rf_sample_row* h_rows, int32_t* d_tokens, void* d_ws, size_t ws_bytes, rf_stream s);
  // Up to how many tokens matmul_f16 multiplies on the tensor cores with the weights read once from
  // their quantized form (the current device; 0: it dequantizes slices for a vendor GEMM throughout).
  int (*matmul_f16_mma_max)(void);
  // As matmul_f16 for up to matmul_f16_mma_max() tokens over n_parts (1..3) matrices whose rows are
  // stored one after another (a fused q/k/v or gate/up buffer): part i's rows go to d_y[i], [n_tok]
  // [part_rows[i]] (host arrays). An error where the tensor-core kernel does not serve the call.
  int (*matmul_f16_parts)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, int cols, int n_tok,
                          int n_parts, const int* part_rows, float* const* d_y, rf_stream s);

  // ---- v13. The next int8 decode matvec launched by this thread (matvec_q8, matvec_q8_qkv,
  // matvec_q8_norm) also asks, as each of its blocks finishes, for its share of
  // [d_next, d_next + bytes) to be brought into L2: the following projection's weights arrive while
  // the short kernels between the two run (gpu/l2_prefetch.h). bytes is rounded down to 16 (and to
  // at most 4 GiB - 16); 0, or a pointer not 16-byte aligned, cancels a pending request. A hint: no
  // effect where the device has no bulk prefetch.
  void (*matvec_prefetch_next)(const void* d_next, size_t bytes);

  // ---- v14. Decode's gate/up projection with SwiGLU in its epilogue (no swiglu_q8 launch):
  // d_w = [gate | up] (2 n_ff rows of `cols`), x as matvec_q8 (d_xq) or, with `norm` set, made inside
  // as matvec_q8_norm does (d_xq unused). d_y[n_ff] = silu(gate x) * (up x) (nullable) and d_yq =
  // quantize_q8(d_y), bit-identical to that product followed by swiglu_q8; d_yq must not alias d_xq.
  // Returns -1, having launched nothing, where this device, format or shape has no such kernel.
  int (*matvec_q8_swiglu)(uint32_t type, const void* d_w, size_t row_stride, int n_ff, int cols, const void* d_xq,
                          const struct rf_norm_in* norm, float* d_y, void* d_yq, rf_stream s);

  // ---- v15. rmsnorm_q8 over `rows` rows of n (decode steps of several sequences): row r as
  // rmsnorm_q8 of its own (bit-identical), the int8 output laid out as one quantize_q8 over rows x n
  // (what matvec_q8_multi takes).
  int (*rmsnorm_q8_rows)(float* d_x, const float* d_add, const float* d_w, float* d_y, void* d_xq, int n, int rows,
                         float eps, rf_stream s);
  // matvec_q8_multi over a fused buffer's parts (q/k/v, gate/up) in one launch: d_w's rows as n_parts
  // (1..3) parts of part_rows[p] rows, part p's products into d_y[p] as [n_tok][part_rows[p]].
  // Returns -1, having launched nothing, where this device has no such kernel (then a part at a time).
  int (*matvec_q8_multi_parts)(uint32_t type, const void* d_w, size_t row_stride, const void* d_xq, int cols,
                               int n_tok, int n_parts, const int* part_rows, float* const* d_y, rf_stream s);

  // ---- v16. The address at which kernels reach page-locked memory from malloc_host (mapped), so
  // a kernel's output can land in host memory with no copy after it; an error where the device
  // cannot address it. Stores become visible to the host once the stream is synchronised.
  int (*host_device_ptr)(void* host, void** d_ptr);

  // ---- v17. Bytes of the workspace sample / sample_rows take for n_rows rows of n_vocab logits.
  size_t (*sample_workspace)(int n_rows, int n_vocab);

  // ---- v18. The prompt GEMM on the device's matrix units (tensor cores, MFMA, WMMA) with f16 tiles,
  // matmul_f16's arithmetic: what matmul_f16 runs where no vendor BLAS serves. Returns -1, having
  // launched nothing, where the device has none, ROCFORGE_GPU_MC=0, or its first-use self-check
  // against `matmul` failed.
  int (*matmul_mc)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, float* d_y, int rows,
                   int cols, int n_tok, rf_stream s);

  // ---- v19. The GEMM matmul_f16 runs for batches beyond its small-batch kernel on the current
  // device, decided now where it is not yet (the BLAS's and matmul_mc's checks run, synchronising s;
  // not while s is being captured): "cuBLAS", "rocBLAS", "matrix units (hgemm on f16 slices)",
  // "matrix units (matmul_mc)", "fp32 tiles" or "undecided".
  const char* (*prompt_gemm)(rf_stream s);

  // ---- v20. The prompt GEMM as the backend's own f16 GEMM on the matrix units over the weights
  // dequantized to f16 slices (what matmul_f16 runs where no vendor BLAS serves, before matmul_mc).
  // Returns -1, having launched nothing, where the device has no matrix unit, ROCFORGE_GPU_HGEMM=0,
  // cols % 8 != 0, its first-use check against `matmul` failed or no scratch could be had.
  int (*matmul_hgemm)(uint32_t type, const void* d_w, size_t row_stride, const float* d_x, float* d_y, int rows,
                      int cols, int n_tok, rf_stream s);

  // ---- v21. The kernel attn_prefill runs on the current device for head sizes 64 and 128, decided
  // now where it is not yet (the matrix-unit kernel's first-use check runs, synchronising s; not while
  // s is being captured): "matrix units", "fp32 tiles" or "undecided".
  const char* (*prompt_attention)(rf_stream s);

  // ---- v22. Which launches sample_rows makes for rows with parameters h_rows (u aside): a mask, the
  // same for any rows sample_rows serves with the same launches. A graph that recorded sample_rows
  // replays correctly for new parameters (uploaded to d_rows) of the same mask.
  int (*sample_launches)(const struct rf_sample_row* h_rows, int n_rows, int n_vocab);

  // ---- v23. The host Sampler's penalties applied to n_rows rows of n_vocab logits in place (row r
  // at d_logits + r * n_vocab, with d_rows[r]; d_chain nullable where no row counts chain ids): for
  // each counted id in range, l = l > 0 ? l / repeat : l * repeat (repeat != 1), then
  // l -= fma(frequency, count, presence), rounded as the host does it. Ahead of sample_rows.
  int (*penalize_rows)(float* d_logits, int n_vocab, int n_rows, const struct rf_penalty_row* d_rows,
                       const int32_t* d_pairs, const int32_t* d_chain, rf_stream s);

  // ---- v26. A model split over several GPUs (a stage of layers on each): stream s waits, on the
  // device, for the work before event e was recorded (e may belong to another device's stream); and
  // a copy between two devices' memory, in s's order (s: a stream of either device).
  int (*stream_wait_event)(rf_stream s, rf_event e);
  int (*memcpy_peer)(void* d_dst, int dst_device, const void* d_src, int src_device, size_t bytes, rf_stream s);
};

// The one exported symbol of a backend library.
const rf_gpu_api* rocforge_gpu_api(void);
typedef const rf_gpu_api* (*rocforge_gpu_api_fn)(void);

}  // extern "C"
