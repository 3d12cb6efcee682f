// attention_decode_mma.hip - decode attention of long contexts on the matrix units: a KV head's G
// query heads (G <= 16, the rows of one 16-row fragment, the rest zero) against a split of the
// cached positions, the products Q K^T and P V as 16 x 16 x 16 fragments (mma_frag.h).
//
// Why: the staged kernel (attention_decode_staged.hip) streams K/V at ~1.2 TB/s at 16K positions on
// an H100 while DRAM sits at 37%: with two blocks of 8 waves a multiprocessor its scalar dot products,
// shuffles and shared-memory reads of q issue one instruction every ~10 cycles (ncu). On the matrix
// units a 64-key chunk is 64 fragment products for the whole group instead of ~32K multiply-adds.
//
// Block (split, KV head, sequence), four waves, the staged kernel's splits (the positions of each
// sequence's actual length divided evenly, whole chunks) and its partial-output format (o / l, and m,
// l per head; decode_combine adds the splits), so only contexts of more than one split come here.
// Chunks of kChunk positions go through a ring of kStages shared-memory stages by cp.async (plain
// copies on AMD), the first ones requested before the block waits for the kernel ahead of it (PDL:
// every cached row but the step's own was written by earlier steps). Rows are padded to D + 8 halves
// (conflict-free fragment loads). Per chunk: wave w scores key fragments w, w + 4, ... (S = Q K^T, in
// log2 units); the row maxima and sums meet in shared memory, so every wave holds the same m and l;
// P (f16) goes to shared memory and each wave multiplies it with its own D / 64 column fragments of V.
// The step's own row (position len - 1, written by the q/k/v launch just before) is read after the
// wait and put into its ring slot when its chunk is in.
//
// Precision: q * scale and P are rounded to f16 as in the prefill kernel (relative 2^-11 each); the
// rest is fp32. F16 caches only (a Q8_0 cache takes the staged kernel).
#include <atomic>

#include "gpu/attention_prefill.h"
#include "gpu/mma_frag.h"

namespace rocforge::gpu {
namespace {

constexpr int kWaves = 4, kStages = 3, kMaxThreads = 256;

template <int D, int Chunk>
struct DecodeMmaSmem {
  static constexpr int kLd = D + 8;          // halves per staged row
  static constexpr int kLdP = Chunk + 8;     // halves per row of P
  static constexpr size_t kRows = static_cast<size_t>(Chunk) * kLd * 2;  // bytes of K (or V) rows of a stage
  static constexpr size_t kStage = 2 * kRows;
  static constexpr size_t kQ = 16 * kLd * 2;
  static constexpr size_t kP = 16 * kLdP * 2;
  static constexpr size_t kRed = 2 * kWaves * 16 * sizeof(float);
  static constexpr size_t kOwn = 2 * D * 2;
  static constexpr size_t kBytes = kStages * kStage + kQ + kP + kRed + kOwn;
};

template <int D, int Chunk>
__global__ void __launch_bounds__(kMaxThreads)
    decode_attn_mma_kernel(const float* __restrict__ q, const void* __restrict__ k_pool,
                           const void* __restrict__ v_pool, const int32_t* __restrict__ tables, int max_blocks,
                           const int32_t* __restrict__ seq_lens, int n_head, int n_kv_head, int block_size,
                           float scale, int n_split, float* __restrict__ part_o, float* __restrict__ part_ml) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  using S = DecodeMmaSmem<D, Chunk>;
  constexpr int kLd = S::kLd, kLdP = S::kLdP, kFragK = Chunk / 16, kFragD = D / 16;
  constexpr int kWaveFragsD = kFragD / kWaves;  // V column fragments a wave multiplies
  static_assert(kFragD % kWaves == 0, "whole column fragments per wave");
  extern __shared__ uint4 dm_smem_raw[];
  auto* smem = reinterpret_cast<uint8_t*>(dm_smem_raw);
  auto* qs = reinterpret_cast<uint16_t*>(smem + kStages * S::kStage);  // [16][kLd]
  auto* ps = reinterpret_cast<uint16_t*>(smem + kStages * S::kStage + S::kQ);  // [16][kLdP]
  auto* red_max = reinterpret_cast<float*>(smem + kStages * S::kStage + S::kQ + S::kP);  // [kWaves][16]
  float* red_sum = red_max + kWaves * 16;
  auto* own = reinterpret_cast<uint16_t*>(red_sum + kWaves * 16);  // K row, V row
  auto k_rows = [&](int st) { return reinterpret_cast<uint16_t*>(smem + st * S::kStage); };
  auto v_rows = [&](int st) { return reinterpret_cast<uint16_t*>(smem + st * S::kStage + S::kRows); };

  const int split = blockIdx.x, kvh = blockIdx.y, seq = blockIdx.z;
  const int G = n_head / n_kv_head, h0 = kvh * G;
  const int nt = blockDim.x, tid = threadIdx.x, lane = tid % M::kWave, wave = tid / M::kWave;
  const int32_t* table = tables + static_cast<size_t>(seq) * max_blocks;
  const int len = seq_lens[seq];  // from the host before the step: readable before the wait
  const int span = ((len + n_split - 1) / n_split + Chunk - 1) / Chunk * Chunk;
  const int p0 = split * span, p1 = min(len, p0 + span), n = p1 - p0;
  const size_t part = (static_cast<size_t>(seq) * n_head + h0) * n_split + split;  // (seq, h0, split)
  const bool own_here = n > 0 && len - 1 < p1;  // the step's own row is this split's last
  const int n_ring = own_here ? n - 1 : max(n, 0);
  const int n_chunks = (max(n, 0) + Chunk - 1) / Chunk;
  const auto* kb = static_cast<const uint16_t*>(k_pool);
  const auto* vb = static_cast<const uint16_t*>(v_pool);

  // Chunk t's rows into stage t % kStages, 16 bytes per copy; slots past the ring's rows are zero
  // (P is 0 there, and 0 x stale bytes could be NaN). One commit per chunk index, empty or not.
  auto issue = [&](int t) {
    if (t < n_chunks) {
      const int r0 = t * Chunk, st = t % kStages;
      uint16_t *kd = k_rows(st), *vd = v_rows(st);
      for (int f = tid; f < Chunk * (D / 8); f += nt) {
        const int r = f / (D / 8), u = f % (D / 8);
        if (r0 + r < n_ring) {
          const size_t at = pool_index(table, p0 + r0 + r, block_size, n_kv_head, kvh, D) + 8 * u;
          rf_async_copy<16>(kd + r * kLd + 8 * u, kb + at);
          rf_async_copy<16>(vd + r * kLd + 8 * u, vb + at);
        } else {
          *reinterpret_cast<uint4*>(kd + r * kLd + 8 * u) = make_uint4(0u, 0u, 0u, 0u);
          *reinterpret_cast<uint4*>(vd + r * kLd + 8 * u) = make_uint4(0u, 0u, 0u, 0u);
        }
      }
    }
    rf_async_commit();
  };
  for (int t = 0; t < kStages; ++t) issue(t);

  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h); q and the step's row are visible
  rf_grid_trigger();

  if (n <= 0) {  // a split past this sequence's end: contributes nothing
    for (int g = tid; g < G; g += nt) {
      part_ml[2 * (part + static_cast<size_t>(g) * n_split)] = -INFINITY;
      part_ml[2 * (part + static_cast<size_t>(g) * n_split) + 1] = 0.f;
    }
    for (int i = tid; i < G * D; i += nt) part_o[(part + static_cast<size_t>(i / D) * n_split) * D + i % D] = 0.f;
    return;
  }
  if (own_here) {
    const size_t at = pool_index(table, len - 1, block_size, n_kv_head, kvh, D);
    for (int u = tid; u < D / 8; u += nt) {
      reinterpret_cast<uint4*>(own)[u] = reinterpret_cast<const uint4*>(kb + at)[u];
      reinterpret_cast<uint4*>(own + D)[u] = reinterpret_cast<const uint4*>(vb + at)[u];
    }
  }
  // Q: the group's rows, q * scale as f16; rows G .. 15 zero.
  for (int i = tid; i < 16 * (D / 8); i += nt) {
    const int r = i / (D / 8), c = i % (D / 8);
    float f[8] = {};
    if (r < G) {
      const float* src = q + (static_cast<size_t>(seq) * n_head + h0 + r) * D + 8 * c;
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] = src[e] * scale;
    }
    *reinterpret_cast<uint4*>(qs + r * kLd + 8 * c) = halves8(f);
  }
  __syncthreads();
  typename M::A qa[kFragD];
#pragma unroll
  for (int f = 0; f < kFragD; ++f) M::load_a(qa[f], qs + f * 16, kLd, lane);

  typename M::C o[kWaveFragsD];
  float m[M::kC], l[M::kC];
#pragma unroll
  for (int e = 0; e < M::kC; ++e) m[e] = -INFINITY, l[e] = 0.f;
  constexpr float kLog2e = 1.4426950408889634f;
  const bool scorer = wave < kFragK;  // waves with key fragments to score

  for (int t = 0; t < n_chunks; ++t) {
    const int st = t % kStages, r0 = t * Chunk, rows = min(Chunk, n - r0);
    rf_async_wait<kStages - 1>();  // this thread's copies of chunk t have landed
    __syncthreads();               // everyone's have (and q, the own row on the first pass)
    if (own_here && r0 + rows == n) {  // the step's own row goes into its slot
      const int r = n - 1 - r0;
      for (int u = tid; u < D / 8; u += nt) {
        *reinterpret_cast<uint4*>(k_rows(st) + r * kLd + 8 * u) = reinterpret_cast<const uint4*>(own)[u];
        *reinterpret_cast<uint4*>(v_rows(st) + r * kLd + 8 * u) = reinterpret_cast<const uint4*>(own + D)[u];
      }
      __syncthreads();
    }
    // Scores of this wave's key fragments, masked past the chunk's rows, and their row maxima.
    constexpr int kMine = (kFragK + kWaves - 1) / kWaves;
    typename M::C sc[kMine];
    float mx[M::kC];
#pragma unroll
    for (int e = 0; e < M::kC; ++e) mx[e] = -INFINITY;
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int j = wave + i * kWaves;
      if (j >= kFragK) continue;
#pragma unroll
      for (int f = 0; f < kFragD; ++f) {
        typename M::B kf;
        M::load_b(kf, k_rows(st) + j * 16 * kLd + f * 16, kLd, lane);
        M::mma(sc[i], qa[f], kf);
      }
#pragma unroll
      for (int e = 0; e < M::kC; ++e) {
        const float v = j * 16 + M::c_col(lane, e) < rows ? sc[i].v[e] * kLog2e : -INFINITY;
        sc[i].v[e] = v;
        mx[e] = fmaxf(mx[e], v);
      }
    }
    row_reduce<M>(mx, [](float a, float b) { return fmaxf(a, b); });
    if (lane % M::kRowLanes == 0)
#pragma unroll
      for (int e = 0; e < M::kC; ++e) red_max[wave * 16 + M::c_row(lane, e)] = mx[e];
    __syncthreads();
    float corr[M::kC];
#pragma unroll
    for (int e = 0; e < M::kC; ++e) {
      const int r = M::c_row(lane, e);
      float mc = red_max[r];
#pragma unroll
      for (int w = 1; w < kWaves; ++w) mc = fmaxf(mc, red_max[w * 16 + r]);
      const float m_new = fmaxf(m[e], mc);  // finite: the chunk has a row
      corr[e] = exp2f(m[e] - m_new);        // 0 on the first chunk (m = -inf)
      m[e] = m_new;
    }
    // P = exp2(S - m) as f16 into shared memory, and this wave's row sums of it.
    float sum[M::kC] = {};
    if (scorer) {
#pragma unroll
      for (int i = 0; i < kMine; ++i) {
        const int j = wave + i * kWaves;
        if (j >= kFragK) continue;
#pragma unroll
        for (int e = 0; e < M::kC; ++e) {
          const uint16_t ph = rf_float_to_half(exp2f(sc[i].v[e] - m[e]));
          sum[e] += rf_half_to_float(ph);
          ps[M::c_row(lane, e) * kLdP + j * 16 + M::c_col(lane, e)] = ph;
        }
      }
    }
    row_reduce<M>(sum, [](float a, float b) { return a + b; });
    if (lane % M::kRowLanes == 0)
#pragma unroll
      for (int e = 0; e < M::kC; ++e) red_sum[wave * 16 + M::c_row(lane, e)] = sum[e];
    __syncthreads();
#pragma unroll
    for (int e = 0; e < M::kC; ++e) {
      const int r = M::c_row(lane, e);
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kWaves; ++w) s += red_sum[w * 16 + r];
      l[e] = l[e] * corr[e] + s;
    }
    // O (this wave's columns) = O * corr + P V.
#pragma unroll
    for (int f = 0; f < kWaveFragsD; ++f)
#pragma unroll
      for (int e = 0; e < M::kC; ++e) o[f].v[e] *= corr[e];
#pragma unroll
    for (int j = 0; j < kFragK; ++j) {
      typename M::A pa;
      M::load_a(pa, ps + j * 16, kLdP, lane);
#pragma unroll
      for (int f = 0; f < kWaveFragsD; ++f) {
        typename M::B vf;
        M::load_b_kn(vf, v_rows(st) + j * 16 * kLd + (wave * kWaveFragsD + f) * 16, kLd, lane);
        M::mma(o[f], pa, vf);
      }
    }
    __syncthreads();  // stage st, P and the row buffers are free again
    issue(t + kStages);
  }
  rf_async_wait<0>();  // (only empty groups remain)

  // This split's output o / l and (m, l) per head, m back in natural-log units (decode_combine).
#pragma unroll
  for (int e = 0; e < M::kC; ++e) {
    const int r = M::c_row(lane, e);
    if (r >= G) continue;
    const size_t at = part + static_cast<size_t>(r) * n_split;
    const float inv = 1.f / l[e];
#pragma unroll
    for (int f = 0; f < kWaveFragsD; ++f) part_o[at * D + (wave * kWaveFragsD + f) * 16 + M::c_col(lane, e)] = o[f].v[e] * inv;
    if (wave == 0 && lane % M::kRowLanes == 0) {
      part_ml[2 * at] = m[e] * 0.6931471805599453f;
      part_ml[2 * at + 1] = l[e];
    }
  }
#else
  (void)q, (void)k_pool, (void)v_pool, (void)tables, (void)max_blocks, (void)seq_lens, (void)n_head;
  (void)n_kv_head, (void)block_size, (void)scale, (void)n_split, (void)part_o, (void)part_ml;
#endif
}

template <int D, int Chunk>
int launch(const float* q, const void* k_pool, const void* v_pool, const int32_t* tables, int max_blocks,
           const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int block_size, float scale, int n_split,
           float* part_o, float* part_ml, hipStream_t s) {
  auto* kernel = decode_attn_mma_kernel<D, Chunk>;
  static std::atomic<int> limits[64];
  constexpr size_t smem = DecodeMmaSmem<D, Chunk>::kBytes;
  const int limit = dynamic_smem_limit(kernel, limits);
  if (limit < 0 || smem > static_cast<size_t>(limit)) return -1;
  (void)rf_launch(kernel, dim3(n_split, n_kv_head, n_seq), kWaves * wave_size(), smem, s, q, k_pool, v_pool, tables,
                  max_blocks, seq_lens, n_head, n_kv_head, block_size, scale, n_split, part_o, part_ml);
  return check(hipGetLastError(), "attn_decode (matrix units)");
}

// 64-position chunks where the device gives a block their ~112 KB (head_dim 128), else 32.
template <int D>
int launch_chunks(const float* q, const void* k_pool, const void* v_pool, const int32_t* tables, int max_blocks,
                  const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int block_size, float scale,
                  int n_split, float* part_o, float* part_ml, hipStream_t s) {
  const int rc = launch<D, 64>(q, k_pool, v_pool, tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size,
                               scale, n_split, part_o, part_ml, s);
  if (rc >= 0) return rc;
  return launch<D, 32>(q, k_pool, v_pool, tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size, scale,
                       n_split, part_o, part_ml, s);
}

}  // namespace

int attn_decode_mma(const float* q, const void* k_pool, const void* v_pool, const int32_t* block_tables,
                    int max_blocks, const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim,
                    int block_size, int kv_type, float scale, int n_split, float* part_o, float* part_ml,
                    hipStream_t s) {
  if (kv_type != RF_KV_F16 || (head_dim != 64 && head_dim != 128) || n_split <= 1 || n_head / n_kv_head > 16 ||
      reinterpret_cast<uintptr_t>(k_pool) % 16 != 0 || reinterpret_cast<uintptr_t>(v_pool) % 16 != 0 ||
      env_int("ROCFORGE_ATTN_MMA", 1) == 0 || attention_mma_ready(s) <= 0)
    return -1;
  if (head_dim == 128)
    return launch_chunks<128>(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head,
                              block_size, scale, n_split, part_o, part_ml, s);
  return launch_chunks<64>(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size,
                           scale, n_split, part_o, part_ml, s);
}

}  // namespace rocforge::gpu
