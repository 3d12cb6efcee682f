// sampling_select.h - the device sampler's small top-k: ranks inside one block and the finish in one
// wave (sampling.hip's top-k path for k <= its block size; included by sampling.hip only).
//
// Why: that path's last block runs alone, so its time is a chain of latencies. Ranking each value
// against all others from shared memory (kThreads dependent loads a thread) and finish_small's ten
// block barriers cost ~3 us and ~5 us of an H100's ~20 us sampling call (clock64 probes in the
// block). Here a block sorts inside its waves in registers and merges by binary search, and the
// finish is shuffles in one wave.
#pragma once

#include <climits>
#include <cstdint>

#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr float kMassOne = 1099511627776.f;  // 2^40

// An order-preserving 32-bit key of a float: larger floats, larger keys.
__device__ inline uint32_t order_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ inline float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// Fixed-point mass of scaled logit l under maximum mx. exp(d) < 2^-40 below d = -27.7; the
// comparison also sends NaN (inf - inf) to the branch: an entry equal to an infinite maximum weighs 1.
__device__ inline uint64_t mass_q(float l, float mx) {
  const float d = l - mx;
  if (!(d >= -28.f)) return l == mx ? static_cast<uint64_t>(kMassOne) : 0;
  return static_cast<uint64_t>(expf(d) * kMassOne);
}

__device__ inline unsigned long long shfl_xor_u64(unsigned long long v, int mask) {
  const unsigned lo = static_cast<unsigned>(rf_shfl_xor(static_cast<int>(v & 0xffffffffu), mask));
  const unsigned hi = static_cast<unsigned>(rf_shfl_xor(static_cast<int>(v >> 32), mask));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

__device__ inline unsigned long long shfl_u64(unsigned long long v, int src) {
  const unsigned lo = static_cast<unsigned>(rf_shfl(static_cast<int>(v & 0xffffffffu), src));
  const unsigned hi = static_cast<unsigned>(rf_shfl(static_cast<int>(v >> 32), src));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

__device__ inline unsigned long long wave_inclusive_scan_u64(unsigned long long v) {
  const int lane = threadIdx.x % warpSize;
  for (int off = 1; off < warpSize; off <<= 1) {
    const unsigned lo = static_cast<unsigned>(rf_shfl_up(static_cast<int>(v & 0xffffffffu), off));
    const unsigned hi = static_cast<unsigned>(rf_shfl_up(static_cast<int>(v >> 32), off));
    if (lane >= off) v += (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  return v;
}

// Descending rank of distinct 64-bit values, one per thread of a kThreads block: each wave sorts
// its values (bitonic, in registers), then a value's rank is its place in its wave plus, for every
// other wave, how many of that wave's values exceed it (a binary search of the sorted list in s,
// kThreads entries). On return thread t holds `x`, a wave-sorted value (no longer its own v), and
// x's rank. Every thread of the block must call it.
template <int kThreads>
__device__ int block_rank_desc(unsigned long long v, unsigned long long* s, unsigned long long& x) {
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize, n_waves = kThreads / warpSize;
  x = v;
  for (int size = 2; size <= warpSize; size <<= 1)
    for (int stride = size / 2; stride > 0; stride /= 2) {
      const unsigned long long y = shfl_xor_u64(x, stride);
      // Runs of `size` alternate direction; the last (size == warpSize) is descending.
      const bool keep_max = ((lane & stride) == 0) == ((lane & size) == 0);
      x = keep_max ? (x > y ? x : y) : (x < y ? x : y);
    }
  __syncthreads();  // s may still be read
  s[threadIdx.x] = x;
  __syncthreads();
  int rank = lane;
  for (int w = 0; w < n_waves; ++w) {
    if (w == wave) continue;
    const unsigned long long* sorted = s + w * warpSize;
    int pos = 0;  // binary lifting: sorted[0 .. pos) > x, pos <= warpSize - 1
    for (int step = warpSize / 2; step > 0; step /= 2)
      if (sorted[pos + step - 1] > x) pos += step;
    rank += pos + (sorted[pos] > x);
  }
  return rank;
}

constexpr int kWaveFinish = 64;  // the one-wave finish's most candidates: two a lane (one on 64-wide waves)

// The finish (top-p, min-p, the draw) in one wave over the row's nF <= kWaveFinish candidates sorted
// by key, descending, every one at or above kk: lane l holds positions l * per + j (per =
// kWaveFinish / warpSize) as key[j] / idx[j]; positions >= nF hold key 0, idx INT_MAX. The same
// thresholds and draw as finish_small: top-p walks the key order; the draw set (at or above every
// threshold) is a prefix of it, ranked by index for the walk in index order. wq / wi: kWaveFinish
// entries of shared scratch for this wave. Every lane returns the token.
__device__ inline int finish_wave(const uint32_t (&key)[2], const int (&idx)[2], int nF, uint32_t kk, float mx,
                                  float inv_t, const rf_sample_row& p, unsigned long long* wq, int* wi) {
  // Loops run over the two register slots with `j < per` inside: warpSize is not a compile-time
  // constant, and arrays indexed by a run-time loop would live in local memory.
  const int lane = threadIdx.x % warpSize, per = kWaveFinish / warpSize;
  uint32_t kp = 0;
  if (p.top_p < 1.f) {
    unsigned long long q[2] = {0, 0}, seg = 0;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      q[j] = j < per && lane * per + j < nF ? mass_q(key_value(key[j]), mx) : 0;
      seg += q[j];
    }
    const unsigned long long incl = wave_inclusive_scan_u64(seg);
    const unsigned long long z1 = shfl_u64(incl, warpSize - 1);
    const auto need = static_cast<unsigned long long>(ceil(static_cast<double>(p.top_p) * static_cast<double>(z1)));
    int found = -1;  // the first position where the running mass reaches `need`
    unsigned long long run = incl - seg;
    if (run < need && need <= incl) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        run += q[j];
        if (found < 0 && j < per && run >= need) found = lane * per + j;
      }
    }
    found = max(rf_wave_max(found), 0);  // none (need 0: not reached, the top has mass 2^40): the top
    const uint32_t k0 = static_cast<uint32_t>(rf_shfl(static_cast<int>(key[0]), found / per));
    const uint32_t k1 = static_cast<uint32_t>(rf_shfl(static_cast<int>(key[1]), found / per));
    kp = found % per == 0 ? k0 : k1;
  }
  const uint32_t km = p.min_p > 0.f ? order_key(mx + logf(p.min_p)) : 0u;
  const uint32_t kmin = max(kk, max(kp, km));
  int mine = 0;
#pragma unroll
  for (int j = 0; j < 2; ++j) mine += j < per && lane * per + j < nF && key[j] >= kmin;
  const int nD = rf_wave_sum(mine);
  int di[2], rank[2] = {0, 0};
#pragma unroll
  for (int j = 0; j < 2; ++j) di[j] = j < per && lane * per + j < nD ? idx[j] : INT_MAX;
  for (int src = 0; src < warpSize; ++src) {
    const int o0 = rf_shfl(di[0], src), o1 = rf_shfl(di[1], src);  // di[1] is INT_MAX where per == 1
#pragma unroll
    for (int j = 0; j < 2; ++j) rank[j] += (o0 < di[j]) + (o1 < di[j]);
  }
#pragma unroll
  for (int j = 0; j < 2; ++j)
    if (j < per && lane * per + j < nD) {
      wq[rank[j]] = mass_q(key_value(key[j]) * inv_t, mx * inv_t);
      wi[rank[j]] = di[j];
    }
  rf_wave_sync();
  unsigned long long wt[2] = {0, 0}, seg = 0;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
    wt[j] = j < per && lane * per + j < nD ? wq[lane * per + j] : 0;
    seg += wt[j];
  }
  const unsigned long long incl = wave_inclusive_scan_u64(seg);
  const unsigned long long total = shfl_u64(incl, warpSize - 1);
  const auto target = static_cast<unsigned long long>(static_cast<double>(p.u) * static_cast<double>(total));
  int pick = -1;
  unsigned long long run = incl - seg;
  if (run <= target && target < incl) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      run += wt[j];
      if (pick < 0 && j < per && run > target) pick = wi[lane * per + j];
    }
  }
  pick = rf_wave_max(pick);
  return pick >= 0 ? pick : wi[0];
}

}  // namespace
}  // namespace rocforge::gpu
