// moe.hip - mixture-of-experts routing and mixing on the device (the experts' own products are
// matvec_batched.hip's matvec_experts), so that a MoE decode step needs no host round trip and is captured
// as a graph like any other.
#include <cmath>

#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

// Experts a lane can track in its `taken` bit mask: 32 per lane, so 1024 on 32-wide waves.
constexpr int kMaxExpertsPerLane = 32;

// Is candidate (v, i) ahead of (bv, bi)? Higher logit first, then the lower expert id (the CPU's
// partial_sort rule); bi < 0 is "none yet", so an expert is chosen even among -inf logits.
__device__ inline bool ranks_before(float v, int i, float bv, int bi) {
  return i >= 0 && (bi < 0 || v > bv || (v == bv && i < bi));
}

// One wave per token. Softmax over the token's n_expert logits; the k most probable experts (ranked
// on the logits, which order them as their probabilities do, without the ties of underflow); their
// probabilities renormalised to sum 1 (CpuForward::moe_block).
__global__ void moe_route_kernel(const float* __restrict__ logits, int n_expert, int k, int32_t* __restrict__ ids,
                                 float* __restrict__ weights) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int t = blockIdx.x, lane = threadIdx.x;
  const float* l = logits + static_cast<size_t>(t) * n_expert;
  float m = -INFINITY;
  for (int e = lane; e < n_expert; e += warpSize) m = fmaxf(m, l[e]);
  m = rf_wave_max(m);
  float sum = 0.f;
  for (int e = lane; e < n_expert; e += warpSize) sum += expf(l[e] - m);
  sum = rf_wave_sum(sum);

  uint32_t taken = 0;  // bit i: expert lane + i * warpSize is chosen
  float mine = 0.f;    // lane j < k keeps the j-th choice's probability
  float chosen = 0.f;  // their sum (the same on every lane)
  for (int j = 0; j < k; ++j) {
    float best = -INFINITY;
    int bi = -1;
    for (int i = 0, e = lane; e < n_expert; ++i, e += warpSize)
      if (!((taken >> i) & 1u) && ranks_before(l[e], e, best, bi)) best = l[e], bi = e;
    for (int off = warpSize / 2; off > 0; off /= 2) {
      const float ov = rf_shfl_xor(best, off);
      const int oi = rf_shfl_xor(bi, off);
      if (ranks_before(ov, oi, best, bi)) best = ov, bi = oi;
    }
    if (bi % warpSize == lane) taken |= 1u << (bi / warpSize);
    const float p = expf(best - m) / sum;
    if (lane == j) mine = p;
    if (lane == 0) ids[static_cast<size_t>(t) * k + j] = bi;
    chosen += p;
  }
  if (lane < k) weights[static_cast<size_t>(t) * k + lane] = mine / chosen;
}

// out[t][i] = sum_j weights[t][j] * y[t * k + j][i], j in order (the CPU's order of additions).
__global__ void moe_mix_kernel(const float* __restrict__ y, const float* __restrict__ weights, int k, int n,
                               float* __restrict__ out) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int t = blockIdx.y;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float acc = 0.f;
  for (int j = 0; j < k; ++j)
    acc += weights[static_cast<size_t>(t) * k + j] * y[(static_cast<size_t>(t) * k + j) * n + i];
  out[static_cast<size_t>(t) * n + i] = acc;
}

}  // namespace

int moe_route(const float* logits, int n_tok, int n_expert, int k, int32_t* ids, float* weights, hipStream_t s) {
  const int max_experts = kMaxExpertsPerLane * wave_size();
  if (n_tok < 0 || n_tok > 65535) return fail("moe_route: token count %d out of range 0..65535", n_tok);
  if (n_expert <= 0 || n_expert > max_experts)
    return fail("moe_route: expert count %d out of range 1..%d", n_expert, max_experts);
  if (k <= 0 || k > n_expert || k > 32)
    return fail("moe_route: experts per token %d out of range 1..%d", k, n_expert < 32 ? n_expert : 32);
  if (!logits || !ids || !weights) return fail("moe_route: missing buffer");
  if (n_tok == 0) return 0;
  (void)rf_launch(moe_route_kernel, n_tok, wave_size(), 0, s, logits, n_expert, k, ids, weights);
  return check(hipGetLastError(), "moe_route");
}

int moe_mix(const float* y, const float* weights, int n_tok, int k, int n, float* out, hipStream_t s) {
  if (n_tok < 0 || n_tok > 65535 || k <= 0 || n <= 0)
    return fail("moe_mix: bad shape (%d tokens, %d experts each, %d wide)", n_tok, k, n);
  if (!y || !weights || !out) return fail("moe_mix: missing buffer");
  if (n_tok == 0) return 0;
  (void)rf_launch(moe_mix_kernel, dim3((n + 255) / 256, n_tok), 256, 0, s, y, weights, k, n, out);
  return check(hipGetLastError(), "moe_mix");
}

}  // namespace rocforge::gpu
