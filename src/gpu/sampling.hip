// sampling.hip - next-token sampling on the device: greedy, temperature, top-k, top-p, min-p.
//
// One block of 1024 threads does the whole vocabulary (no sort). Candidate sets are expressed as
// thresholds on an order-preserving 32-bit key of the scaled logit (logit * (1 / T)):
//   top-k: the largest key K with count(key >= K) >= k  (the k-th largest value; ties all stay in),
//          found by a 4-pass radix select; up to 1024 candidates are then gathered into shared
//          memory so that everything after it runs on them instead of the vocabulary,
//   top-p: the largest key K with mass(key >= K) >= top_p * mass(top-k set) (bisection on key bits),
//   min-p: key(max + ln(min_p)).
// The token is then drawn by inverse CDF over the candidates in index order with the caller's u, so
// only the sampled id ever leaves the device and the result is reproducible from u.
#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 1024;
constexpr int kMaxCand = 1024;  // top-k candidate sets up to this size are finished in shared memory

__device__ inline uint32_t order_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// The scaled logits, read from global memory (whole vocabulary) ...
struct GlobalLogits {
  const float* logits;
  float inv_t;
  __device__ float value(int i) const { return logits[i] * inv_t; }
  __device__ int index(int i) const { return i; }
};
// ... or the top-k candidates gathered into shared memory in index order.
struct SharedCands {
  const float* val;
  const int* idx;
  __device__ float value(int i) const { return val[i]; }
  __device__ int index(int i) const { return idx[i]; }
};

// top-p and min-p thresholds over elements [0, count) of `a` (all at or above key kk), then the
// inverse-CDF draw in index order; thread `tid` owns a contiguous segment of the elements.
// Probability masses are summed in double: over a 128k vocabulary, float rounding of the running
// sums is as large as one token's share and would move the draw.
template <class A>
__device__ void finish(const A& a, int count, float mx, uint32_t kk, float top_p, float min_p, float u,
                       int32_t* token, double* scratch, double* seg_mass) {
  const int tid = threadIdx.x;
  uint32_t kp = 0;
  if (top_p < 1.f) {
    double z1 = 0.0;
    for (int i = tid; i < count; i += blockDim.x) {
      const float l = a.value(i);
      if (order_key(l) >= kk) z1 += expf(l - mx);
    }
    z1 = rf_block_sum_d(z1, scratch);
    const double need = static_cast<double>(top_p) * z1;
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = kp | (1u << bit);
      double mass = 0.0;
      for (int i = tid; i < count; i += blockDim.x) {
        const float l = a.value(i);
        if (order_key(l) >= cand) mass += expf(l - mx);
      }
      mass = rf_block_sum_d(mass, scratch);
      if (mass >= need) kp = cand;
    }
  }
  uint32_t km = 0;
  if (min_p > 0.f) km = order_key(mx + logf(min_p));
  const uint32_t kmin = max(kk, max(kp, km));

  const int seg = (count + blockDim.x - 1) / blockDim.x;
  const int b = tid * seg, e = min(count, b + seg);
  double mass = 0.0;
  for (int i = b; i < e; ++i) {
    const float l = a.value(i);
    if (order_key(l) >= kmin) mass += expf(l - mx);
  }
  seg_mass[tid] = mass;
  __syncthreads();
  if (tid == 0) {
    double total = 0.0;
    for (int t = 0; t < static_cast<int>(blockDim.x); ++t) total += seg_mass[t];
    const double target = static_cast<double>(u) * total;
    double run = 0.0;
    int pick = -1, last = -1;
    for (int t = 0; t < static_cast<int>(blockDim.x) && pick < 0; ++t) {
      if (seg_mass[t] <= 0.0) continue;
      if (run + seg_mass[t] <= target) { run += seg_mass[t]; continue; }
      const int sb = t * seg, se = min(count, sb + seg);
      for (int i = sb; i < se; ++i) {
        const float l = a.value(i);
        if (order_key(l) < kmin) continue;
        last = i;
        run += expf(l - mx);
        if (run > target) { pick = i; break; }
      }
    }
    if (pick < 0) {  // u * total at the very top (rounding): take the last candidate
      for (int i = count - 1; i >= 0 && last < 0; --i)
        if (order_key(a.value(i)) >= kmin) last = i;
      pick = last < 0 ? 0 : last;
    }
    *token = a.index(pick);
  }
}

// One row by the whole block (sample_kernel: one row per launch; sample_rows_kernel: a block per row).
__device__ __forceinline__ void sample_row(const float* __restrict__ logits, int n, float temperature, int top_k,
                                           float top_p, float min_p, float u, int32_t* __restrict__ token) {
  __shared__ float scratch[kRfMaxWavesPerBlock];
  __shared__ double seg_mass[kThreads];
  __shared__ double scratch_d[kRfMaxWavesPerBlock];
  __shared__ int best_idx[kRfMaxWavesPerBlock];
  __shared__ unsigned hist[256];
  __shared__ unsigned sel[2];
  __shared__ int seg_cnt[kThreads];
  __shared__ float cand_val[kMaxCand];
  __shared__ int cand_idx[kMaxCand];
  const int tid = threadIdx.x;
  const int lane = tid % warpSize, wave = tid / warpSize, n_waves = blockDim.x / warpSize;

  if (temperature <= 0.f) {
    // Greedy: max value, lowest index among equals (each thread visits its indices in increasing
    // order). 16-byte loads where the row is aligned: a quarter of the loop trips of scalar loads
    // over the vocabulary, which is latency, not bandwidth, for one block.
    float bv = -INFINITY;
    int bi = n;
    auto take = [&](float v, int i) {
      if (v > bv) { bv = v; bi = i; }
    };
    const int n4 = reinterpret_cast<uintptr_t>(logits) % 16 == 0 ? n / 4 : 0;
    const float4* l4 = reinterpret_cast<const float4*>(logits);
#pragma unroll 4
    for (int j = tid; j < n4; j += blockDim.x) {
      const float4 v = l4[j];
      take(v.x, 4 * j), take(v.y, 4 * j + 1), take(v.z, 4 * j + 2), take(v.w, 4 * j + 3);
    }
    for (int i = 4 * n4 + tid; i < n; i += blockDim.x) take(logits[i], i);
    for (int off = warpSize / 2; off > 0; off /= 2) {
      const float ov = rf_shfl_xor(bv, off);
      const int oi = rf_shfl_xor(bi, off);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) { scratch[wave] = bv; best_idx[wave] = bi; }
    __syncthreads();
    if (tid == 0) {
      float v = scratch[0];
      int idx = best_idx[0];
      for (int w = 1; w < n_waves; ++w)
        if (scratch[w] > v || (scratch[w] == v && best_idx[w] < idx)) { v = scratch[w]; idx = best_idx[w]; }
      *token = idx < n ? idx : 0;
    }
    return;
  }

  const GlobalLogits all{logits, 1.f / temperature};
  float mx = -INFINITY;
  for (int i = tid; i < n; i += blockDim.x) mx = fmaxf(mx, all.value(i));
  mx = rf_block_max(mx, scratch);

  if (top_k <= 0 || top_k >= n) {
    finish(all, n, mx, 0u, top_p, min_p, u, token, scratch_d, seg_mass);
    return;
  }

  // top-k threshold: the exact key of the k-th largest scaled logit, by radix select on 8-bit digits
  // (count the digits of the keys that match the digits fixed so far, walk down from the top).
  uint32_t prefix = 0, need = static_cast<uint32_t>(top_k);
  for (int pass = 0; pass < 4; ++pass) {
    const int shift = 24 - 8 * pass;
    const uint32_t high = pass == 0 ? 0u : (0xffffffffu << (shift + 8));
    for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    // Most logits share the top digits, so counts are merged per thread while the digit repeats:
    // one shared atomic per run instead of thousands on the same bin.
    uint32_t run_digit = 256, run_count = 0;
    for (int i = tid; i < n; i += blockDim.x) {
      const uint32_t key = order_key(all.value(i));
      if ((key & high) != prefix) continue;
      const uint32_t digit = (key >> shift) & 255u;
      if (digit != run_digit) {
        if (run_count) atomicAdd(&hist[run_digit], run_count);
        run_digit = digit;
        run_count = 0;
      }
      ++run_count;
    }
    if (run_count) atomicAdd(&hist[run_digit], run_count);
    __syncthreads();
    if (tid == 0) {
      uint32_t cum = 0;
      int d = 255;
      for (; d > 0; --d) {
        if (cum + hist[d] >= need) break;
        cum += hist[d];
      }
      sel[0] = static_cast<uint32_t>(d);
      sel[1] = need - cum;
    }
    __syncthreads();
    prefix |= sel[0] << shift;
    need = sel[1];
    __syncthreads();  // sel and hist are rewritten by the next pass
  }
  const uint32_t kk = prefix;

  // Gather the candidates (key >= kk) in index order: per-thread contiguous segments, counts, an
  // exclusive scan, then each thread writes its own in order.
  const int seg = (n + blockDim.x - 1) / blockDim.x;
  const int b = tid * seg, e = min(n, b + seg);
  int cnt = 0;
  for (int i = b; i < e; ++i) cnt += order_key(all.value(i)) >= kk;
  seg_cnt[tid] = cnt;
  __syncthreads();
  if (tid == 0) {
    int run = 0;
    for (int t = 0; t < static_cast<int>(blockDim.x); ++t) {
      const int c = seg_cnt[t];
      seg_cnt[t] = run;
      run += c;
    }
    sel[0] = static_cast<uint32_t>(run);
  }
  __syncthreads();
  const int total = static_cast<int>(sel[0]);
  if (total > kMaxCand) {  // huge k or massive ties: finish over the whole vocabulary
    finish(all, n, mx, kk, top_p, min_p, u, token, scratch_d, seg_mass);
    return;
  }
  int at = seg_cnt[tid];
  for (int i = b; i < e; ++i) {
    const float l = all.value(i);
    if (order_key(l) >= kk) {
      cand_val[at] = l;
      cand_idx[at] = i;
      ++at;
    }
  }
  __syncthreads();
  finish(SharedCands{cand_val, cand_idx}, total, mx, kk, top_p, min_p, u, token, scratch_d, seg_mass);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int n, float temperature,
                                                          int top_k, float top_p, float min_p, float u,
                                                          int32_t* __restrict__ token) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  sample_row(logits, n, temperature, top_k, top_p, min_p, u, token);
}

// Row r of logits [n_rows][n] with rows[r]'s parameters, into tokens[r]: the rows of a batched decode
// step side by side instead of one launch after another.
__global__ void __launch_bounds__(kThreads) sample_rows_kernel(const float* __restrict__ logits, int n,
                                                               const rf_sample_row* __restrict__ rows,
                                                               int32_t* __restrict__ tokens) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int r = blockIdx.x;
  const rf_sample_row p = rows[r];
  sample_row(logits + static_cast<size_t>(r) * n, n, p.temperature, p.top_k, p.top_p, p.min_p, p.u, tokens + r);
}

}  // namespace

int sample(const float* logits, int n_vocab, float temperature, int top_k, float top_p, float min_p, float u,
           int32_t* token, hipStream_t s) {
  if (n_vocab <= 0) return fail("sample: empty vocabulary");
  if (!(u >= 0.f && u < 1.f)) return fail("sample: u = %g must be in [0, 1)", u);
  if (!(top_p > 0.f)) return fail("sample: top_p = %g must be > 0", top_p);
  if (min_p > 1.f) return fail("sample: min_p = %g must be <= 1", min_p);
  (void)rf_launch(sample_kernel, 1, kThreads, 0, s, logits, n_vocab, temperature, top_k, top_p, min_p, u, token);
  return check(hipGetLastError(), "sample");
}

int sample_rows(const float* logits, int n_vocab, int n_rows, const rf_sample_row* rows, int32_t* tokens,
                hipStream_t s) {
  if (n_vocab <= 0) return fail("sample_rows: empty vocabulary");
  if (n_rows < 0 || n_rows > 65535) return fail("sample_rows: row count %d out of range 0..65535", n_rows);
  if (!logits || !rows || !tokens) return fail("sample_rows: missing buffer");
  if (n_rows == 0) return 0;
  // The rows' parameters are already on the device: the caller checks them as sample() would.
  (void)rf_launch(sample_rows_kernel, n_rows, kThreads, 0, s, logits, n_vocab, rows, tokens);
  return check(hipGetLastError(), "sample_rows");
}

}  // namespace rocforge::gpu
