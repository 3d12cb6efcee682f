// sampling.hip - next-token sampling on the device: greedy, temperature, top-k, top-p, min-p.
//
// One block of 1024 threads does the whole vocabulary (no sort). Candidate sets are expressed as
// thresholds on an order-preserving 32-bit key of the (temperature-scaled) logit, found by bisection
// over the key bits with block-wide counts / sums:
//   top-k: the largest key K with count(key >= K) >= k  (the k-th largest value; ties all stay in),
//   top-p: the largest key K with mass(key >= K) >= top_p * mass(top-k set),
//   min-p: key(max + ln(min_p)).
// The token is then drawn by inverse CDF over the candidates in index order with the caller's u, so
// only the sampled id ever leaves the device and the result is reproducible from u.
#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 1024;

__device__ inline uint32_t order_key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__global__ void __launch_bounds__(kThreads) sample_kernel(const float* __restrict__ logits, int n, float temperature,
                                                          int top_k, float top_p, float min_p, float u,
                                                          int32_t* __restrict__ token) {
  __shared__ float scratch[kRfMaxWavesPerBlock];
  __shared__ float seg_mass[kThreads];
  __shared__ int best_idx[kRfMaxWavesPerBlock];
  const int tid = threadIdx.x;
  const int lane = tid % warpSize, wave = tid / warpSize, n_waves = blockDim.x / warpSize;

  if (temperature <= 0.f) {
    // Greedy: max value, lowest index among equals.
    float bv = -INFINITY;
    int bi = n;
    for (int i = tid; i < n; i += blockDim.x)
      if (logits[i] > bv) { bv = logits[i]; bi = i; }
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

  float mx = -INFINITY;
  for (int i = tid; i < n; i += blockDim.x) mx = fmaxf(mx, logits[i] / temperature);
  mx = rf_block_max(mx, scratch);

  // top-k threshold
  uint32_t kk = 0;
  if (top_k > 0 && top_k < n) {
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = kk | (1u << bit);
      float cnt = 0.f;
      for (int i = tid; i < n; i += blockDim.x) cnt += order_key(logits[i] / temperature) >= cand ? 1.f : 0.f;
      cnt = rf_block_sum(cnt, scratch);
      if (cnt >= static_cast<float>(top_k)) kk = cand;
    }
  }
  // top-p threshold within the top-k set
  uint32_t kp = 0;
  if (top_p < 1.f) {
    float z1 = 0.f;
    for (int i = tid; i < n; i += blockDim.x) {
      const float l = logits[i] / temperature;
      if (order_key(l) >= kk) z1 += expf(l - mx);
    }
    z1 = rf_block_sum(z1, scratch);
    const float need = top_p * z1;
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = kp | (1u << bit);
      float mass = 0.f;
      for (int i = tid; i < n; i += blockDim.x) {
        const float l = logits[i] / temperature;
        if (order_key(l) >= cand) mass += expf(l - mx);
      }
      mass = rf_block_sum(mass, scratch);
      if (mass >= need) kp = cand;
    }
  }
  uint32_t km = 0;
  if (min_p > 0.f) km = order_key(mx + logf(min_p));
  const uint32_t kmin = max(kk, max(kp, km));

  // Inverse CDF in index order: thread tid owns the contiguous segment [tid * seg, (tid + 1) * seg).
  const int seg = (n + blockDim.x - 1) / blockDim.x;
  const int b = tid * seg, e = min(n, b + seg);
  float mass = 0.f;
  for (int i = b; i < e; ++i) {
    const float l = logits[i] / temperature;
    if (order_key(l) >= kmin) mass += expf(l - mx);
  }
  seg_mass[tid] = mass;
  __syncthreads();
  if (tid == 0) {
    float total = 0.f;
    for (int t = 0; t < static_cast<int>(blockDim.x); ++t) total += seg_mass[t];
    const float target = u * total;
    float run = 0.f;
    int pick = -1, last = -1;
    for (int t = 0; t < static_cast<int>(blockDim.x) && pick < 0; ++t) {
      if (seg_mass[t] <= 0.f) continue;
      if (run + seg_mass[t] <= target) { run += seg_mass[t]; continue; }
      const int sb = t * seg, se = min(n, sb + seg);
      for (int i = sb; i < se; ++i) {
        const float l = logits[i] / temperature;
        if (order_key(l) < kmin) continue;
        last = i;
        run += expf(l - mx);
        if (run > target) { pick = i; break; }
      }
    }
    if (pick < 0) {  // u * total at the very top (rounding): take the last candidate
      for (int i = n - 1; i >= 0 && last < 0; --i)
        if (order_key(logits[i] / temperature) >= kmin) last = i;
      pick = last < 0 ? 0 : last;
    }
    *token = pick;
  }
}

}  // namespace

int sample(const float* logits, int n_vocab, float temperature, int top_k, float top_p, float min_p, float u,
           int32_t* token, hipStream_t s) {
  if (n_vocab <= 0) return fail("sample: empty vocabulary");
  if (!(u >= 0.f && u < 1.f)) return fail("sample: u = %g must be in [0, 1)", u);
  if (!(top_p > 0.f)) return fail("sample: top_p = %g must be > 0", top_p);
  if (min_p > 1.f) return fail("sample: min_p = %g must be <= 1", min_p);
  sample_kernel<<<1, kThreads, 0, s>>>(logits, n_vocab, temperature, top_k, top_p, min_p, u, token);
  return check(hipGetLastError(), "sample");
}

}  // namespace rocforge::gpu
