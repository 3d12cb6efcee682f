// sampling_state.h - what sampling.hip's launches and sampling_whole.hip's one-launch path share:
// the per-row workspace (state, histogram, per-block partials), the blocks' histograms, the
// block-wide scans and the draw's last steps. Included by those two files only.
#pragma once

#include "gpu/kernels.h"
#include "gpu/sampling_select.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 2048;                    // vocabulary entries per block
constexpr int kPerThread = kChunk / kThreads;   // 8
constexpr int kMaxBlocks = 1024;                // per row: the last block scans this many partials
constexpr int kMaxCand = 1024;                  // top-k fast path's k, and the shared-memory finish
constexpr int kBins = 2048;                     // level histograms: 11-bit digits of the key

// Per-row state and partials in the caller's workspace (zeroed once; every launch leaves the
// counter at 0 and the histogram zeroed, so calls need no clearing in between).
struct RowState {
  unsigned arrived;  // blocks of the current launch done; the last one resets it
  unsigned n_cand;   // top-k fast path: candidate slots reserved
  int done;          // the row's token is written; later launches skip it
  float mx;          // max scaled logit
  uint32_t prefix;   // key digits fixed by the level passes so far
  uint32_t kk, kp;   // top-k / top-p key thresholds (0: none)
  // sampling_whole.hip's:
  unsigned gen;       // phases released so far (the waiting blocks watch it move)
  unsigned n_arrived; // the call's block arrivals, all phases (reset to 0 by its last)
  uint32_t mx_key;    // order_key of the row's maximum (the blocks' atomicMax; reset to 0)
  uint32_t mn_not;    // ~order_key of its minimum (atomicMax of the complement; reset to 0)
  unsigned n_gather;  // candidates gathered (reset to 0)
  int action;         // what the next phase does
  uint32_t lo, hi;    // the key range it works on (or lo: a distance bin; kDraw: lo is the threshold)
  unsigned long long need;  // count (top-k) or mass (top-p) still needed under `prefix`
};

struct RowWs {
  RowState* st;
  unsigned long long* hist;      // [kBins]
  float* blk_max;                // [B]
  int* blk_arg;                  // [B]
  unsigned long long* blk_mass;  // [B]
  int32_t* cand;                 // [n] top-k fast path: candidate indices, in no particular order
  uint32_t* cand_key;            // [n] and their keys
};

__host__ __device__ inline size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }
__host__ __device__ inline int blocks_for(int n) { return (n + kChunk - 1) / kChunk; }
__host__ __device__ inline size_t row_bytes(int n) {
  const size_t b = static_cast<size_t>(blocks_for(n));
  return align_up(sizeof(RowState) + kBins * 8 + b * (4 + 4 + 8) + static_cast<size_t>(n) * 8, 256);
}

__device__ inline RowWs row_ws(void* ws, int row, int n) {
  char* p = static_cast<char*>(ws) + static_cast<size_t>(row) * row_bytes(n);
  const int B = blocks_for(n);
  RowWs w;
  w.st = reinterpret_cast<RowState*>(p);
  p += sizeof(RowState);
  w.hist = reinterpret_cast<unsigned long long*>(p);
  p += kBins * 8;
  w.blk_mass = reinterpret_cast<unsigned long long*>(p);
  p += static_cast<size_t>(B) * 8;
  w.blk_max = reinterpret_cast<float*>(p);
  p += static_cast<size_t>(B) * 4;
  w.blk_arg = reinterpret_cast<int*>(p);
  p += static_cast<size_t>(B) * 4;
  w.cand = reinterpret_cast<int32_t*>(p);
  p += static_cast<size_t>(n) * 4;
  w.cand_key = reinterpret_cast<uint32_t*>(p);
  return w;
}

// The row's parameters: from the device array when given, else the launch's own copy.
__device__ inline rf_sample_row params_of(const rf_sample_row* rows, const rf_sample_row& one, int r) {
  return rows ? rows[r] : one;
}
__device__ inline bool topk_fast(const rf_sample_row& p, int n) { return p.top_k > 0 && p.top_k < n && p.top_k <= kMaxCand; }
__device__ inline bool has_topk(const rf_sample_row& p, int n) { return p.top_k > 0 && p.top_k < n; }

// A block's histogram (counts or fixed-point masses) as three 32-bit parts of 14, 14 and 12 bits of
// each weight (at most 2^40): shared 32-bit adds are single instructions where 64-bit ones loop on
// compare-and-swap (H100: 37.5 -> 33.5 us a one-launch top-p call), and a bin's parts stay below
// 2^32 for up to 2^13 entries a block.
struct BlockHist {
  unsigned part[3][kBins];
};
static_assert(kThreads * 32 <= (1 << 13), "BlockHist: a bin's parts must stay below 2^32");

__device__ inline void hist_add(BlockHist& h, int bin, unsigned long long q) {
  const unsigned a = static_cast<unsigned>(q & 0x3fffu), b = static_cast<unsigned>((q >> 14) & 0x3fffu),
                 c = static_cast<unsigned>(q >> 28);
  if (a) atomicAdd(&h.part[0][bin], a);
  if (b) atomicAdd(&h.part[1][bin], b);
  if (c) atomicAdd(&h.part[2][bin], c);
}
__device__ inline unsigned long long hist_bin(const BlockHist& h, int bin) {
  return h.part[0][bin] + (static_cast<unsigned long long>(h.part[1][bin]) << 14) +
         (static_cast<unsigned long long>(h.part[2][bin]) << 28);
}
__device__ inline void hist_zero(BlockHist& h, int nb) {
  for (int b = threadIdx.x; b < nb; b += kThreads) h.part[0][b] = h.part[1][b] = h.part[2][b] = 0;
}

// Inclusive scan of one value per thread over the block, and the block's total: shuffles inside
// each wave, the waves' totals through sh (kThreads entries; two barriers, where a shared-memory
// Hillis-Steele scan took seventeen).
__device__ inline unsigned long long block_inclusive_scan(unsigned long long v, unsigned long long* sh,
                                                          unsigned long long* total = nullptr) {
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize, n_waves = kThreads / warpSize;
  v = wave_inclusive_scan_u64(v);
  __syncthreads();  // sh may still be read by a previous call
  if (lane == warpSize - 1) sh[wave] = v;
  __syncthreads();
  unsigned long long before = 0, all = 0;
  for (int w = 0; w < n_waves; ++w) {
    before += w < wave ? sh[w] : 0;
    all += sh[w];
  }
  if (total) *total = all;
  return v + before;
}

// The bin of hist[0..nb) where the running total walked from the top bin down first reaches
// `need`, and the total of the bins above it. nb is a multiple of kThreads. When the histogram
// holds less than `need` (not reached by consistent callers), the lowest bin.
template <class H>
__device__ void find_from_top(const H* hist, int nb, unsigned long long need, unsigned long long* sh, int* bin,
                              unsigned long long* above) {
  const int per = nb / kThreads, t = threadIdx.x;
  if (t == 0) *bin = 0, *above = 0;  // need 0 (not reached by consistent callers): the top bin's floor
  unsigned long long s = 0;
  for (int j = 0; j < per; ++j) s += hist[nb - 1 - (t * per + j)];
  unsigned long long total;
  const unsigned long long incl = block_inclusive_scan(s, sh, &total);
  const unsigned long long excl = incl - s;
  if (excl < need && need <= incl) {
    unsigned long long run = excl;
    for (int j = 0; j < per; ++j) {
      const int b = nb - 1 - (t * per + j);
      if (run + hist[b] >= need) { *bin = b; *above = run; break; }
      run += hist[b];
    }
  }
  if (t == 0 && need > total) { *bin = 0; *above = total - hist[0]; }
  __syncthreads();
}

// Block-wide uint64 sum through the scan's shared array.
__device__ inline unsigned long long block_sum_u64(unsigned long long v, unsigned long long* sh) {
  unsigned long long total;
  block_inclusive_scan(v, sh, &total);
  return total;
}

// The draw's last step: the entry of one block's chunk where the running weight passes `target`
// (the chunk starts `before` into the row's total). Thread t walks [b0, b0 + per) in index order.
__device__ inline void walk_block(const float* L, int n, int b0, int per, uint32_t kmin, float inv_t, float mxt,
                                  unsigned long long target, unsigned long long before, unsigned long long* sh,
                                  int* pick) {
  const int e0 = min(n, b0 + per);
  unsigned long long mine = 0;
  for (int i = b0; i < e0; ++i) {
    const float l = L[i];
    if (order_key(l) >= kmin) mine += mass_q(l * inv_t, mxt);
  }
  const unsigned long long incl = block_inclusive_scan(mine, sh);
  const unsigned long long start = before + incl - mine;
  if (start <= target && target < start + mine) {
    unsigned long long run = start;
    for (int i = b0; i < e0; ++i) {
      const float l = L[i];
      if (order_key(l) < kmin) continue;
      run += mass_q(l * inv_t, mxt);
      if (run > target) { *pick = i; break; }
    }
  }
  __syncthreads();
}

// The block of B whose weight (sum[b], shared or global) holds floor(u * total): *blk (-1: none),
// *before the weight ahead of it, returns the target.
template <class Sum>
__device__ unsigned long long find_block(const Sum& sum, int B, float u, unsigned long long* sh, int* blk,
                                         unsigned long long* before) {
  const int t = threadIdx.x, per = (B + kThreads - 1) / kThreads;
  unsigned long long s = 0;
  for (int j = 0; j < per; ++j) s += t * per + j < B ? sum(t * per + j) : 0;
  unsigned long long total;
  const unsigned long long incl = block_inclusive_scan(s, sh, &total);
  const unsigned long long target = static_cast<unsigned long long>(static_cast<double>(u) * static_cast<double>(total));
  if (t == 0) *blk = -1;
  __syncthreads();
  if (incl - s <= target && target < incl) {
    unsigned long long run = incl - s;
    for (int j = 0; j < per; ++j) {
      if (t * per + j >= B) break;
      const unsigned long long bm = sum(t * per + j);
      if (run + bm > target) { *blk = t * per + j; *before = run; break; }
      run += bm;
    }
  }
  __syncthreads();
  return target;
}

}  // namespace

// sampling_whole.hip: the rows of a call without a top-k (temperature, top-p, min-p) in one launch
// whose blocks stay resident. Entries a thread holds (8, 16 or 32) for n_rows rows of n_vocab, or 0
// where the row's blocks would not all fit on the device at once (the launches of sampling.hip
// then serve them); ROCFORGE_GPU_SAMPLE_WHOLE=0 / 8 / 16 / 32 overrides (a size that does not fit: 0).
int whole_per_thread(int n_rows, int n_vocab);
// Whose the device's one-launch sampler is. Its blocks wait for each other, which is safe only while
// no launch on another stream waits the same way: two such launches at once could each hold part of
// the device and wait forever for blocks that cannot become resident. So one stream a device runs
// it: the first to ask claims it (true), others get false (and the separate launches) until
// whole_release(owner) (kernels.h), which stream_destroy calls.
bool whole_claim(hipStream_t s);
int launch_whole(int per_thread, const float* logits, int n, int n_rows, const rf_sample_row* d_rows,
                 const rf_sample_row& one, int32_t* tokens, void* ws, hipStream_t s);

}  // namespace rocforge::gpu
