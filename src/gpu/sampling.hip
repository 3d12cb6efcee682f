// sampling.hip - next-token sampling on the device: greedy, temperature, top-k, top-p, min-p.
//
// Why several blocks: one block walking a 128k vocabulary is bound by one compute unit's issue
// rate, ~20 us a pass (the previous kernel: 206 us for top-k + top-p, 1 ms for top-p alone). Here
// every pass over the vocabulary is spread over ceil(n / 2048) blocks per row, and the last block
// of a launch to finish (an arrival counter) does the row's serial part.
//
// The chain is the host Sampler's: the filters act on the model's own distribution (the logits l
// as they are), the temperature only on the draw. Candidate sets are thresholds on an
// order-preserving 32-bit key of l:
//   top-k: the key of the k-th largest l (ties all stay in),
//   top-p: the largest key K with mass(key >= K) >= ceil(top_p * mass(top-k set)),
//   min-p: key(max + ln(min_p)).
// Masses are fixed point, q(l) = floor(exp(l - max) * 2^40): integer sums are exact in any order,
// so the result does not depend on how the vocabulary was split (tokens below 2^-40 of the most
// likely one get mass 0). The draw weighs candidates by q(l * (1 / T)) against max * (1 / T), by
// inverse CDF in index order with the caller's u: the first candidate whose running weight exceeds
// floor(u * total).
//
// Launches per call (the host skips those no row needs):
//   scan        greedy rows: argmax. Top-k rows (k <= 1024): each block keeps its own top-k (one
//               row, k <= 256: a small superset of it); the last block selects among their union
//               and finishes the row (sampling_select.h for one row). Others: block maxima.
//   level x3    top-k with k > 1024: count histograms of 11 + 11 + 10 key bits find the k-th key.
//   level x3    top-p over the whole vocabulary: the same with masses.
//   draw        per-block candidate masses; the last block finds the token.
// Where no row has a top-k beyond the scan's, the rows without one take a single launch instead of
// the level and draw launches (sampling_whole.hip), and the scan runs only for greedy and top-k rows.
#include "gpu/sampling_state.h"

namespace rocforge::gpu {
namespace {

// Every block calls this once after publishing its partials; true in the last block to arrive,
// which then sees every other block's writes.
__device__ inline bool arrive_last(RowState* st, int n_blocks) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(&st->arrived, 1u) == static_cast<unsigned>(n_blocks - 1);
    if (last) st->arrived = 0;
  }
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// Block-wide argmax of (bv, bi) pairs, the lowest index among equal values; every thread finds the
// result in s_val[0] / s_idx[0] (kThreads entries each).
__device__ inline void block_argmax(float bv, int bi, float* s_val, int* s_idx) {
  const int t = threadIdx.x;
  __syncthreads();  // s_val / s_idx may still be read
  s_val[t] = bv, s_idx[t] = bi;
  __syncthreads();
  for (int off = kThreads / 2; off > 0; off /= 2) {
    if (t < off) {
      const float ov = s_val[t + off];
      const int oi = s_idx[t + off];
      if (ov > s_val[t] || (ov == s_val[t] && oi < s_idx[t])) s_val[t] = ov, s_idx[t] = oi;
    }
    __syncthreads();
  }
}

// Block-wide max (scratch: kRfMaxWavesPerBlock floats).
__device__ inline float block_max(float v, float* scratch) { return rf_block_max(v, scratch); }

// ---- the top-k finish, in one block: the row's candidates (indices into L) -> token.

struct Small {  // up to kMaxCand candidates in shared memory
  int idx[kMaxCand];
  uint32_t key[kMaxCand];
  unsigned long long q[kMaxCand];
  unsigned long long tq[kMaxCand];  // by key, then by index
  uint32_t tu[kMaxCand];
  int count;
};

// Radix select: the k-th largest of the keys `each` visits (each(f) calls f(key) for every
// candidate of this thread), 4 passes of 8 bits.
template <class Each>
__device__ uint32_t kth_key(const Each& each, int k, unsigned* hist256, unsigned long long* sh) {
  __shared__ int s_bin;
  __shared__ unsigned long long s_above;
  uint32_t prefix = 0;
  unsigned long long need = static_cast<unsigned long long>(k);
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    const uint32_t high = pass == 0 ? 0u : (0xffffffffu << (shift + 8));
    hist256[threadIdx.x] = 0;  // kThreads == 256
    __syncthreads();
    each([&](uint32_t key) {
      if ((key & high) == prefix) atomicAdd(&hist256[(key >> shift) & 255u], 1u);
    });
    __syncthreads();
    find_from_top(hist256, 256, need, sh, &s_bin, &s_above);
    prefix |= static_cast<uint32_t>(s_bin) << shift;
    need -= s_above;
    __syncthreads();
  }
  return prefix;
}

// Shared-memory finish over s.count candidates (unordered; s.q: mass at temperature 1): top-p by ranking on key,
// min-p, then the draw by ranking on index. O(count^2 / threads) comparisons: count is ~k.
__device__ int finish_small(Small& s, uint32_t kk, float mx, float inv_t, const rf_sample_row& p,
                             unsigned long long* sh) {
  __shared__ int s_pick;
  const int C = s.count, t = threadIdx.x;
  constexpr int per = kMaxCand / kThreads;
  uint32_t kp = 0;
  if (p.top_p < 1.f) {
    for (int i = t; i < C; i += kThreads) {  // rank by key, descending; equal keys by index
      int rank = 0;
      for (int j = 0; j < C; ++j) rank += s.key[j] > s.key[i] || (s.key[j] == s.key[i] && s.idx[j] < s.idx[i]);
      s.tq[rank] = s.q[i];
      s.tu[rank] = s.key[i];
    }
    __syncthreads();
    unsigned long long seg = 0;
    for (int j = 0; j < per; ++j) seg += t * per + j < C ? s.tq[t * per + j] : 0;
    unsigned long long z1;
    const unsigned long long incl = block_inclusive_scan(seg, sh, &z1);
    const unsigned long long need = static_cast<unsigned long long>(ceil(static_cast<double>(p.top_p) * static_cast<double>(z1)));
    if (t == 0) s_pick = 0;
    __syncthreads();
    if (incl - seg < need && need <= incl) {
      unsigned long long run = incl - seg;
      for (int j = 0; j < per; ++j) {
        run += s.tq[t * per + j];
        if (run >= need) { s_pick = t * per + j; break; }
      }
    }
    __syncthreads();
    kp = s.tu[s_pick];
    __syncthreads();  // tq / tu are rewritten below
  }
  const uint32_t km = p.min_p > 0.f ? order_key(mx + logf(p.min_p)) : 0u;
  const uint32_t kmin = max(kk, max(kp, km));
  for (int i = t; i < C; i += kThreads) {  // rank by index (indices are distinct)
    int rank = 0;
    for (int j = 0; j < C; ++j) rank += s.idx[j] < s.idx[i];
    s.tq[rank] = s.key[i] >= kmin ? mass_q(key_value(s.key[i]) * inv_t, mx * inv_t) : 0;  // the draw's weight
    s.tu[rank] = static_cast<uint32_t>(s.idx[i]);
  }
  __syncthreads();
  unsigned long long seg = 0;
  for (int j = 0; j < per; ++j) seg += t * per + j < C ? s.tq[t * per + j] : 0;
  unsigned long long total;
  const unsigned long long incl = block_inclusive_scan(seg, sh, &total);
  const unsigned long long target = static_cast<unsigned long long>(static_cast<double>(p.u) * static_cast<double>(total));
  if (t == 0) s_pick = C > 0 ? static_cast<int>(s.tu[0]) : 0;
  __syncthreads();
  if (incl - seg <= target && target < incl) {
    unsigned long long run = incl - seg;
    for (int j = 0; j < per; ++j) {
      run += s.tq[t * per + j];
      if (run > target) { s_pick = static_cast<int>(s.tu[t * per + j]); break; }
    }
  }
  __syncthreads();
  return s_pick;
}

// The same over the whole vocabulary for candidate sets beyond shared memory (k's ties with mass
// in their thousands): top-p by bisection on the key bits, then the draw over L in index order.
// One block and slow (tens of passes), only for such rows.
__device__ int finish_big(const float* L, int n, float inv_t, uint32_t kk, float mx, const rf_sample_row& p,
                          unsigned long long* sh) {
  __shared__ int s_pick;
  const int t = threadIdx.x;
  auto mass_at_or_above = [&](uint32_t K) {
    unsigned long long m = 0;
    for (int i = t; i < n; i += kThreads) {
      const float l = L[i];
      if (order_key(l) >= K) m += mass_q(l, mx);
    }
    return block_sum_u64(m, sh);
  };
  uint32_t kp = 0;
  if (p.top_p < 1.f) {
    const unsigned long long z1 = mass_at_or_above(kk);
    const unsigned long long need = static_cast<unsigned long long>(ceil(static_cast<double>(p.top_p) * static_cast<double>(z1)));
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t c = kp | (1u << bit);
      if (mass_at_or_above(c) >= need) kp = c;
    }
  }
  const uint32_t km = p.min_p > 0.f ? order_key(mx + logf(p.min_p)) : 0u;
  const uint32_t kmin = max(kk, max(kp, km));
  const int seg_len = (n + kThreads - 1) / kThreads, b = t * seg_len, e = min(n, b + seg_len);
  unsigned long long seg = 0;
  for (int i = b; i < e; ++i) {
    const float l = L[i];
    if (order_key(l) >= kmin) seg += mass_q(l * inv_t, mx * inv_t);
  }
  unsigned long long total;
  const unsigned long long incl = block_inclusive_scan(seg, sh, &total);
  const unsigned long long target = static_cast<unsigned long long>(static_cast<double>(p.u) * static_cast<double>(total));
  if (t == 0) s_pick = 0;
  __syncthreads();
  if (incl - seg <= target && target < incl) {
    unsigned long long run = incl - seg;
    for (int i = b; i < e; ++i) {
      const float l = L[i];
      if (order_key(l) < kmin) continue;
      run += mass_q(l * inv_t, mx * inv_t);
      if (run > target) { s_pick = i; break; }
    }
  }
  __syncthreads();
  return s_pick;
}

// ---- kernels: grid (blocks_for(n), rows), kThreads each.

// Four blocks a multiprocessor on NVIDIA (64 registers): the one-row top-k path's selection made
// the compiler's choice 80, three blocks, and a 16-row call (1008 blocks) 37.5 -> 43.5 us on an
// H100. HIP reads the second bound as waves per SIMD, not blocks: it keeps the compiler's choice.
#if defined(__HIP__) || defined(__HIPCC__)
#define RF_SCAN_BOUNDS __launch_bounds__(kThreads)
#else
#define RF_SCAN_BOUNDS __launch_bounds__(kThreads, 4)
#endif
// kLoneRow: a one-row call (generation) takes the small top-k path's block_rank_desc selections;
// calls of several rows keep kth_key's passes and finish_small, quicker where many rows' blocks
// share the multiprocessors (the instantiation without the lone-row code measured as before).
// whole_elsewhere: rows without a top-k go to sampling_whole.hip's launch (this one skips them).
template <bool kLoneRow>
__global__ void RF_SCAN_BOUNDS scan_kernel(const float* __restrict__ logits, int n,
                                                        const rf_sample_row* __restrict__ rows, rf_sample_row one,
                                                        int32_t* __restrict__ tokens, void* ws, int whole_elsewhere) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  __shared__ union {
    struct { uint32_t keys[kChunk]; unsigned hist256[256]; } local;  // a block's own top-k
    Small small;                                                     // the last block's finish
  } sm;
  __shared__ unsigned long long sh[kThreads];
  __shared__ float scratch[kRfMaxWavesPerBlock];
  __shared__ float s_val[kThreads];
  __shared__ int s_idx[kThreads];
  __shared__ unsigned s_base;
  const int r = blockIdx.y, blk = blockIdx.x, B = gridDim.x, t = threadIdx.x;
  const rf_sample_row p = params_of(rows, one, r);
  const float* L = logits + static_cast<size_t>(r) * n;
  const RowWs w = row_ws(ws, r, n);
  const int beg = blk * kChunk, len = min(n, beg + kChunk) - beg;

  if (p.temperature <= 0.f) {
    // Greedy: max value, lowest index among equals.
    float bv = -INFINITY;
    int bi = n;
    for (int j = t; j < len; j += kThreads) {
      const float v = L[beg + j];
      if (v > bv) { bv = v; bi = beg + j; }  // increasing indices: the first of equals stays
    }
    block_argmax(bv, bi, s_val, s_idx);
    if (t == 0) w.blk_max[blk] = s_val[0], w.blk_arg[blk] = s_idx[0];
    if (!arrive_last(w.st, B)) return;
    // The last block: the same over the blocks' results, read by all threads at once (one
    // thread's loop of dependent L2 reads cost ~13 us at 63 blocks).
    const volatile float* vm = w.blk_max;
    const volatile int* va = w.blk_arg;
    bv = -INFINITY, bi = n;
    for (int b = t; b < B; b += kThreads) {  // increasing block order: the first of equals stays
      const float v = vm[b];
      const int i = va[b];
      if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
    }
    block_argmax(bv, bi, s_val, s_idx);
    if (t == 0) {
      tokens[r] = s_idx[0] < n ? s_idx[0] : 0;
      w.st->done = 1;
    }
    return;
  }

  const float inv_t = 1.f / p.temperature;
  if (topk_fast(p, n)) {
    // This block's own top-k (all of it when the chunk is no longer than k): a global top-k entry
    // is always in its block's top-k, so the union holds the answer.
    for (int j = t; j < len; j += kThreads) sm.local.keys[j] = order_key(L[beg + j]);
    __syncthreads();
    // Thread t owns the chunk's entries [t * 8, t * 8 + 8) below. For k <= kThreads and one row
    // the block keeps a superset of its top-k: everything at or above the k-th largest of its
    // threads' maxima (k distinct entries are at or above that). The union still holds the row's
    // whole top-k set (ties too), and on peaked or noise-like rows it is ~k to 2k entries a block.
    // Why one row only: that rank is quicker than kth_key's passes in a lone block but costs more
    // issue slots, which many rows' blocks sharing the multiprocessors pay (H100, top-k 40: one row
    // 20.6 -> 16.5 us a call with the last block's path below; 16 rows 37.6 -> 39.3 us when they
    // took it too).
    uint32_t tmax = 0;
    for (int j = t * kPerThread; j < min(len, (t + 1) * kPerThread); ++j) tmax = max(tmax, sm.local.keys[j]);
    uint32_t kth = 0;
    if (len > p.top_k) {
      if (kLoneRow && p.top_k <= kThreads) {
        __shared__ uint32_t s_bound;
        unsigned long long x;
        const int rank = block_rank_desc<kThreads>((static_cast<unsigned long long>(tmax) << 32) | t, sh, x);
        if (rank == p.top_k - 1) s_bound = static_cast<uint32_t>(x >> 32);
        __syncthreads();
        kth = s_bound;
      } else {
        kth = kth_key([&](auto&& f) { for (int j = t; j < len; j += kThreads) f(sm.local.keys[j]); }, p.top_k,
                      sm.local.hist256, sh);
      }
    }
    unsigned cnt = 0;
    for (int j = t * kPerThread; j < min(len, (t + 1) * kPerThread); ++j) cnt += sm.local.keys[j] >= kth;
    const unsigned incl = static_cast<unsigned>(block_inclusive_scan(cnt, sh));
    if (t == kThreads - 1) s_base = atomicAdd(&w.st->n_cand, incl);
    __syncthreads();
    unsigned at = s_base + incl - cnt;
    for (int j = t * kPerThread; j < min(len, (t + 1) * kPerThread); ++j)
      if (sm.local.keys[j] >= kth) w.cand[at] = beg + j, w.cand_key[at++] = sm.local.keys[j];
    if (!arrive_last(w.st, B)) return;

    // The last block: the k-th key among the union, then the finish.
    __shared__ int s_T;
    if (t == 0) {
      s_T = static_cast<int>(*static_cast<volatile unsigned*>(&w.st->n_cand));
      w.st->n_cand = 0;
    }
    __syncthreads();
    const int T = s_T;
    // Up to kRegKeys keys a thread stay in registers through the passes below (candidate i at
    // register i / kThreads of thread i % kThreads); beyond that they are read again each pass.
    constexpr int kRegKeys = 16;
    uint32_t rk[kRegKeys];
    const bool in_regs = T <= kRegKeys * kThreads;
    if (in_regs) {
#pragma unroll
      for (int j = 0; j < kRegKeys; ++j) {
        const int i = t + j * kThreads;
        rk[j] = i < T ? w.cand_key[i] : 0u;
      }
    }
    auto each = [&](auto&& f) {  // f(key, i) over this thread's candidates
      if (in_regs) {
#pragma unroll
        for (int j = 0; j < kRegKeys; ++j)
          if (t + j * kThreads < T) f(rk[j], t + j * kThreads);
      } else {
        for (int i = t; i < T; i += kThreads) f(w.cand_key[i], i);
      }
    };
    uint32_t kmax = 0;
    each([&](uint32_t key, int) { kmax = max(kmax, key); });
    // For k <= kThreads and one row (kLoneRow): the union's members at or above the k-th largest
    // of the threads' maxima, when at most kThreads, sorted in shared memory (block_rank_desc)
    // give the k-th key; when ties leave at most kWaveFinish candidates, one wave finishes. Else
    // (larger k, more members past that bound, many ties, several rows) the histogram passes and
    // the block's finish: with many rows' last blocks sharing the multiprocessors, those measured
    // faster.
    __shared__ uint32_t s_bound, s_top;
    __shared__ int s_nF;
    uint32_t kk = 0, top = 0;
    bool have_kk = false;
    if (kLoneRow && p.top_k <= kThreads) {
      unsigned long long x;
      int rank = block_rank_desc<kThreads>((static_cast<unsigned long long>(kmax) << 32) | t, sh, x);
      if (rank == p.top_k - 1) s_bound = static_cast<uint32_t>(x >> 32);
      if (rank == 0) s_top = static_cast<uint32_t>(x >> 32);
      __syncthreads();
      const uint32_t bound = s_bound;
      top = s_top;
      unsigned cnt = 0;
      each([&](uint32_t key, int) { cnt += key >= bound; });
      unsigned long long c_total;
      unsigned at = static_cast<unsigned>(block_inclusive_scan(cnt, sh, &c_total)) - cnt;
      const int C = static_cast<int>(c_total);
      if (C <= kThreads) {
        each([&](uint32_t key, int i) {
          if (key >= bound) sm.small.key[at] = key, sm.small.idx[at++] = i;  // the union position
        });
        if (t == 0) s_nF = C;
        __syncthreads();
        // Distinct sort values: the key, then the slot.
        const unsigned long long v =
            t < C ? (static_cast<unsigned long long>(sm.small.key[t]) << 32) | (0xffffffffu - static_cast<unsigned>(t))
                  : 0;
        rank = block_rank_desc<kThreads>(v, sh, x);
        sm.small.tq[rank] = x;
        __syncthreads();
        kk = static_cast<uint32_t>(sm.small.tq[p.top_k - 1] >> 32);
        have_kk = true;
        // The candidates: positions [0, nF), the k-th key's ties included.
        if (t >= p.top_k && t < C && static_cast<uint32_t>(sm.small.tq[t] >> 32) < kk &&
            static_cast<uint32_t>(sm.small.tq[t - 1] >> 32) >= kk)
          s_nF = t;
        __syncthreads();
        const int nF = s_nF;
        if (nF <= kWaveFinish) {
          if (t < warpSize) {
            const int lane = t, per = kWaveFinish / warpSize;
            uint32_t key[2] = {0, 0};
            int idx[2] = {INT_MAX, INT_MAX};
#pragma unroll
            for (int j = 0; j < 2; ++j) {  // two register slots, `j < per` inside (see finish_wave)
              const int pos = lane * per + j;
              if (j >= per || pos >= nF) continue;
              const unsigned long long e = sm.small.tq[pos];
              key[j] = static_cast<uint32_t>(e >> 32);
              idx[j] = w.cand[sm.small.idx[0xffffffffu - static_cast<uint32_t>(e & 0xffffffffu)]];
            }
            const int pick = finish_wave(key, idx, nF, kk, top ? key_value(top) : -INFINITY, inv_t, p, sm.small.q,
                                         reinterpret_cast<int*>(sm.small.tu));
            if (t == 0) {
              tokens[r] = pick;
              w.st->done = 1;
            }
          }
          return;
        }
      }
    }
    const float mx = block_max(kmax ? key_value(kmax) : -INFINITY, scratch);
    if (!have_kk)
      kk = kth_key([&](auto&& f) { each([&](uint32_t key, int) { f(key); }); }, p.top_k, sm.local.hist256, sh);
    __syncthreads();  // sm.small is rebuilt below
    // Gather the candidates (ties at kk included) but those without mass at either temperature.
    if (t == 0) sm.small.count = 0;
    __syncthreads();
    each([&](uint32_t key, int i) {
      if (key < kk) return;
      const float l = key_value(key);
      const unsigned long long q = mass_q(l, mx);
      if (q == 0 && mass_q(l * inv_t, mx * inv_t) == 0) return;  // neither filtered on nor drawn
      const int at2 = atomicAdd(&sm.small.count, 1);
      if (at2 < kMaxCand) sm.small.idx[at2] = w.cand[i], sm.small.key[at2] = key, sm.small.q[at2] = q;
    });
    __syncthreads();
    const int pick = sm.small.count <= kMaxCand ? finish_small(sm.small, kk, mx, inv_t, p, sh)
                                                : finish_big(L, n, inv_t, kk, mx, p, sh);
    if (t == 0) {
      tokens[r] = pick;
      w.st->done = 1;
    }
    return;
  }

  // The whole-vocabulary path: block maxima, then the level and draw launches.
  if (whole_elsewhere) return;
  float mx = -INFINITY;
  for (int j = t; j < len; j += kThreads) mx = fmaxf(mx, L[beg + j]);
  mx = block_max(mx, scratch);
  if (t == 0) w.blk_max[blk] = mx;
  if (!arrive_last(w.st, B)) return;
  const volatile float* vm = w.blk_max;
  float m = -INFINITY;
  for (int b = t; b < B; b += kThreads) m = fmaxf(m, vm[b]);
  m = block_max(m, scratch);
  if (t == 0) {
    RowState* st = w.st;
    st->mx = m;
    st->prefix = 0, st->kk = 0, st->kp = 0;
    st->need = has_topk(p, n) ? static_cast<unsigned long long>(p.top_k) : 0;
    st->done = 0;
  }
}

// One level of a key search: histogram the 11-, 11- or 10-bit digit below the fixed prefix,
// weighted by count (top-k) or mass (top-p); the last block fixes the digit.
__global__ void __launch_bounds__(kThreads) level_kernel(const float* __restrict__ logits, int n,
                                                         const rf_sample_row* __restrict__ rows, rf_sample_row one,
                                                         void* ws, int by_mass, int level) {
  rf_grid_wait();
  rf_grid_trigger();
  __shared__ union {
    BlockHist block;                // this block's
    unsigned long long row[kBins];  // the row's, in the last block
  } hs;
  unsigned long long* h = hs.row;
  __shared__ unsigned long long sh[kThreads];
  __shared__ int s_bin;
  __shared__ unsigned long long s_above;
  const int r = blockIdx.y, blk = blockIdx.x, B = gridDim.x, t = threadIdx.x;
  const rf_sample_row p = params_of(rows, one, r);
  const RowWs w = row_ws(ws, r, n);
  const volatile RowState* vst = w.st;
  if (p.temperature <= 0.f || vst->done) return;
  if (by_mass ? !(p.top_p < 1.f) : !has_topk(p, n)) return;  // every block of the row returns alike
  const int shift = level == 0 ? 21 : level == 1 ? 10 : 0;
  const int nb = level == 2 ? 1024 : 2048;
  const uint32_t high = level == 0 ? 0u : (0xffffffffu << (shift + (level == 1 ? 11 : 10)));
  const uint32_t prefix = level == 0 ? 0u : vst->prefix;
  const uint32_t kk = by_mass ? vst->kk : 0u;
  const float mx = vst->mx;
  const float* L = logits + static_cast<size_t>(r) * n;
  hist_zero(hs.block, nb);
  __syncthreads();
  const int beg = blk * kChunk, end = min(n, beg + kChunk);
  for (int i = beg + t; i < end; i += kThreads) {
    const float l = L[i];
    const uint32_t key = order_key(l);
    if ((key & high) != prefix || key < kk) continue;
    const unsigned long long wgt = by_mass ? mass_q(l, mx) : 1ull;
    if (wgt) hist_add(hs.block, static_cast<int>((key >> shift) & (nb - 1)), wgt);
  }
  __syncthreads();
  for (int b = t; b < nb; b += kThreads) {
    const unsigned long long q = hist_bin(hs.block, b);
    if (q) atomicAdd(&w.hist[b], q);
  }
  if (!arrive_last(w.st, B)) return;  // (its barrier: the block histogram is read no more below)

  // The last block: copy the row's histogram in (and zero it for the next launch), fix the digit.
  const volatile unsigned long long* gh = w.hist;
  for (int b = t; b < nb; b += kThreads) {
    h[b] = gh[b];
    w.hist[b] = 0;
  }
  __syncthreads();
  unsigned long long need = vst->need;
  if (by_mass && level == 0) {  // the top-k set's mass, then top_p of it
    unsigned long long z = 0;
    for (int b = t; b < nb; b += kThreads) z += h[b];
    z = block_sum_u64(z, sh);
    need = static_cast<unsigned long long>(ceil(static_cast<double>(p.top_p) * static_cast<double>(z)));
  }
  find_from_top(h, nb, need, sh, &s_bin, &s_above);
  if (t == 0) {
    RowState* st = w.st;
    const uint32_t fixed = prefix | (static_cast<uint32_t>(s_bin) << shift);
    if (level == 2) {
      if (by_mass) st->kp = fixed;
      else st->kk = fixed;
      st->prefix = 0;
    } else {
      st->prefix = fixed;
      st->need = need - s_above;
    }
  }
}

// The draw: candidate masses per block, then the last block walks to floor(u * total).
__global__ void __launch_bounds__(kThreads) draw_kernel(const float* __restrict__ logits, int n,
                                                        const rf_sample_row* __restrict__ rows, rf_sample_row one,
                                                        int32_t* __restrict__ tokens, void* ws) {
  rf_grid_wait();
  rf_grid_trigger();
  __shared__ unsigned long long sh[kThreads];
  __shared__ int s_blk, s_pick;
  __shared__ unsigned long long s_before;
  const int r = blockIdx.y, blk = blockIdx.x, B = gridDim.x, t = threadIdx.x;
  const rf_sample_row p = params_of(rows, one, r);
  const RowWs w = row_ws(ws, r, n);
  const volatile RowState* vst = w.st;
  if (p.temperature <= 0.f || vst->done) return;
  const float mx = vst->mx, inv_t = 1.f / p.temperature, mxt = mx * inv_t;
  const uint32_t km = p.min_p > 0.f ? order_key(mx + logf(p.min_p)) : 0u;
  const uint32_t kmin = max(static_cast<uint32_t>(vst->kk), max(static_cast<uint32_t>(vst->kp), km));
  const float* L = logits + static_cast<size_t>(r) * n;
  // Thread t owns the contiguous entries [t * 8, t * 8 + 8) of its block's chunk (the walk below
  // goes through them in index order).
  unsigned long long mine = 0;
  for (int i = blk * kChunk + t * kPerThread, e = min(n, i + kPerThread); i < e; ++i) {
    const float l = L[i];
    if (order_key(l) >= kmin) mine += mass_q(l * inv_t, mxt);
  }
  const unsigned long long bsum = block_sum_u64(mine, sh);
  if (t == 0) w.blk_mass[blk] = bsum;
  if (!arrive_last(w.st, B)) return;

  // The last block: the block holding the target, then the entry inside it.
  const volatile unsigned long long* vm = w.blk_mass;
  const unsigned long long target = find_block([&](int b) { return vm[b]; }, B, p.u, sh, &s_blk, &s_before);
  if (t == 0) s_pick = 0;
  __syncthreads();
  if (s_blk >= 0)
    walk_block(L, n, s_blk * kChunk + t * kPerThread, kPerThread, kmin, inv_t, mxt, target, s_before, sh, &s_pick);
  if (t == 0) tokens[r] = s_pick;
}

// The launches one call needs; h_rows (nullable) are the rows' parameters on the host.
struct Passes {
  bool scan = true, count = false, mass = false, draw = false;
  int whole = 0;  // entries a thread of sampling_whole.hip's launch holds; 0: not launched
};
// `s`: the stream the launches go to, whose claim on the device's one-launch sampler decides
// whether that path may serve (whole_claim; the legacy null stream needs none: its work never runs
// beside another stream's); nullptr for sample_launches' question, which asks what an owning stream
// would launch.
Passes passes_for(const rf_sample_row* h_rows, int n_rows, int n, const hipStream_t* s) {
  Passes ps;
  if (!h_rows) return {true, true, true, true, 0};
  bool scan = false, rest = false;
  for (int r = 0; r < n_rows; ++r) {
    const rf_sample_row& p = h_rows[r];
    const bool has_k = p.top_k > 0 && p.top_k < n;
    if (p.temperature <= 0.f || (has_k && p.top_k <= kMaxCand)) {  // finished by the scan launch
      scan = true;
      continue;
    }
    rest = true;
    ps.count |= has_k;
    ps.mass |= p.top_p < 1.f;
  }
  ps.draw = rest;
  // Rows without a top-k (every row the scan does not finish, when none has a top-k beyond it) in
  // one launch where its blocks fit the device at once and no other stream may run it meanwhile.
  if (rest && !ps.count && (ps.whole = whole_per_thread(n_rows, n)) > 0 && (!s || !*s || whole_claim(*s))) {
    ps.scan = scan;
    ps.mass = ps.draw = false;
  } else {
    ps.whole = 0;
  }
  return ps;
}

}  // namespace

int sample_launches(const rf_sample_row* h_rows, int n_rows, int n_vocab) {
  const Passes ps = passes_for(h_rows, n_rows, n_vocab, nullptr);
  return (ps.scan ? 1 : 0) | (ps.count ? 2 : 0) | (ps.mass ? 4 : 0) | (ps.draw ? 8 : 0) | (ps.whole << 2);  // whole: 32 / 64 / 128
}

namespace {

int launch_all(const float* logits, int n, int n_rows, const rf_sample_row* d_rows, const rf_sample_row& one,
               const Passes& ps, int32_t* tokens, void* ws, hipStream_t s) {
  const dim3 grid(static_cast<unsigned>(blocks_for(n)), static_cast<unsigned>(n_rows));
  const int elsewhere = ps.whole > 0;
  if (ps.scan) {
    if (n_rows == 1) (void)rf_launch(scan_kernel<true>, grid, kThreads, 0, s, logits, n, d_rows, one, tokens, ws, elsewhere);
    else (void)rf_launch(scan_kernel<false>, grid, kThreads, 0, s, logits, n, d_rows, one, tokens, ws, elsewhere);
  }
  if (ps.whole) {
    if (const int rc = check(hipGetLastError(), "sample")) return rc;
    return launch_whole(ps.whole, logits, n, n_rows, d_rows, one, tokens, ws, s);
  }
  for (int level = 0; ps.count && level < 3; ++level)
    (void)rf_launch(level_kernel, grid, kThreads, 0, s, logits, n, d_rows, one, ws, 0, level);
  for (int level = 0; ps.mass && level < 3; ++level)
    (void)rf_launch(level_kernel, grid, kThreads, 0, s, logits, n, d_rows, one, ws, 1, level);
  if (ps.draw) (void)rf_launch(draw_kernel, grid, kThreads, 0, s, logits, n, d_rows, one, tokens, ws);
  return check(hipGetLastError(), "sample");
}

int check_workspace(int n_rows, int n_vocab, const void* ws, size_t ws_bytes, const char* who) {
  if (n_vocab <= 0) return fail("%s: empty vocabulary", who);
  if (n_vocab > kSampleMaxVocab) return fail("%s: vocabulary of %d entries beyond %d", who, n_vocab, kSampleMaxVocab);
  const size_t need = sample_workspace(n_rows, n_vocab);
  if (!ws || ws_bytes < need)
    return fail("%s: workspace of %zu bytes, %zu needed for %d rows of %d", who, ws ? ws_bytes : size_t{0}, need,
                n_rows, n_vocab);
  if (reinterpret_cast<uintptr_t>(ws) % 256 != 0) return fail("%s: workspace must be 256-byte aligned", who);
  return 0;
}

}  // namespace

static_assert(kSampleMaxVocab == kChunk * kMaxBlocks, "kernels.h's limit is the last block's reach");

size_t sample_workspace(int n_rows, int n_vocab) {
  if (n_rows <= 0 || n_vocab <= 0 || n_vocab > kSampleMaxVocab) return 0;
  return static_cast<size_t>(n_rows) * row_bytes(n_vocab);
}

int sample(const float* logits, int n_vocab, float temperature, int top_k, float top_p, float min_p, float u,
           int32_t* token, void* ws, size_t ws_bytes, hipStream_t s) {
  if (const int rc = check_workspace(1, n_vocab, ws, ws_bytes, "sample")) return rc;
  if (!(u >= 0.f && u < 1.f)) return fail("sample: u = %g must be in [0, 1)", u);
  if (!(top_p > 0.f)) return fail("sample: top_p = %g must be > 0", top_p);
  if (min_p > 1.f) return fail("sample: min_p = %g must be <= 1", min_p);
  const rf_sample_row one{temperature, top_k, top_p, min_p, u};
  return launch_all(logits, n_vocab, 1, nullptr, one, passes_for(&one, 1, n_vocab, &s), token, ws, s);
}

int sample_rows(const float* logits, int n_vocab, int n_rows, const rf_sample_row* rows, const rf_sample_row* h_rows,
                int32_t* tokens, void* ws, size_t ws_bytes, hipStream_t s) {
  if (n_rows < 0 || n_rows > 65535) return fail("sample_rows: row count %d out of range 0..65535", n_rows);
  if (!logits || !rows || !tokens) return fail("sample_rows: missing buffer");
  if (n_rows == 0) return 0;
  if (const int rc = check_workspace(n_rows, n_vocab, ws, ws_bytes, "sample_rows")) return rc;
  // The rows' parameters are already on the device: the caller checks them as sample() would.
  return launch_all(logits, n_vocab, n_rows, rows, rf_sample_row{}, passes_for(h_rows, n_rows, n_vocab, &s), tokens, ws, s);
}

}  // namespace rocforge::gpu
