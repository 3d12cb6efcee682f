// matmul_mma.hip - the GEMM of small batches (decode steps of several sequences, short prompts) on the
// tensor cores, with the weights dequantized in registers: Y[t][r] = sum_c W[r][c] * X[t][c] for up
// to kMmaMaxTokens tokens, W and X rounded to f16, fp32 accumulation (matmul_f16's arithmetic).
//
// Why: matmul_f16 dequantizes every weight to an f16 copy in memory for cuBLAS, which pays at prompt
// lengths but makes a 16-sequence decode step of an 8B cost ~6 single-token steps; the int8 matvec
// for several tokens (matvec_q8_multi) does arithmetic per token and falls behind from ~6 tokens.
// Here each weight is read once from memory and dequantized once for all tokens of the step.
//
// The product is computed transposed, C[token][row] = X W^T, with mma.m16n8k16 (A = 16 tokens x 16 k
// of X, B = 16 k x 8 weight rows): a B fragment gives lane (g = lane / 4, t = lane % 4) four k pairs
// of row g. Within each 32-element chunk the k order is permuted so that lane t's eight k of the
// chunk's two mma steps are the contiguous elements 8t .. 8t + 8 - exactly what the formats'
// dequant8(row, c, t) produces (one small load per lane, no shared-memory transpose) - and the
// lane loads X at the same eight elements (two float4s per token), so the dot product is unchanged.
//
// A block is kMmaWarps warps on one tile of 8 RT rows; warp w takes chunk pairs 2w, 2w + 2 kMmaWarps,
// ... (consecutive warps stream consecutive chunks of the same rows), and the warps' partial sums are
// added in shared memory in warp order: deterministic, no workspace, graph-capturable.
//
// NVIDIA only (mma.sync, sm_80+). The HIP build reports "not served" and matmul_f16's other paths
// run; an AMD version would use MFMA (CDNA) / WMMA (RDNA) with their own fragment layouts.
#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

#include <type_traits>

namespace rocforge::gpu {

#if !(defined(__HIP__) || defined(__HIPCC__))
namespace {

constexpr int kMmaWarps = 8;
// The widest token tile (4 x 16). Steps of up to 64 tokens beat the dequantize + cuBLAS path they
// replace: 8B Q4_K_M prompt steps (H100) pp16 1030 -> 1922 tok/s, pp32 2006 -> 3184, pp64 3428 -> 3867.
constexpr int kMmaMaxTokens = 64;

// Two floats as one f16x2 word, lo in the low half (cvt.rn.f16x2.f32 puts its first source high).
__device__ inline uint32_t pack_h2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// c += a (16 x 16, row-major f16) * b (16 x 8, col-major f16), fp32 accumulation.
__device__ inline void mma_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  (void)c, (void)a, (void)b0, (void)b1;  // host pass; launches check the architecture
#endif
}

// Elements 32c + 8p .. +8 of a row: the format's dequant8, else its 32-element dequant (all four
// lanes of a chunk decode the whole chunk: correct for every format, four times the arithmetic).
template <class F>
__device__ inline void dequant8(const uint8_t* row, int c, int p, float v[8]) {
  if constexpr (HasDequant8<F>::value) {
    F::dequant8(row, c, p, v);
  } else {
    float a[32];
    F::dequant(row, c, a);
#pragma unroll
    for (int q = 0; q < 4; ++q)
      if (q == p)
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = a[8 * q + i];
  }
}

// Y[n_tok][rows] = X[n_tok][cols] W^T for n_tok <= 16 MT, a block per 8 RT rows.
// Blocks per multiprocessor the registers must allow: the loop is latency-bound, so occupancy pays
// until spills start. H100, 8B shapes: 3 for the narrow one-token-tile kernel (q/k/v at 16 tokens
// 29.1 -> 23.2 us, no spills), 2 for the rest (at 3 they spill: gate/up at 32 tokens 142.8 -> 150.9 us;
// with no bound the two-token-tile kernels take 136-141 registers, one block, pp32 3215 -> 2805).
template <int RT, int MT>
constexpr int kMmaMinBlocks = (RT == 2 && MT == 1) ? 3 : 2;

template <class F, int RT, int MT>
__global__ void __launch_bounds__(kMmaWarps * 32, kMmaMinBlocks<RT, MT>) matmul_mma_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                                     const float* __restrict__ x, float* __restrict__ y,
                                                                     int rows, int cols, int n_tok) {
  __shared__ float red[kMmaWarps - 1][MT * RT * 4][32];  // partial sums of warps 1 .. 7
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * 8 * RT;
  const uint8_t* wr[RT];
#pragma unroll
  for (int j = 0; j < RT; ++j) wr[j] = w + static_cast<size_t>(min(row0 + 8 * j + g, rows - 1)) * stride;
  // Lane's tokens: 16m + g and 16m + g + 8 of each m tile (null: past n_tok, reads as zero).
  const float* xr[MT][2];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int tok = 16 * m + g + 8 * h;
      xr[m][h] = tok < n_tok ? x + static_cast<size_t>(tok) * cols + 8 * t : nullptr;
    }
  float acc[MT][RT][4] = {};
  const int n_chunks = cols / 32;
  // Two adjacent chunks per step, all their loads (weights and X) issued before the first multiply:
  // the loop is latency-bound, not issue-bound, so loads in flight are what sets the speed.
  for (int c0 = 2 * warp; c0 < n_chunks; c0 += 2 * kMmaWarps) {
    const bool pair = c0 + 1 < n_chunks;
    const int c1 = pair ? c0 + 1 : c0;
    // Weights: b[u][j][0..1] the first k16 step of chunk c_u of row 8j + g, b[u][j][2..3] the second.
    // (Loading X before them, for more loads in flight, cost registers and ran slower.)
    uint32_t b[2][RT][4];
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int j = 0; j < RT; ++j) {
        float v[8];
        dequant8<F>(wr[j], u ? c1 : c0, t, v);
        b[u][j][0] = pack_h2(v[0], v[1]);
        b[u][j][1] = pack_h2(v[2], v[3]);
        b[u][j][2] = pack_h2(v[4], v[5]);
        b[u][j][3] = pack_h2(v[6], v[7]);
      }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (16 * m >= n_tok) break;  // uniform over the block
      float4 lo[2][2] = {}, hi[2][2] = {};
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const int c = u ? c1 : c0;
        if (xr[m][0]) {
          lo[u][0] = *reinterpret_cast<const float4*>(xr[m][0] + 32 * c);
          lo[u][1] = *reinterpret_cast<const float4*>(xr[m][0] + 32 * c + 4);
        }
        if (xr[m][1]) {
          hi[u][0] = *reinterpret_cast<const float4*>(xr[m][1] + 32 * c);
          hi[u][1] = *reinterpret_cast<const float4*>(xr[m][1] + 32 * c + 4);
        }
      }
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (u && !pair) break;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const uint32_t a[4] = {pack_h2(lo[u][k].x, lo[u][k].y), pack_h2(hi[u][k].x, hi[u][k].y),
                                 pack_h2(lo[u][k].z, lo[u][k].w), pack_h2(hi[u][k].z, hi[u][k].w)};
#pragma unroll
          for (int j = 0; j < RT; ++j) mma_16816(acc[m][j], a, b[u][j][2 * k], b[u][j][2 * k + 1]);
        }
      }
    }
  }
  // Warps 1 .. 7 hand their sums to warp 0, which adds them in warp order and stores.
  if (warp > 0) {
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int j = 0; j < RT; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) red[warp - 1][(m * RT + j) * 4 + e][lane] = acc[m][j][e];
  }
  __syncthreads();
  if (warp > 0) return;
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < RT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float s = acc[m][j][e];
        for (int k = 0; k < kMmaWarps - 1; ++k) s += red[k][(m * RT + j) * 4 + e][lane];
        // C fragment: e = 0, 1 -> token g, rows 2t, 2t + 1; e = 2, 3 -> token g + 8.
        const int tok = 16 * m + g + 8 * (e >> 1), row = row0 + 8 * j + 2 * t + (e & 1);
        if (tok < n_tok && row < rows) y[static_cast<size_t>(tok) * rows + row] = s;
      }
}

// Launches the kernel shape for n_tok tokens: four 8-row tiles per block where that still gives every
// multiprocessor two blocks, else two. (Four warps a block instead of eight: 20-45% slower, H100.)
template <class F>
int launch_mma(const uint8_t* w, size_t row_stride, const float* x, float* y, int rows, int cols, int n_tok,
               hipStream_t s) {
  auto launch = [&](auto kernel, int rt) {
    const int per_block = 8 * rt;
    kernel<<<(rows + per_block - 1) / per_block, kMmaWarps * 32, 0, s>>>(w, row_stride, x, y, rows, cols, n_tok);
    return check(cudaGetLastError(), "matmul_mma");
  };
  const bool wide = rows >= 2 * multiprocessors() * 32;
  if (n_tok <= 16) return wide ? launch(matmul_mma_kernel<F, 4, 1>, 4) : launch(matmul_mma_kernel<F, 2, 1>, 2);
  if (n_tok <= 32) return wide ? launch(matmul_mma_kernel<F, 4, 2>, 4) : launch(matmul_mma_kernel<F, 2, 2>, 2);
  return launch(matmul_mma_kernel<F, 2, 4>, 2);
}

}  // namespace

int mma_max_tokens() {
  static const int v = [] {
    const int e = env_int("ROCFORGE_GPU_MMA_MAX", kMmaMaxTokens);  // 0: off (A/B runs)
    return e < 0 ? 0 : (e > kMmaMaxTokens ? kMmaMaxTokens : e);
  }();
  return compute_major() >= 8 ? v : 0;
}

int matmul_mma(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
               int n_tok, hipStream_t s) {
  if (n_tok < 1 || n_tok > mma_max_tokens() || cols % 32 != 0 || rows < 1 ||
      reinterpret_cast<uintptr_t>(x) % 16 != 0)
    return -1;
  int rc = -1;
  dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    // F16 weights need no copy: matmul_f16 hands them to cuBLAS as they are.
    if constexpr (!std::is_same_v<F, Fmt<kF16>>)
      if (cols % F::kBlockElems == 0)
        rc = launch_mma<F>(static_cast<const uint8_t*>(w), row_stride, x, y, rows, cols, n_tok, s);
  });
  return rc;
}

#else  // HIP: not served (see the top of the file).

int mma_max_tokens() { return 0; }
int matmul_mma(uint32_t, const void*, size_t, const float*, float*, int, int, int, hipStream_t) { return -1; }

#endif

}  // namespace rocforge::gpu
