// matvec_common.h - what matvec.hip's single-token kernels and matvec_batched.hip's kernels for
// several tokens or experts share: the int8 row loop (matvec8q_rows), the per-format launch tuning,
// the thread-group width, persistent grids and weight-matrix validation. Include from .hip files.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gpu/kernels.h"
#include "gpu/matvec_stores.h"
#include "gpu/quant_formats.h"
#include "gpu/resident.h"

namespace rocforge::gpu {
namespace {

constexpr int kBlock = 256;  // threads per block: 8 waves of 32 or 4 waves of 64

// The int8 decode product (x quantized by quantize_q8_kernel): four lanes per item of
// F::kItemChunks chunks (quant_formats.h), each lane loading its activations once for all R rows.
// One row block: `groups` thread groups of `group` threads, R consecutive rows each, rows
// (rb * groups + g) * R ..; `part` is the block's shared scratch.
template <class F, int R, class Store>
__device__ inline void matvec8q_rows(const uint8_t* __restrict__ w, size_t stride, const int8_t* __restrict__ xq,
                                     const float* __restrict__ xd, const Store& store, int rows, int cols, int group,
                                     int rb, float (*part)[kRfMaxWavesPerBlock]) {
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int n_chunks = cols / 32;
  const int n_items = F::items(n_chunks);
  const int p = gl & 3, step = group >> 2;
  const int row0 = (rb * groups + g) * R;
  float acc[R] = {};
  if (row0 < rows) {
    const uint8_t* rp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
    // All R rows' weight words are requested before any arithmetic. (An explicit two-item software
    // pipeline on top of this measured 0-7% slower on an H200, 8B shapes.)
#pragma unroll 2
    for (int it = gl >> 2; it < n_items; it += step) {
      typename F::Raw raw[R];
#pragma unroll
      for (int r = 0; r < R; ++r) F::load_raw(rp[r], it, p, n_chunks, raw[r]);
      typename F::Xq xv;
      F::load_xq(xq, xd, it, p, n_chunks, xv);
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] += F::dot_raw(raw[r], it, p, n_chunks, xv);
    }
  }
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  if (group == warpSize) {
    // One wave per row group: its shuffles finish the sums, and with no barrier a wave goes on to its
    // next row block (and that block's loads) while the block's other waves still compute.
    float sum[R];
#pragma unroll
    for (int r = 0; r < R; ++r) sum[r] = rf_wave_sum(acc[r]);
    if (lane == 0 && row0 < rows) store(row0, sum, min(R, rows - row0));
    return;
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = rf_wave_sum(acc[r]);
    if (lane == 0) part[r][wave] = s;
  }
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
    float sum[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      sum[r] = 0.f;
      for (int i = 0; i < per_group; ++i) sum[r] += part[r][wave + i];
    }
    store(row0, sum, min(R, rows - row0));
  }
  __syncthreads();  // part is rewritten by the next row block
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// Launch shape of the int8 decode path: rows per thread group (1, 2, 4) and the largest group, per
// format from sweeps over the 8B decode matrices on an H200 (ROCFORGE_MV_ROWS x ROCFORGE_MV_STEPS x
// ROCFORGE_MV_GROUP with `gpu_bench --matvec-only`, 2026-11-26, after the PDL and layout changes;
// e.g. q4_k 4 rows 1.89, 2 rows 1.73, 1 row 1.95 ms/token); the variables override every format.
struct Tuning {
  int rows = 2;
  int max_group = kBlock;
  // L2 prefetch of the rows before waiting on the previous kernel (PDL), ROCFORGE_MV_PREFETCH=1:
  // off by default, measured -2.6% on 8B Q8_0, -0.8% on 8B Q4_K_M, +0.7% on 1B Q4_K_M (H200).
  int prefetch = 0;
  int min_steps = 2;  // items per lane and row at least (ROCFORGE_MV_STEPS)
  int persist = 0;    // grid capped at one device-full of blocks that walk the rows (ROCFORGE_MV_PERSIST)
  // Resident blocks per SM the 2-row kernel is compiled for (__launch_bounds__; ROCFORGE_MV_MINBLOCKS
  // = 1 or 4): unbounded (1), the K-quant kernels took 72-79 registers (3 blocks of 256 threads per
  // SM). H200, 8B matvecs only: q4_k 1.88 -> 1.79 ms/token at 4 (64 registers; at 6 they spill:
  // 2.38), q6_k 2.32 -> 2.21; 8B Q4_K_M tg128 338 -> 352; 5 blocks: 417 -> 390. Q4_0 (4 rows)
  // stays unbounded; the Q8_0 planes take 4 (tuning() below).
  int min_blocks = 1;
  // Decode's gate/up with SwiGLU on the register kernel (matvec_q8_swiglu) also where the device has
  // the staged kernel but its SwiGLU declined the shape (an 8B's 448 groups), on devices of at most
  // kSwigluRegMaxBwPerSm bytes/s of memory bandwidth a multiprocessor. Fifteenth pass, tg128: Q4_K
  // on the H100 (3.35 TB/s, 132 SMs) 413.2 / 413.4 -> 424.1 / 422.1 tok/s, on the H200 (4.8 TB/s)
  // 487.3 / 487.7 / 487.2 -> 477.4 / 478.8 / 476.5 (the staged kernel keeps more bytes in flight);
  // not Q8_0 (H100 286.2 / 284.7 -> 271.8 / 272.4) nor Q4_0 (its 4-row kernel's resident blocks are
  // fewer than the groups: declined).
  int swiglu_reg = 0;
};
constexpr double kSwigluRegMaxBwPerSm = 30e9;
Tuning tuning(uint32_t type) {
  // Environment overrides, read once; 0 / -1: not set (or out of range).
  struct Overrides {
    int rows, max_group, prefetch, min_steps, persist, min_blocks;
  };
  static const Overrides env = [] {
    Overrides o;
    o.rows = env_int("ROCFORGE_MV_ROWS", 0);
    if (o.rows != 1 && o.rows != 2 && o.rows != 4) o.rows = 0;
    o.max_group = env_int("ROCFORGE_MV_GROUP", 0);
    if (o.max_group < 32 || o.max_group > kBlock) o.max_group = 0;
    o.prefetch = env_int("ROCFORGE_MV_PREFETCH", 0) == 1 ? 1 : 0;
    o.min_steps = env_int("ROCFORGE_MV_STEPS", 0);
    if (o.min_steps < 1 || o.min_steps > 8) o.min_steps = 0;
    o.persist = env_int("ROCFORGE_MV_PERSIST", -1);
    if (o.persist >= 0) o.persist = o.persist == 1 ? 1 : 0;
    o.min_blocks = env_int("ROCFORGE_MV_MINBLOCKS", 0);
    if (o.min_blocks != 1 && o.min_blocks != 4) o.min_blocks = 0;
    return o;
  }();
  Tuning t;
  const bool k_quant = type == 12 || type == 14 || type == 1014;
  switch (type) {
    case 2: t = {1, 256}; break;    // Q4_0
    case 8: t = {1, 256}; break;    // Q8_0
    case 12: t = {2, 256}; break;  // Q4_K
    case 14: t = {2, 256}; break;  // Q6_K
    case 1014: t = {2, 256}; break;  // Q6_K, group-of-8 planes (repack.h)
    // Q4_0 / Q8_0 planes: re-swept end to end after the PDL / attention / fusion changes (H200,
    // `rocforge bench -n 128`, 2026-11-26): Q4_0 4 rows persistent: 8B 396.6 -> 426.1 tok/s, 1B
    // 1336 -> 1407; Q8_0 persistent at 4 blocks per SM: 1B 1071 -> 1144.
    case 1002: t = {4, 256}; t.persist = 1; break;   // Q4_0, group-of-8 planes
    case 1008: t = {2, 256}; t.persist = 1; t.min_blocks = 4; break;  // Q8_0, group-of-8 planes
    // The other int8 paths, from one sweep over rows x group x persist x min_blocks (H200, 8B shapes,
    // gpu_bench --matvec-only, 2026-11-26); ms/token at the {2, 256} default -> here:
    case 13: t = {2, 64}; t.min_blocks = 4; break;  // Q5_K    2.68 -> 2.05
    case 3: t = {4, 64}; break;                     // Q4_1    2.19 -> 1.85
    case 6: t = {2, 64}; break;                     // Q5_0    3.24 -> 2.70
    case 7: t = {4, 64}; break;                     // Q5_1    2.61 -> 2.10
    case 20: t = {2, 64}; break;                    // IQ4_NL  3.18 -> 2.68
    case 23: t = {2, 64}; t.min_blocks = 4; break;  // IQ4_XS  2.53 -> 2.31
    case 10: t = {4, 256}; break;                   // Q2_K    2.05 -> 1.70
    case 11: t = {2, 64}; t.min_blocks = 4; break;  // Q3_K    3.06 -> 2.28
    case 1011: t = {2, 64}; t.min_blocks = 4; break;  // Q3_K, group-of-8 planes (repack.h)
    case 39: t = {2, 64}; break;                    // MXFP4   3.43 -> 2.91
    default: break;
  }
  // Persistent blocks: +2-3% on 8B Q4_K_M decode (H200).
  if (k_quant) {
    t.persist = 1;
    t.min_blocks = 4;
  }
  if (type == 12) t.swiglu_reg = 1;
  t.prefetch = env.prefetch;
  if (env.rows) t.rows = env.rows;
  if (env.max_group) t.max_group = env.max_group;
  if (env.min_steps) t.min_steps = env.min_steps;
  if (env.persist >= 0) t.persist = env.persist;
  if (env.min_blocks) t.min_blocks = env.min_blocks;
  return t;
}

// Threads per row group of the int8 path: the fewest (from one wave) that still give the device
// about kTargetWaves waves per multiprocessor in all, within kBlock, the tuning cap, and at least
// tu.min_steps items per lane. One wave per group needs no barrier between row blocks (matvec8q_rows),
// which wins wherever the rows alone fill the device (H200, gpu_bench --matvec-only: 8B gate/up and
// the output matrix 10-20% faster than at 64 threads), while a few long rows need wide groups (1B
// ffn_down, 2048 x 8192: 128 threads 5.6 us, 32 threads 7.3 us).
constexpr int kTargetWaves = 22;
template <class F>
int q8_group(const Tuning& tu, int rows, int cols, int rows_per_group) {
  const int n_items = (cols / 32 + F::kItemChunks - 1) / F::kItemChunks;
  const long target = static_cast<long>(kTargetWaves) * multiprocessors();
  const long groups = (rows + rows_per_group - 1) / rows_per_group;
  int group = wave_size();
  while (group < kBlock && group * 2 <= tu.max_group && group * 2 <= 4 * n_items / tu.min_steps &&
         groups * (group / wave_size()) < target)
    group *= 2;
  return group;
}

// min(want, the blocks of `kernel` that fit on the device at once): persistent grids.
// (One block a multiprocessor where the occupancy query fails.)
template <class K>
int resident_grid(K kernel, int want) {
  return std::min(want, std::max(resident_blocks(kernel, kBlock), multiprocessors()));
}

// Validates a weight matrix; sets *vector_ok when the 32-element chunk path may read it.
template <class F>
int check_matrix(const char* what, const void* w, size_t stride, int rows, int cols, bool* vector_ok) {
  if (!w || rows <= 0 || cols <= 0) return fail("%s: empty matrix (rows %d, cols %d)", what, rows, cols);
  if (cols % F::kBlockElems != 0)
    return fail("%s: row length %d is not a multiple of the block size %d", what, cols, F::kBlockElems);
  const size_t row_bytes = static_cast<size_t>(cols) / F::kBlockElems * F::kBlockBytes;
  if (stride < row_bytes) return fail("%s: row stride %zu < row bytes %zu", what, stride, row_bytes);
  if (F::kBlockElems == 1) {
    *vector_ok = cols % 32 == 0 && stride % 16 == 0 && aligned(w, 16);
    if (!aligned(w, F::kBlockBytes) || stride % F::kBlockBytes != 0)
      return fail("%s: weights not aligned to their element size", what);
    return 0;
  }
  *vector_ok = true;
  // Blocks are decoded with loads as wide as their size allows; rows must keep that alignment.
  const size_t need = F::kBlockBytes % 16 == 0 ? 16 : F::kBlockBytes % 8 == 0 ? 8 : F::kBlockBytes % 4 == 0 ? 4
                                                 : F::kBlockBytes % 2 == 0 ? 2 : 1;
  if (!aligned(w, need) || stride % need != 0)
    return fail("%s: weights or row stride (%zu) not %zu-byte aligned", what, stride, need);
  return 0;
}

}  // namespace
}  // namespace rocforge::gpu
