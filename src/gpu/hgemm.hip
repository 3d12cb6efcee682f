// hgemm.hip - an f16 x f16 -> f32 GEMM on the matrix units (tensor cores, MFMA, WMMA through
// mma_frag.h), the product matmul_f16 ends in where no vendor BLAS serves: the weights dequantized to
// f16 slices and X converted to f16 once (matmul_f16.hip), then C = A^T B here, as the BLAS would.
//
// Why not only matmul_mc (which dequantizes inside the GEMM): a block of matmul_mc decodes its weight
// tile once per 128 tokens and carries the decode in the loop that feeds the matrix unit, so the
// loop waits on loads and decode (H100, ROCFORGE_GPU_BLAS=0: 0.42x the cuBLAS path). Here the loop
// only moves f16 and the decode runs once per weight, in matmul_f16's slice kernel.
//
// A block covers a 128 x 128 or 64 x 128 (tokens x rows) tile of C - the larger unless the smaller
// keeps more multiprocessors busy - its waves split 2 (tokens) x 2 or 4 (rows), stepping along k
// with one barrier a step. How a block moves its tiles is its pipeline (below): NVIDIA's copies
// asynchronously, AMD's through registers. AMD's also builds for NVIDIA, where tests and benchmarks
// run it (ROCFORGE_GPU_HGEMM_AMD=1): the same source with NVIDIA's fragments, so its indexing is
// checked on real hardware even though no AMD card is here.
#include <atomic>
#include <cstdio>

#include "gpu/kernels.h"
#include "gpu/mma_frag.h"

namespace rocforge::gpu {
namespace {

// NVIDIA sm_80+: four warps, 64 k a step through a ring of three stages that cp.async fills two
// steps ahead, holding no registers for them. (H100 8B Q4_K_M pp512: a block of eight warps of
// 64 x 32 gave 7306 tok/s, four of 64 x 64 7812 - the eight warps' shared-memory reads kept pace
// with the tensor cores - and 64 k a step instead of 32, half the barriers, 8723.)
#if !(defined(__HIP__) || defined(__HIPCC__))
struct AsyncPipe {
  static constexpr int kThreads = 128, kTileK = 64, kStages = 3, kMinBlocks = 2;
  [[maybe_unused]] static constexpr bool kAsync = true;
};
#endif
// AMD: 256 threads (four waves on CDNA, eight on RDNA), 32 k a step through two buffers, the next
// step fetched into registers during the current one's products (two 64-wide buffers would not fit
// CDNA's 64 KB of LDS a CU; there is no asynchronous copy to shared memory on gfx90a / gfx942 / RDNA
// that this code uses).
struct RegPipe {
  static constexpr int kThreads = 256, kTileK = 32, kStages = 2;
  [[maybe_unused]] static constexpr int kMinBlocks = 2;  // NVIDIA's launch bound (tests, benchmarks)
  [[maybe_unused]] static constexpr bool kAsync = false;
};

// A block's tile under pipeline P: TT tokens x TR rows of C, and its shared memory.
template <class P, int TT, int TR>
struct Tile {
  static constexpr int kLd = P::kTileK + 8;          // halves a shared row: 16-byte aligned, and
                                                     // eight consecutive rows on distinct banks
  static constexpr int kWordsPerRow = P::kTileK / 8;  // 16-byte words of a tile row
  static constexpr int kStageHalves = (TT + TR) * kLd;  // x tile, then w tile
  static constexpr size_t kSmemBytes = sizeof(uint16_t) * P::kStages * kStageHalves;
};

// Word q of a tile with `wpr` words a row: row q / wpr, halves 8 (q % wpr) .. +7. In range when the
// row is below n_rows and the word below k (k is a multiple of 8: a word is all in or all out).
[[maybe_unused]] __device__ inline bool word_in(int wpr, int row0, int n_rows, int k0, int k, int q) {
  return row0 + q / wpr < n_rows && k0 + 8 * (q % wpr) < k;
}
[[maybe_unused]] __device__ inline const uint16_t* word_src(int wpr, const uint16_t* p, int ld, int row0, int k0,
                                                            int q) {
  return p + static_cast<size_t>(row0 + q / wpr) * ld + k0 + 8 * (q % wpr);
}
[[maybe_unused]] __device__ inline int word_dst(int wpr, int ld, int q) { return (q / wpr) * ld + 8 * (q % wpr); }

// The pipeline's blocks a multiprocessor on NVIDIA. HIP reads the second launch bound as waves per
// SIMD, not blocks: there LDS decides (CDNA's 64 KB a CU hold one 128 x 128 block).
#if defined(__HIP__) || defined(__HIPCC__)
#define RF_HGEMM_BOUNDS(P) __launch_bounds__(P::kThreads)
#else
#define RF_HGEMM_BOUNDS(P) __launch_bounds__(P::kThreads, P::kMinBlocks)
#endif

// c[t * ldc + r] = sum_k a[r * lda + k] * b[t * ldb + k]: A holds the weight rows (m of them), B the
// tokens (n); the C tile is m-contiguous, as the BLAS's column-major C. blockIdx.x walks the token
// tiles, so the few blocks sharing a weight tile run together and read it from DRAM once.
template <class P, int TT, int TR>
__global__ void RF_HGEMM_BOUNDS(P)
    hgemm_kernel(int m, int n, int k, const uint16_t* __restrict__ a, int lda, const uint16_t* __restrict__ b,
                 int ldb, float* __restrict__ c, int ldc) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  using Sh = Tile<P, TT, TR>;
  constexpr int kThreads = P::kThreads, kTileK = P::kTileK, kStages = P::kStages;
  constexpr int kLd = Sh::kLd, kWpr = Sh::kWordsPerRow;
  constexpr int kWaves = kThreads / M::kWave;  // 4 (NVIDIA's pipeline, CDNA) or 8 (RDNA, AMD's on NVIDIA)
  constexpr int kWavesR = kWaves / 2;          // waves along the rows (two along the tokens)
  constexpr int kFragT = TT / 2 / 16;          // 16-token fragments per wave
  constexpr int kFragR = TR / kWavesR / 16;    // 16-row fragments per wave
  constexpr int kWordsX = TT * kWpr / kThreads, kWordsW = TR * kWpr / kThreads;
  static_assert(kFragT >= 1 && kFragR >= 1 && kWordsX >= 1 && kWordsW >= 1, "tile too small for the block");
  // Stage s: x tile [token][k] (the products' A operand), then w tile [row][k] (their B).
  extern __shared__ __align__(16) uint16_t smem[];
  auto xs = [&](int st) { return smem + st * Sh::kStageHalves; };
  auto ws = [&](int st) { return smem + st * Sh::kStageHalves + TT * kLd; };
  const int t0 = blockIdx.x * TT, r0 = blockIdx.y * TR;
  const int tid = threadIdx.x, lane = tid % M::kWave, wave = tid / M::kWave;
  const int wt = (wave / kWavesR) * (TT / 2), wr = (wave % kWavesR) * (TR / kWavesR);
  typename M::C acc[kFragT][kFragR];
  const int steps = (k + kTileK - 1) / kTileK;

  // The products of one step (stage st) into acc.
  auto multiply = [&](int st) {
    const uint16_t* x = xs(st);
    const uint16_t* w = ws(st);
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      typename M::A fa[kFragT];
      typename M::B fb[kFragR];
#pragma unroll
      for (int i = 0; i < kFragT; ++i) M::load_a(fa[i], x + (wt + 16 * i) * kLd + kk, kLd, lane);
#pragma unroll
      for (int j = 0; j < kFragR; ++j) M::load_b(fb[j], w + (wr + 16 * j) * kLd + kk, kLd, lane);
#pragma unroll
      for (int i = 0; i < kFragT; ++i)
#pragma unroll
        for (int j = 0; j < kFragR; ++j) M::mma(acc[i][j], fa[i], fb[j]);
    }
  };

  if constexpr (P::kAsync) {
    // Step s's copies into stage s % kStages (words out of range zeroed by a plain store; the
    // barrier before the stage is read orders both).
    auto issue = [&](int s) {
      uint16_t* x = xs(s % kStages);
      uint16_t* w = ws(s % kStages);
      const int k0 = s * kTileK;
#pragma unroll
      for (int i = 0; i < kWordsX; ++i) {
        const int q = tid + i * kThreads;
        if (word_in(kWpr, t0, n, k0, k, q)) rf_async_copy<16>(x + word_dst(kWpr, kLd, q), word_src(kWpr, b, ldb, t0, k0, q));
        else *reinterpret_cast<uint4*>(x + word_dst(kWpr, kLd, q)) = make_uint4(0u, 0u, 0u, 0u);
      }
#pragma unroll
      for (int i = 0; i < kWordsW; ++i) {
        const int q = tid + i * kThreads;
        if (word_in(kWpr, r0, m, k0, k, q)) rf_async_copy<16>(w + word_dst(kWpr, kLd, q), word_src(kWpr, a, lda, r0, k0, q));
        else *reinterpret_cast<uint4*>(w + word_dst(kWpr, kLd, q)) = make_uint4(0u, 0u, 0u, 0u);
      }
    };
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < steps) issue(s);
      rf_async_commit();  // empty groups too: the count below stays one group a step
    }
    for (int s = 0; s < steps; ++s) {
      rf_async_wait<kStages - 2>();  // this thread's copies of step s landed
      __syncthreads();               // everyone's; and step s - 1's stage is no longer read
      if (s + kStages - 1 < steps) issue(s + kStages - 1);
      rf_async_commit();
      multiply(s % kStages);
    }
  } else {
    static_assert(P::kAsync || kStages == 2, "the register pipeline alternates two buffers");
    uint4 xw[kWordsX], ww[kWordsW];
    auto fetch = [&](int s) {
      const int k0 = s * kTileK;
#pragma unroll
      for (int i = 0; i < kWordsX; ++i) {
        const int q = tid + i * kThreads;
        xw[i] = word_in(kWpr, t0, n, k0, k, q) ? *reinterpret_cast<const uint4*>(word_src(kWpr, b, ldb, t0, k0, q))
                                               : make_uint4(0u, 0u, 0u, 0u);
      }
#pragma unroll
      for (int i = 0; i < kWordsW; ++i) {
        const int q = tid + i * kThreads;
        ww[i] = word_in(kWpr, r0, m, k0, k, q) ? *reinterpret_cast<const uint4*>(word_src(kWpr, a, lda, r0, k0, q))
                                               : make_uint4(0u, 0u, 0u, 0u);
      }
    };
    auto publish = [&](int st) {
#pragma unroll
      for (int i = 0; i < kWordsX; ++i) *reinterpret_cast<uint4*>(xs(st) + word_dst(kWpr, kLd, tid + i * kThreads)) = xw[i];
#pragma unroll
      for (int i = 0; i < kWordsW; ++i) *reinterpret_cast<uint4*>(ws(st) + word_dst(kWpr, kLd, tid + i * kThreads)) = ww[i];
    };
    fetch(0);
    publish(0);
    __syncthreads();
    for (int s = 0; s < steps; ++s) {
      if (s + 1 < steps) fetch(s + 1);  // in flight during the products
      multiply(s & 1);
      // The other buffer was last read before the previous barrier: no one reads it now.
      if (s + 1 < steps) publish((s + 1) & 1);
      __syncthreads();
    }
  }
  // Element e of a 16 x 16 accumulator is token c_row, row c_col of its fragment pair.
#pragma unroll
  for (int i = 0; i < kFragT; ++i)
#pragma unroll
    for (int j = 0; j < kFragR; ++j)
#pragma unroll
      for (int e = 0; e < M::kC; ++e) {
        const int t = t0 + wt + 16 * i + M::c_row(lane, e), r = r0 + wr + 16 * j + M::c_col(lane, e);
        if (t < n && r < m) c[static_cast<size_t>(t) * ldc + r] = acc[i][j].v[e];
      }
#else
  (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc;
#endif
}

// One kernel (pipeline and tile shape) and what the launcher needs of it.
struct Shape {
  int tt, tr, threads;
  size_t smem;
  void (*kernel)(int, int, int, const uint16_t*, int, const uint16_t*, int, float*, int);
};
template <class P, int TT, int TR>
constexpr Shape shape() {
  return {TT, TR, P::kThreads, Tile<P, TT, TR>::kSmemBytes, hgemm_kernel<P, TT, TR>};
}
// Each pipeline family's shapes, largest first, with the cost of an element of C on it relative to
// 128 x 128 (a smaller tile reuses each loaded word less). The smaller tiles are for grids that would
// leave multiprocessors idle: a 1B's o and down projections at 512 tokens are 64 tiles of 128 x 128
// for 132 multiprocessors. Measured and dropped (H100 pp512, ROCFORGE_GPU_BLAS=0): a 64 x 64 tile,
// four blocks a multiprocessor (8B Q4_K_M 7381 tok/s against 8678 / 8374 for 128 x 128 / 64 x 128
// throughout, 1B Q4_0 42027 against 44126 / 46101); eight warps on 128 x 256, one block a
// multiprocessor, meant to relieve L2 (75% busy on an 8B's gate projection, ncu): 8226 against 10137,
// 1B 34846 against 44040 - one block's barriers then stall the whole multiprocessor.
struct Family {
  int first, count;
};
#if !(defined(__HIP__) || defined(__HIPCC__))
constexpr Shape kShapes[] = {shape<AsyncPipe, 128, 128>(), shape<AsyncPipe, 64, 128>(), shape<RegPipe, 128, 128>(),
                             shape<RegPipe, 64, 128>()};
constexpr double kCost[] = {1.0, 1.2, 1.0, 1.2};
constexpr Family kNvidia{0, 2}, kAmd{2, 2};
#else
constexpr Shape kShapes[] = {shape<RegPipe, 128, 128>(), shape<RegPipe, 64, 128>()};
constexpr double kCost[] = {1.0, 1.2};
constexpr Family kNvidia{0, 0}, kAmd{0, 2};
#endif
constexpr int kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

// Blocks of shape i a multiprocessor holds on the current device (0: it cannot launch), its shared
// memory beyond the 48 KB default allowed once per device.
int blocks_per_sm(int i) {
  static std::atomic<int> cache[64][kNumShapes];  // blocks + 1; 0 not asked yet
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return 0;
  int v = cache[dev][i].load(std::memory_order_acquire);
  if (v == 0) {
    int n = 0;
#if !(defined(__HIP__) || defined(__HIPCC__))
    if (cudaFuncSetAttribute(kShapes[i].kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kShapes[i].smem)) != cudaSuccess)
      n = 0;
    else
#endif
    if (hipOccupancyMaxActiveBlocksPerMultiprocessor(&n, kShapes[i].kernel, kShapes[i].threads, kShapes[i].smem) !=
        hipSuccess)
      n = 0;
    (void)hipGetLastError();  // a refused attribute is an answer here, not the next launch's error
    v = n + 1;
    cache[dev][i].store(v, std::memory_order_release);
  }
  return v - 1;
}

// The shape whose grid finishes first, among the family's: a multiprocessor's blocks run about as
// fast one at a time as two together, so the time is the waves of blocks over the multiprocessors
// times the work of a block at its shape's cost. H100 pp512: all of an 8B's products on 64 x 128
// tiles 8374 tok/s, all on 128 x 128 8678; counting waves by blocks resident (two a multiprocessor),
// the 8B's o and down went to 64 x 128: 9695 against 10091 with 128 x 128 throughout, while the 1B
// gained (49480 against 44015). ROCFORGE_GPU_HGEMM_TILE=i forces the family's i-th shape;
// ROCFORGE_GPU_HGEMM_AMD=1 takes AMD's family on NVIDIA.
int pick_shape(int m, int n) {
  static const Family fam = kNvidia.count > 0 && env_int("ROCFORGE_GPU_HGEMM_AMD", 0) != 1 ? kNvidia : kAmd;
  static const int forced = env_int("ROCFORGE_GPU_HGEMM_TILE", -1);
  if (forced >= 0 && forced < fam.count && blocks_per_sm(fam.first + forced) > 0) return fam.first + forced;
  const long sms = multiprocessors();
  int best = -1;
  double best_t = 0;
  for (int i = fam.first; i < fam.first + fam.count; ++i) {
    if (blocks_per_sm(i) <= 0) continue;
    const long blocks = static_cast<long>((n + kShapes[i].tt - 1) / kShapes[i].tt) * ((m + kShapes[i].tr - 1) / kShapes[i].tr);
    const double t = static_cast<double>((blocks + sms - 1) / sms) * kShapes[i].tt * kShapes[i].tr * kCost[i];
    if (best < 0 || t < best_t) best = i, best_t = t;
  }
  return best;
}

}  // namespace

int hgemm_tn(int m, int n, int k, const uint16_t* a, int lda, const uint16_t* b, int ldb, float* c, int ldc,
             hipStream_t s) {
  if (m <= 0 || n <= 0) return 0;
  if (k <= 0 || k % 8 != 0 || lda % 8 != 0 || ldb % 8 != 0 || lda < k || ldb < k || ldc < m || !aligned16(a) ||
      !aligned16(b))
    return fail("hgemm: unsupported shape or alignment (m %d n %d k %d, lda %d ldb %d ldc %d)", m, n, k, lda, ldb,
                ldc);
  const int i = pick_shape(m, n);
  if (i < 0) return fail("hgemm: no tile shape fits this device");
  const Shape& sh = kShapes[i];
  const dim3 grid((n + sh.tt - 1) / sh.tt, (m + sh.tr - 1) / sh.tr);
  if (grid.y > 65535u) return fail("hgemm: %d rows is more than one launch covers", m);
  sh.kernel<<<grid, sh.threads, sh.smem, s>>>(m, n, k, a, lda, b, ldb, c, ldc);
  return check(hipGetLastError(), "hgemm");
}

}  // namespace rocforge::gpu
