// attention_decode_staged.hip - decode attention with each block's K/V rows staged in shared memory
// before the block waits for the kernel ahead of it (the default decode kernel for head_dim 64 / 128;
// attention_decode.hip holds the others, the combine and the dispatch).
//
// Why: a decode step's attention is memory latency, not arithmetic. The register kernels issue a
// block's loads in two or three dependent rounds (K rows, then V rows as registers free up), and
// only after the q/k/v projection before them has finished. But every cached row except the step's
// own (position len - 1) was written by earlier steps, so its bytes can be requested while that
// projection still runs (programmatic dependent launch, hip_compat.h): each thread issues all of
// its cp.async copies of the split's K and V rows, then waits. After the wait only q, the step's
// own row and arithmetic remain, and all loads of a long context are in flight at once.
//
// Block (split, head group, seq): positions [split * S, +S) of one sequence for `gb` query heads of
// one KV head (gb = 1 spreads a short context over n_head blocks; gb = G reads K/V once per group).
// Shared memory: K rows [S][row bytes], V rows, Q8_0 scales [S][D / 16] for each, q [gb][D] (scaled),
// scores [gb][S], o [gb][D], the waves' value sums [waves][kAccG][D].
#include <atomic>

#include "gpu/kernels.h"
#include "gpu/kv_layout.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kAccG = 4;      // query heads per register pass
constexpr int kRowLanes = 8;  // lanes sharing one K row in the score pass

template <int D, class Kv>
struct Staged {
  static constexpr int kRowBytes = Kv::kQ8 ? D : 2 * D;    // codes (Q8_0) or halves (F16)
  static constexpr int kScaleBytes = Kv::kQ8 ? D / 16 : 0;  // f16 scale per 32 values (Q8_0)
  static constexpr int kRedFloats = (kThreads / 32) * kAccG * D;  // widest case: 32-lane waves
  // Bytes of shared memory for S positions and gb query heads (16-byte multiples throughout).
  __host__ __device__ static size_t bytes(int S, int gb) {
    return 2 * static_cast<size_t>(S) * (kRowBytes + kScaleBytes) +
           sizeof(float) * (static_cast<size_t>(gb) * (2 * D + S) + kRedFloats);
  }
};

// Byte offsets of position p's row (and Q8_0 scales) in a pool; K and V pools share the layout.
template <class Kv>
__device__ inline KvQ8Row row_at(const int32_t* table, int p, int bs, int n_kv_head, int kvh, int D) {
  if constexpr (Kv::kQ8) return kv_q8_row(table, p, bs, n_kv_head, kvh, D);
  else return {pool_index(table, p, bs, n_kv_head, kvh, D) * 2, 0};
}

template <int D, class Kv>
__global__ void __launch_bounds__(kThreads)
    decode_attn_staged_kernel(const float* __restrict__ q, void* k_pool, void* v_pool,
                              const int32_t* __restrict__ tables, int max_blocks, const int32_t* __restrict__ seq_lens,
                              int n_head, int n_kv_head, int block_size, const float* __restrict__ cur_k,
                              const float* __restrict__ cur_v, float scale, int S, int n_split, int gb,
                              float* __restrict__ part_o, float* __restrict__ part_ml, float* __restrict__ out,
                              int8_t* __restrict__ xq, float* __restrict__ xd) {
  using St = Staged<D, Kv>;
  constexpr int RB = St::kRowBytes, SB = St::kScaleBytes;
  extern __shared__ __align__(16) uint8_t smem[];
  uint8_t* kst = smem;             // [S][RB]
  uint8_t* vst = kst + S * RB;     // [S][RB]
  uint8_t* ksc = vst + S * RB;     // [S][SB]
  uint8_t* vsc = ksc + S * SB;     // [S][SB]
  float* qs = reinterpret_cast<float*>(vsc + S * SB);  // [gb][D], pre-scaled
  float* sc = qs + gb * D;         // [gb][S]: scores, then exp(score - m)
  float* o_s = sc + gb * S;        // [gb][D]
  float* red = o_s + gb * D;       // [waves][kAccG][D]
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];

  const int split = blockIdx.x, seq = blockIdx.z;
  const int G = n_head / n_kv_head;
  const int h0 = blockIdx.y * gb, kvh = h0 / G;
  const int tid = threadIdx.x, lane = tid % warpSize, wave = tid / warpSize, waves = blockDim.x / warpSize;
  // Block tables and lengths come from the host before the step: readable before the wait.
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int len = seq_lens[seq];
  const int p0 = split * S, p1 = min(len, p0 + S), n = p1 - p0;
  const size_t part = (static_cast<size_t>(seq) * n_head + h0) * n_split + split;  // (seq, h0, split)
  const auto* kb = static_cast<const uint8_t*>(k_pool);
  const auto* vb = static_cast<const uint8_t*>(v_pool);

  // Rows [r0, r1) of the split into shared memory, K and V, 16 bytes per copy (+ the scales).
  auto stage = [&](int r0, int r1) {
    constexpr int U = RB / 16;
    for (int f = tid; f < (r1 - r0) * U; f += kThreads) {
      const int r = r0 + f / U, u = f % U;
      const size_t at = row_at<Kv>(table, p0 + r, block_size, n_kv_head, kvh, D).codes + 16 * u;
      rf_async_copy16(kst + r * RB + 16 * u, kb + at);
      rf_async_copy16(vst + r * RB + 16 * u, vb + at);
    }
    if constexpr (Kv::kQ8) {
      for (int r = r0 + tid; r < r1; r += kThreads) {
        const size_t at = row_at<Kv>(table, p0 + r, block_size, n_kv_head, kvh, D).scales;
        if constexpr (SB == 8) {
          rf_async_copy8(ksc + r * SB, kb + at);
          rf_async_copy8(vsc + r * SB, vb + at);
        } else {
          static_assert(SB == 4, "D 64 or 128");
          rf_async_copy4(ksc + r * SB, kb + at);
          rf_async_copy4(vsc + r * SB, vb + at);
        }
      }
    }
  };
  // The step's own row (position len - 1, the last of its split) is written by the kernel before
  // this one, or arrives as cur_k / cur_v: it waits. Every other row goes now.
  const int last = len - 1;
  const bool cur_here = n > 0 && last < p1;  // then last == p1 - 1
  const int n_pre = cur_here ? n - 1 : max(n, 0);
  stage(0, n_pre);
  rf_async_commit();

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
  if (cur_here) {
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
        (kv == 0 ? kst : vst)[(n - 1) * RB + tid] = static_cast<uint8_t>(qv.code);
        if (tid % 32 == 0) reinterpret_cast<uint16_t*>((kv == 0 ? ksc : vsc) + (n - 1) * SB)[tid / 32] = qv.d;
        if (writer) {
          auto* base = static_cast<uint8_t*>(kv == 0 ? k_pool : v_pool);
          reinterpret_cast<int8_t*>(base + at.codes)[tid] = qv.code;
          if (tid % 32 == 0) reinterpret_cast<uint16_t*>(base + at.scales)[tid / 32] = qv.d;
        }
      }
    } else {
      stage(n - 1, n);
    }
  }
  rf_async_commit();
  for (int j = tid; j < gb * D; j += blockDim.x) {
    qs[j] = q[(static_cast<size_t>(seq) * n_head + h0) * D + j] * scale;
    o_s[j] = 0.f;
  }
  rf_async_wait<0>();
  __syncthreads();

  // Scores: kRowLanes lanes per position, lane j holding D / 8 of its values. F16: vectors (8
  // values, 16 bytes) j, j + 8, ...; Q8_0: the contiguous bytes [j * D / 8, + D / 8). Either way a
  // phase of 8 lanes reads 128 contiguous bytes of one row: no shared-memory bank conflicts.
  constexpr int kLaneVecs = D / 64;  // 8-value vectors per lane
  const int j = tid % kRowLanes;
  for (int r = tid / kRowLanes; r < S; r += kThreads / kRowLanes) {  // S % 32 == 0: uniform trip count
    for (int g0 = 0; g0 < gb; g0 += kAccG) {
      float s[kAccG] = {};
      if (r < n) {
#pragma unroll
        for (int i = 0; i < kLaneVecs; ++i) {
          const int vec = Kv::kQ8 ? kLaneVecs * j + i : j + kRowLanes * i;
          typename Kv::Raw8 raw;
          if constexpr (Kv::kQ8) {
            raw.q = reinterpret_cast<const uint2*>(kst + r * RB)[vec];
            raw.d = rf_half_to_float(reinterpret_cast<const uint16_t*>(ksc + r * SB)[vec / 4]);
          } else {
            raw.w = reinterpret_cast<const uint4*>(kst + r * RB)[vec];
          }
          float kf[8];
          Kv::codes8(raw, kf);
          const float ks = Kv::scale(raw);
#pragma unroll
          for (int g = 0; g < kAccG; ++g) {
            if (g0 + g < gb) {
              const float4* qq = reinterpret_cast<const float4*>(qs + (g0 + g) * D + 8 * vec);
              const float4 a = qq[0], b = qq[1];
              float t = fmaf(a.x, kf[0], fmaf(a.y, kf[1], fmaf(a.z, kf[2], a.w * kf[3])));
              t = fmaf(b.x, kf[4], fmaf(b.y, kf[5], fmaf(b.z, kf[6], fmaf(b.w, kf[7], t))));
              s[g] = fmaf(ks, t, s[g]);
            }
          }
        }
      }
      // The row's kRowLanes partial sums: xor-shuffles below 8 stay inside the lane group.
#pragma unroll
      for (int g = 0; g < kAccG; ++g)
        for (int off = 1; off < kRowLanes; off *= 2) s[g] += rf_shfl_xor(s[g], off);
      if (j == 0) {
#pragma unroll
        for (int g = 0; g < kAccG; ++g)
          if (g0 + g < gb) sc[(g0 + g) * S + r] = r < n ? s[g] : -INFINITY;
      }
    }
  }
  __syncthreads();

  // Softmax statistics: one wave per query head.
  for (int g = wave; g < gb; g += waves) {
    float m = -INFINITY;
    for (int i = lane; i < n; i += warpSize) m = fmaxf(m, sc[g * S + i]);
    m = rf_wave_max(m);
    float l = 0.f;
    for (int i = lane; i < n; i += warpSize) {
      const float e = expf(sc[g * S + i] - m);
      sc[g * S + i] = e;
      l += e;
    }
    l = rf_wave_sum(l);
    if (lane == 0) {
      m_s[g] = m;
      l_s[g] = l;
    }
  }
  __syncthreads();

  // Values: thread (position group pg, vector c) sums dims 8c .. 8c + 7 over positions pg,
  // pg + kPosGroups, ... (a phase of lanes reads whole rows: no bank conflicts).
  constexpr int kVecs = D / 8, kPosGroups = kThreads / kVecs;
  static_assert(kVecs <= 16, "a wave (>= 32 lanes) must hold whole position groups");
  const int c = tid % kVecs, pg = tid / kVecs;
  for (int g0 = 0; g0 < gb; g0 += kAccG) {
    float acc[kAccG][8] = {};
#pragma unroll 4
    for (int r = pg; r < n; r += kPosGroups) {
      typename Kv::Raw8 raw;
      if constexpr (Kv::kQ8) {
        raw.q = reinterpret_cast<const uint2*>(vst + r * RB)[c];
        raw.d = rf_half_to_float(reinterpret_cast<const uint16_t*>(vsc + r * SB)[c / 4]);
      } else {
        raw.w = reinterpret_cast<const uint4*>(vst + r * RB)[c];
      }
      float vf[8];
      Kv::codes8(raw, vf);
      const float vs = Kv::scale(raw);  // folded into the weight: one multiply per vector
#pragma unroll
      for (int g = 0; g < kAccG; ++g) {
        if (g0 + g < gb) {
          const float e = sc[(g0 + g) * S + r] * vs;
#pragma unroll
          for (int k = 0; k < 8; ++k) acc[g][k] = fmaf(e, vf[k], acc[g][k]);
        }
      }
    }
    // Deterministic sum over position groups: lanes of a wave holding the same vector fold by
    // xor-shuffles, then the waves' sums add in a fixed order after one barrier.
    for (int off = kVecs; off < warpSize; off *= 2)
#pragma unroll
      for (int g = 0; g < kAccG; ++g)
#pragma unroll
        for (int k = 0; k < 8; ++k) acc[g][k] += rf_shfl_xor(acc[g][k], off);
    if (lane < kVecs) {
#pragma unroll
      for (int g = 0; g < kAccG; ++g)
#pragma unroll
        for (int k = 0; k < 8; ++k) red[(wave * kAccG + g) * D + 8 * c + k] = acc[g][k];
    }
    __syncthreads();
    for (int i = tid; i < kAccG * D; i += blockDim.x) {
      if (g0 + i / D >= gb) continue;
      float sum = 0.f;
      for (int wv = 0; wv < waves; ++wv) sum += red[wv * kAccG * D + i];
      o_s[g0 * D + i] += sum;
    }
    __syncthreads();  // red is rewritten by the next head pass
  }

  if (n_split == 1) {
    // Final output; with xq, also its int8 form (quantize_q8's rounding): the block's gb * D values
    // are whole 32-element chunks of the token's [n_head * D] vector, and a chunk's 32 lanes sit in
    // one aligned 32-lane group on either wave width.
    float* o = out + (static_cast<size_t>(seq) * n_head + h0) * D;
    for (int i = tid; i < gb * D; i += blockDim.x) {
      const float v = o_s[i] / l_s[i / D];
      o[i] = v;
      if (xq) {
        float amax = fabsf(v);
        for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
        const float inv = amax > 0.f ? 127.f / amax : 0.f;
        const int e = h0 * D + i;
        xq[e] = static_cast<int8_t>(rintf(v * inv));
        if ((e & 31) == 0) xd[e >> 5] = amax / 127.f;
      }
    }
    return;
  }
  for (int i = tid; i < gb * D; i += blockDim.x)
    part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = o_s[i] / l_s[i / D];
  for (int g = tid; g < gb; g += blockDim.x) {
    part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = m_s[g];
    part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = l_s[g];
  }
}

// Dynamic shared memory a block of `kernel` may take on the current device: the opt-in limit less
// its static shared memory on CUDA, where the kernel's own limit is raised to that on first use
// (per device: `limits` caches it, 0 = not asked yet, -1 = refused); 64 KB is AMD's LDS.
template <class K>
int dynamic_smem_limit(K kernel, std::atomic<int>* limits) {
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

template <int D, class Kv>
int launch(const float* q, void* k_pool, void* v_pool, const int32_t* tables, int max_blocks, const int32_t* seq_lens,
           int n_seq, int n_head, int n_kv_head, int block_size, const float* cur_k, const float* cur_v, float scale,
           int split, int n_split, int gb, float* part_o, float* part_ml, float* out, int8_t* xq, float* xd,
           hipStream_t s) {
  auto* kernel = decode_attn_staged_kernel<D, Kv>;
  static std::atomic<int> limits[64];
  const size_t smem = Staged<D, Kv>::bytes(split, gb);
  const int limit = dynamic_smem_limit(kernel, limits);
  if (limit < 0 || smem > static_cast<size_t>(limit)) return -1;
  (void)rf_launch(kernel, dim3(n_split, n_head / gb, n_seq), kThreads, smem, s, q, k_pool, v_pool, tables, max_blocks,
                  seq_lens, n_head, n_kv_head, block_size, cur_k, cur_v, scale, split, n_split, gb, part_o, part_ml,
                  out, xq, xd);
  return check(hipGetLastError(), "attn_decode (staged)");
}

}  // namespace

int attn_decode_staged(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                       const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim, int block_size,
                       int kv_type, const float* cur_k, const float* cur_v, float scale, int split, int n_split, int gb,
                       float* part_o, float* part_ml, float* out, int8_t* xq, float* xd, hipStream_t s) {
  if ((head_dim != 64 && head_dim != 128) || split % 32 != 0 || split <= 0 || gb <= 0 || n_head % gb != 0 ||
      (n_head / n_kv_head) % gb != 0 || reinterpret_cast<uintptr_t>(k_pool) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(v_pool) % 16 != 0)
    return -1;
  const bool q8 = kv_type == RF_KV_Q8_0;
  auto go = [&](auto launcher) {
    return launcher(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size, cur_k,
                    cur_v, scale, split, n_split, gb, part_o, part_ml, out, xq, xd, s);
  };
  if (head_dim == 128) return q8 ? go(launch<128, KvQ8>) : go(launch<128, KvF16>);
  return q8 ? go(launch<64, KvQ8>) : go(launch<64, KvF16>);
}

}  // namespace rocforge::gpu
