// fused.hip - decode-step fusions that save launches between the matvecs of one token (each launch
// costs a few microseconds of issue and drain, against matvecs of tens of microseconds):
//   rmsnorm_q8: x += add (the residual); y = rmsnorm(x) * w; y quantized to int8 for matvec_q8
//   swiglu_q8:  y = silu(gate) * up; y quantized to int8
// The int8 layout and rounding are quantize_q8's (matvec.hip): int8 q[n] (padded to 16 bytes), then
// float d[n / 32], d = max|y| / 127, q = rint(y * 127 / max|y|); the 32 lanes of a chunk reduce with
// xor-shuffles of offset < 32, inside an aligned 32-lane group on both wave widths.
#include <algorithm>

#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr int kThreads = 256;       // multiples of 32: a thread's elements i, i + block, ... stay chunk-aligned
constexpr int kNormThreads = 1024;  // the norm is one block: as wide as a block goes

// One block (one row: decode). Pass 1 adds the residual and sums squares; pass 2 (same thread, same
// indices, so no barrier is needed for x) scales, stores and quantizes. w (a weight, never written)
// is loaded before waiting on the previous kernel (PDL), so after the wait the kernel makes one
// round trip to memory.
//
// Fast path (rows of up to kNormVecs * 4 * 1024 elements, n % 32 == 0, 16-byte aligned vectors): a
// thread owns float4 groups j = tid, tid + blockDim, ...; a 32-element chunk is 8 consecutive
// groups, i.e. an aligned 8-lane group, so a chunk's max|y| takes three xor-shuffles and one
// division per thread (not five shuffles and two divisions per element: this kernel is one block,
// so its instruction count is its latency). Same formulas as quantize_q8: bit-identical output.
constexpr int kNormVecs = 4;
__device__ inline float4 ld4(const float* p, int j) { return reinterpret_cast<const float4*>(p)[j]; }
// Quantizes float4 group j (elements 4j .. 4j + 3) as quantize_q8 does; the 8 groups of a chunk are
// an aligned 8-lane group of the calling threads, all of which must call this.
__device__ inline void quantize_group4(const float4 v, int j, int8_t* __restrict__ q, float* __restrict__ d) {
  float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
  for (int off = 4; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
  const float s = amax > 0.f ? 127.f / amax : 0.f;
  auto byte = [s](float x) { return static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(rintf(x * s)))); };
  reinterpret_cast<uint32_t*>(q)[j] = byte(v.x) | byte(v.y) << 8 | byte(v.z) << 16 | byte(v.w) << 24;
  if ((j & 7) == 0) d[j >> 3] = amax / 127.f;
}
__device__ inline float4 add4(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }
__global__ void __launch_bounds__(kNormThreads) rmsnorm_q8_vec_kernel(float* x, const float* add,
                                                                  const float* __restrict__ w, float* y, int n,
                                                                  float eps, int8_t* q, float* d) {
  __shared__ float scratch[kRfMaxWavesPerBlock];
  const int nt = blockDim.x, groups = n / 4;
  const size_t row = blockIdx.x;  // one block per row; quantize_q8's layout over all rows
  x += row * n;
  add = add ? add + row * n : nullptr;
  y = y ? y + row * n : nullptr;
  q = q ? q + row * n : nullptr;
  d = d ? d + row * (n / 32) : nullptr;
  float4 wv[kNormVecs], xv[kNormVecs];
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nt;
    wv[k] = j < groups ? ld4(w, j) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nt;
    xv[k] = make_float4(0.f, 0.f, 0.f, 0.f);
    if (j < groups) {
      xv[k] = ld4(x, j);
      if (add) {
        xv[k] = add4(xv[k], ld4(add, j));
        reinterpret_cast<float4*>(x)[j] = xv[k];
      }
    }
    ss = fmaf(xv[k].x, xv[k].x, fmaf(xv[k].y, xv[k].y, fmaf(xv[k].z, xv[k].z, fmaf(xv[k].w, xv[k].w, ss))));
  }
  ss = rf_block_sum(ss, scratch);  // ends with a barrier: `add` may alias y below
  const float inv = rsqrtf(ss / n + eps);
#pragma unroll
  for (int k = 0; k < kNormVecs; ++k) {
    const int j = threadIdx.x + k * nt;
    if (j >= groups) break;  // whole 8-lane groups leave together (groups is a multiple of 8)
    const float4 v = make_float4(xv[k].x * inv * wv[k].x, xv[k].y * inv * wv[k].y, xv[k].z * inv * wv[k].z,
                                 xv[k].w * inv * wv[k].w);
    if (y) reinterpret_cast<float4*>(y)[j] = v;
    if (q) quantize_group4(v, j, q, d);
  }
}

// General path (any n): as above, one element per thread step.
constexpr int kNormPerThread = 8;
__global__ void __launch_bounds__(kNormThreads) rmsnorm_q8_kernel(float* x, const float* add, const float* __restrict__ w,
                                                              float* y, int n, float eps, int8_t* q, float* d) {
  __shared__ float scratch[kRfMaxWavesPerBlock];
  const int nt = blockDim.x;
  const size_t row = blockIdx.x;  // one block per row (rows > 1 only with n % 32 == 0 when q is set)
  x += row * n;
  add = add ? add + row * n : nullptr;
  y = y ? y + row * n : nullptr;
  if (q) {
    q += row * n;
    d += row * (n / 32);
  }
  if (n <= kNormPerThread * nt) {
    float wv[kNormPerThread], xv[kNormPerThread];
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int i = threadIdx.x + k * nt;
      wv[k] = i < n ? w[i] : 0.f;
    }
    rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
    rf_grid_trigger();
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int i = threadIdx.x + k * nt;
      xv[k] = 0.f;
      if (i < n) {
        xv[k] = x[i];
        if (add) {
          xv[k] += add[i];
          x[i] = xv[k];
        }
      }
      ss = fmaf(xv[k], xv[k], ss);
    }
    ss = rf_block_sum(ss, scratch);  // ends with a barrier: `add` may alias y below
    const float inv = rsqrtf(ss / n + eps);
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int i = threadIdx.x + k * nt;
      if (i >= n) break;  // whole waves leave together when n is a multiple of 32 (q needs that)
      const float v = xv[k] * inv * wv[k];
      if (y) y[i] = v;
      if (q) rf_quantize_q8_lane(v, i, q, d);
    }
    return;
  }
  rf_grid_wait();
  rf_grid_trigger();
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float v = x[i];
    if (add) {
      v += add[i];
      x[i] = v;
    }
    ss = fmaf(v, v, ss);
  }
  ss = rf_block_sum(ss, scratch);  // ends with a barrier: `add` may alias y below
  const float inv = rsqrtf(ss / n + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = x[i] * inv * w[i];
    if (y) y[i] = v;
    if (q) rf_quantize_q8_lane(v, i, q, d);
  }
}

__global__ void __launch_bounds__(kThreads) swiglu_q8_kernel(const float* gate, const float* up, float* y, int n,
                                                             int8_t* q, float* d) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;  // n is a multiple of 32: whole chunks per block
  if (i >= n) return;
  const float g = gate[i];
  const float v = g / (1.f + expf(-g)) * up[i];
  if (y) y[i] = v;
  rf_quantize_q8_lane(v, i, q, d);
}

// As swiglu_q8_kernel with a float4 group per thread (16-byte aligned vectors): a 32-element chunk is
// an aligned 8-lane group, so its max|y| takes three xor-shuffles and one division per thread, as in
// rmsnorm_q8_vec_kernel. Bit-identical output.
__global__ void __launch_bounds__(kThreads) swiglu_q8_vec_kernel(const float* gate, const float* up, float* y, int n,
                                                                 int8_t* q, float* d) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int j = blockIdx.x * blockDim.x + threadIdx.x;  // float4 group; n / 4 is a multiple of 8
  if (j >= n / 4) return;
  const float4 g = ld4(gate, j), u = ld4(up, j);
  const float4 v = make_float4(g.x / (1.f + expf(-g.x)) * u.x, g.y / (1.f + expf(-g.y)) * u.y,
                               g.z / (1.f + expf(-g.z)) * u.z, g.w / (1.f + expf(-g.w)) * u.w);
  if (y) reinterpret_cast<float4*>(y)[j] = v;
  quantize_group4(v, j, q, d);
}

int8_t* q_of(void* xq) { return static_cast<int8_t*>(xq); }
float* d_of(void* xq, int n) { return reinterpret_cast<float*>(q_of(xq) + (static_cast<size_t>(n) + 15) / 16 * 16); }

}  // namespace

int rmsnorm_q8_rows(float* x, const float* add, const float* w, float* y, void* xq, int n, int rows, float eps,
                    hipStream_t s) {
  if (n <= 0 || rows <= 0 || rows > 65535) return fail("rmsnorm_q8: bad shape (%d rows of %d)", rows, n);
  if (xq && (n % 32 != 0 || reinterpret_cast<uintptr_t>(xq) % 16 != 0))
    return fail("rmsnorm_q8: quantized output needs a multiple of 32 elements (%d) and 16-byte alignment", n);
  int8_t* q = xq ? q_of(xq) : nullptr;
  float* d = xq ? d_of(xq, n * rows) : nullptr;
  auto a16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (n % 32 == 0 && n <= kNormVecs * 4 * kNormThreads && a16(x) && a16(add) && a16(w) && a16(y)) {
    // One float4 group per thread where the row allows (a multiple of 32 threads either way): two
    // or four groups per thread measured 1-7% slower decode (fewer waves, longer chains; H200, 8B/1B).
    const int threads = std::min(kNormThreads, (n / 4 + 31) / 32 * 32);
    (void)rf_launch(rmsnorm_q8_vec_kernel, rows, threads, 0, s, x, add, w, y, n, eps, q, d);
  } else {
    (void)rf_launch(rmsnorm_q8_kernel, rows, kNormThreads, 0, s, x, add, w, y, n, eps, q, d);
  }
  return check(hipGetLastError(), "rmsnorm_q8");
}
int rmsnorm_q8(float* x, const float* add, const float* w, float* y, void* xq, int n, float eps, hipStream_t s) {
  return rmsnorm_q8_rows(x, add, w, y, xq, n, 1, eps, s);
}

int swiglu_q8(const float* gate, const float* up, float* y, void* xq, int n, hipStream_t s) {
  if (n <= 0 || n % 32 != 0) return fail("swiglu_q8: length %d must be a positive multiple of 32", n);
  if (!xq || reinterpret_cast<uintptr_t>(xq) % 16 != 0) return fail("swiglu_q8: workspace must be 16-byte aligned");
  auto a16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (a16(gate) && a16(up) && a16(y))
    (void)rf_launch(swiglu_q8_vec_kernel, (n / 4 + kThreads - 1) / kThreads, kThreads, 0, s, gate, up, y, n, q_of(xq),
                    d_of(xq, n));
  else
    (void)rf_launch(swiglu_q8_kernel, (n + kThreads - 1) / kThreads, kThreads, 0, s, gate, up, y, n, q_of(xq), d_of(xq, n));
  return check(hipGetLastError(), "swiglu_q8");
}

}  // namespace rocforge::gpu
