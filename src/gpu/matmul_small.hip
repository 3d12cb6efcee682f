// matmul_small.hip - the GEMM of small batches (decode steps of several sequences, short prompts) for
// every matrix unit: Y[t][r] = sum_c W[r][c] * X[t][c] for up to kSmallMaxTokens tokens, W and X
// rounded to f16, fp32 accumulation (matmul_f16's arithmetic), each weight read once from memory and
// decoded once for all the step's tokens, on AMD CDNA MFMA, RDNA3 / RDNA4 WMMA and NVIDIA tensor cores
// from one source (mma_frag.h).
//
// Why: NVIDIA's small-batch kernel (matmul_mma.hip) is mma.sync with PTX f16 arithmetic and cp.async,
// so AMD had none: steps of 5-48 tokens ran the int8 matvecs, whose arithmetic is per token (H100 with
// AMD's switches, 8B Q4_K_M: 1078 tok/s at 16 tokens, 1138 at 32), and longer ones matmul_mc, which
// decodes at a fixed cost per 128-token tile.
//
// A block is kSmallThreads threads on RT 16-row fragments (16 RT weight rows) and all the tokens (MT
// 16-token fragments); the waves split the chunks of the rows (the k split over the waves). Each lane
// decodes its runs of a chunk (mma_frag.h: kChunkRun consecutive elements of its kRunRows rows, no
// shared-memory tile) and loads X at the same elements, so a chunk costs each lane one small decode
// a row fragment and one or two vector loads a token row (for longer steps X comes as halves made
// once a call into the stream's x_slot, so every block does not convert it again). The quantized
// formats decode their runs straight from the codes in f16 arithmetic (mma_fastb.h's FastB, shared
// with NVIDIA's kernel: H100 with AMD's switches, 8B Q4_K_M pp16 1874 -> 2492 tok/s against runs
// through dequant8, which F32 and BF16 keep). The waves' sums meet in shared memory, halving each round in a fixed order:
// deterministic, no workspace, graph-capturable.
//
// No AMD card runs here, so before it serves on a device the kernel passes gemm_exact_check (small
// exact problems against the fp32 kernel, gemm_check.h: F32 weights for the fragment layouts, Q8_0
// and Q4_1 for the decode in f16 arithmetic); on a mismatch it declines for good, stderr says why and
// matmul_f16's other paths serve (a wrong fragment layout or f16 operation costs speed, never answers).
// NVIDIA runs this same kernel where ROCFORGE_GPU_MMA_SMALL=1 selects it, so its indexing is checked
// on real hardware with NVIDIA's fragments.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <type_traits>

#include "gpu/gemm_check.h"
#include "gpu/kernels.h"
#include "gpu/mma_fastb.h"
#include "gpu/mma_frag.h"
#include "gpu/mma_parts.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kSmallThreads = 256;
constexpr int kSmallMaxTokens = 64;
static_assert(kXSlotTokens >= kSmallMaxTokens, "a stream's X slot holds a call's halves");

#if defined(__HIP__) || defined(__HIPCC__)
#define RF_SMALL_BOUNDS __launch_bounds__(kSmallThreads)
#else
// Two blocks a multiprocessor: the loop waits on loads, so resident waves set the speed.
#define RF_SMALL_BOUNDS __launch_bounds__(kSmallThreads, 2)
#endif

// The lane's run of chunk c of one weight row as f16 pairs (pair q: run elements 2q, 2q + 1).
template <class M, class F>
__device__ inline void weight_run(const uint8_t* row, int c, int start, uint32_t (&p)[M::kChunkRun / 2]) {
  if constexpr (M::kChunkRun == 32) {  // the whole chunk (RDNA3): one decode
    float v[32];
    F::dequant(row, c, v);
#pragma unroll
    for (int q = 0; q < 16; ++q) p[q] = pack_h2(v[2 * q], v[2 * q + 1]);
  } else {
#pragma unroll
    for (int part = 0; part < M::kChunkRun / 8; ++part) {
      float v[8];
      dequant8<F>(row, c, start / 8 + part, v);
#pragma unroll
      for (int q = 0; q < 4; ++q) p[4 * part + q] = pack_h2(v[2 * q], v[2 * q + 1]);
    }
  }
}

// The lane's run of chunk c of one token row of X as f16 pairs; zeros past the last token (null).
// Pairs of consecutive elements, or with kStride2 (the weights' FastB order) elements (0, 2), (1, 3)
// of each four.
template <class M, bool kStride2>
__device__ inline void x_run(const float* row, int c, uint32_t (&p)[M::kChunkRun / 2]) {
#pragma unroll
  for (int q = 0; q < M::kChunkRun / 4; ++q) {
    const float4 f = row ? *reinterpret_cast<const float4*>(row + 32 * c + 4 * q) : make_float4(0.f, 0.f, 0.f, 0.f);
    p[2 * q] = kStride2 ? pack_h2(f.x, f.z) : pack_h2(f.x, f.y);
    p[2 * q + 1] = kStride2 ? pack_h2(f.y, f.w) : pack_h2(f.z, f.w);
  }
}

// X as f16 once a call (the stream's x_slot): each 4-element group's halves in FastB's pair order
// ((0, 2), (1, 3): what x_run<M, true> packs), so a lane's run of X is kChunkRun / 8 16-byte loads
// and no conversions. Same roundings as x_run: the products are bit-identical either way.
__global__ void x_half_kernel(const float* __restrict__ x, int n_groups, uint2* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;  // one 4-element group of X's n_tok rows
  if (i >= n_groups) return;
  const float4 f = reinterpret_cast<const float4*>(x)[i];
  out[i] = make_uint2(pack_h2(f.x, f.z), pack_h2(f.y, f.w));
}

// The lane's run of chunk c of one token row of the halves (row: that token's halves + the lane's
// run start, null past the last token: zeros); the same pairs as x_run<M, true>.
template <class M>
__device__ inline void x_run_half(const uint16_t* row, int c, uint32_t (&p)[M::kChunkRun / 2]) {
#pragma unroll
  for (int q = 0; q < M::kChunkRun / 8; ++q) {
    const uint4 v = row ? *reinterpret_cast<const uint4*>(row + 32 * c + 8 * q) : make_uint4(0u, 0u, 0u, 0u);
    p[4 * q] = v.x, p[4 * q + 1] = v.y, p[4 * q + 2] = v.z, p[4 * q + 3] = v.w;
  }
}

// acc += the chunk's products: the lane's weight runs bw (one per row fragment) against X's runs ax
// (one per token fragment), both as f16 pairs in the same element order.
template <class M, int RT, int MT>
__device__ inline void multiply_runs(const uint32_t (&bw)[RT][M::kRunRows][M::kChunkRun / 2],
                                     const uint32_t (&ax)[MT][M::kRunRows][M::kChunkRun / 2], int n_tok,
                                     typename M::C (&acc)[MT][RT]) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    typename M::B fb[RT];
#pragma unroll
    for (int j = 0; j < RT; ++j) M::b_from_runs(fb[j], bw[j], s);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (16 * m >= n_tok) break;  // uniform over the block
      typename M::A fa;
      M::a_from_runs(fa, ax[m], s);
#pragma unroll
      for (int j = 0; j < RT; ++j) M::mma(acc[m][j], fa, fb[j]);
    }
  }
}

// Y[n_tok][rows] = X[n_tok][cols] W^T for n_tok <= 16 MT, a block per 16 RT rows (see the top).
template <class F, int RT, int MT>
__global__ void RF_SMALL_BOUNDS matmul_small_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                    const float* __restrict__ x, const uint16_t* __restrict__ xh,
                                                    MmaOut out, int rows, int cols, int n_tok) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  constexpr int kWaves = kSmallThreads / M::kWave;  // 8 (NVIDIA, RDNA) or 4 (CDNA)
  constexpr int kRR = M::kRunRows, kPairs = M::kChunkRun / 2;
  // Half the waves' sums at a time, [wave][fragment][element][lane]: a wave's stores are consecutive.
  __shared__ float red[kWaves / 2][MT * RT][M::kC][M::kWave];
  const int lane = threadIdx.x % M::kWave, wave = threadIdx.x / M::kWave;
  const int row0 = blockIdx.x * 16 * RT, start = M::run_start(lane);
  const uint8_t* wr[RT][kRR];
#pragma unroll
  for (int j = 0; j < RT; ++j)
#pragma unroll
    for (int i = 0; i < kRR; ++i)  // rows past the end read the last row; their sums are not stored
      wr[j][i] = w + static_cast<size_t>(min(row0 + 16 * j + M::run_row(lane, i), rows - 1)) * stride;
  const float* xr[MT][kRR];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int i = 0; i < kRR; ++i) {
      const int tok = 16 * m + M::run_row(lane, i);
      xr[m][i] = tok < n_tok ? x + static_cast<size_t>(tok) * cols + start : nullptr;
    }
  const uint16_t* xhr[MT][kRR];  // the same rows of the halves (xh: FastB formats with a slot)
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int i = 0; i < kRR; ++i) xhr[m][i] = xh && xr[m][i] ? xh + (xr[m][i] - x) : nullptr;
  typename M::C acc[MT][RT];
  const int n_chunks = cols / 32;
  if constexpr (FastB<F>::value) {
    // The quantized formats: the runs straight from the codes in f16 arithmetic (mma_fastb.h), two
    // chunks a step (a K-quant's pair of chunks shares one header). Every load of the pair's weights
    // goes out before the first product: the loop is latency-bound.
    for (int c0 = 2 * wave; c0 < n_chunks; c0 += 2 * kWaves) {
      const bool two = c0 + 1 < n_chunks;
      const int c1 = two ? c0 + 1 : c0;
      uint32_t bw[2][RT][kRR][kPairs];
#pragma unroll
      for (int j = 0; j < RT; ++j)
#pragma unroll
        for (int i = 0; i < kRR; ++i)
#pragma unroll
          for (int q = 0; q < M::kChunkRun / 8; ++q)
            FastB<F>::pair(wr[j][i], c0, c1, start / 8 + q, &bw[0][j][i][4 * q], &bw[1][j][i][4 * q]);
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (u && !two) break;  // uniform over the wave
        uint32_t ax[MT][kRR][kPairs];
        if (xh) {  // uniform over the launch
#pragma unroll
          for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int i = 0; i < kRR; ++i) x_run_half<M>(xhr[m][i], u ? c1 : c0, ax[m][i]);
        } else {
#pragma unroll
          for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int i = 0; i < kRR; ++i) x_run<M, true>(xr[m][i], u ? c1 : c0, ax[m][i]);
        }
        multiply_runs<M, RT, MT>(bw[u], ax, n_tok, acc);
      }
    }
  } else {
    // F32 / BF16: the runs through dequant8, a chunk a step.
    for (int c = wave; c < n_chunks; c += kWaves) {
      uint32_t bw[RT][kRR][kPairs], ax[MT][kRR][kPairs];
#pragma unroll
      for (int j = 0; j < RT; ++j)
#pragma unroll
        for (int i = 0; i < kRR; ++i) weight_run<M, F>(wr[j][i], c, start, bw[j][i]);
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int i = 0; i < kRR; ++i) x_run<M, false>(xr[m][i], c, ax[m][i]);
      multiply_runs<M, RT, MT>(bw, ax, n_tok, acc);
    }
  }
  // The waves' sums into wave 0's, halving the waves each round (the same order every launch).
#pragma unroll
  for (int h = kWaves / 2; h >= 1; h /= 2) {
    if (wave >= h && wave < 2 * h)
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int j = 0; j < RT; ++j)
#pragma unroll
          for (int e = 0; e < M::kC; ++e) red[wave - h][m * RT + j][e][lane] = acc[m][j].v[e];
    __syncthreads();
    if (wave < h)
#pragma unroll
      for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int j = 0; j < RT; ++j)
#pragma unroll
          for (int e = 0; e < M::kC; ++e) acc[m][j].v[e] += red[wave][m * RT + j][e][lane];
    __syncthreads();
  }
  if (wave != 0) return;
  // Element e of a 16 x 16 accumulator is token c_row, row c_col of its fragment pair.
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < RT; ++j)
#pragma unroll
      for (int e = 0; e < M::kC; ++e) {
        const int tok = 16 * m + M::c_row(lane, e), row = row0 + 16 * j + M::c_col(lane, e);
        if (tok < n_tok && row < rows) *out.at(tok, row) = acc[m][j].v[e];
      }
#else
  (void)w, (void)stride, (void)x, (void)xh, (void)out, (void)rows, (void)cols, (void)n_tok;
#endif
}

// The kernel shape for n_tok tokens. The loop waits on loads, so what sets the speed is how many
// waves stream rows at once: up to 16 tokens the widest row tile that still gives every
// multiprocessor two blocks, else one row fragment a block; for 17-32 tokens two row fragments where
// every multiprocessor still gets a block, else one; beyond, one (registers). H100 with
// ROCFORGE_GPU_MMA_SMALL=1, `gpu_bench --batched-only`, 8B shapes, us at 16 tokens, two row
// fragments -> one: q/k/v (6144 rows) q4_k 19.3 -> 17.6, q6_k_g8 25.2 -> 22.1, q4_0_g8 21.8 -> 19.4,
// q8_0_g8 22.6 -> 20.9; o 16.3 -> 14.5 (q4_k), down 49.1 -> 42.8, 58.9 -> 49.9, 48.8 -> 43.2, 54.4 ->
// 49.8; gate/up keeps four (q4_0_g8 61.0, 85.3 on one). At 32 tokens down 67.3 -> 49.3 (q4_k), 77.7 ->
// 63.4 (q6_k_g8), o and the rest within 2%, while q/k/v's 192 blocks of two beat 384 of one (25.0
// against 32.2). ROCFORGE_GPU_SMALL_RT=1 / 2 / 4 forces a row tile where it exists (tests, A/B runs),
// -1 the twenty-eighth pass's rule (four where wide, else two; two for 17-32 tokens).
// Measured and not kept (H100, AMD's switches, pp8 / 16 / 32 / 64 tok/s, 8B Q4_K_M and 1B Q4_0): two
// chunks in flight a wave for up to 16 tokens, 8B 948 / 1873 -> 944 / 1835, 1B 4549 / 8648 -> 4859 /
// 9298 (mixed); and for up to 32 tokens, 8B 3149 -> 2035 (spills); for 33-64 tokens two row fragments
// with X loaded a token fragment at a time, 8B 3423 -> 3349, 1B 18328 -> 15908.
template <class F>
int launch(const uint8_t* w, size_t row_stride, const float* x, const MmaOut& out, int rows, int cols, int n_tok,
           hipStream_t s) {
  // The quantized formats read X as halves prepared once a call where the stream has a slot: beyond
  // 32 tokens, and beyond 16 on rows of 4096 columns and more, where X's fp32 loads and conversions,
  // which every block repeats, cost more than the extra launch. H100, AMD's switches, fp32 X ->
  // halves, two rounds: 8B Q4_K_M pp32 3834 / 3835 -> 4000 / 3944, pp64 3549 / 3526 -> 4154 / 4143,
  // `bench-serve` 32 streams 3298 -> 3550 agg tok/s; 1B Q4_0 pp64 17449 / 17625 -> 18629 / 18865,
  // pp32 within 2.2% (its 2048 columns), steps of up to 16 tokens 0.2-2.2% slower with halves. Per call
  // (`gpu_bench --batched-only`, 8B q4_k): 64 tokens gate/up 258.0 -> 211.4 us, down 130.1 -> 96.0.
  // ROCFORGE_GPU_SMALL_XH=0 never, 1 at every size (tests, A/B runs).
  static const int xh_env = env_int("ROCFORGE_GPU_SMALL_XH", -1);
  const uint16_t* xh = nullptr;
  if constexpr (FastB<F>::value) {
    const bool want = xh_env == 1 || (xh_env != 0 && (n_tok > 32 || (n_tok > 16 && cols >= 4096)));
    if (uint4* slot = want && cols <= kXSlotMaxCols ? x_slot(s) : nullptr) {
      const int groups = n_tok * cols / 4;
      x_half_kernel<<<(groups + 255) / 256, 256, 0, s>>>(x, groups, reinterpret_cast<uint2*>(slot));
      if (const int rc = check(hipGetLastError(), "matmul_small (X halves)"); rc != 0) return rc;
      xh = reinterpret_cast<const uint16_t*>(slot);
    }
  }
  auto go = [&](auto kernel, int rt) {
    kernel<<<(rows + 16 * rt - 1) / (16 * rt), kSmallThreads, 0, s>>>(w, row_stride, x, xh, out, rows, cols, n_tok);
    return check(hipGetLastError(), "matmul_small");
  };
  static const int forced = env_int("ROCFORGE_GPU_SMALL_RT", 0);
  const int sms = multiprocessors();
  auto blocks = [&](int rt) { return (rows + 16 * rt - 1) / (16 * rt); };
  if (n_tok <= 16) {
    int rt = blocks(4) >= 2 * sms ? 4 : blocks(2) >= 2 * sms ? 2 : 1;
    if (forced == -1) rt = rows >= 2 * sms * 64 ? 4 : 2;
    if (forced == 1 || forced == 2 || forced == 4) rt = forced;
    return rt == 4 ? go(matmul_small_kernel<F, 4, 1>, 4)
                   : rt == 2 ? go(matmul_small_kernel<F, 2, 1>, 2) : go(matmul_small_kernel<F, 1, 1>, 1);
  }
  if (n_tok <= 32) {
    int rt = blocks(2) >= sms ? 2 : 1;
    if (forced == -1) rt = 2;
    if (forced == 1 || forced == 2) rt = forced;
    return rt == 2 ? go(matmul_small_kernel<F, 2, 2>, 2) : go(matmul_small_kernel<F, 1, 2>, 1);
  }
  return go(matmul_small_kernel<F, 1, 4>, 1);
}

// Every format but F16 (whose rows the GEMMs read as they are); `rows` rows into `out`.
int launch_any(uint32_t type, const void* w, size_t row_stride, const float* x, const MmaOut& out, int rows, int cols,
               int n_tok, hipStream_t s) {
  int rc = -1;
  dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (!std::is_same_v<F, Fmt<kF16>>)
      if (cols % F::kBlockElems == 0)
        rc = launch<F>(static_cast<const uint8_t*>(w), row_stride, x, out, rows, cols, n_tok, s);
  });
  return rc;
}

// Per device: 0 not checked yet, 1 serving, -1 not served (no matrix unit, or the check failed).
std::atomic<int> g_state[64];

// Whether the kernel serves on the current device, running its check on first use with stream `s`
// (0: undecided, as while `s` is being captured: the check synchronises it).
int small_ready(hipStream_t s) {
  return decide_once(g_state, s, [&] {
    if (!device_has_matrix_unit()) return -1;
    // The check's problem has 70 tokens: two launches of at most kSmallMaxTokens.
    auto gemm = [](uint32_t t, const void* cw, size_t stride, const float* cx, float* cy, int r, int c, int n,
                   hipStream_t q) {
      for (int t0 = 0; t0 < n; t0 += kSmallMaxTokens) {
        MmaOut o{};
        int total = 0;
        float* y = cy + static_cast<size_t>(t0) * r;
        mma_out_of_parts(1, &r, &y, o, total);
        const int rc = launch_any(t, cw, stride, cx + static_cast<size_t>(t0) * c, o, r, c,
                                  n - t0 < kSmallMaxTokens ? n - t0 : kSmallMaxTokens, q);
        if (rc != 0) return rc;
      }
      return 0;
    };
    // F32 weights check the fragment layouts (runs through dequant8); Q8_0 and Q4_1 the decode from
    // the codes in f16 arithmetic (FastB: subtract and multiply; fused multiply-add), which is the
    // AMD build's own code (packed _Float16), not NVIDIA's PTX. Test hook:
    // ROCFORGE_GPU_MMA_SMALL_FAULT=1 spoils one product of the first (ctest gpu_mma_small_fault).
    char why[160] = "";
    int r = 0;
    const char* failed = "";
    for (uint32_t t : {kF32, kQ8_0, kQ4_1}) {
      const bool spoil = t == kF32 && env_int("ROCFORGE_GPU_MMA_SMALL_FAULT", 0) != 0;
      r = gemm_exact_check(s, gemm, spoil, why, sizeof why, t);
      failed = t == kF32 ? "" : t == kQ8_0 ? ", Q8_0 weights" : ", Q4_1 weights";
      if (r != 0) break;
    }
    if (r == 1)
      std::fprintf(stderr,
                   "rocforge: the small-batch GEMM (matmul_small) disagrees with the fp32 kernel (%s%s); not used\n", why,
                   failed);
    if (r < 0) std::fprintf(stderr, "rocforge: the small-batch GEMM's check could not run; not used\n");
    return r == 0 ? 1 : -1;
  });
}

}  // namespace

bool small_gemm_selected() {
#if defined(__HIP__) || defined(__HIPCC__)
  static const bool v = env_int("ROCFORGE_GPU_MMA_SMALL", 1) != 0;  // 0: off (A/B runs)
#else
  static const bool v = env_int("ROCFORGE_GPU_MMA_SMALL", 0) == 1;  // NVIDIA has matmul_mma's kernel
#endif
  return v;
}

int small_max_tokens() {
  if (!small_gemm_selected()) return 0;
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return 0;
  if (g_state[dev].load(std::memory_order_acquire) == 0) {
    // Decided now, on a stream of its own, so that the answer holds for every later call.
    hipStream_t s = nullptr;
    if (hipStreamCreate(&s) != hipSuccess) {
      (void)hipGetLastError();
      return 0;
    }
    small_ready(s);
    x_slot_release(s);
    (void)hipStreamDestroy(s);
  }
  // ROCFORGE_GPU_MMA_MAX caps the tokens as it does matmul_mma's (A/B runs; 0: off). Steps of
  // 33-64 tokens belong here rather than to hgemm on f16 slices (H100, AMD's switches, one round,
  // default -> ROCFORGE_GPU_MMA_MAX=32: 8B Q4_K_M pp40 / pp64 2950 / 4157 -> 2667 / 3782 tok/s, 1B
  // Q4_0 12987 / 18455 -> 10830 / 15730).
  static const int cap = std::clamp(env_int("ROCFORGE_GPU_MMA_MAX", kSmallMaxTokens), 0, kSmallMaxTokens);
  return g_state[dev].load(std::memory_order_acquire) > 0 ? cap : 0;
}

int matmul_small_parts(uint32_t type, const void* w, size_t row_stride, const float* x, int cols, int n_tok,
                       int n_parts, const int* part_rows, float* const* y, hipStream_t s) {
  MmaOut out{};
  int rows = 0;
  if (!small_gemm_selected() || n_tok < 1 || n_tok > kSmallMaxTokens || cols % 32 != 0 || !aligned16(x) ||
      !mma_out_of_parts(n_parts, part_rows, y, out, rows))
    return -1;
  if (small_ready(s) <= 0) return -1;
  return launch_any(type, w, row_stride, x, out, rows, cols, n_tok, s);
}

}  // namespace rocforge::gpu
