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
// For every quantized format (FastB, mma_fastb.h) the lane builds its B fragment from the codes in
// f16 arithmetic instead, and X comes as f16 A fragments prepared once per call by x_frag_kernel into
// the stream's slot, one 16-byte load a fragment (H100, 8B Q4_K_M: pp16 2411 -> 2791, pp32 3675 ->
// 4697, pp64 4535 -> 6677 tok/s; ROCFORGE_GPU_MMA_XFRAG=0 reads X's fp32 rows as before). F32 and
// BF16 rows keep dequant8's fp32 path.
//
// A block is kMmaWarps warps on one tile of 8 RT rows; warp w takes chunk pairs 2w, 2w + 2 kMmaWarps,
// ... (consecutive warps stream consecutive chunks of the same rows), and the warps' partial sums are
// added in shared memory in warp order: deterministic, no workspace, graph-capturable. The loop is
// latency-bound (ncu: DRAM 10-16% busy, nothing else saturated), so for the formats whose 256-element
// groups are contiguous runs of bytes (staged_layout), each warp copies its next group into its own
// shared memory (cp.async) while it multiplies the current one (matmul_mma_staged_kernel: 8B Q4_K_M
// gate/up at 16 tokens 85.2 -> 67.9 us, H100; ROCFORGE_GPU_MMA_STAGED=0 turns it off).
//
// NVIDIA only (mma.sync, sm_80+). The HIP build serves these calls with matmul_small.hip's kernel,
// written once for every matrix unit through mma_frag.h (ROCFORGE_GPU_MMA_SMALL=1 takes it on NVIDIA
// too, where tests and benchmarks run it).
#include "gpu/kernels.h"
#include "gpu/mma_fastb.h"
#include "gpu/mma_frag.h"
#include "gpu/mma_parts.h"
#include "gpu/quant_formats.h"

#include <algorithm>
#include <mutex>
#include <type_traits>
#include <vector>

namespace rocforge::gpu {

#if !(defined(__HIP__) || defined(__HIPCC__))
namespace {

constexpr int kMmaWarps = 8;
// The widest token tile (4 x 16). Steps of up to 64 tokens beat the dequantize + cuBLAS path they
// replace: 8B Q4_K_M prompt steps (H100) pp16 1039 -> 2232 tok/s, pp32 2002 -> 3358, pp64 3557 -> 4249.
constexpr int kMmaMaxTokens = 64;

// Y[n_tok][rows] = X[n_tok][cols] W^T for n_tok <= 16 MT, a block per 8 RT rows.
// Blocks per multiprocessor the registers must allow: the loop is latency-bound, so occupancy pays
// until spills start. H100, 8B shapes: 3 for the narrow one-token-tile kernel (q/k/v at 16 tokens
// 29.1 -> 23.2 us, no spills), 2 for the rest (at 3 they spill: gate/up at 32 tokens 142.8 -> 150.9 us;
// with no bound the two-token-tile kernels take 136-141 registers, one block, pp32 3215 -> 2805).
template <int RT, int MT>
constexpr int kMmaMinBlocks = (RT == 2 && MT == 1) ? 3 : 2;

// The lane's token rows of X (16m + g and 16m + g + 8 of each m tile; null past n_tok: zeros).
template <int MT>
__device__ inline void token_rows(const float* x, int cols, int n_tok, int g, int t, const float* xr[MT][2]) {
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int tok = 16 * m + g + 8 * h;
      xr[m][h] = tok < n_tok ? x + static_cast<size_t>(tok) * cols + 8 * t : nullptr;
    }
}

// acc += chunks c0 and c0 + 1 (the second only if `pair`) of the lane's rows wr[j] (row 8j + g)
// against X. Weights are read at chunk indices wc0 / wc1 of wr (the same as c0 / c1 in global
// memory; relative to a staged copy in shared memory), X at c0 / c1. All weight loads of the pair
// are issued before the first multiply: the loop is latency-bound, so loads in flight set the speed.
// (Loading X before the weights cost registers and ran slower.)
// FastB formats read X as prepared A fragments instead (xf: x_frag_kernel's words, nc chunks a row).
// Where x_frag_kernel leaves lane `lane`'s A fragment of m tile m, chunk c, k16 step k (nc chunks a
// row): the one index its writer and both readers use.
__device__ inline size_t x_frag_index(int nc, int m, int c, int k, int lane) {
  return ((static_cast<size_t>(m) * nc + c) * 2 + k) * 32 + lane;
}

// kPre: X's fragments of the pair are already in `pre` (the staged kernel loads them a pair ahead).
template <class F, int RT, int MT, bool kFrag, bool kPre = false>
__device__ inline void mma_chunk_pair(const uint8_t* const wr[RT], int wc0, int wc1, int c0, int c1, bool pair,
                                      const float* const xr[MT][2], const uint4* __restrict__ xf, int nc, int n_tok,
                                      int t, float acc[MT][RT][4], const uint4 (*pre)[2][2] = nullptr) {
  // b[u][j][0..1]: the first k16 step of chunk u of row 8j + g; b[u][j][2..3]: the second. FastB
  // pairs elements (0, 2), (1, 3) of each four (kStride2), dequant8's path (0, 1), (2, 3).
  constexpr bool kStride2 = FastB<F>::value;
  uint32_t b[2][RT][4];
  if constexpr (kStride2) {
#pragma unroll
    for (int j = 0; j < RT; ++j) FastB<F>::pair(wr[j], wc0, wc1, t, b[0][j], b[1][j]);
  } else {
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int j = 0; j < RT; ++j) {
        float v[8];
        dequant8<F>(wr[j], u ? wc1 : wc0, t, v);
        b[u][j][0] = pack_h2(v[0], v[1]);
        b[u][j][1] = pack_h2(v[2], v[3]);
        b[u][j][2] = pack_h2(v[4], v[5]);
        b[u][j][3] = pack_h2(v[6], v[7]);
      }
  }
  static_assert(!kFrag || kStride2, "X fragments are packed in FastB's pairs");
  if constexpr (kFrag) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (16 * m >= n_tok) break;  // uniform over the block
      uint4 f[2][2];
#pragma unroll
      for (int u = 0; u < 2; ++u)
#pragma unroll
        for (int k = 0; k < 2; ++k) f[u][k] = kPre ? pre[m][u][k] : xf[x_frag_index(nc, m, u ? c1 : c0, k, lane)];
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        if (u && !pair) break;
#pragma unroll
        for (int k = 0; k < 2; ++k) {
          const uint32_t a[4] = {f[u][k].x, f[u][k].y, f[u][k].z, f[u][k].w};
#pragma unroll
          for (int j = 0; j < RT; ++j) rf_mma_m16n8k16(acc[m][j], a, b[u][j][2 * k], b[u][j][2 * k + 1]);
        }
      }
    }
  } else {
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
          const float4 l = lo[u][k], h = hi[u][k];
          uint32_t a[4];
          if constexpr (kStride2) {
            a[0] = pack_h2(l.x, l.z), a[1] = pack_h2(h.x, h.z), a[2] = pack_h2(l.y, l.w), a[3] = pack_h2(h.y, h.w);
          } else {
            a[0] = pack_h2(l.x, l.y), a[1] = pack_h2(h.x, h.y), a[2] = pack_h2(l.z, l.w), a[3] = pack_h2(h.z, h.w);
          }
#pragma unroll
          for (int j = 0; j < RT; ++j) rf_mma_m16n8k16(acc[m][j], a, b[u][j][2 * k], b[u][j][2 * k + 1]);
        }
      }
    }
  }
}

// ---- X as A fragments (FastB formats).
//
// Why: each warp used to load its lanes' X rows as fp32 (two 16-byte loads a token row, chunk and
// k16 step) and pack them to f16 itself, in every block: at 32 tokens X's loads were a third of an
// 8B gate/up product's time (H100: 100.6 us, 64.8 with X's loads left out). One small launch now
// writes X once in f16, in the order the lanes read it: word ((m nc + c) 2 + k) 32 + lane holds
// lane (g, t)'s A fragment of m tile m, chunk c, k16 step k - tokens 16m + g and 16m + g + 8,
// elements 32c + 8t + 4k + {0, 2} and {1, 3} (FastB's pairs), zeros past n_tok - one 16-byte load.
__global__ void x_frag_kernel(const float* __restrict__ x, int cols, int n_tok, int mt, uint4* __restrict__ out) {
  const int nc = cols / 32;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= mt * nc * 64) return;
  const int lane = i & 31, k = (i >> 5) & 1, c = (i >> 6) % nc, m = (i >> 6) / nc;
  const int tok = 16 * m + (lane >> 2), e = 32 * c + 8 * (lane & 3) + 4 * k;
  float4 lo = {}, hi = {};
  if (tok < n_tok) lo = *reinterpret_cast<const float4*>(x + static_cast<size_t>(tok) * cols + e);
  if (tok + 8 < n_tok) hi = *reinterpret_cast<const float4*>(x + static_cast<size_t>(tok + 8) * cols + e);
  out[x_frag_index(nc, m, c, k, lane)] =
      make_uint4(pack_h2(lo.x, lo.z), pack_h2(hi.x, hi.z), pack_h2(lo.y, lo.w), pack_h2(hi.y, hi.w));
}

// The fragments go to the stream's slot of static device memory (x_slot.hip): 64 tokens x 32768
// columns; a fifth stream's products read X's fp32 rows.
static_assert(kXSlotTokens >= kMmaMaxTokens, "a slot holds a call's fragments");
constexpr int kXMaxCols = kXSlotMaxCols;

// Warps 1 .. 7 hand their sums to warp 0 through `red` ([kMmaWarps - 1][MT RT 4][32] floats), which
// adds them in warp order and stores Y. Ends the kernel for every warp.
template <int RT, int MT>
__device__ inline void reduce_store(float (*red)[MT * RT * 4][32], const float acc[MT][RT][4], const MmaOut& out,
                                    int row0, int rows, int n_tok) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
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
        if (tok < n_tok && row < rows) *out.at(tok, row) = s;
      }
}

// Y[n_tok][rows] = X[n_tok][cols] W^T for n_tok <= 16 MT, a block per 8 RT rows, the weights loaded
// from global memory by the lanes that use them; warp w takes chunk pairs 2w, 2w + 2 kMmaWarps, ...
template <class F, int RT, int MT, bool kFrag>
__global__ void __launch_bounds__(kMmaWarps * 32, kMmaMinBlocks<RT, MT>)
    matmul_mma_kernel(const uint8_t* __restrict__ w, size_t stride, const float* __restrict__ x,
                      const uint4* __restrict__ xf, MmaOut out, int rows, int cols, int n_tok) {
  __shared__ float red[kMmaWarps - 1][MT * RT * 4][32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * 8 * RT;
  const uint8_t* wr[RT];
#pragma unroll
  for (int j = 0; j < RT; ++j) wr[j] = w + static_cast<size_t>(min(row0 + 8 * j + g, rows - 1)) * stride;
  const float* xr[MT][2];
  token_rows<MT>(x, cols, n_tok, g, t, xr);
  float acc[MT][RT][4] = {};
  const int n_chunks = cols / 32;
  for (int c0 = 2 * warp; c0 < n_chunks; c0 += 2 * kMmaWarps) {
    const bool pair = c0 + 1 < n_chunks;
    const int c1 = pair ? c0 + 1 : c0;
    mma_chunk_pair<F, RT, MT, kFrag>(wr, c0, c1, c0, c1, pair, xr, xf, n_chunks, n_tok, t, acc);
  }
  reduce_store<RT, MT>(red, acc, out, row0, rows, n_tok);
}

// How the staged kernel copies a row's 256-element group (`gb` bytes) into shared memory: in `unit`-byte
// cp.async words (16 where gb is a multiple of 16, else 8 or 4), into a `slot` of shared memory a row.
// Groups of an odd number of 2-byte units (Q3_K's 110 bytes) are copied as the 4-byte words that
// hold them (slot gb + 2 rounded up to 4; `shifted`): the group then starts 0 or 2 bytes into its
// slot, and the last word may carry up to 3 bytes past the group - an aligned word holding at least
// one of the tensor's bytes never leaves its allocation. Q3_K's 8-super-block planes (`gather`) copy
// the 16-byte pieces that hold a super-block into a Q3Slot (quant_fmt_kquants.h). served = 0: the direct kernel, for
// formats without FastB, Q6_K's planes and slots over 192 bytes (Q6_K, Q8_0: at 272 bytes one block a
// multiprocessor fits; 8B Q8_0 gate/up at 16 tokens, H100: 79.1 us direct, 96.1 staged).
struct StageShape {
  int gb, unit, slot, words;
  bool shifted, served, gather;
};
template <class F>
__host__ __device__ constexpr StageShape staged_layout() {
  if constexpr (std::is_same_v<F, Fmt<kQ3_K_G8>>) return {110, 16, 160, 10, false, true, true};
  constexpr int gb = 256 / F::kBlockElems * F::kBlockBytes;
  constexpr int unit = gb % 16 == 0 ? 16 : (gb % 8 == 0 ? 8 : 4);
  constexpr bool shifted = gb % 4 != 0;
  constexpr int slot = shifted ? (gb + 2 + 3) / 4 * 4 : gb;
  return {gb, unit, slot, slot / unit, shifted,
          FastB<F>::value && !std::is_same_v<F, Fmt<kQ6_K_G8>> && gb % 2 == 0 && slot <= 192, false};
}
// The format the staged kernel reads its slots as.
template <class F>
struct StagedFmt { using type = F; };
template <>
struct StagedFmt<Fmt<kQ3_K_G8>> { using type = Q3Fmt<Q3Slot>; };

// As matmul_mma_kernel, with the weights of each warp's next 256-element group (8 chunks of its 8 RT
// rows, staged_layout's `gb` contiguous bytes a row in every layout this kernel takes) copied into the warp's own
// shared memory while it multiplies the current one: loads in flight without registers. Warp w
// takes groups w, w + kMmaWarps, ...; no block-wide barrier until the final sum.
template <class F, int RT, int MT, bool kFrag>
__global__ void __launch_bounds__(kMmaWarps * 32, kMmaMinBlocks<RT, MT>)
    matmul_mma_staged_kernel(const uint8_t* __restrict__ w, size_t stride, const float* __restrict__ x,
                             const uint4* __restrict__ xf, MmaOut out, int rows, int cols, int n_tok) {
  constexpr StageShape kL = staged_layout<F>();
  constexpr int kGb = kL.gb, kSlot = kL.slot, kUnit = kL.unit, kWords = kL.words;
  constexpr bool kShifted = kL.shifted, kGather = kL.gather;
  using FS = typename StagedFmt<F>::type;
  extern __shared__ __align__(16) uint8_t stage_mem[];  // [warp][2 stages][8 RT rows][kSlot]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  constexpr int R = 8 * RT;
  const int row0 = blockIdx.x * R;
  uint8_t* buf = stage_mem + static_cast<size_t>(warp) * 2 * R * kSlot;
  const float* xr[MT][2];
  token_rows<MT>(x, cols, n_tok, g, t, xr);
  float acc[MT][RT][4] = {};
  const int n_groups = cols / 256, nc = cols / 32;
  auto issue = [&](int grp, int st) {
    if (grp < n_groups) {
      uint8_t* dst = buf + static_cast<size_t>(st) * R * kSlot;
      if constexpr (kGather) {
        // Q3_K planes: super-block j = grp % 8 of group grp / 8 (880 bytes), nine 16-byte copies a row
        // (Q3Slot): hmask 2, qs 4, and the pieces of the scale and d planes that hold j's entries.
        // Through L1: a super-block's pieces of the scale and d planes are shared with 1-7 neighbours
        // (other warps' super-blocks), and its hmask / qs lines with 1-3. Slots of 160 bytes, not 144,
        // put a row's lanes on distinct banks. H200, 8B gate/up at 16 tokens: pieces of their own size
        // (8 / 4 / 2-byte copies, five diverging paths) 65.7 us, 16-byte pieces bypassing L1 61.7-62.3,
        // through L1 57.8-58.0, the GGUF blocks' 110-byte groups 56.2-56.4 (32 / 64 tokens: 71.2 / 113.9
        // against 71.9 / 121.6).
        using G = Q3Group8;
        const uint8_t* src0 = w + static_cast<size_t>(grp >> 3) * G::kBytes;
        const int j = grp & 7;
        for (int i = lane; i < R * 9; i += 32) {
          const int r = i / 9, q = i - r * 9;
          const int off = q < 2 ? G::kHm + 32 * j + 16 * q
                        : q < 6 ? G::kQs + 64 * j + 16 * (q - 2)
                        : q == 6 ? G::kScLo + 16 * (j >> 1) : q == 7 ? G::kScHi + 16 * (j >> 2) : G::kD;
          const uint8_t* src = src0 + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
          rf_async_copy<16, true>(dst + r * kSlot + 16 * q, src + off);
        }
        rf_async_commit();
        return;
      }
      const uint8_t* src0 = w + static_cast<size_t>(grp) * kGb;
      for (int i = lane; i < R * kWords; i += 32) {
        const int r = i / kWords, q = i - r * kWords;
        const uint8_t* src = src0 + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
        if constexpr (kShifted) src = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(src) & ~uintptr_t{3});
        rf_async_copy<kUnit>(dst + r * kSlot + q * kUnit, src + q * kUnit);
      }
    }
    rf_async_commit();  // an empty group past the end keeps the wait count uniform
  };
  // With X as fragments (up to 16 tokens), each chunk pair's are loaded while the pair before is
  // multiplied: the loads' latency was the kernel's first stall (ncu: long scoreboard). H100, 8B
  // gate/up at 16 tokens 59.0 -> 56.7 us (Q4_K); at 32 tokens the second register copy spilled
  // (Q4_K gate/up 75 -> 130 us), so two-tile kernels load in place.
  constexpr bool kPre = kFrag && MT == 1;
  struct Frags {
    uint4 f[MT][2][2];
  } fx = {};
  auto load_fx = [&](int c0) {
#pragma unroll
    for (int m = 0; m < MT; ++m)
      if (16 * m < n_tok)
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int k = 0; k < 2; ++k) fx.f[m][u][k] = xf[x_frag_index(nc, m, c0 + u, k, lane)];
  };
  if constexpr (kPre)
    if (warp < n_groups) load_fx(8 * warp);
  issue(warp, 0);
  int st = 0;
  for (int grp = warp; grp < n_groups; grp += kMmaWarps, st ^= 1) {
    issue(grp + kMmaWarps, st ^ 1);
    rf_async_wait<1>();  // this thread's copies of the current group have landed
    __syncwarp();        // ... and every lane's
    const uint8_t* sr[RT];
#pragma unroll
    for (int j = 0; j < RT; ++j) {
      sr[j] = buf + static_cast<size_t>(st) * R * kSlot + (8 * j + g) * kSlot;
      if constexpr (kShifted)  // where the group starts in its first word
        sr[j] += (reinterpret_cast<uintptr_t>(w) + static_cast<size_t>(min(row0 + 8 * j + g, rows - 1)) * stride +
                  static_cast<size_t>(grp) * kGb) & 3;
    }
    const int wc = kGather ? 8 * (grp & 7) : 0;  // a Q3Slot's chunks carry the super-block's place in its group
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      if constexpr (kPre) {
        const Frags cur = fx;
        if (p < 3) load_fx(8 * grp + 2 * p + 2);
        else if (grp + kMmaWarps < n_groups) load_fx(8 * (grp + kMmaWarps));
        mma_chunk_pair<FS, RT, MT, kFrag, true>(sr, wc + 2 * p, wc + 2 * p + 1, 8 * grp + 2 * p, 8 * grp + 2 * p + 1,
                                                true, xr, xf, nc, n_tok, t, acc, cur.f);
      } else {
        mma_chunk_pair<FS, RT, MT, kFrag>(sr, wc + 2 * p, wc + 2 * p + 1, 8 * grp + 2 * p, 8 * grp + 2 * p + 1, true, xr,
                                          xf, nc, n_tok, t, acc);
      }
    }
    __syncwarp();  // every lane is done with this stage before the next issue overwrites it
  }
  rf_async_wait<0>();
  __syncthreads();  // the stages are free: the warps' partial sums go there
  reduce_store<RT, MT>(reinterpret_cast<float(*)[MT * RT * 4][32]>(stage_mem), acc, out, row0, rows, n_tok);
}

template <class F, int RT, int MT, bool kFrag>
int launch_staged(const uint8_t* w, size_t row_stride, const float* x, const uint4* xf, const MmaOut& out, int rows,
                  int cols, int n_tok, hipStream_t s) {
  // The stages, reused for the warps' partial sums at the end.
  constexpr int stages = kMmaWarps * 2 * 8 * RT * staged_layout<F>().slot;
  constexpr int sums = (kMmaWarps - 1) * MT * RT * 4 * 32 * sizeof(float);
  constexpr int bytes = stages > sums ? stages : sums;
  auto* kernel = matmul_mma_staged_kernel<F, RT, MT, kFrag>;
  static std::atomic<int> limits[64];
  if (dynamic_smem_limit(kernel, limits) < bytes)
    return fail("matmul_mma: the staged kernel's %d bytes of shared memory are not available", bytes);
  kernel<<<(rows + 8 * RT - 1) / (8 * RT), kMmaWarps * 32, bytes, s>>>(w, row_stride, x, xf, out, rows, cols, n_tok);
  return check(cudaGetLastError(), "matmul_mma (staged)");
}

// Launches the kernel shape for n_tok tokens: four 8-row tiles per block where that still gives every
// multiprocessor two blocks, else two. (Four warps a block instead of eight: 20-45% slower, H100.)
// The staged kernel where the layout and alignment allow it and its stages fit in shared memory.
template <class F, bool kFrag>
int launch_shape(const uint8_t* w, size_t row_stride, const float* x, const uint4* xf, const MmaOut& out, int rows,
                 int cols, int n_tok, hipStream_t s) {
  auto launch = [&](auto kernel, int rt) {
    const int per_block = 8 * rt;
    kernel<<<(rows + per_block - 1) / per_block, kMmaWarps * 32, 0, s>>>(w, row_stride, x, xf, out, rows, cols, n_tok);
    return check(cudaGetLastError(), "matmul_mma");
  };
  const bool wide = rows >= 2 * multiprocessors() * 32;
  static const int staged_env = env_int("ROCFORGE_GPU_MMA_STAGED", 1);
  if constexpr (staged_layout<F>().served) {
    constexpr uintptr_t kAlign = staged_layout<F>().shifted ? 2 : staged_layout<F>().unit;
    if (staged_env && (reinterpret_cast<uintptr_t>(w) | row_stride) % kAlign == 0 && cols % 256 == 0) {
      if (n_tok <= 16)
        return wide ? launch_staged<F, 4, 1, kFrag>(w, row_stride, x, xf, out, rows, cols, n_tok, s)
                    : launch_staged<F, 2, 1, kFrag>(w, row_stride, x, xf, out, rows, cols, n_tok, s);
      if (n_tok <= 32)
        return wide ? launch_staged<F, 4, 2, kFrag>(w, row_stride, x, xf, out, rows, cols, n_tok, s)
                    : launch_staged<F, 2, 2, kFrag>(w, row_stride, x, xf, out, rows, cols, n_tok, s);
      return launch_staged<F, 2, 4, kFrag>(w, row_stride, x, xf, out, rows, cols, n_tok, s);
    }
  }
  if (n_tok <= 16)
    return wide ? launch(matmul_mma_kernel<F, 4, 1, kFrag>, 4) : launch(matmul_mma_kernel<F, 2, 1, kFrag>, 2);
  if (n_tok <= 32)
    return wide ? launch(matmul_mma_kernel<F, 4, 2, kFrag>, 4) : launch(matmul_mma_kernel<F, 2, 2, kFrag>, 2);
  return launch(matmul_mma_kernel<F, 2, 4, kFrag>, 2);
}

// FastB formats read X as fragments prepared by one small launch into the stream's slot; with no
// slot (a fifth stream on the device, rows longer than a slot) they read X's fp32 rows themselves.
template <class F>
int launch_mma(const uint8_t* w, size_t row_stride, const float* x, const MmaOut& out, int rows, int cols, int n_tok,
               hipStream_t s) {
  if constexpr (FastB<F>::value) {
    static const bool frag_env = env_int("ROCFORGE_GPU_MMA_XFRAG", 1) != 0;  // 0: the fp32 rows (A/B runs)
    if (uint4* slot = frag_env && cols <= kXMaxCols ? x_slot(s) : nullptr) {
      const int mt = (n_tok + 15) / 16, words = mt * (cols / 32) * 64;
      x_frag_kernel<<<(words + 255) / 256, 256, 0, s>>>(x, cols, n_tok, mt, slot);
      if (const int rc = check(cudaGetLastError(), "matmul_mma (X fragments)"); rc != 0) return rc;
      return launch_shape<F, true>(w, row_stride, x, slot, out, rows, cols, n_tok, s);
    }
  }
  return launch_shape<F, false>(w, row_stride, x, nullptr, out, rows, cols, n_tok, s);
}

}  // namespace

int mma_max_tokens() {
  if (small_gemm_selected()) return small_max_tokens();  // ROCFORGE_GPU_MMA_SMALL=1: the portable kernel
  static const int v = [] {
    const int e = env_int("ROCFORGE_GPU_MMA_MAX", kMmaMaxTokens);  // 0: off (A/B runs)
    return e < 0 ? 0 : (e > kMmaMaxTokens ? kMmaMaxTokens : e);
  }();
  return compute_major() >= 8 ? v : 0;
}

int matmul_mma_parts(uint32_t type, const void* w, size_t row_stride, const float* x, int cols, int n_tok, int n_parts,
                     const int* part_rows, float* const* y, hipStream_t s) {
  if (small_gemm_selected()) return matmul_small_parts(type, w, row_stride, x, cols, n_tok, n_parts, part_rows, y, s);
  MmaOut out{};
  int rows = 0;
  if (n_tok < 1 || n_tok > mma_max_tokens() || cols % 32 != 0 || !aligned16(x) ||
      !mma_out_of_parts(n_parts, part_rows, y, out, rows))
    return -1;
  int rc = -1;
  dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    // F16 weights need no copy: matmul_f16 hands them to cuBLAS as they are.
    if constexpr (!std::is_same_v<F, Fmt<kF16>>)
      if (cols % F::kBlockElems == 0)
        rc = launch_mma<F>(static_cast<const uint8_t*>(w), row_stride, x, out, rows, cols, n_tok, s);
  });
  return rc;
}

#else  // HIP: the small-batch GEMM for every matrix unit (matmul_small.hip) serves instead.

int mma_max_tokens() { return small_max_tokens(); }
int matmul_mma_parts(uint32_t type, const void* w, size_t row_stride, const float* x, int cols, int n_tok, int n_parts,
                     const int* part_rows, float* const* y, hipStream_t s) {
  return matmul_small_parts(type, w, row_stride, x, cols, n_tok, n_parts, part_rows, y, s);
}

#endif

int matmul_mma(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
               int n_tok, hipStream_t s) {
  return matmul_mma_parts(type, w, row_stride, x, cols, n_tok, 1, &rows, &y, s);
}

}  // namespace rocforge::gpu
