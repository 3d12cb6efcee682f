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
// Chunks of 64 positions (32 where a block cannot have the shared memory: AMD) go through a ring of
// kStages shared-memory stages by cp.async (plain copies on AMD), the first ones requested before the
// block waits for the kernel ahead of it (PDL: every cached row but the step's own was written by
// earlier steps). Rows are padded to D + 8 halves (conflict-free fragment loads). Per chunk: wave w
// scores key fragments w, w + 4, ... (S = Q K^T, in log2 units); the row maxima and sums meet in
// shared memory, so every wave holds the same m and l; P (f16) goes to shared memory and each wave
// multiplies it with its own D / 64 column fragments of V.
// The step's own row (position len - 1, written by the q/k/v launch just before) is read after the
// wait and put into its ring slot when its chunk is in.
//
// Precision: q * scale and P are rounded to f16 as in the prefill kernel (relative 2^-11 each); the
// rest is fp32. A Q8_0 cache's chunks come through the ring as stored (codes and scales) and are
// converted to f16 tiles once per chunk; its step's own row is quantized and stored here when the
// caller hands it over (cur_k / cur_v), as the staged kernel does.
#include <atomic>

#include "gpu/attention_prefill.h"
#include "gpu/mma_frag.h"

namespace rocforge::gpu {
namespace {

constexpr int kWaves = 4, kStages = 3, kMaxThreads = 256;

// Shared memory of a block. F16 cache: the ring's stages hold K and V rows padded to kLd halves,
// which the products read in place. Q8_0 cache: the stages hold the rows' int8 codes and f16 scales
// as stored (D + kScaleBytes bytes a row), and each chunk is converted once into the f16 tiles
// `kt` / `vt` the products read.
template <int D, int Chunk, class Kv>
struct DecodeMmaSmem {
  static constexpr int kLd = D + 8;          // halves per row of an f16 tile
  static constexpr int kLdP = Chunk + 8;     // halves per row of P
  static constexpr size_t kTile = static_cast<size_t>(Chunk) * kLd * 2;  // bytes of K (or V) as f16
  static constexpr int kScaleBytes = D / 16;  // Q8_0: one f16 scale per 32 values
  static constexpr size_t kRawRows = static_cast<size_t>(Chunk) * D;  // Q8_0: bytes of a stage's K (or V) codes
  static constexpr size_t kStage = Kv::kQ8 ? 2 * (kRawRows + static_cast<size_t>(Chunk) * kScaleBytes) : 2 * kTile;
  static constexpr size_t kConv = Kv::kQ8 ? 2 * kTile : 0;
  static constexpr size_t kQ = 16 * kLd * 2;
  static constexpr size_t kP = 16 * kLdP * 2;
  static constexpr size_t kRed = 2 * kWaves * 16 * sizeof(float);
  static constexpr size_t kOwn = 2 * D * 2;
  static constexpr size_t kBytes = kStages * kStage + kConv + kQ + kP + kRed + kOwn;
};

template <int D, int Chunk, class Kv>
__global__ void __launch_bounds__(kMaxThreads)
    decode_attn_mma_kernel(const float* __restrict__ q, void* k_pool, void* v_pool,
                           const int32_t* __restrict__ tables, int max_blocks, const int32_t* __restrict__ seq_lens,
                           int n_head, int n_kv_head, int block_size, const float* __restrict__ cur_k,
                           const float* __restrict__ cur_v, float scale, int n_split, float* __restrict__ part_o,
                           float* __restrict__ part_ml) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  using S = DecodeMmaSmem<D, Chunk, Kv>;
  constexpr int kLd = S::kLd, kLdP = S::kLdP, kFragK = Chunk / 16, kFragD = D / 16, SB = S::kScaleBytes;
  constexpr int kWaveFragsD = kFragD / kWaves;  // V column fragments a wave multiplies
  static_assert(kFragD % kWaves == 0, "whole column fragments per wave");
  extern __shared__ uint4 dm_smem_raw[];
  auto* smem = reinterpret_cast<uint8_t*>(dm_smem_raw);
  uint8_t* after_ring = smem + kStages * S::kStage;
  auto* conv = reinterpret_cast<uint16_t*>(after_ring);                 // Q8_0: [K | V][Chunk][kLd]
  auto* qs = reinterpret_cast<uint16_t*>(after_ring + S::kConv);        // [16][kLd]
  auto* ps = reinterpret_cast<uint16_t*>(after_ring + S::kConv + S::kQ);  // [16][kLdP]
  auto* red_max = reinterpret_cast<float*>(after_ring + S::kConv + S::kQ + S::kP);  // [kWaves][16]
  float* red_sum = red_max + kWaves * 16;
  auto* own = reinterpret_cast<uint16_t*>(red_sum + kWaves * 16);  // K row, V row (f16)
  uint8_t* stage0 = smem;
  // F16: a stage's K / V rows. Q8_0: its codes and scales planes.
  auto k_rows = [&](int st) { return reinterpret_cast<uint16_t*>(stage0 + st * S::kStage); };
  auto v_rows = [&](int st) { return reinterpret_cast<uint16_t*>(stage0 + st * S::kStage + S::kTile); };
  auto k_codes = [&](int st) { return stage0 + st * S::kStage; };
  auto v_codes = [&](int st) { return stage0 + st * S::kStage + S::kRawRows; };
  auto k_scales = [&](int st) { return stage0 + st * S::kStage + 2 * S::kRawRows; };
  auto v_scales = [&](int st) { return stage0 + st * S::kStage + 2 * S::kRawRows + Chunk * SB; };

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
  const auto* kb = static_cast<const uint8_t*>(k_pool);
  const auto* vb = static_cast<const uint8_t*>(v_pool);

  // Chunk t's rows into stage t % kStages, 16 bytes per copy (+ a Q8_0 row's scales); slots past the
  // ring's rows are zero (P is 0 there, and 0 x stale bytes could be NaN). One commit per chunk
  // index, empty or not.
  auto issue = [&](int t) {
    if (t < n_chunks) {
      const int r0 = t * Chunk, st = t % kStages;
      constexpr int U = Kv::kQ8 ? D / 16 : D / 8;  // 16-byte pieces of a row
      for (int f = tid; f < Chunk * U; f += nt) {
        const int r = f / U, u = f % U;
        uint8_t* kd = Kv::kQ8 ? k_codes(st) + r * D + 16 * u : reinterpret_cast<uint8_t*>(k_rows(st) + r * kLd) + 16 * u;
        uint8_t* vd = Kv::kQ8 ? v_codes(st) + r * D + 16 * u : reinterpret_cast<uint8_t*>(v_rows(st) + r * kLd) + 16 * u;
        if (r0 + r < n_ring) {
          const KvQ8Row at = Kv::kQ8 ? kv_q8_row(table, p0 + r0 + r, block_size, n_kv_head, kvh, D)
                                     : KvQ8Row{pool_index(table, p0 + r0 + r, block_size, n_kv_head, kvh, D) * 2, 0};
          rf_async_copy<16>(kd, kb + at.codes + 16 * u);
          rf_async_copy<16>(vd, vb + at.codes + 16 * u);
          if constexpr (Kv::kQ8) {
            if (u == 0) {
              rf_async_copy<SB>(k_scales(st) + r * SB, kb + at.scales);
              rf_async_copy<SB>(v_scales(st) + r * SB, vb + at.scales);
            }
          }
        } else {
          *reinterpret_cast<uint4*>(kd) = *reinterpret_cast<uint4*>(vd) = make_uint4(0u, 0u, 0u, 0u);
          if constexpr (Kv::kQ8) {
            if (u == 0)
              for (int b = 0; b < SB; b += 4) {
                *reinterpret_cast<uint32_t*>(k_scales(st) + r * SB + b) = 0u;
                *reinterpret_cast<uint32_t*>(v_scales(st) + r * SB + b) = 0u;
              }
          }
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
  // The step's own row as f16 in `own`: read back from the cache, or (a Q8_0 cache's decode step,
  // cur_k / cur_v given) quantized here with kv_store_value's math and stored, so this step attends
  // to exactly what later steps read back.
  if (own_here) {
    if constexpr (Kv::kQ8) {
      const KvQ8Row at = kv_q8_row(table, len - 1, block_size, n_kv_head, kvh, D);
      for (int kv = 0; kv < 2; ++kv) {
        void* pool = kv == 0 ? k_pool : v_pool;
        for (int d0 = 0; d0 < D; d0 += nt) {  // every thread takes part (group32_amax)
          const int d = d0 + tid;
          float x;
          if (cur_k) {
            const float* src = (kv == 0 ? cur_k : cur_v) + (static_cast<size_t>(seq) * n_kv_head + kvh) * D;
            const float v = d < D ? src[d] : 0.f;
            const KvQ8Value qv = kv_q8_quantize(v, group32_amax(v));
            if (d < D) kv_q8_put(pool, at, d, qv);
            x = rf_half_to_float(qv.d) * static_cast<float>(qv.code);
          } else {
            const auto* base = static_cast<const uint8_t*>(pool);
            x = d < D ? rf_half_to_float(reinterpret_cast<const uint16_t*>(base + at.scales)[d / 32]) *
                            static_cast<float>(reinterpret_cast<const int8_t*>(base + at.codes)[d])
                      : 0.f;
          }
          if (d < D) own[kv * D + d] = rf_float_to_half(x);
        }
      }
    } else {
      const size_t at = pool_index(table, len - 1, block_size, n_kv_head, kvh, D) * 2;
      for (int u = tid; u < D / 8; u += nt) {
        reinterpret_cast<uint4*>(own)[u] = reinterpret_cast<const uint4*>(kb + at)[u];
        reinterpret_cast<uint4*>(own + D)[u] = reinterpret_cast<const uint4*>(vb + at)[u];
      }
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
    const int own_slot = own_here && r0 + rows == n ? n - 1 - r0 : -1;  // the step's own row, if here
    const uint16_t *kt, *vt;
    if constexpr (Kv::kQ8) {
      // The chunk's codes x scales as f16 tiles (the own row from `own`).
      for (int f = tid; f < Chunk * (D / 8); f += nt) {
        const int r = f / (D / 8), u = f % (D / 8);
        uint4 kw, vw;
        if (r == own_slot) {
          kw = reinterpret_cast<const uint4*>(own)[u];
          vw = reinterpret_cast<const uint4*>(own + D)[u];
        } else {
          const KvQ8::Raw8 kr{reinterpret_cast<const uint2*>(k_codes(st) + r * D)[u],
                              rf_half_to_float(reinterpret_cast<const uint16_t*>(k_scales(st) + r * SB)[u / 4])};
          const KvQ8::Raw8 vr{reinterpret_cast<const uint2*>(v_codes(st) + r * D)[u],
                              rf_half_to_float(reinterpret_cast<const uint16_t*>(v_scales(st) + r * SB)[u / 4])};
          kw = tile_word(kr);
          vw = tile_word(vr);
        }
        *reinterpret_cast<uint4*>(conv + r * kLd + 8 * u) = kw;
        *reinterpret_cast<uint4*>(conv + Chunk * kLd + r * kLd + 8 * u) = vw;
      }
      __syncthreads();
      kt = conv;
      vt = conv + Chunk * kLd;
    } else {
      if (own_slot >= 0) {  // the step's own row goes into its slot
        for (int u = tid; u < D / 8; u += nt) {
          *reinterpret_cast<uint4*>(k_rows(st) + own_slot * kLd + 8 * u) = reinterpret_cast<const uint4*>(own)[u];
          *reinterpret_cast<uint4*>(v_rows(st) + own_slot * kLd + 8 * u) = reinterpret_cast<const uint4*>(own + D)[u];
        }
        __syncthreads();
      }
      kt = k_rows(st);
      vt = v_rows(st);
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
        M::load_b(kf, kt + j * 16 * kLd + f * 16, kLd, lane);
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
        M::load_b_kn(vf, vt + j * 16 * kLd + (wave * kWaveFragsD + f) * 16, kLd, lane);
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
  (void)n_kv_head, (void)block_size, (void)cur_k, (void)cur_v, (void)scale, (void)n_split, (void)part_o, (void)part_ml;
#endif
}

template <int D, int Chunk, class Kv>
int launch(const float* q, void* k_pool, void* v_pool, const int32_t* tables, int max_blocks, const int32_t* seq_lens,
           int n_seq, int n_head, int n_kv_head, int block_size, const float* cur_k, const float* cur_v, float scale,
           int n_split, float* part_o, float* part_ml, hipStream_t s) {
  auto* kernel = decode_attn_mma_kernel<D, Chunk, Kv>;
  static std::atomic<int> limits[64];
  constexpr size_t smem = DecodeMmaSmem<D, Chunk, Kv>::kBytes;
  const int limit = dynamic_smem_limit(kernel, limits);
  if (limit < 0 || smem > static_cast<size_t>(limit)) return -1;
  (void)rf_launch(kernel, dim3(n_split, n_kv_head, n_seq), kWaves * wave_size(), smem, s, q, k_pool, v_pool, tables,
                  max_blocks, seq_lens, n_head, n_kv_head, block_size, cur_k, cur_v, scale, n_split, part_o, part_ml);
  return check(hipGetLastError(), "attn_decode (matrix units)");
}

// 64-position chunks where the device gives a block their shared memory (~112 KB for an F16 cache
// at head_dim 128), else 32. AMD's 64 KB of LDS a workgroup never holds the larger ones: those are
// not built for AMD at all (gfx1100 would compile the head_dim-128 one with 400 bytes of scratch).
template <int D, class Kv>
int launch_chunks(const float* q, void* k_pool, void* v_pool, const int32_t* tables, int max_blocks,
                  const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int block_size, const float* cur_k,
                  const float* cur_v, float scale, int n_split, float* part_o, float* part_ml, hipStream_t s) {
#if defined(__HIP__) || defined(__HIPCC__)
  constexpr bool kTry64 = DecodeMmaSmem<D, 64, Kv>::kBytes <= 64 * 1024;
#else
  constexpr bool kTry64 = true;
#endif
  if constexpr (kTry64) {
    const int rc = launch<D, 64, Kv>(q, k_pool, v_pool, tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head,
                                     block_size, cur_k, cur_v, scale, n_split, part_o, part_ml, s);
    if (rc >= 0) return rc;
  }
  return launch<D, 32, Kv>(q, k_pool, v_pool, tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size,
                           cur_k, cur_v, scale, n_split, part_o, part_ml, s);
}

}  // namespace

int attn_decode_mma(const float* q, void* k_pool, void* v_pool, const int32_t* block_tables, int max_blocks,
                    const int32_t* seq_lens, int n_seq, int n_head, int n_kv_head, int head_dim, int block_size,
                    int kv_type, const float* cur_k, const float* cur_v, float scale, int n_split, float* part_o,
                    float* part_ml, hipStream_t s) {
  const bool q8 = kv_type == RF_KV_Q8_0;
  if ((head_dim != 64 && head_dim != 128) || n_split <= 1 || n_head / n_kv_head > 16 || (cur_k && !q8) ||
      reinterpret_cast<uintptr_t>(k_pool) % 16 != 0 || reinterpret_cast<uintptr_t>(v_pool) % 16 != 0 ||
      env_int("ROCFORGE_ATTN_MMA", 1) == 0 || attention_mma_ready(s) <= 0)
    return -1;
  auto go = [&](auto launcher) {
    return launcher(q, k_pool, v_pool, block_tables, max_blocks, seq_lens, n_seq, n_head, n_kv_head, block_size, cur_k,
                    cur_v, scale, n_split, part_o, part_ml, s);
  };
  if (head_dim == 128) return q8 ? go(launch_chunks<128, KvQ8>) : go(launch_chunks<128, KvF16>);
  return q8 ? go(launch_chunks<64, KvQ8>) : go(launch_chunks<64, KvF16>);
}

}  // namespace rocforge::gpu
