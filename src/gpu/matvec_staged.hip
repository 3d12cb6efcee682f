// matvec_staged.hip - the int8 decode matvec (matvec_q8 / matvec_q8_qkv) with the weights streamed
// through shared memory by the copy engine: NVIDIA sm_90+ only; elsewhere matvec.hip's kernels run.
//
// Why: decode reads every weight byte once, so a matvec is as fast as the bytes it keeps in flight.
// In matvec.hip each lane loads its own weight words into registers, and the bytes in flight are
// bounded by registers x occupancy (ncu, 8B gate/up on an H200: DRAM 42% busy at 64 registers and
// 50% occupancy). Here a producer wave issues bulk copies (cp.async.bulk, hip_compat.h) of whole
// rows into a ring of shared-memory stages, ahead of the consumer waves, and its first copies go
// out before the kernel waits for the one before it (PDL): the weights are never written, so their
// loads overlap the previous kernel's tail.
//
// Work: the block owns a contiguous range of rows of [A | B] (B, if present, right after A: the
// q/k/v projection). A unit is C x kR consecutive rows (C consumer waves, kR rows each, as
// matvec8q_rows with group == wave); x (int8 + scales) is copied to shared memory once per block, or
// made there from the residual stream by the fused rmsnorm (matvec_q8_norm: no rmsnorm_q8 launch).
// Taken for matrices of 16 MB and more (smaller ones start faster on the register kernels) and for
// every fused-norm call. Rows too long for a few waves' rows per ~40 KB stage (an 8B's ffn_down) are
// split over the waves where that measured faster (Q8_0), else stay on the register kernels.
// H200, gpu_bench --matvec-only, 8B shapes, register -> staged: q4_k gate/up 23.4 -> 19.7 us,
// output 81.9 -> 71.0 us; q8_0 gate/up 39.1 -> 31.9 us.
// Decode steps of 2-8 sequences (matvec_q8_multi, NT > 1): x of every token in shared memory, each
// staged weight item multiplied with all of them; every matrix size, split rows up to 2 tokens
// (H100, gpu_bench --batched-only, us register -> staged, 2 / 4 tokens: q4_k gate/up 41.1 / 56.7 ->
// 29.7 / 42.8, attn_o 11.7 / 16.0 -> 7.9 / 9.8; ffn_down 25.0 -> 21.9 at 2 tokens).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "gpu/kernels.h"
#include "gpu/l2_prefetch.h"
#include "gpu/matvec_staged.h"
#include "gpu/matvec_stores.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {

#if defined(RF_HAS_BULK_COPY)
namespace {

constexpr int kStageTarget = 40960;  // bytes per stage the launcher aims for
constexpr int kMaxStages = 8;
constexpr int kMaxConsumers = 8;     // consumer waves per block
constexpr int kR = 2;                // rows per consumer wave (even: whole rope pairs)
constexpr int kMaxTok = 8;           // tokens per launch of the multi-token kernel (matvec_q8_multi)

// Kernel arguments (by value; one struct keeps the launch readable).
struct StagedArgs {
  const uint8_t* wa;
  const uint8_t* wb;
  size_t stride_a, stride_b;
  int rows_a, rows_b;            // rows_b 0: A alone
  int row_bytes_a, row_bytes_b;
  int cols;
  int rows_per_unit;             // consumer waves / splits x kR
  int splits;                    // consumer waves sharing a row group, each a slice of the row (1: whole rows)
  int n_tok;                     // tokens (x rows one after another, quantize_q8 over n_tok x cols)
  // Several tokens: A's rows as up to 3 parts (rows [part_end[p - 1], part_end[p])), part p's
  // products into part_y[p] as [n_tok][its rows] (a fused q/k/v or gate/up buffer, one output each).
  int n_parts;
  int part_end[3];
  float* part_y[3];
  int stages;
  uint32_t stage_bytes;          // rows_per_unit x max(row bytes)
  const int8_t* xq;
  const float* xd;
  float* y;
  rf_qkv_rope rope;
  int evict_first;
  // One token, whole rows, plain stores: the consumers leave each unit's sums in a ring in shared
  // memory and the producer stores the unit's rows with one coalesced store (set by launch() for
  // outputs in host memory).
  int ring_store;
  // Fused rmsnorm (matvec_q8_norm): x = nx + nadd (nadd nullable), written to nx_out by block 0 when
  // nx_out is set; the int8 x of the product is quantize(x / rms(x) * nw), made in shared memory.
  int norm;
  const float* nx;
  const float* nadd;
  const float* nw;
  float* nx_out;
  float eps;
  L2Prefetch next;  // the next projection's weights, requested by the producer after its last copy
  // SwiGLU epilogue (matvec_q8_swiglu): A = [gate | up], rows_a = 2 n_ff, walked as 64-row groups
  // (gate rows 32k .. 32k + 31, then the same up rows); each group's silu(gate) * up goes to sy
  // (nullable) and, quantized as quantize_q8, to sq / sd.
  int n_ff;
  float* sy;
  int8_t* sq;
  float* sd;
};

enum Epilogue { kPlain, kRope, kSwiglu };

// Shared memory: [full barriers][empty barriers][norm scratch][split partials][swiglu ring, that
// epilogue only][x int8 (n_tok x cols, rounded to 16)][x scales][stages]. The offset helpers take
// the x length of all tokens (n_tok x cols).
constexpr size_t kRedOffset = 2 * kMaxStages * sizeof(uint64_t);
constexpr size_t kSplitOffset = kRedOffset + kMaxConsumers * sizeof(float);
constexpr size_t kSwiOffset = kSplitOffset + 2 * kMaxConsumers * kR * kMaxTok * sizeof(float);
// The output ring of ring_store (one token, no splits) reuses the split partials' space.
static_assert(kMaxStages * kMaxConsumers * kR <= 2 * kMaxConsumers * kR * kMaxTok, "output ring too large");
// The SwiGLU epilogue's ring of 64-row groups: a wave is never more than `stages` <= 8 units (of >= 4
// a group) ahead of the slowest, even of one still finishing a group (it released its stage first),
// so groups g and g + 4 never meet in a slot. Values, then arrival counts.
constexpr int kSwiRing = 4;
constexpr size_t kSwiBytes = kSwiRing * (64 * sizeof(float) + sizeof(int));
__host__ __device__ inline size_t x_offset(bool swi) { return kSwiOffset + (swi ? kSwiBytes : 0); }
__host__ __device__ inline size_t xd_offset(int cols, bool swi) {
  return x_offset(swi) + (static_cast<size_t>(cols) + 15) / 16 * 16;
}
__host__ __device__ inline size_t stage_offset(int cols, bool swi) {
  return (xd_offset(cols, swi) + static_cast<size_t>(cols / 32) * sizeof(float) + 127) / 128 * 128;
}
// Row `row` of the SwiGLU walk (64-row groups: 32 gate rows, then the same 32 up rows) in [gate | up].
__device__ inline int swiglu_row(int row, int n_ff) {
  return ((row & 63) < 32 ? 0 : n_ff) + (row >> 6) * 32 + (row & 31);
}

// Rows of the unit starting at `row` within the block's range [.., hi): at most rows_per_unit,
// never crossing from A into B; 0 past the end.
__device__ inline int unit_rows(int row, int hi, const StagedArgs& a) {
  const int end = row < a.rows_a ? min(hi, a.rows_a) : hi;
  return max(0, min(a.rows_per_unit, end - row));
}

// The producer: requests rows [row, row + n) of [A | B] into stage `st` (one bulk copy when the
// rows are contiguous, else one per row).
__device__ inline void issue_unit(const StagedArgs& a, int row, int n, uint8_t* st, uint64_t* full, uint64_t policy) {
  const bool in_b = row >= a.rows_a;
  const int local = in_b ? row - a.rows_a : row;
  const int rb = in_b ? a.row_bytes_b : a.row_bytes_a;
  const size_t stride = in_b ? a.stride_b : a.stride_a;
  const uint8_t* src = (in_b ? a.wb : a.wa) + static_cast<size_t>(local) * stride;
  rf_mbar_expect_tx(full, static_cast<uint32_t>(n) * rb);
  if (stride == static_cast<size_t>(rb)) {
    rf_bulk_copy(st, src, static_cast<uint32_t>(n) * rb, full, policy);
    return;
  }
  for (int r = 0; r < n; ++r) rf_bulk_copy(st + static_cast<size_t>(r) * rb, src + r * stride, rb, full, policy);
}

// One consumer wave's kR rows (from `first`) of a unit of n rows in the stage: their dot products
// with each of the n_tok <= NT tokens' x (rows of cols values one after another in xs / xsd), over
// slice `slice` of `splits` equal item ranges of the rows.
template <class F, int NT>
__device__ inline void consume_rows(const uint8_t* st, int row_bytes, int first, int n, int cols, const int8_t* xs,
                                    const float* xsd, int n_tok, int slice, int splits, float (&acc)[kR][NT]) {
  const int lane = threadIdx.x % warpSize, p = lane & 3, step = warpSize >> 2;
  const int n_chunks = cols / 32, all_items = F::items(n_chunks);
  const int item0 = all_items * slice / splits, n_items = all_items * (slice + 1) / splits;
  const uint8_t* rp[kR];
#pragma unroll
  for (int r = 0; r < kR; ++r) rp[r] = st + static_cast<size_t>(min(first + r, n - 1)) * row_bytes;
#pragma unroll 2
  for (int it = item0 + (lane >> 2); it < n_items; it += step) {
    typename F::Raw raw[kR];
#pragma unroll
    for (int r = 0; r < kR; ++r) F::load_raw(rp[r], it, p, n_chunks, raw[r]);
    if constexpr (NT == 1) {
      typename F::Xq xv;
      F::load_xq(xs, xsd, it, p, n_chunks, xv);
#pragma unroll
      for (int r = 0; r < kR; ++r) acc[r][0] += F::dot_raw(raw[r], it, p, n_chunks, xv);
    } else {
      // Every token's x against the item (a uniform loop: n_tok is the grid's); where the format
      // splits its dot product, the weights' half once for all tokens.
      auto over_tokens = [&](auto&& dot) {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t < n_tok) {
            typename F::Xq xv;
            F::load_xq(xs + t * cols, xsd + t * n_chunks, it, p, n_chunks, xv);
#pragma unroll
            for (int r = 0; r < kR; ++r) acc[r][t] += dot(r, xv);
          }
        }
      };
      if constexpr (HasPrep<F>::value) {
        typename F::Prep w[kR];
#pragma unroll
        for (int r = 0; r < kR; ++r) F::prep(raw[r], it, p, n_chunks, w[r]);
        over_tokens([&](int r, const typename F::Xq& xv) { return F::dot_prep(w[r], xv); });
      } else {
        over_tokens([&](int r, const typename F::Xq& xv) { return F::dot_raw(raw[r], it, p, n_chunks, xv); });
      }
    }
  }
}

// The consumers' fused rmsnorm, rmsnorm_q8's math and rounding (only the order of the sum of squares
// differs). Thread t owns float4 groups j = t, t + nc, ... (at most kNormVecs): a 32-element chunk is
// 8 consecutive groups, an aligned 8-lane group, so a chunk's max|y| is three xor-shuffles. The norm
// weight is loaded before the wait for earlier kernels (never written), x and add after it: one
// round trip to memory. Block 0 also writes x + add to nx_out.
constexpr int kNormVecs = 8;
struct NormRegs {
  float4 w[kNormVecs];
};
__device__ inline void norm_load_weight(const StagedArgs& a, int nc, NormRegs& r) {
  const int n4 = a.cols / 4;
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nc;
    r.w[k] = j < n4 ? reinterpret_cast<const float4*>(a.nw)[j] : make_float4(0.f, 0.f, 0.f, 0.f);
  }
}
__device__ inline void norm_into_smem(const StagedArgs& a, int consumers, const NormRegs& r, float* red, int8_t* xs,
                                      float* xsd) {
  const int nc = consumers * warpSize, n4 = a.cols / 4;
  const int wave = threadIdx.x / warpSize, lane = threadIdx.x % warpSize;
  const bool write = blockIdx.x == 0 && a.nx_out;
  float4 xv[kNormVecs];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nc;
    xv[k] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (j < n4) {
      xv[k] = reinterpret_cast<const float4*>(a.nx)[j];
      if (a.nadd) {
        const float4 d = reinterpret_cast<const float4*>(a.nadd)[j];
        xv[k] = make_float4(xv[k].x + d.x, xv[k].y + d.y, xv[k].z + d.z, xv[k].w + d.w);
      }
      if (write) reinterpret_cast<float4*>(a.nx_out)[j] = xv[k];
    }
    ss = fmaf(xv[k].x, xv[k].x, fmaf(xv[k].y, xv[k].y, fmaf(xv[k].z, xv[k].z, fmaf(xv[k].w, xv[k].w, ss))));
  }
  ss = rf_wave_sum(ss);
  if (lane == 0) red[wave] = ss;
  rf_named_sync(nc);
  float total = 0.f;
  for (int i = 0; i < consumers; ++i) total += red[i];
  const float inv = rsqrtf(total / a.cols + a.eps);
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nc;
    const float4 w = r.w[k];
    const float4 v = make_float4(xv[k].x * inv * w.x, xv[k].y * inv * w.y, xv[k].z * inv * w.z, xv[k].w * inv * w.w);
    // Every lane shuffles (a wave may straddle the end); only groups inside the row store.
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    for (int off = 4; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
    if (j < n4) {
      const float sc = amax > 0.f ? 127.f / amax : 0.f;
      auto byte = [sc](float x) { return static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(rintf(x * sc)))); };
      reinterpret_cast<uint32_t*>(xs)[j] = byte(v.x) | byte(v.y) << 8 | byte(v.z) << 16 | byte(v.w) << 24;
      if ((j & 7) == 0) xsd[j >> 3] = amax / 127.f;
    }
  }
}

// The SwiGLU epilogue of one consumer wave's kR row sums at `row` of the 64-row group walk: they
// meet in the block's ring slot of their group, and the wave that brings the group's last rows
// (a shared-memory count, no device-wide round trip: the block owns whole groups) makes the 32
// outputs: swiglu_q8's math, rounding and layout, so the result is bit-identical to the gate/up
// matvec followed by swiglu_q8. The staged kernel is NVIDIA-only: a wave is 32 lanes, one output each.
__device__ inline void swiglu_epilogue(const StagedArgs& a, int row, bool has_rows, const float (&sum)[kR][1],
                                       float* ring, int* count, int lane) {
  const int grp = row >> 6, slot = grp % kSwiRing;
  float* vals = ring + slot * 64;
  int last = 0;
  if (lane == 0 && has_rows) {
#pragma unroll
    for (int r = 0; r < kR; ++r) vals[(row & 63) + r] = sum[r][0];
    __threadfence_block();  // the values before the count
    last = atomicAdd(&count[slot], 1) == 64 / kR - 1;
  }
  last = rf_shfl(last, 0);
  if (!last) return;
  __threadfence_block();
  const float g = vals[lane], u = vals[32 + lane];
  if (lane == 0) count[slot] = 0;  // the slot's next group (grp + kSwiRing) is not reached before this wave moves on
  const float v = g / (1.f + expf(-g)) * u;
  const int i = grp * 32 + lane;
  if (a.sy) a.sy[i] = v;
  rf_quantize_q8_lane(v, i, a.sq, a.sd);
}

// Block: consumer waves 0 .. C-1 (C = rows_per_unit / kR x splits), then one producer wave. Stage s
// has a `full` barrier (the producer's copies landed) and an `empty` one (all C consumers are done),
// so neither side ever waits on a block-wide barrier inside the loop. Rows too long for a stage of
// several waves' whole rows (an 8B's ffn_down) are split: `splits` consecutive waves take slices of
// the same kR rows, and the first of them adds the slices' sums in order (a consumer barrier per unit).
// NT > 1 (plain epilogue only): the products of n_tok <= NT tokens, each weight read once for all.
template <class FA, class FB, Epilogue Epi, int NT = 1>
__global__ void __launch_bounds__((kMaxConsumers + 1) * 32) matvec8q_staged_kernel(const StagedArgs a) {
  constexpr bool kSwi = Epi == kSwiglu;
  static_assert(NT == 1 || Epi == kPlain, "several tokens: plain stores only");
  extern __shared__ __align__(128) uint8_t smem[];
  auto* full = reinterpret_cast<uint64_t*>(smem);
  uint64_t* empty = full + kMaxStages;
  const int x_len = NT == 1 ? a.cols : a.n_tok * a.cols;
  auto* xs = reinterpret_cast<int8_t*>(smem + x_offset(kSwi));
  auto* xsd = reinterpret_cast<float*>(smem + xd_offset(x_len, kSwi));
  uint8_t* stages = smem + stage_offset(x_len, kSwi);
  auto* swi_vals = reinterpret_cast<float*>(smem + kSwiOffset);      // [kSwiRing][64]
  auto* swi_count = reinterpret_cast<int*>(swi_vals + kSwiRing * 64);  // [kSwiRing]
  const int consumers = a.rows_per_unit / kR * a.splits;
  const int wave = threadIdx.x / warpSize, lane = threadIdx.x % warpSize;

  // This block's rows: an even share of [A | B] in steps of kR rows (of whole 64-row groups for the
  // SwiGLU epilogue, so that a block finishes every group it starts).
  constexpr int kStep = kSwi ? 64 : kR;
  const int total = a.rows_a + a.rows_b;
  const long steps = (total + kStep - 1) / kStep;
  const int lo = static_cast<int>(steps * blockIdx.x / gridDim.x) * kStep;
  const int hi = min(total, static_cast<int>(steps * (blockIdx.x + 1) / gridDim.x) * kStep);

  if (threadIdx.x == 0) {
    for (int s = 0; s < a.stages; ++s) {
      rf_mbar_init(&full[s], 1);
      rf_mbar_init(&empty[s], consumers);
    }
    if constexpr (kSwi)
      for (int g = 0; g < kSwiRing; ++g) swi_count[g] = 0;
  }
  __syncthreads();  // barriers initialised (the last block-wide barrier)

  // ring_store: unit j's sums wait in ring[j % stages][rows_per_unit] until the producer, which waits
  // for the stage to empty anyway, stores them (the consumers fill the slot before they release it).
  const bool ring = Epi == kPlain && NT == 1 && a.ring_store && a.splits == 1;
  auto* out_ring = reinterpret_cast<float*>(smem + kSplitOffset);
  if (wave == consumers) {
    // Producer. Weights are never written, so it starts at once, without waiting for earlier
    // kernels (PDL), and runs up to `stages` units ahead of the consumers.
    if (ring) {
      // Unit k's rows [ring_row[slot], + ring_n[slot]) as one coalesced store (a.y + row addresses
      // B's rows too: y_b = y + rows_a).
      int ring_row[kMaxStages] = {}, ring_n[kMaxStages] = {};  // set before each is read (flush); zeroed for the compiler
      auto flush = [&](int k) {
        const int slot = k % a.stages;
        rf_mbar_wait(&empty[slot], static_cast<uint32_t>((k / a.stages) & 1));
        for (int r = lane; r < ring_n[slot]; r += warpSize)
          a.y[ring_row[slot] + r] = out_ring[slot * a.rows_per_unit + r];
        __syncwarp();
      };
      const uint64_t policy = a.evict_first ? rf_l2_evict_first() : rf_l2_evict_normal();
      int row = lo, j = 0;
      for (; row < hi; ++j) {
        const int s = j % a.stages, n = unit_rows(row, hi, a);
        if (j >= a.stages) flush(j - a.stages);  // stage s is empty: its unit's sums are in the ring
        if (lane == 0) issue_unit(a, row, n, stages + static_cast<size_t>(s) * a.stage_bytes, &full[s], policy);
        ring_row[s] = row;
        ring_n[s] = n;
        row += n;
      }
      for (int k = j > a.stages ? j - a.stages : 0; k < j; ++k) flush(k);
      if (lane == 0) prefetch_block_share(a.next);  // l2_prefetch.h
      return;
    }
    if (lane == 0) {
      const uint64_t policy = a.evict_first ? rf_l2_evict_first() : rf_l2_evict_normal();
      int row = lo;
      for (int j = 0; row < hi; ++j) {
        const int s = j % a.stages, n = unit_rows(row, hi, a);
        if (j >= a.stages) rf_mbar_wait(&empty[s], static_cast<uint32_t>((j / a.stages - 1) & 1));
        // A unit never crosses a 32-row half of a SwiGLU group (rows_per_unit divides 32).
        issue_unit(a, kSwi ? swiglu_row(row, a.n_ff) : row, n, stages + static_cast<size_t>(s) * a.stage_bytes,
                   &full[s], policy);
        row += n;
      }
      prefetch_block_share(a.next);  // l2_prefetch.h
    }
    return;
  }

  const int nc = consumers * warpSize;
  NormRegs nr;
  if (a.norm) norm_load_weight(a, nc, nr);
  rf_grid_wait();  // PDL: x is written by the kernel before this one (hip_compat.h)
  rf_grid_trigger();
  if (NT == 1 && a.norm) {
    norm_into_smem(a, consumers, nr, reinterpret_cast<float*>(smem + kRedOffset), xs, xsd);
  } else {
    const int n16 = x_len / 16;  // cols is a multiple of 32
    const uint4* src = reinterpret_cast<const uint4*>(a.xq);
    for (int i = threadIdx.x; i < n16; i += nc) reinterpret_cast<uint4*>(xs)[i] = src[i];
    for (int i = threadIdx.x; i < x_len / 32; i += nc) xsd[i] = a.xd[i];
  }
  rf_named_sync(nc);  // x staged (consumers only: the producer may be far ahead or gone)

  const int first = wave / a.splits * kR, slice = wave % a.splits;  // this wave's rows within a unit, its slice
  auto* split_sums = reinterpret_cast<float*>(smem + kSplitOffset);  // [2][consumers][kR x NT], by unit parity
  int row = lo;
  for (int i = 0; row < hi; ++i) {
    const int s = i % a.stages, n = unit_rows(row, hi, a);
    const uint8_t* st = stages + static_cast<size_t>(s) * a.stage_bytes;
    rf_mbar_wait(&full[s], static_cast<uint32_t>((i / a.stages) & 1));
    const bool in_b = row >= a.rows_a;
    float acc[kR][NT] = {};
    if (first < n) {
      if (in_b) consume_rows<FB, NT>(st, a.row_bytes_b, first, n, a.cols, xs, xsd, a.n_tok, slice, a.splits, acc);
      else consume_rows<FA, NT>(st, a.row_bytes_a, first, n, a.cols, xs, xsd, a.n_tok, slice, a.splits, acc);
    }
    __syncwarp();
    if (!ring && lane == 0) rf_mbar_arrive(&empty[s]);  // this wave is done reading stage s
    float sum[kR][NT];
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) sum[r][t] = rf_wave_sum(acc[r][t]);
    if (ring) {
      // Every lane holds every sum (butterfly): lane r puts row r in the ring, then the wave
      // releases the stage (the arrive orders the ring writes before the producer's reads).
      if (first < n && lane < min(kR, n - first)) {
        float v = sum[0][0];
#pragma unroll
        for (int r = 1; r < kR; ++r)
          if (lane == r) v = sum[r][0];
        out_ring[s * a.rows_per_unit + first + lane] = v;
      }
      __syncwarp();
      if (lane == 0) rf_mbar_arrive(&empty[s]);
      row += n;
      continue;
    }
    if (a.splits > 1) {
      // Slices' sums meet in shared memory; double-buffered by unit parity, so one barrier per unit
      // also keeps unit i + 2's writes behind unit i's reads.
      float* part = split_sums + (i & 1) * kMaxConsumers * kR * NT;
      if (lane == 0) {
#pragma unroll
        for (int r = 0; r < kR; ++r)
#pragma unroll
          for (int t = 0; t < NT; ++t) part[(wave * kR + r) * NT + t] = sum[r][t];
      }
      rf_named_sync(nc);
      if (slice == 0 && lane == 0) {
#pragma unroll
        for (int r = 0; r < kR; ++r)
#pragma unroll
          for (int t = 0; t < NT; ++t) {
            sum[r][t] = 0.f;
            for (int k = 0; k < a.splits; ++k) sum[r][t] += part[((wave + k) * kR + r) * NT + t];
          }
      }
    }
    if constexpr (kSwi) {
      swiglu_epilogue(a, row + first, first < n, sum, swi_vals, swi_count, lane);
    } else if constexpr (NT > 1) {
      if (lane == 0 && slice == 0 && first < n) {
        const int m = min(kR, n - first);
#pragma unroll
        for (int r = 0; r < kR; ++r) {
          if (r >= m) continue;
          const int gr = row + first + r;
          int p = 0;
          while (p + 1 < a.n_parts && gr >= a.part_end[p]) ++p;
          const int p0 = p > 0 ? a.part_end[p - 1] : 0, prows = a.part_end[p] - p0;
#pragma unroll
          for (int t = 0; t < NT; ++t)
            if (t < a.n_tok) a.part_y[p][static_cast<size_t>(t) * prows + gr - p0] = sum[r][t];
        }
      }
    } else if (Epi == kPlain && a.splits == 1) {
      // Every lane holds every sum (butterfly): lane r stores row r, the wave's kR rows in one store
      // instruction (outputs in host memory take the ring above instead).
      const int m = min(kR, n - first);
      if (first < n && lane < m) {
        float v = sum[0][0];
#pragma unroll
        for (int r = 1; r < kR; ++r)
          if (lane == r) v = sum[r][0];
        (in_b ? a.y + a.rows_a : a.y)[(in_b ? row - a.rows_a : row) + first + lane] = v;
      }
    } else if (lane == 0 && slice == 0 && first < n) {
      const int local = (in_b ? row - a.rows_a : row) + first;
      float* yb = in_b ? a.y + a.rows_a : a.y;
      const int m = min(kR, n - first);
      float s1[kR];
#pragma unroll
      for (int r = 0; r < kR; ++r) s1[r] = sum[r][0];
      if constexpr (Epi == kRope) QkvRopeStore{yb, in_b ? a.rows_a : 0, a.rope}(local, s1, m);
      else PlainStore{yb}(local, s1, m);
    }
    row += n;
  }
}

template <class F>
int row_bytes_of(int cols) {
  return cols / F::kBlockElems * F::kBlockBytes;
}

// Launch shape: consumer waves (rows per unit / kR x splits) from the row size, so a stage holds about
// kStageTarget bytes; rows too long for several waves' whole rows are split (split_all: every such
// row, else only rows of kSplitMinRowBytes and more) or stay on the register kernels.
struct Shape {
  int rows_per_unit, splits, stages, threads;
  uint32_t stage_bytes;
  size_t smem;
};
constexpr int kSplitMinRowBytes = 12288;
template <class FA, class FB>
bool shape_for(int cols, bool has_b, bool split_all, Shape* sh, int swiglu_waves = 0, int n_tok = 1) {
  const bool swiglu = swiglu_waves > 0;
  int rb = row_bytes_of<FA>(cols);
  if (rb % 16 || (has_b && row_bytes_of<FB>(cols) % 16)) return false;
  if (has_b) rb = std::max(rb, row_bytes_of<FB>(cols));
  static const int env_target = env_int("ROCFORGE_MV_STAGE_BYTES", kStageTarget);
  static const int env_stages = env_int("ROCFORGE_MV_STAGES", 0);
  static const int env_min = env_int("ROCFORGE_MV_MIN_CONSUMERS", 4);
  static const int env_split = env_int("ROCFORGE_MV_SPLIT", 1);
  int consumers = std::min(kMaxConsumers, std::max(0, env_target / (kR * rb)));
  int splits = 1;
  if (swiglu) {
    // Whole rows, and units that tile a 32-row half of a group: a power of two of consumer waves, at
    // most swiglu_waves of them.
    consumers = std::min(consumers, swiglu_waves);
    if (consumers < 1) return false;
    while (consumers & (consumers - 1)) --consumers;
  }
  if (!swiglu && consumers < std::max(1, env_min)) {
    // Long rows: row groups of kR rows, each split over kMaxConsumers / groups waves, at most two
    // row pairs' worth of bytes per stage (an 8B's ffn_down: Q4_K 2 groups x 4 slices, Q6_K / Q8_0
    // 1 x 8). Not for [A | B] (q/k/v rows are short) nor where the row pair outgrows a stage.
    if (!env_split || has_b || kR * rb > 2 * env_target) return false;
    // ROCFORGE_MV_SPLIT=1 (default) splits rows of 12 KB and more (an 8B's Q8_0 ffn_down, 15 KB; H100:
    // 27.0 -> 23.1 us per call, 8B Q8_0 tg128 263.3 / 264.8 / 262.4 -> 270.5 / 268.3 / 269.3), not the
    // 8-12 KB rows of Q4_K, Q4_0 and Q6_K (slower split: 8B Q4_K_M 390.5 / 391.4 / 388.1 -> 385.4 /
    // 376.5 / 382.5); =2 splits every long row (the tests' forced mode does too), 0 none.
    if (env_split == 1 && !split_all && rb < kSplitMinRowBytes) return false;
    const int groups = std::max(1, consumers);
    splits = kMaxConsumers / groups;
    consumers = groups;
  }
  sh->rows_per_unit = consumers * kR;
  sh->splits = splits;
  sh->threads = (consumers * splits + 1) * wave_size();
  sh->stages = env_stages >= 2 && env_stages <= kMaxStages ? env_stages : 2;
  sh->stage_bytes = static_cast<uint32_t>(sh->rows_per_unit * rb);
  sh->smem = stage_offset(n_tok * cols, swiglu) + static_cast<size_t>(sh->stages) * sh->stage_bytes;
  return true;
}

// Blocks of `kernel` that fit on one multiprocessor with `smem` bytes, per kernel, shape and device;
// 0 when it does not fit or the binary has no sm_90 code for it. The kernel's shared-memory limit is
// raised once a device (an attribute of the device's context: a model split over GPUs launches the
// kernel on each) to the device's opt-in maximum (a per-shape limit would shrink under a larger
// shape's feet).
template <class K>
int blocks_per_sm(K kernel, int threads, size_t smem) {
  static thread_local std::map<std::tuple<const void*, int, size_t, int>, int> fits;
  static thread_local std::map<std::pair<const void*, int>, bool> raised;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  const void* key_k = reinterpret_cast<const void*>(kernel);
  const auto key = std::make_tuple(key_k, threads, smem, dev);
  auto it = fits.find(key);
  if (it != fits.end()) return it->second;
  auto r = raised.find({key_k, dev});
  if (r == raised.end()) {
    int optin = 0;
    cudaFuncAttributes attr{};
    const bool ok = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
                    cudaFuncGetAttributes(&attr, kernel) == cudaSuccess && attr.binaryVersion >= 90 &&
                    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         optin - static_cast<int>(attr.sharedSizeBytes)) == cudaSuccess;
    (void)cudaGetLastError();  // a refused attribute is an answer here, not an error for the next launch
    r = raised.emplace(std::make_pair(key_k, dev), ok).first;
  }
  int n = 0;
  if (!r->second || cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem) != cudaSuccess) n = 0;
  (void)cudaGetLastError();
  fits[key] = n;
  return n;
}

// -1 auto (staged for large matrices on sm_90+), 0 never, 1 always where it applies. Starts from
// $ROCFORGE_MV_STAGED (read once); tests set it through matvec_q8_set_kernel.
int& staged_mode() {
  static int mode = [] {
    const char* e = std::getenv("ROCFORGE_MV_STAGED");
    return e && *e == '0' ? 0 : e && *e == '1' ? 1 : -1;
  }();
  return mode;
}

template <class FA, class FB, Epilogue Epi, int NT = 1>
int launch(const StagedArgs& base, const Shape& sh, hipStream_t s, bool dry_run) {
  auto kernel = matvec8q_staged_kernel<FA, FB, Epi, NT>;
  const int per_sm = blocks_per_sm(kernel, sh.threads, sh.smem);
  if (per_sm <= 0) return -1;
  const int total = base.rows_a + base.rows_b;
  const int units = (total + sh.rows_per_unit - 1) / sh.rows_per_unit;
  const int slots = per_sm * multiprocessors();
  int grid = std::max(1, std::min(units, slots));
  if constexpr (Epi == kSwiglu) {
    // Blocks own whole 64-row groups, and pay only when every group has a block of its own, all
    // resident at once (H100, 8B Q4_K_M tg128: 448 groups on 264 blocks of 8 consumer waves, most
    // walking two groups, 412.3 -> 402.5 tok/s; on 660 blocks of 4 waves, one group each, 417.5;
    // see swiglu_staged).
    // Forced (tests) or ROCFORGE_MV_SWIGLU_ANY=1: taken regardless.
    const int groups = total / 64;
    static const bool any = env_int("ROCFORGE_MV_SWIGLU_ANY", 0) == 1;
    if (staged_mode() < 1 && !any && groups > slots) return -1;
    grid = std::max(1, std::min(groups, slots));
  }
  if (dry_run) return 0;
  StagedArgs a = base;
  a.next = take_l2_prefetch();
  a.row_bytes_a = row_bytes_of<FA>(a.cols);
  a.row_bytes_b = a.rows_b > 0 ? row_bytes_of<FB>(a.cols) : 0;
  a.rows_per_unit = sh.rows_per_unit;
  a.splits = sh.splits;
  a.stages = sh.stages;
  a.stage_bytes = sh.stage_bytes;
  static const int evict = env_int("ROCFORGE_MV_EVICT_FIRST", 1);
  a.evict_first = evict != 0;
  // The ring (the producer stores a unit's rows in one transaction) for outputs in host memory: with
  // each consumer wave storing its own two rows, the head writing a step's logits into page-locked
  // memory issued ~1.3 G small PCIe writes a second on a 1B Q4_0 and outran the bus (H100 tg128 -2.6%
  // against copying the logits after). Not for device memory, where it measured -1% on an H200 (8B
  // Q4_K_M) and +-1% on an H100. ROCFORGE_MV_RING_STORE=0: never, 2: always (A/B runs).
  static const int ring_env = env_int("ROCFORGE_MV_RING_STORE", 1);
  a.ring_store = ring_env == 2 || (ring_env == 1 && rf_is_host_memory(a.y));
  (void)rf_launch(kernel, grid, sh.threads, sh.smem, s, a);
  return check(hipGetLastError(), "matvec_q8 (staged)");
}

// The fused rmsnorm's inputs into the kernel's arguments; false where their alignment does not suit.
bool take_norm(StagedArgs& a, const rf_norm_in& norm) {
  if (a.cols % 4 != 0 || reinterpret_cast<uintptr_t>(norm.d_x) % 16 || reinterpret_cast<uintptr_t>(norm.d_add) % 16 ||
      reinterpret_cast<uintptr_t>(norm.d_x_out) % 16 || !norm.d_x || !norm.d_w)
    return false;
  a.norm = 1;
  a.nx = norm.d_x;
  a.nadd = norm.d_add;
  a.nw = norm.d_w;
  a.nx_out = norm.d_x_out;
  a.eps = norm.eps;
  return true;
}
// Whether the fused norm's row fits the consumers' registers (kNormVecs float4 groups a thread).
bool norm_fits(const StagedArgs& a, const Shape& sh) {
  return !a.norm || a.cols / 4 <= kNormVecs * (sh.rows_per_unit / kR * sh.splits) * wave_size();
}

// The staged path for [A | B] (type_b 0: A alone): -1 where it does not apply (the caller runs the
// register kernels), else the launch's result. dry_run: only says whether it applies.
int staged(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
           size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope, hipStream_t s,
           bool dry_run, const rf_norm_in* norm = nullptr) {
  const int mode = staged_mode();
  if (mode == 0 || compute_major() < 9 || cols <= 0 || cols % 32 != 0 || cols > 65536) return -1;
  // Small matrices stay on the register kernels: there the first stage's latency (a whole ~40 KB
  // copy lands before its waves start) outweighs the deeper queue (H200, gpu_bench --matvec-only:
  // 8B q/k/v and o slower staged, gate/up and output 13-19% faster). 16 MB since the next-projection
  // prefetch (l2_prefetch.h), which lands a matrix's first bytes in L2 before it starts: H100 tg128,
  // 24 -> 16 MB, 8B Q8_0 281.0 -> 284.1 (its 17.8 MB o projection staged; medians of 4), 1B Q4_K_M /
  // Q4_0 (their 18.9 MB gate/up; means of 2) 1576.3 / 1627.4 -> 1579.1 / 1629.5, 8B Q4_K_M 411.6 -> 411.9.
  static const long min_bytes = static_cast<long>(env_int("ROCFORGE_MV_STAGED_MIN_MB", 16)) << 20;
  if (reinterpret_cast<uintptr_t>(wa) % 16 || stride_a % 16) return -1;
  if (type_b != 0 && (reinterpret_cast<uintptr_t>(wb) % 16 || stride_b % 16 || rows_a % kR)) return -1;
  // With the norm fused in, a small matrix gains a launch instead: taken at any size.
  if (mode < 0 && !norm && static_cast<long>(stride_a) * rows_a + (type_b != 0 ? static_cast<long>(stride_b) * rows_b : 0L) <
                      min_bytes)
    return -1;
  StagedArgs a{};
  a.wa = static_cast<const uint8_t*>(wa);
  a.wb = static_cast<const uint8_t*>(wb);
  a.stride_a = stride_a;
  a.stride_b = stride_b;
  a.rows_a = rows_a;
  a.rows_b = type_b != 0 ? rows_b : 0;
  a.cols = cols;
  a.xq = static_cast<const int8_t*>(xq);
  a.xd = reinterpret_cast<const float*>(a.xq + (static_cast<size_t>(cols) + 15) / 16 * 16);
  a.y = y;
  if (rope) a.rope = *rope;
  if (norm && !take_norm(a, *norm)) return -1;
  int rc = -1;
  auto go = [&](auto fa, auto fb) {
    using FA = decltype(fa);
    using FB = decltype(fb);
    if constexpr (HasDot8q<FA>::value && HasDot8q<FB>::value) {
      Shape sh{};
      if (!shape_for<FA, FB>(cols, a.rows_b > 0, mode > 0, &sh)) return;
      if (!norm_fits(a, sh)) return;  // row too long for the registers
      rc = rope ? launch<FA, FB, kRope>(a, sh, s, dry_run) : launch<FA, FB, kPlain>(a, sh, s, dry_run);
    }
  };
  // Plain matvecs of every int8 format; [A | B] pairs and the rope epilogue for the q/k/v layouts.
  if (type_b == 0 && !rope) dispatch_type(type_a, [&](auto f) { go(f, f); });
  else dispatch_qkv(type_a, type_b, go);
  return rc;
}

// The gate/up projection with the SwiGLU epilogue; -1 where it does not apply (see matvec_staged.h).
int swiglu_staged(uint32_t type, const void* w, size_t stride, int n_ff, int cols, const void* xq,
                  const rf_norm_in* norm, float* y, void* yq, hipStream_t s) {
  const int mode = staged_mode();
  if (mode == 0 || compute_major() < 9 || cols <= 0 || cols % 32 != 0 || cols > 65536 || n_ff <= 0 || n_ff % 32 != 0 ||
      n_ff > (1 << 29) || reinterpret_cast<uintptr_t>(w) % 16 || stride % 16 || !yq)
    return -1;
  StagedArgs a{};
  a.wa = static_cast<const uint8_t*>(w);
  a.stride_a = stride;
  a.rows_a = 2 * n_ff;
  a.cols = cols;
  a.xq = static_cast<const int8_t*>(xq);
  a.xd = xq ? reinterpret_cast<const float*>(a.xq + (static_cast<size_t>(cols) + 15) / 16 * 16) : nullptr;
  a.n_ff = n_ff;
  a.sy = y;
  a.sq = static_cast<int8_t*>(yq);
  a.sd = reinterpret_cast<float*>(a.sq + (static_cast<size_t>(n_ff) + 15) / 16 * 16);
  if (norm ? !take_norm(a, *norm) : !xq) return -1;
  int rc = -1;
  dispatch_qkv(type, 0, [&](auto f, auto) {
    using F = decltype(f);
    if constexpr (HasDot8q<F>::value && kSwigluEpilogue<F, true>) {  // where it pays (matvec_staged.h)
      // The plain kernel's blocks, where the device holds one per 64-row group (launch()). With
      // ROCFORGE_MV_SWIGLU_NARROW=1, else the widest narrower blocks that do (fewer consumer waves,
      // smaller stages, more blocks resident): an 8B's 448 groups on 4-wave blocks, 5 per SM, gained
      // on an H100 (tg128 Q4_K_M 409.8 -> 415.4, Q4_0 441.0 -> 447.2, Q8_0 284.1 -> 293.0) but lost
      // on an H200 (Q4_K_M 484.3 -> 474.1: fewer bytes in flight a multiprocessor), so not by
      // default. The widest shape when none covers them (declined there unless forced).
      static const bool narrow = env_int("ROCFORGE_MV_SWIGLU_NARROW", 0) == 1;
      Shape sh{};
      for (int waves = kMaxConsumers; waves >= 1; waves = narrow ? waves / 2 : 0) {
        Shape t{};
        if (!shape_for<F, F>(cols, false, false, &t, waves) || !norm_fits(a, t)) continue;
        if (sh.threads == 0) sh = t;
        const int per_sm = blocks_per_sm(matvec8q_staged_kernel<F, F, kSwiglu>, t.threads, t.smem);
        if (static_cast<long>(per_sm) * multiprocessors() >= n_ff / 32) {
          sh = t;
          break;
        }
      }
      if (sh.threads == 0) return;
      rc = launch<F, F, kSwiglu>(a, sh, s, false);
    }
  });
  return rc;
}

// Decode steps of a few sequences (matvec_q8_multi): -1 where it does not apply (see matvec_staged.h).
int multi_staged(uint32_t type, const void* w, size_t stride, int cols, const void* xq, int n_tok, int n_parts,
                 const int* part_rows, float* const* ys, hipStream_t s) {
  const int mode = staged_mode();
  if (mode == 0 || compute_major() < 9 || cols <= 0 || cols % 32 != 0 || cols > 65536 || n_tok < 2 ||
      n_tok > kMaxTok || reinterpret_cast<uintptr_t>(w) % 16 || stride % 16 || reinterpret_cast<uintptr_t>(xq) % 16 ||
      n_parts < 1 || n_parts > 3)
    return -1;
  long rows = 0;
  for (int p = 0; p < n_parts; ++p) {
    if (part_rows[p] <= 0 || !ys[p]) return -1;
    rows += part_rows[p];
  }
  if (rows > (1 << 30)) return -1;
  // Every size by default: with several tokens a weight byte carries several dot products, and the
  // register kernels run out of issue slots before bandwidth (ROCFORGE_MV_MULTI_MIN_MB to tune).
  static const long min_bytes = static_cast<long>(env_int("ROCFORGE_MV_MULTI_MIN_MB", 0)) << 20;
  if (mode < 0 && static_cast<long>(stride) * rows < min_bytes) return -1;
  StagedArgs a{};
  a.wa = static_cast<const uint8_t*>(w);
  a.stride_a = stride;
  a.rows_a = static_cast<int>(rows);
  a.cols = cols;
  a.n_tok = n_tok;
  a.xq = static_cast<const int8_t*>(xq);
  a.xd = reinterpret_cast<const float*>(a.xq + (static_cast<size_t>(n_tok) * cols + 15) / 16 * 16);
  a.n_parts = n_parts;
  for (int p = 0, end = 0; p < n_parts; ++p) {
    end += part_rows[p];
    a.part_end[p] = end;
    a.part_y[p] = ys[p];
  }
  // Rows split over the waves (an 8B's ffn_down) up to this many tokens: beyond, the split's partial
  // sums and the single block a multiprocessor that x of 4+ tokens leaves lose to the register
  // kernels (H100, gpu_bench --batched-only, us register -> staged: q4_k 4096x14336 2 / 4 / 8 tokens
  // 25.0 / 37.7 / 62.0 -> 21.9 / 44.3 / 78.3, q6_k 38.3 / 53.7 / 70.8 -> 29.7 / 44.6 / 123.4).
  static const int split_max = env_int("ROCFORGE_MV_MULTI_SPLIT_TOKENS", 2);
  int rc = -1;
  dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (HasDot8q<F>::value) {
      Shape sh{};
      if (!shape_for<F, F>(cols, false, n_tok <= split_max || mode > 0, &sh, 0, n_tok)) return;
      if (sh.splits > 1 && n_tok > split_max && mode < 0) return;
      if (n_tok <= 2) rc = launch<F, F, kPlain, 2>(a, sh, s, false);
      else if (n_tok <= 4) rc = launch<F, F, kPlain, 4>(a, sh, s, false);
      else rc = launch<F, F, kPlain, kMaxTok>(a, sh, s, false);
    }
  });
  return rc;
}

}  // namespace

int matvec_q8_multi_staged(uint32_t type, const void* w, size_t stride, int cols, const void* xq, int n_tok,
                           int n_parts, const int* part_rows, float* const* ys, hipStream_t s) {
  return multi_staged(type, w, stride, cols, xq, n_tok, n_parts, part_rows, ys, s);
}
int matvec_q8_swiglu_staged(uint32_t type, const void* w, size_t stride, int n_ff, int cols, const void* xq,
                            const rf_norm_in* norm, float* y, void* yq, hipStream_t s) {
  return swiglu_staged(type, w, stride, n_ff, cols, xq, norm, y, yq, s);
}
int matvec_q8_staged(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                     size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                     hipStream_t s, const rf_norm_in* norm) {
  return staged(type_a, wa, stride_a, rows_a, type_b, wb, stride_b, rows_b, cols, xq, y, rope, s, false, norm);
}
bool matvec_q8_staged_applies(uint32_t type, const void* w, size_t stride, int rows, int cols) {
  return staged(type, w, stride, rows, 0, nullptr, 0, 0, cols, nullptr, nullptr, nullptr, nullptr, true) == 0;
}
void matvec_q8_staged_mode(int mode) { staged_mode() = mode < 0 ? -1 : mode > 0 ? 1 : 0; }
bool matvec_q8_staged_enabled() { return staged_mode() != 0 && compute_major() >= 9; }
#else  // no bulk-copy engine (AMD): the register kernels of matvec.hip serve every call

int matvec_q8_staged(uint32_t, const void*, size_t, int, uint32_t, const void*, size_t, int, int, const void*, float*,
                     const rf_qkv_rope*, hipStream_t, const rf_norm_in*) {
  return -1;
}
int matvec_q8_swiglu_staged(uint32_t, const void*, size_t, int, int, const void*, const rf_norm_in*, float*, void*,
                            hipStream_t) {
  return -1;
}
int matvec_q8_multi_staged(uint32_t, const void*, size_t, int, const void*, int, int, const int*, float* const*,
                           hipStream_t) {
  return -1;
}
bool matvec_q8_staged_applies(uint32_t, const void*, size_t, int, int) { return false; }
void matvec_q8_staged_mode(int) {}
bool matvec_q8_staged_enabled() { return false; }
#endif

}  // namespace rocforge::gpu
