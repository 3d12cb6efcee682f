// attention_decode_staged.hip - decode attention streaming each block's K/V rows through a ring of
// shared-memory stages, the first ones requested before the block waits for the kernel ahead of it
// (the default decode kernel for head_dim 64 / 128; attention_decode.hip holds the others, the
// combine and the dispatch).
//
// Why: a decode step's attention is memory latency, not arithmetic. The register kernels issue a
// block's loads in two or three dependent rounds, and only after the q/k/v projection before them
// has finished. But every cached row except the step's own (position len - 1) was written by
// earlier steps, so its bytes can be requested while that projection still runs (programmatic
// dependent launch, hip_compat.h). And a long context's block must keep loads in flight while it
// computes: it walks its positions in chunks of kChunk rows, kStages chunks in flight (cp.async),
// with an online softmax (running max m, sum l, output rescaled by exp(m_old - m_new)).
//
// Block (split, head group, seq): positions [split * S, +S) of one sequence for `gb` (<= AG) query
// heads of one KV head (gb = 1 spreads a short context over n_head blocks; gb = G reads K/V once per
// group), S = the sequence's length over n_split rounded up to whole chunks: the splits follow the
// actual length, not the bound a captured graph was made for. The step's own row is kept apart in
// shared memory (`own`), filled after the wait.
#include "gpu/kernels.h"
#include "gpu/kv_layout.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kRowLanes = 8;  // lanes sharing one K row in the score pass
constexpr int kChunk = 64;    // rows per stage
constexpr int kStages = 3;    // stages in flight

template <int D, class Kv>
struct Staged {
  static constexpr int kRowBytes = Kv::kQ8 ? D : 2 * D;    // codes (Q8_0) or halves (F16)
  static constexpr int kScaleBytes = Kv::kQ8 ? D / 16 : 0;  // f16 scale per 32 values (Q8_0)
  static constexpr int kStageBytes = 2 * kChunk * (kRowBytes + kScaleBytes);  // K and V rows + scales
  static constexpr int kOwnBytes = 2 * (kRowBytes + 16);                       // the step's own K and V row
  // Bytes of shared memory for gb query heads (16-byte multiples throughout): the ring (its first
  // bytes reused for the waves' value sums at the end), the own row, q [gb][D] and p [gb][kChunk].
  __host__ __device__ static size_t bytes(int gb) {
    return static_cast<size_t>(kStages) * kStageBytes + kOwnBytes + sizeof(float) * static_cast<size_t>(gb) * (D + kChunk);
  }
};

// Byte offsets of position p's row (and Q8_0 scales) in a pool; K and V pools share the layout.
template <class Kv>
__device__ inline KvQ8Row row_at(const int32_t* table, int p, int bs, int n_kv_head, int kvh, int D) {
  if constexpr (Kv::kQ8) return kv_q8_row(table, p, bs, n_kv_head, kvh, D);
  else return {pool_index(table, p, bs, n_kv_head, kvh, D) * 2, 0};
}

// 8 values of a staged row (vector `vec`: values 8 vec .. 8 vec + 7) in the Kv type's register form.
template <class Kv, int RB>
__device__ inline typename Kv::Raw8 staged8(const uint8_t* row, const uint8_t* scales, int vec) {
  typename Kv::Raw8 raw;
  if constexpr (Kv::kQ8) {
    raw.q = reinterpret_cast<const uint2*>(row)[vec];
    raw.d = rf_half_to_float(reinterpret_cast<const uint16_t*>(scales)[vec / 4]);
  } else {
    raw.w = reinterpret_cast<const uint4*>(row)[vec];
  }
  return raw;
}

template <int D, class Kv, int AG>
__global__ void __launch_bounds__(kThreads)
    decode_attn_staged_kernel(const float* __restrict__ q, void* k_pool, void* v_pool,
                              const int32_t* __restrict__ tables, int max_blocks, const int32_t* __restrict__ seq_lens,
                              int n_head, int n_kv_head, int block_size, const float* __restrict__ cur_k,
                              const float* __restrict__ cur_v, float scale, int n_split, int gb,
                              float* __restrict__ part_o, float* __restrict__ part_ml, float* __restrict__ out,
                              int8_t* __restrict__ xq, float* __restrict__ xd) {
  using St = Staged<D, Kv>;
  constexpr int RB = St::kRowBytes, SB = St::kScaleBytes;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* ring = smem;                                      // [kStages][K rows, V rows, K scales, V scales]
  uint8_t* own = ring + kStages * St::kStageBytes;           // K row, V row, K scales (16), V scales (16)
  float* qs = reinterpret_cast<float*>(own + St::kOwnBytes);  // [gb][D], pre-scaled
  float* ps = qs + gb * D;                                   // [gb][kChunk]: scores, then probabilities
  float* red = reinterpret_cast<float*>(ring);               // [waves][AG][D], after the loop
  static_assert((kThreads / 32) * AG * D * sizeof(float) <= kStages * St::kStageBytes, "sums fit the ring");
  __shared__ float m_s[AG], l_s[AG], alpha_s[AG];
  auto k_rows = [&](int st) { return ring + st * St::kStageBytes; };
  auto v_rows = [&](int st) { return ring + st * St::kStageBytes + kChunk * RB; };
  auto k_scales = [&](int st) { return ring + st * St::kStageBytes + 2 * kChunk * RB; };
  auto v_scales = [&](int st) { return ring + st * St::kStageBytes + 2 * kChunk * RB + kChunk * SB; };
  uint8_t *own_k = own, *own_v = own + RB, *own_ks = own + 2 * RB, *own_vs = own + 2 * RB + 16;

  const int split = blockIdx.x, seq = blockIdx.z;
  const int G = n_head / n_kv_head;
  const int h0 = blockIdx.y * gb, kvh = h0 / G;
  const int tid = threadIdx.x, lane = tid % warpSize, wave = tid / warpSize, waves = blockDim.x / warpSize;
  // Block tables and lengths come from the host before the step: readable before the wait.
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int len = seq_lens[seq];
  const int S = n_split == 1 ? len : ((len + n_split - 1) / n_split + kChunk - 1) / kChunk * kChunk;
  const int p0 = split * S, p1 = min(len, p0 + S), n = p1 - p0;
  const size_t part = (static_cast<size_t>(seq) * n_head + h0) * n_split + split;  // (seq, h0, split)
  const auto* kb = static_cast<const uint8_t*>(k_pool);
  const auto* vb = static_cast<const uint8_t*>(v_pool);
  // The step's own row (position len - 1, the last of its split) is written by the kernel before
  // this one, or arrives as cur_k / cur_v: it waits, in `own`. The ring takes rows [0, n_ring).
  const int last = len - 1;
  const bool own_here = n > 0 && last < p1;  // then last == p0 + n - 1
  const int n_ring = own_here ? n - 1 : max(n, 0);
  const int n_chunks = (max(n, 0) + kChunk - 1) / kChunk;

  // Chunk t's ring rows into stage t % kStages, 16 bytes per copy (+ the scales); then a commit, so
  // every thread commits one group per chunk index, empty or not.
  auto issue = [&](int t) {
    if (t < n_chunks) {
      const int r0 = t * kChunk, rows = min(kChunk, n_ring - r0), st = t % kStages;
      constexpr int U = RB / 16;
      for (int f = tid; f < rows * U; f += kThreads) {
        const int r = f / U, u = f % U;
        const size_t at = row_at<Kv>(table, p0 + r0 + r, block_size, n_kv_head, kvh, D).codes + 16 * u;
        rf_async_copy<16>(k_rows(st) + r * RB + 16 * u, kb + at);
        rf_async_copy<16>(v_rows(st) + r * RB + 16 * u, vb + at);
      }
      if constexpr (Kv::kQ8) {
        for (int r = tid; r < rows; r += kThreads) {
          const size_t at = row_at<Kv>(table, p0 + r0 + r, block_size, n_kv_head, kvh, D).scales;
          rf_async_copy<SB>(k_scales(st) + r * SB, kb + at);  // 8 bytes (D 128) or 4 (D 64)
          rf_async_copy<SB>(v_scales(st) + r * SB, vb + at);
        }
      }
    }
    rf_async_commit();
  };
  for (int t = 0; t < kStages; ++t) issue(t);

  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h); q and the step's row are visible
  rf_grid_trigger();

  if (n <= 0) {  // split past this sequence's end (only with n_split > 1): contributes nothing
    for (int g = tid; g < gb; g += blockDim.x) {
      part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = -INFINITY;
      part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = 0.f;
    }
    for (int i = tid; i < gb * D; i += blockDim.x)
      part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = 0.f;
    return;
  }
  if (own_here) {
    if (Kv::kQ8 && cur_k) {
      // Quantized here (kv_store_value's math, so this step attends to exactly what later steps
      // read back); the first block of the KV head's query-head groups also stores it.
      static_assert(D <= kThreads, "one value of the row per thread");
      const size_t src = (static_cast<size_t>(seq) * n_kv_head + kvh) * D;
      const bool in = tid < D;
      const bool writer = h0 % G == 0;
      const KvQ8Row at = kv_q8_row(table, last, block_size, n_kv_head, kvh, D);
      for (int kv = 0; kv < 2; ++kv) {
        const float x = in ? (kv == 0 ? cur_k : cur_v)[src + tid] : 0.f;
        const float amax = group32_amax(x);  // every lane takes part
        if (!in) continue;
        const KvQ8Value qv = kv_q8_quantize(x, amax);
        (kv == 0 ? own_k : own_v)[tid] = static_cast<uint8_t>(qv.code);
        if (tid % 32 == 0) reinterpret_cast<uint16_t*>(kv == 0 ? own_ks : own_vs)[tid / 32] = qv.d;
        if (writer) kv_q8_put(kv == 0 ? k_pool : v_pool, at, tid, qv);
      }
    } else {  // stored by the kernel before this one: plain copies after the wait
      const KvQ8Row at = row_at<Kv>(table, last, block_size, n_kv_head, kvh, D);
      for (int u = tid; u < RB / 16; u += kThreads) {
        reinterpret_cast<uint4*>(own_k)[u] = reinterpret_cast<const uint4*>(kb + at.codes)[u];
        reinterpret_cast<uint4*>(own_v)[u] = reinterpret_cast<const uint4*>(vb + at.codes)[u];
      }
      if constexpr (Kv::kQ8) {
        for (int u = tid; u < SB / 2; u += kThreads) {
          reinterpret_cast<uint16_t*>(own_ks)[u] = reinterpret_cast<const uint16_t*>(kb + at.scales)[u];
          reinterpret_cast<uint16_t*>(own_vs)[u] = reinterpret_cast<const uint16_t*>(vb + at.scales)[u];
        }
      }
    }
  }
  for (int i = tid; i < gb * D; i += blockDim.x) qs[i] = q[(static_cast<size_t>(seq) * n_head + h0) * D + i] * scale;
  if (tid < AG) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.f;
  }

  // Value pass mapping: thread (position group pg, vector c) sums dims 8c .. 8c + 7 over rows pg,
  // pg + kPosGroups, ... of each chunk, for all gb heads at once (acc lives across chunks).
  constexpr int kVecs = D / 8, kPosGroups = kThreads / kVecs;
  static_assert(kVecs <= 16, "a wave (>= 32 lanes) must hold whole position groups");
  const int c = tid % kVecs, pg = tid / kVecs;
  float acc[AG][8] = {};
  // Score pass mapping: kRowLanes lanes per row, lane j holding D / 8 of its values. F16: vectors j,
  // j + 8, ...; Q8_0: the contiguous bytes [j * D / 8, + D / 8). Either way a phase of 8 lanes reads
  // 128 contiguous bytes of one row: no shared-memory bank conflicts.
  constexpr int kLaneVecs = D / 64;
  const int j = tid % kRowLanes;

  for (int t = 0; t < n_chunks; ++t) {
    const int st = t % kStages, r0 = t * kChunk, rows = min(kChunk, n - r0);
    rf_async_wait<kStages - 1>();  // this thread's copies of chunk t have landed
    __syncthreads();               // everyone's have (and the own row, q, m / l on the first pass)
    // Scores of the chunk's rows.
    for (int rr = tid / kRowLanes; rr < kChunk; rr += kThreads / kRowLanes) {  // uniform trip count
      const bool is_own = own_here && r0 + rr == n - 1;
      const uint8_t* krow = is_own ? own_k : k_rows(st) + rr * RB;
      const uint8_t* ksc = is_own ? own_ks : k_scales(st) + rr * SB;
      float s[AG] = {};
      if (rr < rows) {
#pragma unroll
        for (int i = 0; i < kLaneVecs; ++i) {
          const int vec = Kv::kQ8 ? kLaneVecs * j + i : j + kRowLanes * i;
          const typename Kv::Raw8 raw = staged8<Kv, RB>(krow, ksc, vec);
          float kf[8];
          Kv::codes8(raw, kf);
          const float ks = Kv::scale(raw);
#pragma unroll
          for (int g = 0; g < AG; ++g) {
            if (g < gb) {
              const float4* qq = reinterpret_cast<const float4*>(qs + g * D + 8 * vec);
              const float4 a = qq[0], b = qq[1];
              float d = fmaf(a.x, kf[0], fmaf(a.y, kf[1], fmaf(a.z, kf[2], a.w * kf[3])));
              d = fmaf(b.x, kf[4], fmaf(b.y, kf[5], fmaf(b.z, kf[6], fmaf(b.w, kf[7], d))));
              s[g] = fmaf(ks, d, s[g]);
            }
          }
        }
      }
      // The row's kRowLanes partial sums: xor-shuffles below 8 stay inside the lane group.
#pragma unroll
      for (int g = 0; g < AG; ++g)
        for (int off = 1; off < kRowLanes; off *= 2) s[g] += rf_shfl_xor(s[g], off);
      if (j == 0) {
#pragma unroll
        for (int g = 0; g < AG; ++g)
          if (g < gb) ps[g * kChunk + rr] = rr < rows ? s[g] : -INFINITY;
      }
    }
    __syncthreads();
    // Online softmax, one wave per head: m grows to the chunk's max, earlier sums shrink by alpha.
    for (int g = wave; g < gb; g += waves) {
      float mc = -INFINITY;
      for (int i = lane; i < kChunk; i += warpSize) mc = fmaxf(mc, ps[g * kChunk + i]);
      mc = rf_wave_max(mc);
      const float m_old = m_s[g], m_new = fmaxf(m_old, mc);  // finite: the chunk has a row
      float l = 0.f;
      for (int i = lane; i < kChunk; i += warpSize) {
        const float e = expf(ps[g * kChunk + i] - m_new);  // -inf rows: 0
        ps[g * kChunk + i] = e;
        l += e;
      }
      l = rf_wave_sum(l);
      if (lane == 0) {
        const float alpha = expf(m_old - m_new);  // 0 on the first chunk (m_old = -inf)
        alpha_s[g] = alpha;
        l_s[g] = l_s[g] * alpha + l;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    // Values.
#pragma unroll
    for (int g = 0; g < AG; ++g) {
      const float alpha = g < gb ? alpha_s[g] : 0.f;
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[g][k] *= alpha;
    }
    for (int rr = pg; rr < rows; rr += kPosGroups) {
      const bool is_own = own_here && r0 + rr == n - 1;
      const typename Kv::Raw8 raw =
          staged8<Kv, RB>(is_own ? own_v : v_rows(st) + rr * RB, is_own ? own_vs : v_scales(st) + rr * SB, c);
      float vf[8];
      Kv::codes8(raw, vf);
      const float vs = Kv::scale(raw);  // folded into the weight: one multiply per vector
#pragma unroll
      for (int g = 0; g < AG; ++g) {
        if (g < gb) {
          const float e = ps[g * kChunk + rr] * vs;
#pragma unroll
          for (int k = 0; k < 8; ++k) acc[g][k] = fmaf(e, vf[k], acc[g][k]);
        }
      }
    }
    __syncthreads();  // stage st and ps are free again
    issue(t + kStages);
  }
  rf_async_wait<0>();  // (only empty groups remain)
  __syncthreads();

  // Deterministic sum over position groups: lanes of a wave holding the same vector fold by
  // xor-shuffles, then the waves' sums add in a fixed order (in the ring, now free).
  for (int off = kVecs; off < warpSize; off *= 2)
#pragma unroll
    for (int g = 0; g < AG; ++g)
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[g][k] += rf_shfl_xor(acc[g][k], off);
  if (lane < kVecs) {
#pragma unroll
    for (int g = 0; g < AG; ++g)
      if (g < gb)
#pragma unroll
        for (int k = 0; k < 8; ++k) red[(wave * AG + g) * D + 8 * c + k] = acc[g][k];
  }
  __syncthreads();
  auto final_value = [&](int i) {  // head i / D, dim i % D of the block's output
    float sum = 0.f;
    for (int wv = 0; wv < waves; ++wv) sum += red[(wv * AG + i / D) * D + i % D];
    return sum / l_s[i / D];
  };

  if (n_split == 1) {
    // Final output; with xq, also its int8 form (quantize_q8's rounding): the block's gb * D values
    // are whole 32-element chunks of the token's [n_head * D] vector, and a chunk's 32 lanes sit in
    // one aligned 32-lane group on either wave width.
    float* o = out + (static_cast<size_t>(seq) * n_head + h0) * D;
    for (int i = tid; i < gb * D; i += blockDim.x) {
      const float v = final_value(i);
      o[i] = v;
      if (xq) rf_quantize_q8_lane(v, static_cast<int>((static_cast<size_t>(seq) * n_head + h0) * D + i), xq, xd);
    }
    return;
  }
  for (int i = tid; i < gb * D; i += blockDim.x)
    part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = final_value(i);
  for (int g = tid; g < gb; g += blockDim.x) {
    part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = m_s[g];
    part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = l_s[g];
  }
}

template <int D, class Kv, int AG>
int launch(const float* q, void* k_pool, void* v_pool, const int32_t* tables, int max_blocks, const int32_t* seq_lens,
           int n_seq, int n_head, int n_kv_head, int block_size, const float* cur_k, const float* cur_v, float scale,
           int n_split, int gb, float* part_o, float* part_ml, float* out, int8_t* xq, float* xd,
           hipStream_t s) {
  auto* kernel = decode_attn_staged_kernel<D, Kv, AG>;
  static std::atomic<int> limits[64];
  const size_t smem = Staged<D, Kv>::bytes(gb);
  const int limit = dynamic_smem_limit(kernel, limits);
  if (limit < 0 || smem > static_cast<size_t>(limit)) return -1;
  (void)rf_launch(kernel, dim3(n_split, n_head / gb, n_seq), kThreads, smem, s, q, k_pool, v_pool, tables, max_blocks,
                  seq_lens, n_head, n_kv_head, block_size, cur_k, cur_v, scale, n_split, gb, part_o, part_ml,
                  out, xq, xd);
  return check(hipGetLastError(), "attn_decode (staged)");
}

// The kernel for head_dim D and cache type Kv with room for gb query heads (1, 4 or 8).
template <int D, class Kv>
int launch_heads(const float* q, void* k_pool, void* v_pool, const int32_t* tables, int max_blocks,
                 const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int block_size, const float* cur_k,
                 const float* cur_v, float scale, int n_split, int gb, float* part_o, float* part_ml,
                 float* out, int8_t* xq, float* xd, hipStream_t s) {
  auto go = [&](auto launcher) {
    return launcher(q, k_pool, v_pool, tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size, cur_k,
                    cur_v, scale, n_split, gb, part_o, part_ml, out, xq, xd, s);
  };
  if (gb == 1) return go(launch<D, Kv, 1>);
  if (gb <= 4) return go(launch<D, Kv, 4>);
  if (gb <= 8) return go(launch<D, Kv, 8>);
  return -1;
}

}  // namespace

int attn_decode_staged(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                       const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim, int block_size,
                       int kv_type, const float* cur_k, const float* cur_v, float scale, int n_split, int gb,
                       float* part_o, float* part_ml, float* out, int8_t* xq, float* xd, hipStream_t s) {
  if ((head_dim != 64 && head_dim != 128) || n_split <= 0 || gb <= 0 || n_head % gb != 0 ||
      (n_head / n_kv_head) % gb != 0 || reinterpret_cast<uintptr_t>(k_pool) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(v_pool) % 16 != 0)
    return -1;
  const bool q8 = kv_type == RF_KV_Q8_0;
  auto go = [&](auto launcher) {
    return launcher(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size, cur_k,
                    cur_v, scale, n_split, gb, part_o, part_ml, out, xq, xd, s);
  };
  if (head_dim == 128) return q8 ? go(launch_heads<128, KvQ8>) : go(launch_heads<128, KvF16>);
  return q8 ? go(launch_heads<64, KvQ8>) : go(launch_heads<64, KvF16>);
}

}  // namespace rocforge::gpu
