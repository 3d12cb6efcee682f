// attention_decode.hip - decode attention over a paged F16 or Q8_0 KV cache: the cache store and
// split-K flash decoding (causal prefill attention: attention_prefill.hip). GQA/MQA: a query head h
// reads KV head h / (n_head / n_kv_head) straight from the shared pool; K/V are never replicated.
//
// Pool layouts (one per layer, per K and V): kv_layout.h. The kernels read rows through KvF16 / KvQ8
// (same code, one template argument); a Q8_0 row is dequantized in registers as it is used.
#include <algorithm>
#include <cstdlib>

#include "gpu/kernels.h"
#include "gpu/kv_layout.h"
#include "gpu/rope_math.h"

namespace rocforge::gpu {
namespace {

constexpr int kMaxSplit = 256;    // positions per decode split (scores kept in shared memory)
constexpr int kDecodeThreads = 256;
// Decode contexts up to this long run one query head per one-pass block (onepass_heads).
constexpr int kShortContext = 1024;

// Block (t, kvh) stores token t's k and v rows of KV head kvh (blockDim a multiple of 32: the Q8_0
// store's 32-value groups are aligned lane groups, kv_store_value).
__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                const int32_t* __restrict__ pos, const int32_t* __restrict__ table, int block_size,
                                int n_kv_head, int head_dim, int kv_type, void* k_pool, void* v_pool) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int t = blockIdx.x, kvh = blockIdx.y;
  const size_t src = (static_cast<size_t>(t) * n_kv_head + kvh) * head_dim;
  for (int d0 = 0; d0 < head_dim; d0 += blockDim.x) {
    const int d = d0 + threadIdx.x;
    const bool in = d < head_dim;
    kv_store_value(k_pool, kv_type, table, pos[t], block_size, n_kv_head, kvh, head_dim, d, in ? k[src + d] : 0.f);
    kv_store_value(v_pool, kv_type, table, pos[t], block_size, n_kv_head, kvh, head_dim, d, in ? v[src + d] : 0.f);
  }
}

// Block (seq, kvh) stores sequence seq's own k and v rows ([n_seq][n_kv_head][head_dim]) at its last
// position, seq_lens[seq] - 1 (attn_decode's d_cur_k / d_cur_v where its kernel cannot do it itself).
__global__ void cur_store_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                 const int32_t* __restrict__ seq_lens, const int32_t* __restrict__ tables,
                                 int max_blocks, int block_size, int n_kv_head, int head_dim, int kv_type, void* k_pool,
                                 void* v_pool) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int seq = blockIdx.x, kvh = blockIdx.y;
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int p = seq_lens[seq] - 1;
  const size_t src = (static_cast<size_t>(seq) * n_kv_head + kvh) * head_dim;
  for (int d0 = 0; d0 < head_dim; d0 += blockDim.x) {
    const int d = d0 + threadIdx.x;
    const bool in = d < head_dim;
    kv_store_value(k_pool, kv_type, table, p, block_size, n_kv_head, kvh, head_dim, d, in ? k[src + d] : 0.f);
    kv_store_value(v_pool, kv_type, table, p, block_size, n_kv_head, kvh, head_dim, d, in ? v[src + d] : 0.f);
  }
}

// Decode: rope on q and k, then k and v into the cache, one launch for every sequence of the step
// (one token each). Block (t, hh): hh < n_head rotates query head hh; otherwise KV head
// hh - n_head is rotated, then its k and v rows are stored. The rotation is rope_kernel's
// (rope_math.h), so the fused and separate paths agree bit for bit.
__global__ void rope_store_kernel(float* __restrict__ q, float* __restrict__ k, const float* __restrict__ v,
                                  const int32_t* __restrict__ pos, const int32_t* __restrict__ tables, int max_blocks,
                                  int block_size, int n_head, int n_kv_head, int head_dim, int n_rot, float base,
                                  float freq_scale, const float* __restrict__ ff, int neox, int kv_type,
                                  void* k_pool, void* v_pool) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int t = blockIdx.x, hh = blockIdx.y;
  const bool is_q = hh < n_head;
  const int kvh = hh - n_head;
  float* head = is_q ? q + (static_cast<size_t>(t) * n_head + hh) * head_dim
                     : k + (static_cast<size_t>(t) * n_kv_head + kvh) * head_dim;
  for (int i = threadIdx.x; i < n_rot / 2; i += blockDim.x)
    rope_rotate_pair(head, i, pos[t], n_rot, base, freq_scale, ff, neox);
  if (is_q) return;
  __syncthreads();  // the block's rotated k elements are visible to all its threads
  const int32_t* table = tables + static_cast<size_t>(t) * max_blocks;
  const float* vr = v + (static_cast<size_t>(t) * n_kv_head + kvh) * head_dim;
  for (int d0 = 0; d0 < head_dim; d0 += blockDim.x) {
    const int d = d0 + threadIdx.x;
    const bool in = d < head_dim;
    kv_store_value(k_pool, kv_type, table, pos[t], block_size, n_kv_head, kvh, head_dim, d, in ? head[d] : 0.f);
    kv_store_value(v_pool, kv_type, table, pos[t], block_size, n_kv_head, kvh, head_dim, d, in ? vr[d] : 0.f);
  }
}

// ---------------------------------------------------------------- decode: partial pass
// Block (split, kvh, seq) covers positions [split * split_len, +split_len) of one sequence for the G
// query heads of KV head kvh. Writes, per query head, the split's max score m, sum l = sum exp(s - m)
// and output o / l into the workspace: part_o [n_seq][n_head][n_split][head_dim], part_ml [..][2].
template <class Kv>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_partial_kernel(const float* __restrict__ q, const void* __restrict__ k_pool,
                          const void* __restrict__ v_pool, const int32_t* __restrict__ tables, int max_blocks,
                          const int32_t* __restrict__ seq_lens, int n_head, int n_kv_head, int head_dim,
                          int block_size, float scale, int split_len, int n_split, float* __restrict__ part_o,
                          float* __restrict__ part_ml, int wave_parts) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  extern __shared__ float smem[];
  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = n_head / n_kv_head;
  float* qs = smem;                          // [G][head_dim]
  float* sc = smem + G * head_dim;           // [G][split_len]: scores, then exp(score - m); then o [G][head_dim]
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize, waves = blockDim.x / warpSize;
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int len = seq_lens[seq];
  const int p0 = split * split_len, p1 = min(len, p0 + split_len);
  const int h0 = kvh * G;
  const size_t part = (static_cast<size_t>(seq) * n_head + h0) * n_split + split;  // index of (seq, h0, split)

  if (p0 >= p1) {  // split past this sequence's end: contributes nothing
    for (int g = threadIdx.x; g < G; g += blockDim.x) {
      part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = -INFINITY;
      part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = 0.f;
    }
    for (int i = threadIdx.x; i < G * head_dim; i += blockDim.x)
      part_o[(part + static_cast<size_t>(i / head_dim) * n_split) * head_dim + i % head_dim] = 0.f;
    return;
  }
  for (int i = threadIdx.x; i < G * head_dim; i += blockDim.x)
    qs[i] = q[(static_cast<size_t>(seq) * n_head + h0) * head_dim + i] * scale;
  __syncthreads();

  // Scores: one wave per position; lanes hold pairs of K elements (head_dim <= 256: <= 4 pairs each
  // on 32-wide waves), reused for all G query heads.
  const int pairs = head_dim / 2;
  for (int p = p0 + wave; p < p1; p += waves) {
    const typename Kv::Row kp = Kv::row(k_pool, table, p, block_size, n_kv_head, kvh, head_dim);
    float k0[kMaxHeadDim / 64], k1[kMaxHeadDim / 64];
#pragma unroll
    for (int j = 0; j < kMaxHeadDim / 64; ++j) {
      const int d2 = lane + j * warpSize;
      k0[j] = k1[j] = 0.f;
      if (d2 < pairs) Kv::pair(kp, d2, k0[j], k1[j]);
    }
    for (int g = 0; g < G; ++g) {
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < kMaxHeadDim / 64; ++j) {
        const int d2 = lane + j * warpSize;
        if (d2 < pairs) s += qs[g * head_dim + 2 * d2] * k0[j] + qs[g * head_dim + 2 * d2 + 1] * k1[j];
      }
      s = rf_wave_sum(s);
      if (lane == 0) sc[g * split_len + (p - p0)] = s;
    }
  }
  __syncthreads();

  // Softmax statistics: one wave per query head.
  const int n = p1 - p0;
  for (int g = wave; g < G; g += waves) {
    float m = -INFINITY;
    for (int i = lane; i < n; i += warpSize) m = fmaxf(m, sc[g * split_len + i]);
    m = rf_wave_max(m);
    float l = 0.f;
    for (int i = lane; i < n; i += warpSize) {
      const float e = expf(sc[g * split_len + i] - m);
      sc[g * split_len + i] = e;
      l += e;
    }
    l = rf_wave_sum(l);
    if (lane == 0) { m_s[g] = m; l_s[g] = l; }
  }
  __syncthreads();

  // o[g][d] = sum_p e[g][p] * V[p][d] / l[g]. Waves take positions p0 + wave, + waves, ... and read
  // each V row once, coalesced (lane l: element pairs l, l + wave, ...), for up to kAccG query heads at
  // a time in registers; the waves' partial sums meet in shared memory (atomic adds).
  float* o_s = sc + G * split_len;  // [G][head_dim]
  for (int i = threadIdx.x; i < G * head_dim; i += blockDim.x) o_s[i] = 0.f;
  __syncthreads();
  constexpr int kAccG = 4, kPairs = kMaxHeadDim / 64;  // pairs per lane on a 32-wide wave
  for (int g0 = 0; g0 < G; g0 += kAccG) {
    float acc[kAccG][kPairs][2] = {};
    for (int p = p0 + wave; p < p1; p += waves) {
      const typename Kv::Row vp = Kv::row(v_pool, table, p, block_size, n_kv_head, kvh, head_dim);
      float v0[kPairs], v1[kPairs];
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        const int d2 = lane + j * warpSize;
        v0[j] = v1[j] = 0.f;
        if (d2 < pairs) Kv::pair(vp, d2, v0[j], v1[j]);
      }
#pragma unroll
      for (int g = 0; g < kAccG; ++g) {
        if (g0 + g < G) {
          const float e = sc[(g0 + g) * split_len + (p - p0)];
#pragma unroll
          for (int j = 0; j < kPairs; ++j) {
            acc[g][j][0] = fmaf(e, v0[j], acc[g][j][0]);
            acc[g][j][1] = fmaf(e, v1[j], acc[g][j][1]);
          }
        }
      }
    }
    // The waves' sums meet in a fixed order (not atomics in whatever order they land), so a decode
    // step gives the same result every time: greedy runs repeat exactly. With wave_parts the block
    // has shared room for every wave's sums: one barrier, then a fixed-order sum per element;
    // otherwise the waves add one after another.
    if (wave_parts) {
      float* red = o_s + G * head_dim;  // [waves][kAccG][head_dim]
#pragma unroll
      for (int g = 0; g < kAccG; ++g) {
#pragma unroll
        for (int j = 0; j < kPairs; ++j) {
          const int d2 = lane + j * warpSize;
          if (d2 < pairs) {
            red[(wave * kAccG + g) * head_dim + 2 * d2] = acc[g][j][0];
            red[(wave * kAccG + g) * head_dim + 2 * d2 + 1] = acc[g][j][1];
          }
        }
      }
      __syncthreads();
      for (int i = threadIdx.x; i < kAccG * head_dim; i += blockDim.x) {
        if (g0 + i / head_dim >= G) continue;
        float s = 0.f;
        for (int wv = 0; wv < waves; ++wv) s += red[wv * kAccG * head_dim + i];
        o_s[g0 * head_dim + i] += s;
      }
      __syncthreads();
      continue;
    }
    for (int wv = 0; wv < waves; ++wv) {
      if (wave == wv) {
#pragma unroll
        for (int g = 0; g < kAccG; ++g) {
          if (g0 + g >= G) continue;
#pragma unroll
          for (int j = 0; j < kPairs; ++j) {
            const int d2 = lane + j * warpSize;
            if (d2 < pairs) {
              o_s[(g0 + g) * head_dim + 2 * d2] += acc[g][j][0];
              o_s[(g0 + g) * head_dim + 2 * d2 + 1] += acc[g][j][1];
            }
          }
        }
      }
      __syncthreads();
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * head_dim; i += blockDim.x) {
    const int g = i / head_dim, d = i % head_dim;
    part_o[(part + static_cast<size_t>(g) * n_split) * head_dim + d] = o_s[i] / l_s[g];
  }
  for (int g = threadIdx.x; g < G; g += blockDim.x) {
    part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = m_s[g];
    part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = l_s[g];
  }
}

// ---------------------------------------------------------------- decode: one-pass kernel
// Same contract as decode_partial_kernel for head_dim D in {64, 128} and 16-byte aligned pools, with
// the work laid out for latency instead: a decode step's attention is a few microseconds of memory
// latency, not bandwidth, so every load a thread needs is issued at once.
//   scores: thread i owns position p0 + i and reads its whole K row as D/8 16-byte loads;
//   softmax: one wave per query head over the block's scores in shared memory;
//   values: D/8 threads cover a V row (8 dims each, one 16-byte load), the block's other threads
//           take other positions; per-thread sums meet in shared memory.
// With n_split == 1 (the whole context in one block) it writes the final output `out` directly (no
// combine launch) and, when xq is given, its int8 quantization for the output matvec (quantize_q8 over
// all sequences' rows).
// A block serves `gb` of its KV head's query heads (blockIdx.y = head group): gb = G reads K/V
// once for the group (long contexts: bandwidth), gb = 1 spreads a short context's few microseconds
// of work over n_head blocks instead of n_kv_head (its K/V rows then come from L2 for the others).
// With cur_k / cur_v (Q8_0 only): the step's own K/V row (position len - 1) is not in the cache yet.
// The block whose split holds it quantizes it into shared memory (the store's math, so it attends to
// exactly what later steps read back) and takes that position from there; the first block of each
// KV head's query-head group also writes it to the cache.
template <int D, class Kv>
__global__ void __launch_bounds__(kDecodeThreads)
    decode_attn_kernel(const float* __restrict__ q, void* k_pool, void* v_pool, const int32_t* __restrict__ tables,
                       int max_blocks, const int32_t* __restrict__ seq_lens, int n_head, int n_kv_head, int block_size,
                       const float* __restrict__ cur_k, const float* __restrict__ cur_v, float scale,
                       int split_len, int n_split, int gb, float* __restrict__ part_o, float* __restrict__ part_ml,
                       float* __restrict__ out, int8_t* __restrict__ xq, float* __restrict__ xd) {
  constexpr int kVecs = D / 8;                      // 8-value vectors per K/V row (F16: 16-byte loads)
  constexpr int kPosGroups = kDecodeThreads / kVecs;  // positions in flight in the value pass
  constexpr int kAccG = 4;                          // query heads per register pass
  extern __shared__ float smem[];
  rf_grid_wait();
  rf_grid_trigger();
  const int split = blockIdx.x, seq = blockIdx.z;
  const int h0 = blockIdx.y * gb, kvh = h0 / (n_head / n_kv_head);
  const int G = gb;                    // query heads of this block
  float* qs = smem;                    // [G][D], pre-scaled
  float* sc = qs + G * D;              // [G][split_len]: scores, then exp(score - m)
  float* o_s = sc + G * split_len;     // [G][D]
  float* red = o_s + G * D;            // [waves][kAccG][D]: the waves' value sums
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];
  const int tid = threadIdx.x, lane = tid % warpSize, wave = tid / warpSize, waves = blockDim.x / warpSize;
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int len = seq_lens[seq];
  const int p0 = split * split_len, p1 = min(len, p0 + split_len), n = p1 - p0;
  const size_t part = (static_cast<size_t>(seq) * n_head + h0) * n_split + split;

  if (n <= 0) {  // split past this sequence's end (only with n_split > 1): contributes nothing
    for (int g = tid; g < G; g += blockDim.x) {
      part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = -INFINITY;
      part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = 0.f;
    }
    for (int i = tid; i < G * D; i += blockDim.x)
      part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = 0.f;
    return;
  }
  // The step's own row, quantized into shared memory ([0] K, [1] V) where this block's split holds it.
  __shared__ __align__(16) int8_t cur_q[2][D];
  __shared__ float cur_d[2][D / 32];
  const int last = len - 1;
  const bool cur_here = Kv::kQ8 && cur_k && last >= p0 && last < p1;  // block-uniform
  // Raw8 of the step's own row, vector v, from shared memory (valid after the barrier below).
  auto cur_raw = [&](int kv, int v) {
    typename Kv::Raw8 r{};
    if constexpr (Kv::kQ8) r = {*reinterpret_cast<const uint2*>(&cur_q[kv][8 * v]), cur_d[kv][v / 4]};
    return r;
  };
  // Every load this thread can issue before it needs q goes first, so K, the first V rows and q
  // share one round trip to memory: its K row (position p0 + tid; split_len <= the block size) and
  // the V vectors of its first kVPre value positions (the value pass's mapping, below).
  static_assert(kMaxSplit <= kDecodeThreads, "one K row per thread");
  constexpr int kVPre = 4;
  const int c = tid % kVecs, pg = tid / kVecs;
  const int i = tid;
  const bool live = i < n;
  const bool k_cur = cur_here && p0 + i == last;
  typename Kv::Raw8 kr[kVecs];
  if (live && !k_cur) {
    const typename Kv::Row kp = Kv::row(k_pool, table, p0 + i, block_size, n_kv_head, kvh, D);
#pragma unroll
    for (int v = 0; v < kVecs; ++v) kr[v] = Kv::load8(kp, v);
  }
  typename Kv::Raw8 vpre[kVPre];
#pragma unroll
  for (int k = 0; k < kVPre; ++k) {
    const int pi = pg + k * kPosGroups;
    if (pi < n && !(cur_here && p0 + pi == last))
      vpre[k] = Kv::load8(Kv::row(v_pool, table, p0 + pi, block_size, n_kv_head, kvh, D), c);
  }
  // The step's own row, quantized while the loads above are in flight.
  if (cur_here) {
    static_assert(D <= kDecodeThreads, "one value of the row per thread");
    const size_t src = (static_cast<size_t>(seq) * n_kv_head + kvh) * D;
    const bool in = tid < D;
    const bool writer = (h0 % (n_head / n_kv_head)) == 0;  // one block per KV head stores the row
    const KvQ8Row at = kv_q8_row(table, last, block_size, n_kv_head, kvh, D);
    for (int kv = 0; kv < 2; ++kv) {
      // kv_store_value's math: the 32 values of a scale are an aligned 32-lane group.
      const float x = in ? (kv == 0 ? cur_k : cur_v)[src + tid] : 0.f;
      const float amax = group32_amax(x);
      if (!in) continue;
      const KvQ8Value qv = kv_q8_quantize(x, amax);
      cur_q[kv][tid] = qv.code;
      if (tid % 32 == 0) cur_d[kv][tid / 32] = rf_half_to_float(qv.d);
      if (writer) kv_q8_put(kv == 0 ? k_pool : v_pool, at, tid, qv);
    }
  }
  for (int j = tid; j < G * D; j += blockDim.x) {
    qs[j] = q[(static_cast<size_t>(seq) * n_head + h0) * D + j] * scale;
    o_s[j] = 0.f;
  }
  __syncthreads();
  if (cur_here) {
    if (k_cur) {
#pragma unroll
      for (int v = 0; v < kVecs; ++v) kr[v] = cur_raw(0, v);
    }
#pragma unroll
    for (int k = 0; k < kVPre; ++k)
      if (p0 + pg + k * kPosGroups == last) vpre[k] = cur_raw(1, c);
  }

  // Scores. A thread's K row stays in registers across the passes over query heads.
  if (i < split_len) {
    for (int g0 = 0; g0 < G; g0 += kAccG) {
      float s[kAccG] = {};
      if (live) {
#pragma unroll
        for (int v = 0; v < kVecs; ++v) {
          float kf[8];
          Kv::codes8(kr[v], kf);
          const float ks = Kv::scale(kr[v]);
#pragma unroll
          for (int g = 0; g < kAccG; ++g) {
            if (g0 + g < G) {
              // The same q for every thread: broadcast 16-byte shared loads.
              const float4* qq = reinterpret_cast<const float4*>(qs + (g0 + g) * D + 8 * v);
              const float4 a = qq[0], b = qq[1];
              if constexpr (Kv::kQ8) {  // q . codes, then one scale per vector
                float t = fmaf(a.x, kf[0], fmaf(a.y, kf[1], fmaf(a.z, kf[2], a.w * kf[3])));
                t = fmaf(b.x, kf[4], fmaf(b.y, kf[5], fmaf(b.z, kf[6], fmaf(b.w, kf[7], t))));
                s[g] = fmaf(ks, t, s[g]);
              } else {
                s[g] = fmaf(a.x, kf[0], fmaf(a.y, kf[1], fmaf(a.z, kf[2], fmaf(a.w, kf[3], s[g]))));
                s[g] = fmaf(b.x, kf[4], fmaf(b.y, kf[5], fmaf(b.z, kf[6], fmaf(b.w, kf[7], s[g]))));
              }
            }
          }
        }
      }
#pragma unroll
      for (int g = 0; g < kAccG; ++g)
        if (g0 + g < G) sc[(g0 + g) * split_len + i] = live ? s[g] : -INFINITY;
    }
  }
  __syncthreads();

  // Softmax statistics: one wave per query head.
  for (int g = wave; g < G; g += waves) {
    float m = -INFINITY;
    for (int i = lane; i < n; i += warpSize) m = fmaxf(m, sc[g * split_len + i]);
    m = rf_wave_max(m);
    float l = 0.f;
    for (int i = lane; i < n; i += warpSize) {
      const float e = expf(sc[g * split_len + i] - m);
      sc[g * split_len + i] = e;
      l += e;
    }
    l = rf_wave_sum(l);
    if (lane == 0) { m_s[g] = m; l_s[g] = l; }
  }
  __syncthreads();

  // Values: thread (position group pg, vector c) accumulates dims 8c .. 8c + 7 over positions
  // p0 + pg, + kPosGroups, ...
  static_assert(kDecodeThreads % kVecs == 0, "position groups must tile the block");
  static_assert(kVecs <= 16, "a wave (>= 32 lanes) must hold whole position groups");
  {
    for (int g0 = 0; g0 < G; g0 += kAccG) {
      float acc[kAccG][8] = {};
      auto accumulate = [&](const typename Kv::Raw8& vv, int i) {
        float vf[8];
        Kv::codes8(vv, vf);
        const float vs = Kv::scale(vv);  // folded into the weight: one multiply per vector
#pragma unroll
        for (int g = 0; g < kAccG; ++g) {
          if (g0 + g < G) {
            const float e = sc[(g0 + g) * split_len + i] * vs;  // F16: vs == 1, folded away
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[g][j] = fmaf(e, vf[j], acc[g][j]);
          }
        }
      };
      // The prefetched positions, then the rest: the order of a plain loop over pg, pg + kPosGroups, ...
#pragma unroll
      for (int k = 0; k < kVPre; ++k)
        if (pg + k * kPosGroups < n) accumulate(vpre[k], pg + k * kPosGroups);
#pragma unroll 4
      for (int i = pg + kVPre * kPosGroups; i < n; i += kPosGroups)
        accumulate(cur_here && p0 + i == last ? cur_raw(1, c)
                                              : Kv::load8(Kv::row(v_pool, table, p0 + i, block_size, n_kv_head, kvh, D), c),
                   i);
      // Deterministic sum over position groups: the lanes of a wave holding the same vector c
      // (kVecs apart) fold by xor-shuffles; each wave leaves its sums in `red`, and after one
      // barrier every (head, dim) adds the waves in a fixed order.
      for (int off = kVecs; off < warpSize; off *= 2)
#pragma unroll
        for (int g = 0; g < kAccG; ++g)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[g][j] += rf_shfl_xor(acc[g][j], off);
      if (lane < kVecs) {
#pragma unroll
        for (int g = 0; g < kAccG; ++g)
#pragma unroll
          for (int j = 0; j < 8; ++j) red[(wave * kAccG + g) * D + 8 * c + j] = acc[g][j];
      }
      __syncthreads();
      for (int i = tid; i < kAccG * D; i += blockDim.x) {
        if (g0 + i / D >= G) continue;
        float sum = 0.f;
        for (int wv = 0; wv < waves; ++wv) sum += red[wv * kAccG * D + i];
        o_s[g0 * D + i] += sum;
      }
      __syncthreads();  // red is rewritten by the next head pass
    }
  }
  __syncthreads();

  if (n_split == 1) {
    // Final output; with xq, also its int8 form (quantize_q8's rounding): the block's G * D values
    // are whole 32-element chunks of the token's [n_head * D] vector, and a chunk's 32 lanes sit in
    // one aligned 32-lane group on either wave width.
    float* o = out + (static_cast<size_t>(seq) * n_head + h0) * D;
    for (int i = tid; i < G * D; i += blockDim.x) {
      const float v = o_s[i] / l_s[i / D];
      o[i] = v;
      if (xq) rf_quantize_q8_lane(v, static_cast<int>((static_cast<size_t>(seq) * n_head + h0) * D + i), xq, xd);
    }
    return;
  }
  for (int i = tid; i < G * D; i += blockDim.x)
    part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = o_s[i] / l_s[i / D];
  for (int g = tid; g < G; g += blockDim.x) {
    part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = m_s[g];
    part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = l_s[g];
  }
}

// ---------------------------------------------------------------- decode: combine the splits
// Block (h, seq): out = sum_s o_s l_s e^(m_s - M) / sum_s l_s e^(m_s - M), M = max_s m_s.
// With xq (head_dim a multiple of 32), also the int8 form of out in quantize_q8's layout over all
// sequences' rows: a head's 32-element chunks are whole 32-lane groups of the block.
__global__ void decode_combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml, int n_head,
                                      int head_dim, int n_split, float* __restrict__ out, int8_t* __restrict__ xq,
                                      float* __restrict__ xd) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int h = blockIdx.x, seq = blockIdx.y;
  const size_t base = (static_cast<size_t>(seq) * n_head + h) * n_split;
  float M = -INFINITY;
  for (int s = 0; s < n_split; ++s) M = fmaxf(M, part_ml[2 * (base + s)]);
  float L = 0.f;
  for (int s = 0; s < n_split; ++s) {
    const float l = part_ml[2 * (base + s) + 1];
    if (l > 0.f) L += l * expf(part_ml[2 * (base + s)] - M);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < n_split; ++s) {
      const float l = part_ml[2 * (base + s) + 1];
      if (l > 0.f) acc += part_o[(base + s) * head_dim + d] * l * expf(part_ml[2 * (base + s)] - M);
    }
    const float v = acc / L;
    const size_t e = (static_cast<size_t>(seq) * n_head + h) * head_dim + d;
    out[e] = v;
    if (xq) rf_quantize_q8_lane(v, static_cast<int>(e), xq, xd);
  }
}


// Positions per decode split: small enough to give the device ~2 blocks per multiprocessor, at most
// kMaxSplit, a multiple of 32, and small enough that the block's shared memory (q, scores and o for
// up to min(n_head, kMaxGroup) query heads) stays within 46 KB.
int split_length(int n_seq, int n_head, int head_dim, int max_seq_len) {
  const long g_max = n_head < kMaxGroup ? n_head : kMaxGroup;
  long cap = (46L * 1024 / (4 * g_max) - 2L * head_dim) / 32 * 32;
  if (cap > kMaxSplit) cap = kMaxSplit;
  const long blocks_wanted = 2L * multiprocessors();
  const long kv_blocks = static_cast<long>(n_seq) * n_head;  // upper bound of (seq, kv head) pairs
  long per = (static_cast<long>(max_seq_len) * kv_blocks + blocks_wanted - 1) / blocks_wanted;
  per = (per + 31) / 32 * 32;
  if (per > cap) per = cap;
  if (per < 32) per = 32;
  return static_cast<int>(per);
}

// The one-pass kernel keeps a whole short context in one block (no combine launch): it takes the
// larger of split_length and the context rounded up to 32, within kMaxSplit and shared memory (its
// gb heads' q, scores and output plus the waves' value sums, kOnePassRedBytes, within 46 KB).
constexpr int kOnePassAccG = 4;  // decode_attn_kernel's kAccG
size_t onepass_red_bytes(int head_dim) {
  return static_cast<size_t>(kDecodeThreads / 32) * kOnePassAccG * head_dim * sizeof(float);  // widest case: 32-lane waves
}
int onepass_split(int n_seq, int n_head, int head_dim, int max_seq_len, int gb) {
  const int per = split_length(n_seq, n_head, head_dim, max_seq_len);
  long cap = ((46L * 1024 - static_cast<long>(onepass_red_bytes(head_dim))) / (4L * gb) - 2L * head_dim) / 32 * 32;
  if (cap > kMaxSplit) cap = kMaxSplit;
  long whole = (static_cast<long>(max_seq_len) + 31) / 32 * 32;
  long split = whole > per ? whole : per;
  if (split > cap) split = cap;
  return static_cast<int>(split < 32 ? 32 : split);
}

// Splits of the staged kernel (attention_decode_staged.hip), which divides each sequence's actual
// length evenly among them: one for a context of up to 256 positions (no combine); else as many as
// give the device about two blocks per multiprocessor (ROCFORGE_ATTN_BLOCKS_PER_SM), at most one per
// 64 positions of max_seq_len.
// ROCFORGE_ATTN_SPLIT=N (>= 256) asks for N positions per split instead. staged_splits_bound is the
// most any gb <= kMaxGroup can ask for (the workspace's size).
int staged_splits(int n_seq, int n_head, int gb, int max_seq_len) {
  if (max_seq_len <= 256) return 1;
  const long most = (max_seq_len + 63) / 64;
  const int env = env_int("ROCFORGE_ATTN_SPLIT", 0);
  if (env >= 256) return static_cast<int>((max_seq_len + env - 1) / env);
  const long per_split = static_cast<long>(n_seq) * (n_head / gb);  // blocks of one split index
  const long per_sm = std::max(1, env_int("ROCFORGE_ATTN_BLOCKS_PER_SM", 2));
  const long want = (per_sm * multiprocessors() + per_split - 1) / per_split;
  return static_cast<int>(std::max(1L, std::min(most, want)));
}
int staged_splits_bound(int n_seq, int n_head, int max_seq_len) {
  const int gb_max = n_head < kMaxGroup ? n_head : kMaxGroup;
  return std::max(staged_splits(n_seq, n_head, gb_max, max_seq_len), (max_seq_len + 255) / 256);
}

// Query heads per one-pass block: by default one head per block while a context this short leaves
// most multiprocessors idle with one block per KV head. ROCFORGE_ATTN_HEADS=1 forces one head per
// block, =0 a KV head's whole group.
int onepass_heads(int n_seq, int n_head, int n_kv_head, int max_seq_len) {
  const int G = n_head / n_kv_head;
  const int env = env_int("ROCFORGE_ATTN_HEADS", -1);
  if (env >= 0) return env == 1 ? 1 : G;
  return max_seq_len <= kShortContext && n_seq * n_kv_head < multiprocessors() ? 1 : G;
}

}  // namespace

int kv_store(const float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* block_table, int block_size,
             int n_kv_head, int head_dim, int kv_type, void* k_pool, void* v_pool, hipStream_t s) {
  if (n_tok < 0 || n_kv_head <= 0 || head_dim <= 0 || block_size <= 0)
    return fail("kv_store: bad shape (tokens %d, kv heads %d, head_dim %d, block %d)", n_tok, n_kv_head, head_dim,
                block_size);
  if (int rc = check_kv_type("kv_store", kv_type, head_dim, block_size, n_kv_head)) return rc;
  if (n_tok == 0) return 0;
  (void)rf_launch(kv_store_kernel, dim3(n_tok, n_kv_head), 128, 0, s, k, v, pos, block_table, block_size, n_kv_head,
                  head_dim, kv_type, k_pool, v_pool);
  return check(hipGetLastError(), "kv_store");
}

int rope_kv_store(float* q, float* k, const float* v, const int32_t* pos, int n_tok, const int32_t* block_tables,
                  int max_blocks, int block_size, int n_head, int n_kv_head, int head_dim, int n_rot, float base,
                  float freq_scale, const float* freq_factors, int neox, int kv_type, void* k_pool, void* v_pool,
                  hipStream_t s) {
  if (int rc = check_heads("rope_kv_store", n_head, n_kv_head, head_dim, block_size)) return rc;
  if (int rc = check_kv_type("rope_kv_store", kv_type, head_dim, block_size, n_kv_head)) return rc;
  if (n_rot <= 0 || n_rot % 2 != 0 || n_rot > head_dim)
    return fail("rope_kv_store: n_rot %d must be even and in (0, head_dim %d]", n_rot, head_dim);
  if (n_tok < 0 || max_blocks <= 0) return fail("rope_kv_store: bad shape (tokens %d, max_blocks %d)", n_tok, max_blocks);
  if (n_tok == 0) return 0;
  (void)rf_launch(rope_store_kernel, dim3(n_tok, n_head + n_kv_head), 64, 0, s, q, k, v, pos, block_tables, max_blocks,
                  block_size, n_head, n_kv_head, head_dim, n_rot, base, freq_scale, freq_factors, neox, kv_type, k_pool,
                  v_pool);
  return check(hipGetLastError(), "rope_kv_store");
}

size_t attn_decode_workspace(int n_seq, int n_head, int head_dim, int max_seq_len) {
  if (n_seq <= 0 || n_head <= 0 || head_dim <= 0 || max_seq_len <= 0) return 0;
  // Room for the shorter of the two kernels' splits (the one-pass kernel's shrink with its heads).
  int split = split_length(n_seq, n_head, head_dim, max_seq_len);
  const int gb_max = n_head < kMaxGroup ? n_head : kMaxGroup;  // the one-pass split shrinks as gb grows
  split = std::min(split, onepass_split(n_seq, n_head, head_dim, max_seq_len, gb_max));
  const size_t n_split = std::max<size_t>((max_seq_len + split - 1) / split,
                                          staged_splits_bound(n_seq, n_head, max_seq_len));
  return static_cast<size_t>(n_seq) * n_head * n_split * (head_dim + 2) * sizeof(float);
}

int attn_decode(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                const int32_t* seq_lens, int n_seq, int max_seq_len, int n_head, int n_kv_head, int head_dim,
                int block_size, int kv_type, const float* cur_k, const float* cur_v, float scale, float* out, void* xq,
                void* workspace, hipStream_t s) {
  if (int rc = check_heads("attn_decode", n_head, n_kv_head, head_dim, block_size)) return rc;
  if (int rc = check_kv_type("attn_decode", kv_type, head_dim, block_size, n_kv_head)) return rc;
  const bool q8 = kv_type == RF_KV_Q8_0;
  if (n_seq <= 0 || max_seq_len <= 0) return fail("attn_decode: bad batch (%d seqs, max len %d)", n_seq, max_seq_len);
  if (static_cast<long>(max_blocks) * block_size < max_seq_len)
    return fail("attn_decode: block table of %d blocks cannot hold %d positions", max_blocks, max_seq_len);
  if (!workspace) return fail("attn_decode: no workspace");
  if (xq && reinterpret_cast<uintptr_t>(xq) % 16 != 0) return fail("attn_decode: int8 output must be 16-byte aligned");
  const int G = n_head / n_kv_head;
  const int qdim = n_head * head_dim;
  // ROCFORGE_ATTN_ONEPASS: unset or 1 = the one-pass kernel (D 64 / 128, aligned pools), its
  // splits stretched to whole contexts where they fit (in a captured 8B decode step on an H200 it
  // beat the partial kernel at every context: tg128 373 vs 352 tok/s from an empty context, equal at
  // depth 512-8192); 2 = one-pass with the partial kernel's splits; 0 = the partial kernel.
  const int mode = env_int("ROCFORGE_ATTN_ONEPASS", 1);
  const bool one_pass = (head_dim == 64 || head_dim == 128) && reinterpret_cast<uintptr_t>(k_pool) % 16 == 0 &&
                        reinterpret_cast<uintptr_t>(v_pool) % 16 == 0 && mode != 0;
  const int gb = one_pass ? onepass_heads(n_seq, n_head, n_kv_head, max_seq_len) : G;
  const int split = !one_pass ? split_length(n_seq, n_head, head_dim, max_seq_len)
                    : mode == 2 ? std::min(split_length(n_seq, n_head, head_dim, max_seq_len),
                                           onepass_split(n_seq, n_head, head_dim, max_seq_len, gb))
                                : onepass_split(n_seq, n_head, head_dim, max_seq_len, gb);
  int n_split = (max_seq_len + split - 1) / split;
  // ROCFORGE_ATTN_STAGED=0: the register kernels below instead of the staged one.
  const bool staged = one_pass && env_int("ROCFORGE_ATTN_STAGED", 1) != 0;
  // The step's own K/V rows: stored by the one-pass kernel itself for a Q8_0 cache, else first.
  if ((cur_k != nullptr) != (cur_v != nullptr)) return fail("attn_decode: d_cur_k and d_cur_v come together");
  const bool cur_inside = cur_k && one_pass && q8;
  if (cur_k && !cur_inside) {
    (void)rf_launch(cur_store_kernel, dim3(n_seq, n_kv_head), 128, 0, s, cur_k, cur_v, seq_lens, block_tables, max_blocks,
                    block_size, n_kv_head, head_dim, kv_type, k_pool, v_pool);
    if (int rc = check(hipGetLastError(), "attn_decode (store)")) return rc;
  }
  float* part_o = static_cast<float*>(workspace);
  float* part_ml = part_o + static_cast<size_t>(n_seq) * n_head * n_split * head_dim;  // [n_seq][n_head][n_split][2]
  const size_t smem = static_cast<size_t>(gb) * (2 * head_dim + split) * sizeof(float) +
                      (one_pass ? onepass_red_bytes(head_dim) : 0);
  int8_t* q8_out = static_cast<int8_t*>(xq);
  float* d8 = q8_out ? reinterpret_cast<float*>(q8_out + (static_cast<size_t>(n_seq) * qdim + 15) / 16 * 16) : nullptr;
  bool quantized = false;
  int staged_rc = -1;
  if (staged) {
    const int st_n = staged_splits(n_seq, n_head, gb, max_seq_len);
    const bool fuse_q8 = q8_out && st_n == 1 && qdim % 32 == 0;
    float* st_ml = part_o + static_cast<size_t>(n_seq) * n_head * st_n * head_dim;
    // Contexts of several splits, a block per KV head: the matrix units where they serve.
    if (st_n > 1 && gb == G)
      staged_rc = attn_decode_mma(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head,
                                  head_dim, block_size, kv_type, cur_inside ? cur_k : nullptr,
                                  cur_inside ? cur_v : nullptr, scale, st_n, part_o, st_ml, s);
    if (staged_rc < 0)
      staged_rc = attn_decode_staged(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head,
                                     head_dim, block_size, kv_type, cur_inside ? cur_k : nullptr,
                                     cur_inside ? cur_v : nullptr, scale, st_n, gb, part_o, st_ml, out,
                                     fuse_q8 ? q8_out : nullptr, fuse_q8 ? d8 : nullptr, s);
    if (staged_rc > 0) return staged_rc;
    if (staged_rc == 0) {
      n_split = st_n;
      part_ml = st_ml;
      quantized = fuse_q8;
    }
  }
  if (staged_rc == 0) {
    // launched above
  } else if (one_pass) {
    const bool fuse_q8 = q8_out && n_split == 1 && qdim % 32 == 0;
    const dim3 grid(n_split, n_head / gb, n_seq);
    auto go = [&](auto kernel) {
      (void)rf_launch(kernel, grid, kDecodeThreads, smem, s, q, k_pool, v_pool, block_tables, max_blocks, seq_lens,
                      n_head, n_kv_head, block_size, cur_inside ? cur_k : nullptr, cur_inside ? cur_v : nullptr, scale,
                      split, n_split, gb, part_o, part_ml, out, fuse_q8 ? q8_out : nullptr, fuse_q8 ? d8 : nullptr);
    };
    if (head_dim == 128) q8 ? go(decode_attn_kernel<128, KvQ8>) : go(decode_attn_kernel<128, KvF16>);
    else q8 ? go(decode_attn_kernel<64, KvQ8>) : go(decode_attn_kernel<64, KvF16>);
    if (int rc = check(hipGetLastError(), "attn_decode (one pass)")) return rc;
    quantized = fuse_q8;
  } else {
    // Room for every wave's partial sums (4 query heads at a time) when it fits the 48 KB default.
    const size_t parts = static_cast<size_t>(kDecodeThreads / wave_size()) * 4 * head_dim * sizeof(float);
    const bool wave_parts = smem + parts <= 48 * 1024;
    (void)rf_launch(q8 ? decode_partial_kernel<KvQ8> : decode_partial_kernel<KvF16>, dim3(n_split, n_kv_head, n_seq),
                    kDecodeThreads, smem + (wave_parts ? parts : 0), s, q, k_pool, v_pool, block_tables, max_blocks,
                    seq_lens, n_head, n_kv_head, head_dim, block_size, scale, split, n_split, part_o, part_ml,
                    wave_parts ? 1 : 0);
    if (int rc = check(hipGetLastError(), "attn_decode (partial)")) return rc;
  }
  if (n_split > 1 || !one_pass) {
    const bool fuse_q8 = q8_out && head_dim % 32 == 0;
    (void)rf_launch(decode_combine_kernel, dim3(n_head, n_seq), 128, 0, s, part_o, part_ml, n_head, head_dim, n_split,
                    out, fuse_q8 ? q8_out : nullptr, fuse_q8 ? d8 : nullptr);
    if (int rc = check(hipGetLastError(), "attn_decode (combine)")) return rc;
    quantized = fuse_q8;
  }
  if (q8_out && !quantized) {
    if (qdim % 32 != 0) return fail("attn_decode: int8 output needs n_head * head_dim (%d) to be a multiple of 32", qdim);
    return quantize_q8(out, n_seq * qdim, xq, s);
  }
  return 0;
}

}  // namespace rocforge::gpu
