// sampling_whole.hip - the device sampler's rows without a top-k (temperature, top-p, min-p: what
// OpenAI-style clients send) in one launch.
//
// Why: as separate launches (block maxima, three mass histograms on 11 + 11 + 10 key bits, the draw;
// sampling.hip) top-p over a 128k vocabulary cost 39 us a row on an H100. The same five steps as
// phases of one launch whose blocks wait for each other cost nearly as much (37.5 us): a phase's
// price is its chain of round trips to L2 (the blocks' arrival, the last block's reads, the release
// the others watch), not the launch. So this path takes fewer phases:
//   1. the row's maximum (and minimum);
//   2. a histogram of the masses exp(l - max) by distance below the maximum, 2048 bins over the
//      row's range of l (at most the 28 below the maximum that carry mass): the bin where the
//      running mass from the top reaches ceil(top_p * total) holds the threshold, and few entries;
//   3. that bin's entries gathered while every block sums the draw's weights above it; if at most
//      256 came, the last block sorts them, fixes the threshold, adds their weights to their
//      blocks' and draws. If more came, key bins narrow the bin's key range 2048-fold a phase and
//      the gather repeats (at most three times: then one key is left).
// Without top-p the row goes from 1 straight to the draw.
//
// Same definition and the same fixed-point masses as sampling.hip's launches (the threshold is the
// largest key K with mass(key >= K) >= ceil(top_p * total), the draw in index order with the
// caller's u), so both give the same token for the same u.
//
// Waiting on other blocks needs every block of a row resident at once: whole_per_thread() sizes the
// blocks (256 threads x 8, 16 or 32 entries) so that all rows' blocks fit the device's occupancy,
// and declines (0) where they do not. Nothing waits on a kernel queued behind this one: PDL's next
// kernel starts only after every block here has started. Nor on another launch of this kernel: one
// stream a device may run it (whole_claim); the others take sampling.hip's separate launches.
#include "gpu/resident.h"
#include "gpu/stream_slots.h"
#include "gpu/sampling_state.h"

namespace rocforge::gpu {
namespace {

constexpr int kGatherMax = kThreads;  // candidates the last block sorts, one a thread
constexpr float kMassRange = 28.f;  // masses end at exp(-27.7) (mass_q)
#if defined(__HIP__) || defined(__HIPCC__)
constexpr bool kRederivePerPhase = true;  // see the phase loop in whole_kernel
#else
constexpr bool kRederivePerPhase = false;
#endif
// What a phase after the maximum does. kGather*: the threshold range's few entries are gathered
// (lo: a distance bin, or [lo, hi] of keys); kDraw: the threshold is known (lo; none without top-p).
enum Action : int { kHistByDistance, kHistByKey, kGatherByDistance, kGatherByKey, kDraw, kDone };

// The distance bin of l below the row's maximum mx, numbered upwards (larger l, larger or equal bin:
// a bin is a key range); `per` bins a unit of l: kBins over the row's range of l, at most the 28
// below mx that carry mass (a near-flat row's range is narrow, and its bins as fine). Entries
// further down land in bin 0.
__device__ inline int distance_bin(float l, float mx, float per) {
  if (l == mx) return kBins - 1;
  const float d = (mx - l) * per;
  return d < kBins - 1 ? kBins - 1 - static_cast<int>(d) : 0;
}
__device__ inline float bins_per_unit(float mx, float mn) {
  const float range = fminf(mx - mn, kMassRange);  // NaN (infinities) -> kMassRange
  return range > 0.f ? kBins / range : INFINITY;  // all equal: one bin for the maximum, one for the rest
}

// The key range of distance bin b: the smallest key at or above it and the largest at or below.
// Binary searches over keys (distance_bin is monotonic in the key); one thread.
__device__ inline void distance_bin_keys(int b, float mx, float per, uint32_t* lo, uint32_t* hi) {
  const uint32_t top = order_key(mx);
  auto first_at_least = [&](int bin) {  // smallest key k <= top with distance_bin(k) >= bin
    uint32_t a = order_key(-INFINITY), z = top;
    while (a < z) {
      const uint32_t m = a + (z - a) / 2;
      if (distance_bin(key_value(m), mx, per) >= bin) z = m;
      else a = m + 1;
    }
    return a;
  };
  *lo = b == 0 ? 0u : first_at_least(b);
  *hi = b == kBins - 1 ? top : first_at_least(b + 1) - 1;
}

// ---- phase hand-off among one row's blocks
//
// Arrivals count up through the call (RowState::n_arrived; phase k is complete at k * blocks), so
// a phase with nothing to do serially (the maximum) is waited for on the count itself; a phase
// whose last block fixes something (a threshold digit) lets the others go by moving gen.

// This block's arrival at phase k (1-based) once its part is published; true in the last to arrive,
// which then sees every other block's writes.
__device__ bool arrive(RowState* st, int n_blocks, int k) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&st->n_arrived, 1u) == static_cast<unsigned>(k * n_blocks - 1);
  __syncthreads();
  if (last) __threadfence();
  return last;
}

// Until every block has arrived at phase k.
__device__ void wait_arrivals(RowState* st, int n_blocks, int k) {
  if (threadIdx.x == 0) {
    const volatile unsigned* va = &st->n_arrived;
    while (*va < static_cast<unsigned>(k * n_blocks)) rf_spin_pause();
    __threadfence();
  }
  __syncthreads();
}

// The last block's stores of the phase's result visible, then the others let go: gen reaches `to`.
__device__ void release(RowState* st, unsigned to) {
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) atomicExch(&st->gen, to);
}

__device__ void wait_for(RowState* st, unsigned to) {
  if (threadIdx.x == 0) {
    const volatile unsigned* vg = &st->gen;
    while (*vg != to) rf_spin_pause();
    __threadfence();
  }
  __syncthreads();
}

// The call's last block, done with the row's state: the counters zeroed for the next call.
__device__ void end_call(RowState* st) {
  if (threadIdx.x == 0) st->n_arrived = 0, st->mx_key = 0, st->mn_not = 0, st->n_gather = 0;
}

// Grid (ceil(n / (kThreads * PT)), rows). Thread t of block b holds entries [(b * kThreads + t) *
// PT, + PT) of its row: contiguous, so the draw's walk goes through them in index order.
// At least four blocks a multiprocessor on NVIDIA (64 registers; 16 and 32 entries a thread take
// ~125 on their own, two blocks). HIP reads the second bound as waves per SIMD: not given there.
#if defined(__HIP__) || defined(__HIPCC__)
#define RF_WHOLE_BOUNDS __launch_bounds__(kThreads)
#else
#define RF_WHOLE_BOUNDS __launch_bounds__(kThreads, 4)
#endif
template <int PT>
__global__ void RF_WHOLE_BOUNDS whole_kernel(const float* __restrict__ logits, int n,
                                             const rf_sample_row* __restrict__ rows, rf_sample_row one,
                                             int32_t* __restrict__ tokens, void* ws) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  __shared__ union {
    BlockHist block;  // a block's histogram
    unsigned long long row[kBins];  // the row's, in the last block
    struct {  // the last block's finish after a gather
      unsigned long long sorted[kGatherMax], sum[kMaxBlocks];
      uint32_t key[kGatherMax];
      int idx[kGatherMax];
    } fin;
  } sm;
  __shared__ unsigned long long sh[kThreads];
  __shared__ float scratch[kRfMaxWavesPerBlock];
  __shared__ int s_bin, s_blk, s_pick;
  __shared__ unsigned s_base;
  __shared__ uint32_t s_kp;
  __shared__ unsigned long long s_above, s_before;
  const int r = blockIdx.y, blk = blockIdx.x, B = gridDim.x, t = threadIdx.x;
  const rf_sample_row p = params_of(rows, one, r);
  if (p.temperature <= 0.f || topk_fast(p, n)) return;  // the scan launch's rows
  const float* L = logits + static_cast<size_t>(r) * n;
  const RowWs w = row_ws(ws, r, n);
  RowState* st = w.st;
  const volatile RowState* vst = st;
  const int chunk = kThreads * PT, beg = blk * chunk + t * PT;
  float v[PT];  // this thread's logits (-inf past the row's end: no mass, never drawn, see `in`)
#pragma unroll
  for (int j = 0; j < PT; ++j) v[j] = beg + j < n ? L[beg + j] : -INFINITY;
  auto in = [&](int j) { return beg + j < n; };
  // The generation this call starts from; it moves only once every block has arrived below.
  unsigned gen = t == 0 ? atomicAdd(&st->gen, 0u) : 0u;
  int phase = 0;

  // 1. The row's maximum (and for top-p its minimum): every block's atomicMax, read once all have
  // arrived.
  const bool top_p = p.top_p < 1.f;
  float m = -INFINITY, mn = INFINITY;
#pragma unroll
  for (int j = 0; j < PT; ++j) m = fmaxf(m, v[j]), mn = in(j) ? fminf(mn, v[j]) : mn;
  m = rf_block_max(m, scratch);
  if (top_p) mn = -rf_block_max(-mn, scratch);
  if (t == 0) {
    atomicMax(&st->mx_key, order_key(m));
    if (top_p) atomicMax(&st->mn_not, ~order_key(mn));
  }
  arrive(st, B, ++phase);
  wait_arrivals(st, B, phase);
  const float mx = key_value(*static_cast<volatile uint32_t*>(&st->mx_key)), inv_t = 1.f / p.temperature,
              mxt = mx * inv_t;
  const float per = bins_per_unit(mx, key_value(~*static_cast<volatile uint32_t*>(&st->mn_not)));
  const uint32_t km = p.min_p > 0.f ? order_key(mx + logf(p.min_p)) : 0u;

  // 2. The threshold's range narrowed by histograms of the masses, then its entries gathered;
  // where more than kGatherMax turn up, the range's key bins narrow it further.
  int action = top_p ? kHistByDistance : kDraw;
  uint32_t lo = 0, hi = 0xffffffffu;
  while (action != kDraw) {
    // AMD: each phase derives keys, masses and bins from v again: hoisted out of this loop they
    // stayed live across it, several registers an entry (gfx1100: 187 VGPRs at 8 entries a thread,
    // 16 and 32 spilling 13 and 171; with this 139 / 146 / 179 and no scratch). Not on NVIDIA, whose
    // 64-register bound never spilled here and where the extra work measured +0.4 us a call (H100,
    // T 1 + top-p 0.9: 23.9 -> 24.3-24.4 us).
    if constexpr (kRederivePerPhase) {
#pragma unroll
      for (int j = 0; j < PT; ++j) rf_opaque(v[j]);
    }
    if (action == kHistByDistance || action == kHistByKey) {
      // Key bins of width bw over [lo, hi] (numbered upwards from lo).
      const unsigned long long bw = (static_cast<unsigned long long>(hi - lo) + kBins) / kBins;
      hist_zero(sm.block, kBins);
      __syncthreads();
#pragma unroll
      for (int j = 0; j < PT; ++j) {
        const uint32_t key = order_key(v[j]);
        if (!in(j) || key < lo || key > hi) continue;
        const unsigned long long q = mass_q(v[j], mx);
        if (!q) continue;
        hist_add(sm.block, action == kHistByDistance ? distance_bin(v[j], mx, per) : static_cast<int>((key - lo) / bw), q);
      }
      __syncthreads();
      for (int b = t; b < kBins; b += kThreads) {
        const unsigned long long q = hist_bin(sm.block, b);
        if (q) atomicAdd(&w.hist[b], q);
      }
      ++gen;
      if (arrive(st, B, ++phase)) {
        // The row's histogram in: every load in flight at once; the bins zeroed for the next use.
        constexpr int kPer = kBins / kThreads;
        unsigned long long got[kPer];
#pragma unroll
        for (int k = 0; k < kPer; ++k) got[k] = *static_cast<volatile unsigned long long*>(&w.hist[t + k * kThreads]);
#pragma unroll
        for (int k = 0; k < kPer; ++k) sm.row[t + k * kThreads] = got[k], w.hist[t + k * kThreads] = 0;
        __syncthreads();
        unsigned long long need = vst->need;
        if (action == kHistByDistance) {  // every entry with mass is in this first histogram
          unsigned long long z = 0;
#pragma unroll
          for (int k = 0; k < kPer; ++k) z += got[k];
          z = block_sum_u64(z, sh);
          need = static_cast<unsigned long long>(ceil(static_cast<double>(p.top_p) * static_cast<double>(z)));
        }
        find_from_top(sm.row, kBins, need, sh, &s_bin, &s_above);
        if (t == 0) {
          const int b = s_bin;
          if (action == kHistByDistance) {
            st->action = kGatherByDistance, st->lo = static_cast<uint32_t>(b);
          } else {
            const uint32_t blo = lo + static_cast<uint32_t>(b * bw);
            const uint32_t bhi = static_cast<uint32_t>(min(static_cast<unsigned long long>(hi), lo + (b + 1) * bw - 1));
            st->action = blo == bhi ? kDraw : kGatherByKey, st->lo = blo, st->hi = bhi;  // kDraw: lo is the threshold
          }
          st->need = need - s_above;
        }
        release(st, gen);
      } else {
        wait_for(st, gen);
      }
      action = vst->action, lo = vst->lo, hi = vst->hi;
      continue;
    }

    // 3a. The range's entries gathered (their count decides the next step); each block's draw
    // weight above the range (every entry there is above the threshold), at or above min-p.
    auto place = [&](int j) {  // 1: above the range, 0: in it, -1: below
      if (action == kGatherByDistance) {
        const int b = distance_bin(v[j], mx, per);
        return b > static_cast<int>(lo) ? 1 : b == static_cast<int>(lo) ? 0 : -1;
      }
      const uint32_t key = order_key(v[j]);
      return key > hi ? 1 : key >= lo ? 0 : -1;
    };
    unsigned long long above = 0;
    int mine = 0;
    uint32_t in_range = 0;  // bit j: entry j is a candidate
#pragma unroll
    for (int j = 0; j < PT; ++j) {
      if (!in(j)) continue;
      const int at = place(j);
      if (at > 0 && order_key(v[j]) >= km) above += mass_q(v[j] * inv_t, mxt);
      if (at == 0) in_range |= 1u << j, ++mine;
    }
    const unsigned long long incl = block_inclusive_scan(static_cast<unsigned long long>(mine), sh);
    if (t == kThreads - 1 && incl) s_base = atomicAdd(&st->n_gather, static_cast<unsigned>(incl));
    __syncthreads();
    int slot = static_cast<int>(s_base + incl) - mine;  // below n: the row's entries, each gathered once
#pragma unroll
    for (int j = 0; j < PT; ++j)
      if (in_range >> j & 1u) w.cand[slot] = beg + j, w.cand_key[slot] = order_key(v[j]), ++slot;
    above = block_sum_u64(above, sh);
    if (t == 0) w.blk_mass[blk] = above;
    ++gen;
    if (!arrive(st, B, ++phase)) {
      wait_for(st, gen);  // until the last block has seen how many came
      action = vst->action, lo = vst->lo, hi = vst->hi;
      if (action == kDone) return;
      continue;
    }

    // The last block. Too many: the range's key bins next (a distance bin's keys found first).
    const int C = static_cast<int>(*static_cast<volatile unsigned*>(&st->n_gather));
    if (C > kGatherMax) {
      if (t == 0) {
        if (action == kGatherByDistance) distance_bin_keys(static_cast<int>(lo), mx, per, &lo, &hi);
        st->action = lo == hi ? kDraw : kHistByKey, st->lo = lo, st->hi = hi;  // kDraw: lo is the threshold
        st->n_gather = 0;
      }
      release(st, gen);
      action = vst->action, lo = vst->lo, hi = vst->hi;
      continue;
    }
    if (t == 0) st->action = kDone;
    release(st, gen);  // the others may end

    // The candidates sorted by key, the threshold where their running mass reaches what the range
    // must add, their draw weights added to their blocks', the draw.
    uint32_t ck = 0;
    int ci = 0;
    if (t < C) {
      ck = *static_cast<volatile uint32_t*>(&w.cand_key[t]);
      ci = *static_cast<volatile int32_t*>(&w.cand[t]);
    }
    for (int b = t; b < B; b += kThreads) sm.fin.sum[b] = *static_cast<volatile unsigned long long*>(&w.blk_mass[b]);
    const unsigned long long need = vst->need;
    if (t < C) sm.fin.key[t] = ck, sm.fin.idx[t] = ci;
    unsigned long long x;
    const int rank = block_rank_desc<kThreads>(t < C ? (static_cast<unsigned long long>(ck) << 32) | t : t, sh, x);
    __syncthreads();  // sh's merge reads done before the scan reuses it
    sm.fin.sorted[rank] = x;
    __syncthreads();
    const unsigned long long e = sm.fin.sorted[t];
    const int mine_slot = static_cast<int>(e & 0xffffffffu);
    const unsigned long long q = t < C ? mass_q(key_value(static_cast<uint32_t>(e >> 32)), mx) : 0;
    const unsigned long long run = block_inclusive_scan(q, sh);
    if (t == 0) s_kp = 0;
    __syncthreads();
    if (t < C && run >= need && run - q < need) s_kp = static_cast<uint32_t>(e >> 32);
    __syncthreads();
    const uint32_t kmin = max(s_kp, km);
    if (t < C && sm.fin.key[mine_slot] >= kmin)
      atomicAdd(&sm.fin.sum[sm.fin.idx[mine_slot] / chunk], mass_q(key_value(sm.fin.key[mine_slot]) * inv_t, mxt));
    end_call(st);
    __syncthreads();
    const unsigned long long target =
        find_block([&](int b) { return sm.fin.sum[b]; }, B, p.u, sh, &s_blk, &s_before);
    if (t == 0) s_pick = 0;
    __syncthreads();
    if (s_blk >= 0) walk_block(L, n, s_blk * chunk + t * PT, PT, kmin, inv_t, mxt, target, s_before, sh, &s_pick);
    if (t == 0) tokens[r] = s_pick;
    return;
  }

  // 3b. The draw with the threshold known (one key, or none: no top-p): each block's weight at or
  // above it; the last block finds the block holding floor(u * total) and the entry inside it.
  const uint32_t kmin = max(top_p ? lo : 0u, km);
  unsigned long long seg = 0;
#pragma unroll
  for (int j = 0; j < PT; ++j)
    if (in(j) && order_key(v[j]) >= kmin) seg += mass_q(v[j] * inv_t, mxt);
  const unsigned long long bsum = block_sum_u64(seg, sh);
  if (t == 0) w.blk_mass[blk] = bsum;
  if (!arrive(st, B, ++phase)) return;
  end_call(st);
  const volatile unsigned long long* vm = w.blk_mass;
  const unsigned long long target = find_block([&](int b) { return vm[b]; }, B, p.u, sh, &s_blk, &s_before);
  if (t == 0) s_pick = 0;
  __syncthreads();
  if (s_blk >= 0) walk_block(L, n, s_blk * chunk + t * PT, PT, kmin, inv_t, mxt, target, s_before, sh, &s_pick);
  if (t == 0) tokens[r] = s_pick;
}

template <int PT>
int blocks_per_row(int n) { return (n + kThreads * PT - 1) / (kThreads * PT); }

template <int PT>
bool fits(int n_rows, int n) {
  return blocks_per_row<PT>(n) <= kMaxBlocks && static_cast<long>(n_rows) * blocks_per_row<PT>(n) <= resident_blocks(whole_kernel<PT>, kThreads);
}

}  // namespace

int whole_per_thread(int n_rows, int n_vocab) {
  if (n_rows <= 0 || n_vocab <= 0) return 0;
  const int forced = env_int("ROCFORGE_GPU_SAMPLE_WHOLE", -1);
  if (forced == 0) return 0;
  if (forced == 8) return fits<8>(n_rows, n_vocab) ? 8 : 0;
  if (forced == 16) return fits<16>(n_rows, n_vocab) ? 16 : 0;
  if (forced == 32) return fits<32>(n_rows, n_vocab) ? 32 : 0;
  if (fits<8>(n_rows, n_vocab)) return 8;
  if (fits<16>(n_rows, n_vocab)) return 16;
  if (fits<32>(n_rows, n_vocab)) return 32;
  return 0;
}

namespace {
StreamSlots g_whole(1);  // one stream a device may run whole_kernel
}  // namespace

bool whole_claim(hipStream_t s) { return g_whole.claim(s) == 0; }
void whole_release(hipStream_t s) { g_whole.release(s); }

int launch_whole(int per_thread, const float* logits, int n, int n_rows, const rf_sample_row* d_rows,
                 const rf_sample_row& one, int32_t* tokens, void* ws, hipStream_t s) {
  auto go = [&](auto kernel, int blocks) {
    return rf_launch(kernel, dim3(static_cast<unsigned>(blocks), static_cast<unsigned>(n_rows)), kThreads, 0, s,
                     logits, n, d_rows, one, tokens, ws);
  };
  switch (per_thread) {
    case 8: return check(go(whole_kernel<8>, blocks_per_row<8>(n)), "sample");
    case 16: return check(go(whole_kernel<16>, blocks_per_row<16>(n)), "sample");
    case 32: return check(go(whole_kernel<32>, blocks_per_row<32>(n)), "sample");
    default: return fail("sample: %d entries a thread is no whole-row kernel", per_thread);
  }
}

}  // namespace rocforge::gpu
