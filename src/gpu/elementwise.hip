// elementwise.hip - RMSNorm, rotary position embedding (normal and NeoX, llama3 frequency factors),
// SwiGLU and residual add.
#include "gpu/kernels.h"
#include "gpu/rope_math.h"

namespace rocforge::gpu {
namespace {

// One block per row: sum of squares by a block reduction, then scale by w.
__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* y, int n, float eps) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  __shared__ float scratch[kRfMaxWavesPerBlock];
  const float* xr = x + static_cast<size_t>(blockIdx.x) * n;
  float* yr = y + static_cast<size_t>(blockIdx.x) * n;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = rf_block_sum(ss, scratch);
  const float inv = rsqrtf(ss / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}

// One thread per rotated pair (t, h, i), i < n_rot / 2.
__global__ void rope_kernel(float* x, const int32_t* __restrict__ pos, int n_tok, int n_head, int head_dim, int n_rot,
                            float base, float freq_scale, const float* __restrict__ ff, int neox) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int half = n_rot / 2;
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(n_tok) * n_head * half) return;
  const int i = static_cast<int>(idx % half);
  const size_t th = idx / half;  // t * n_head + h
  const int t = static_cast<int>(th / n_head);
  rope_rotate_pair(x + th * head_dim, i, pos[t], n_rot, base, freq_scale, ff, neox);
}

__global__ void swiglu_kernel(const float* gate, const float* up, float* out, size_t n) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.f + expf(-g)) * up[i];
  }
}

__global__ void add_kernel(const float* a, const float* b, float* out, size_t n) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

// Grid for a grid-stride loop over n elements: enough blocks to fill the device, no more.
unsigned stride_grid(size_t n, int threads) {
  const size_t want = (n + threads - 1) / threads;
  const size_t cap = static_cast<size_t>(multiprocessors()) * 8;
  return static_cast<unsigned>(want < cap ? (want ? want : 1) : cap);
}

}  // namespace

int rmsnorm(const float* x, const float* w, float* y, int n, int n_rows, float eps, hipStream_t s) {
  if (n <= 0 || n_rows < 0) return fail("rmsnorm: bad shape (n %d, rows %d)", n, n_rows);
  if (n_rows == 0) return 0;
  (void)rf_launch(rmsnorm_kernel, n_rows, 256, 0, s, x, w, y, n, eps);
  return check(hipGetLastError(), "rmsnorm");
}

int rope(float* x, const int32_t* pos, int n_tok, int n_head, int head_dim, int n_rot, float base, float freq_scale,
         const float* freq_factors, int neox, hipStream_t s) {
  if (n_rot <= 0 || n_rot % 2 != 0 || n_rot > head_dim)
    return fail("rope: n_rot %d must be even and in (0, head_dim %d]", n_rot, head_dim);
  if (n_tok < 0 || n_head <= 0) return fail("rope: bad shape (tokens %d, heads %d)", n_tok, n_head);
  const size_t pairs = static_cast<size_t>(n_tok) * n_head * (n_rot / 2);
  if (pairs == 0) return 0;
  (void)rf_launch(rope_kernel, static_cast<unsigned>((pairs + 255) / 256), 256, 0, s, x, pos, n_tok, n_head, head_dim, n_rot, base,
                                                                         freq_scale, freq_factors, neox);
  return check(hipGetLastError(), "rope");
}

int swiglu(const float* gate, const float* up, float* out, size_t n, hipStream_t s) {
  if (n == 0) return 0;
  (void)rf_launch(swiglu_kernel, stride_grid(n, 256), 256, 0, s, gate, up, out, n);
  return check(hipGetLastError(), "swiglu");
}

int add(const float* a, const float* b, float* out, size_t n, hipStream_t s) {
  if (n == 0) return 0;
  (void)rf_launch(add_kernel, stride_grid(n, 256), 256, 0, s, a, b, out, n);
  return check(hipGetLastError(), "add");
}

}  // namespace rocforge::gpu
