// attention_prefill_mma.hip - causal prefill attention on the matrix units (tensor cores, MFMA, WMMA):
// the products Q K^T and P V of a flash-attention tile as 16 x 16 x 16 fragments (mma_frag.h), the
// online softmax in fp32 registers. attention_prefill.hip's tiled kernel does the same arithmetic in
// fp32 on the vector units; at a 512-token prompt that kernel held a fifth of an 8B's prompt time,
// and its cost grows with the square of the context.
//
// Block (query tile, head): four or eight waves of 16 query rows each over 64 or 128 consecutive
// tokens of one head; key tiles of kFaK = 64 positions staged as f16 in shared memory through a ring
// of one or two stages (an F16 cache's rows by asynchronous copies, the next tile's in flight while
// the block multiplies; a Q8_0 cache's rows dequantized on the way), K as [key][d] (B of Q K^T,
// k = d) and V as [key][d] too (B of P V stored [k][n]: load_b_kn). Each wave keeps its Q fragments
// in registers, computes S (16 x 64) per tile, masks keys past each row's position, and updates its
// rows' running max m and sum l; P = exp(S - m) is rounded to f16, written to the wave's slice of
// shared memory (the C -> A layout change differs per family; this is the one place that needs it)
// and multiplied with V into the fp32 accumulator O.
// l sums the f16-rounded P, so the output is an exact weighted mean of the V rows with those weights.
//
// Precision against the fp32 kernel: q * scale is rounded to f16 (the reference in the tests does
// the same) and the weights P to f16 (relative 2^-11 each), so outputs agree to ~1e-3 of V's range.
// AMD's fragment layouts cannot run here: before this kernel serves on a device, attention_mma_ready
// compares it with the tiled kernel on a fixed problem (stderr says why where they disagree, and the
// tiled kernel serves). ROCFORGE_GPU_FA_MMA=0 turns it off.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "gpu/attention_prefill.h"
#include "gpu/mma_frag.h"

namespace rocforge::gpu {
namespace {

constexpr int kFaK = 64;             // keys per tile
constexpr int kLdP = kFaK + 8;       // halves per row of a wave's P slice

// Shared memory of a block of Waves waves (16 query rows each) with a ring of Stages K/V tiles.
template <int D, int Waves, int Stages>
struct FaSmem {
  static constexpr int kLd = D + 8;  // halves per row of the Q / K / V tiles (16-byte aligned rows)
  static constexpr size_t kQ = static_cast<size_t>(16 * Waves) * kLd * 2;
  static constexpr size_t kP = static_cast<size_t>(Waves) * 16 * kLdP * 2;
  static constexpr size_t kQP = kQ > kP ? kQ : kP;  // Q is read once into registers, then P reuses it
  static constexpr size_t kKV = static_cast<size_t>(kFaK) * kLd * 2;  // one K (or V) tile
  static constexpr size_t kBytes = kQP + Stages * 2 * kKV;
};

template <int D, class Kv, int Waves, int Stages>
__global__ void __launch_bounds__(Waves * MmaFrag::kWave)
    prefill_mma_kernel(const float* __restrict__ q, const void* __restrict__ k_pool, const void* __restrict__ v_pool,
                       const int32_t* __restrict__ table, int pos0, int n_tok, int n_head, int n_kv_head,
                       int block_size, float scale, float* __restrict__ out) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  using S = FaSmem<D, Waves, Stages>;
  constexpr int kLd = S::kLd, kFragD = D / 16, kFragK = kFaK / 16, kTileQ = 16 * Waves;
  extern __shared__ uint4 fa_smem_raw[];
  auto* smem = reinterpret_cast<uint8_t*>(fa_smem_raw);
  auto* qs = reinterpret_cast<uint16_t*>(smem);  // [kTileQ][kLd], then P: [wave][16][kLdP]
  auto k_tile = [&](int st) { return reinterpret_cast<uint16_t*>(smem + S::kQP + st * 2 * S::kKV); };
  auto v_tile = [&](int st) { return reinterpret_cast<uint16_t*>(smem + S::kQP + st * 2 * S::kKV + S::kKV); };
  const int nt = blockDim.x, lane = threadIdx.x % M::kWave, wave = threadIdx.x / M::kWave;
  const int h = blockIdx.y, kvh = h / (n_head / n_kv_head);
  const int t0 = blockIdx.x * kTileQ;
  const int block_last = pos0 + min(n_tok, t0 + kTileQ) - 1;  // the block's last visible key
  const int n_tiles = block_last / kFaK + 1;

  // Key tile i into ring stage i % Stages: an F16 cache's rows by asynchronous 16-byte copies (plain
  // copies on AMD), a Q8_0 cache's dequantized on the way; slots past the block's last key are zero.
  // One commit per tile index, empty or not.
  auto issue = [&](int i) {
    if (i < n_tiles) {
      uint16_t *kd = k_tile(i % Stages), *vd = v_tile(i % Stages);
      for (int f = threadIdx.x; f < kFaK * (D / 8); f += nt) {
        const int kk = f / (D / 8), c = f % (D / 8), p = i * kFaK + kk;
        uint4* kw = reinterpret_cast<uint4*>(kd + kk * kLd + c * 8);
        uint4* vw = reinterpret_cast<uint4*>(vd + kk * kLd + c * 8);
        if (p > block_last) {
          *kw = *vw = make_uint4(0u, 0u, 0u, 0u);
        } else if constexpr (!Kv::kQ8) {
          const size_t at = pool_index(table, p, block_size, n_kv_head, kvh, D) + c * 8;
          rf_async_copy<16>(kw, static_cast<const uint16_t*>(k_pool) + at);
          rf_async_copy<16>(vw, static_cast<const uint16_t*>(v_pool) + at);
        } else {
          *kw = tile_word(Kv::load8(Kv::row(k_pool, table, p, block_size, n_kv_head, kvh, D), c));
          *vw = tile_word(Kv::load8(Kv::row(v_pool, table, p, block_size, n_kv_head, kvh, D), c));
        }
      }
    }
    rf_async_commit();
  };
  for (int i = 0; i < Stages - 1; ++i) issue(i);

  // Q tile: q * scale as f16; rows past the prompt are zeros (their outputs are not written).
  for (int i = threadIdx.x; i < kTileQ * (D / 8); i += nt) {
    const int r = i / (D / 8), c = i % (D / 8), t = t0 + r;
    float f[8] = {};
    if (t < n_tok) {
      const float4* src = reinterpret_cast<const float4*>(q + (static_cast<size_t>(t) * n_head + h) * D + c * 8);
      const float4 a = src[0], b = src[1];
      const float g[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] = g[e] * scale;
    }
    *reinterpret_cast<uint4*>(qs + r * kLd + c * 8) = halves8(f);
  }
  __syncthreads();
  typename M::A qa[kFragD];
#pragma unroll
  for (int f = 0; f < kFragD; ++f) M::load_a(qa[f], qs + wave * 16 * kLd + f * 16, kLd, lane);
  __syncthreads();  // Q is in registers: its shared memory becomes the waves' P slices
  uint16_t* pw = qs + wave * 16 * kLdP;

  typename M::C o[kFragD];
  float m[M::kC], l[M::kC];
#pragma unroll
  for (int e = 0; e < M::kC; ++e) m[e] = -INFINITY, l[e] = 0.f;
  const int row0 = pos0 + t0 + wave * 16;  // position of the wave's first query row
  constexpr float kLog2e = 1.4426950408889634f;

  for (int i = 0; i < n_tiles; ++i) {
    issue(i + Stages - 1);               // (Stages 1: this tile, waited for at once)
    rf_async_wait<Stages - 1>();         // this thread's copies of tile i have landed
    __syncthreads();                     // everyone's have
    const int k0 = i * kFaK;
    const uint16_t *ks = k_tile(i % Stages), *vs = v_tile(i % Stages);
    // A wave whose rows all precede the tile sees none of it (the causal triangle's upper part).
    if (k0 <= row0 + 15) {
      // S = Q K^T for the wave's 16 rows x 64 keys, in log2 units, keys past a row's position -inf.
      typename M::C sc[kFragK];
#pragma unroll
      for (int j = 0; j < kFragK; ++j)
#pragma unroll
        for (int f = 0; f < kFragD; ++f) {
          typename M::B kb;
          M::load_b(kb, ks + j * 16 * kLd + f * 16, kLd, lane);
          M::mma(sc[j], qa[f], kb);
        }
      float mx[M::kC];
      // Every row of the wave sees the whole tile below the diagonal (no mask there).
      const int lim0 = k0 + kFaK - 1 <= row0 ? 1 << 30 : row0;
#pragma unroll
      for (int e = 0; e < M::kC; ++e) {
        const int pos = lim0 + M::c_row(lane, e);
        mx[e] = -INFINITY;
#pragma unroll
        for (int j = 0; j < kFragK; ++j) {
          const int key = k0 + j * 16 + M::c_col(lane, e);
          const float v = key <= pos ? sc[j].v[e] * kLog2e : -INFINITY;
          sc[j].v[e] = v;
          mx[e] = fmaxf(mx[e], v);
        }
      }
      row_reduce<M>(mx, [](float a, float b) { return fmaxf(a, b); });
      float corr[M::kC], sum[M::kC];
#pragma unroll
      for (int e = 0; e < M::kC; ++e) {
        const float m_new = fmaxf(m[e], mx[e]);  // finite: key 0 is in every row's first tile
        corr[e] = exp2f(m[e] - m_new);
        m[e] = m_new;
        sum[e] = 0.f;
#pragma unroll
        for (int j = 0; j < kFragK; ++j) {
          const uint16_t ph = rf_float_to_half(exp2f(sc[j].v[e] - m_new));
          sum[e] += rf_half_to_float(ph);
          pw[M::c_row(lane, e) * kLdP + j * 16 + M::c_col(lane, e)] = ph;
        }
      }
      row_reduce<M>(sum, [](float a, float b) { return a + b; });
#pragma unroll
      for (int e = 0; e < M::kC; ++e) l[e] = l[e] * corr[e] + sum[e];
#pragma unroll
      for (int f = 0; f < kFragD; ++f)
#pragma unroll
        for (int e = 0; e < M::kC; ++e) o[f].v[e] *= corr[e];

      rf_wave_sync();  // the wave's P is in shared memory

      // O += P V.
#pragma unroll
      for (int j = 0; j < kFragK; ++j) {
        typename M::A pa;
        M::load_a(pa, pw + j * 16, kLdP, lane);
#pragma unroll
        for (int f = 0; f < kFragD; ++f) {
          typename M::B vb;
          M::load_b_kn(vb, vs + j * 16 * kLd + f * 16, kLd, lane);
          M::mma(o[f], pa, vb);
        }
      }
      rf_wave_sync();  // P is read before the next tile rewrites it
    }
    __syncthreads();  // stage i % Stages is free for tile i + Stages
  }
  rf_async_wait<0>();  // (only empty groups remain)

#pragma unroll
  for (int e = 0; e < M::kC; ++e) {
    const int t = t0 + wave * 16 + M::c_row(lane, e);
    if (t >= n_tok) continue;
    float* orow = out + (static_cast<size_t>(t) * n_head + h) * D;
    const float inv = 1.f / l[e];
#pragma unroll
    for (int f = 0; f < kFragD; ++f) orow[f * 16 + M::c_col(lane, e)] = o[f].v[e] * inv;
  }
#else
  (void)q, (void)k_pool, (void)v_pool, (void)table, (void)pos0, (void)n_tok, (void)n_head, (void)n_kv_head;
  (void)block_size, (void)scale, (void)out;
#endif
}

template <int D, class Kv, int Waves, int Stages>
int launch_shape(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0, int n_tok,
                 int n_head, int n_kv_head, int block_size, float scale, float* out, hipStream_t s) {
  auto* kernel = prefill_mma_kernel<D, Kv, Waves, Stages>;
  static std::atomic<int> limits[64];
  constexpr size_t bytes = FaSmem<D, Waves, Stages>::kBytes;
  const int limit = dynamic_smem_limit(kernel, limits);
  if (limit < 0 || bytes > static_cast<size_t>(limit)) return -1;
  const dim3 grid((n_tok + 16 * Waves - 1) / (16 * Waves), n_head);
  kernel<<<grid, Waves * wave_size(), bytes, s>>>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size,
                                                  scale, out);
  return check(hipGetLastError(), "attn_prefill (matrix units)");
}

// Eight waves (128 query rows: each K/V tile serves twice the rows) for prompts of more than 64
// tokens whose blocks still cover half the multiprocessors, else four; a ring of two K/V tiles
// (copies of the next in flight while the block multiplies) where the device gives a block the
// shared memory, else one (AMD's 64 KB at head_dim 128). H100, 8B pp512 @ d0 / d4096 / d16384:
// four waves 20440 / 15456 / 9186 tok/s, eight 20463 / 15712 / 9600 (128 blocks on 132
// multiprocessors). ROCFORGE_GPU_FA_WAVES=4 / 8 forces the block size.
template <int D, class Kv>
int launch_mma(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0, int n_tok,
               int n_head, int n_kv_head, int block_size, float scale, float* out, hipStream_t s) {
  const int env = env_int("ROCFORGE_GPU_FA_WAVES", 0);
  const bool eight = env == 8 || (env != 4 && n_tok > 64 &&
                                  2L * ((n_tok + 127) / 128) * n_head >= static_cast<long>(multiprocessors()));
  auto go = [&](auto launcher) {
    return launcher(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale, out, s);
  };
  int rc = -1;
  if (eight) {
    rc = go(launch_shape<D, Kv, 8, 2>);
    if (rc < 0) rc = go(launch_shape<D, Kv, 8, 1>);
  }
  if (rc < 0) rc = go(launch_shape<D, Kv, 4, 2>);
  if (rc < 0) rc = go(launch_shape<D, Kv, 4, 1>);
  return rc;
}

// ---------------------------------------------------------------- first-use check
// The matrix-unit kernel against the tiled fp32 kernel on a fixed problem (4 heads over 2 KV heads,
// head_dim 64 and 128, 70 tokens after 10 cached positions, F16 cache): 1 they agree within the
// kernel's f16 tolerance, 0 they do not (why: the first difference), -1 the check could not run.
template <int D>
int check_head_dim(hipStream_t s, bool fault, char* why, size_t why_len) {
  constexpr int kHeads = 4, kKvHeads = 2, kBlock = 16, kPos0 = 10, kTok = 70, kLen = kPos0 + kTok;
  constexpr int kBlocks = (kLen + kBlock - 1) / kBlock;
  const size_t pool_elems = static_cast<size_t>(kBlocks) * kKvHeads * kBlock * D;
  const size_t q_elems = static_cast<size_t>(kTok) * kHeads * D;
  // Deterministic values (a small LCG): K / V as f16 bit patterns of magnitude [1/32, 1), q in [-2, 2).
  uint32_t state = 12345u + D;
  auto next = [&state]() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;  // 24 bits
  };
  std::vector<uint16_t> kv(2 * pool_elems);
  for (auto& x : kv) {
    const uint32_t r = next();
    x = static_cast<uint16_t>((r & 1u) << 15 | (10u + (r >> 1) % 5u) << 10 | (r >> 4 & 0x3ffu));
  }
  std::vector<float> qh(q_elems);
  for (auto& x : qh) x = 4.f * static_cast<float>(next()) / 16777216.f - 2.f;
  std::vector<int32_t> table(kBlocks);
  for (int i = 0; i < kBlocks; ++i) table[i] = kBlocks - 1 - i;  // not the identity
  // One allocation, as gemm_check.h does: K and V pools, q for each kernel, both outputs, the table.
  const size_t kv_b = 2 * pool_elems * 2, q_b = q_elems * 4;
  void* buf = nullptr;
  if (hipMalloc(&buf, kv_b + 4 * q_b + kBlocks * 4) != hipSuccess) return -1;
  const std::unique_ptr<void, hipError_t (*)(void*)> hold(buf, hipFree);
  auto* base = static_cast<uint8_t*>(buf);
  const auto* kp = reinterpret_cast<const uint16_t*>(base);
  auto* dq = reinterpret_cast<float*>(base + kv_b);
  auto* dq2 = reinterpret_cast<float*>(base + kv_b + q_b);
  auto* dref = reinterpret_cast<float*>(base + kv_b + 2 * q_b);
  auto* dout = reinterpret_cast<float*>(base + kv_b + 3 * q_b);
  auto* dt = reinterpret_cast<int32_t*>(base + kv_b + 4 * q_b);
  std::vector<float> q_mma = qh;
  if (fault) q_mma[5] += 1.f;  // test hook: one query value differs for the matrix-unit kernel
  const float scale = 1.f / std::sqrt(static_cast<float>(D));
  if (hipMemcpyAsync(base, kv.data(), kv_b, hipMemcpyHostToDevice, s) != hipSuccess ||
      hipMemcpyAsync(dq, qh.data(), q_b, hipMemcpyHostToDevice, s) != hipSuccess ||
      hipMemcpyAsync(dq2, q_mma.data(), q_b, hipMemcpyHostToDevice, s) != hipSuccess ||
      hipMemcpyAsync(dt, table.data(), kBlocks * 4, hipMemcpyHostToDevice, s) != hipSuccess ||
      launch_prefill_tiled(dq, kp, kp + pool_elems, dt, kPos0, kTok, kHeads, kKvHeads, D, kBlock, RF_KV_F16, scale,
                           dref, s) != 0 ||
      launch_mma<D, KvF16>(dq2, kp, kp + pool_elems, dt, kPos0, kTok, kHeads, kKvHeads, kBlock, scale, dout, s) != 0)
    return -1;
  std::vector<float> ref(q_elems), got(q_elems);
  if (hipMemcpyAsync(ref.data(), dref, q_b, hipMemcpyDeviceToHost, s) != hipSuccess ||
      hipMemcpyAsync(got.data(), dout, q_b, hipMemcpyDeviceToHost, s) != hipSuccess ||
      hipStreamSynchronize(s) != hipSuccess)
    return -1;
  for (size_t i = 0; i < q_elems; ++i)
    if (!(std::fabs(got[i] - ref[i]) <= 4e-3f)) {
      std::snprintf(why, why_len, "head_dim %d, token %zu element %zu: %g, the fp32 kernel %g", D, i / (kHeads * D),
                    i % (kHeads * D), static_cast<double>(got[i]), static_cast<double>(ref[i]));
      return 0;
    }
  return 1;
}

constexpr int kMaxDevices = 64;
std::atomic<int> g_ready[kMaxDevices];

}  // namespace

int attention_mma_ready(hipStream_t s) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= kMaxDevices) return -1;
  int state = g_ready[dev].load(std::memory_order_acquire);
  if (state != 0) return state;
  hipStreamCaptureStatus cs = hipStreamCaptureStatusNone;
  if (hipStreamIsCapturing(s, &cs) != hipSuccess || cs != hipStreamCaptureStatusNone) return 0;
  if (env_int("ROCFORGE_GPU_FA_MMA", 1) == 0 || !device_has_matrix_unit()) {
    state = -1;
  } else {
    // Test hook: ROCFORGE_GPU_FA_FAULT=1 changes one query value for the matrix-unit kernel, so the
    // fallback runs where the kernel is right (ctest gpu_attn_prefill_fault).
    const bool fault = env_int("ROCFORGE_GPU_FA_FAULT", 0) != 0;
    char why[200] = "";
    int r = check_head_dim<64>(s, fault, why, sizeof why);
    if (r == 1) r = check_head_dim<128>(s, fault, why, sizeof why);
    if (r == 0) std::fprintf(stderr, "rocforge: the matrix-unit prefill attention disagrees with the fp32 kernel (%s); not used\n", why);
    if (r < 0) std::fprintf(stderr, "rocforge: the matrix-unit prefill attention's self-check could not run; not used\n");
    state = r == 1 ? 1 : -1;
  }
  g_ready[dev].store(state, std::memory_order_release);
  return state;
}

int launch_prefill_mma(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                       int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                       float* out, hipStream_t s) {
  // Whole 16-byte K/V copies: pools 16-byte aligned (cudaMalloc'd).
  if (reinterpret_cast<uintptr_t>(k_pool) % 16 != 0 || reinterpret_cast<uintptr_t>(v_pool) % 16 != 0) return -1;
  const bool q8 = kv_type == RF_KV_Q8_0;
  if (head_dim == 128)
    return q8 ? launch_mma<128, KvQ8>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale, out, s)
              : launch_mma<128, KvF16>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale, out, s);
  if (head_dim == 64)
    return q8 ? launch_mma<64, KvQ8>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale, out, s)
              : launch_mma<64, KvF16>(q, k_pool, v_pool, table, pos0, n_tok, n_head, n_kv_head, block_size, scale, out, s);
  return -1;
}

}  // namespace rocforge::gpu
