// matvec.hip - fused dequantize + matrix-vector product (decode) and the embedding lookup, for every
// weight format of quant_formats.h.
//
// Decode reads every weight byte once per token, so this kernel is bound by memory bandwidth. Layout
// of the work: a group of threads (one or more waves) per kRows consecutive rows; thread t of the group
// takes chunks t, t + group, ... of the rows, so neighbouring lanes read consecutive blocks (coalesced),
// and each x chunk a thread reads (from shared memory) serves all kRows rows. Wave reductions (width
// from warpSize) and a shared-memory sum over the group's waves give y.
#include <algorithm>
#include <cstdlib>
#include <unordered_map>

#include "gpu/kernels.h"
#include "gpu/matvec_staged.h"
#include "gpu/matvec_stores.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kBlock = 256;  // threads per block: 8 waves of 32 or 4 waves of 64
constexpr int kRows = 2;     // rows per thread group, sharing each loaded x chunk
constexpr int kXChunks = 128;  // x chunks staged in shared memory per step (16.5 KB)
constexpr int kMultiMaxTokens = 16;  // tokens per matvec_q8_multi launch

// W: rows x cols in format F (cols a multiple of 32), x: [cols], y: [rows].
// The block's threads form groups of `group` threads (a power of two, a multiple of the wave, at most
// kXChunks / 2); group g owns rows (blockIdx.x * groups + g) * kRows .. + kRows and its threads split
// the rows' chunks, so short and long rows alike keep enough waves in flight.
//
// x is staged through shared memory kXChunks chunks at a time, chunk c's element i at c * 33 + i: a
// thread reads a whole chunk, and with the 33-float pitch the lanes (consecutive chunks) hit distinct
// banks. Reading x straight from global memory instead has every lane of a float4 load touch its own
// 128-byte line, which made x, not the weights, the bottleneck.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                        const float* __restrict__ x, float* __restrict__ y,
                                                        int rows, int cols, int group) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  __shared__ float xs[kXChunks * 33];
  __shared__ float part[kRows][kRfMaxWavesPerBlock];
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int row0 = (blockIdx.x * groups + g) * kRows;
  const int n_chunks = cols / 32;
  const uint8_t* rp[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
  float acc[kRows] = {};
  for (int c0 = 0; c0 < n_chunks; c0 += kXChunks) {
    const int nc = min(kXChunks, n_chunks - c0);
    __syncthreads();  // the previous tile is no longer read
    for (int i = threadIdx.x; i < nc * 32; i += blockDim.x) xs[(i >> 5) * 33 + (i & 31)] = x[c0 * 32 + i];
    __syncthreads();
    if (row0 < rows) {
#pragma unroll 2
      for (int c = gl; c < nc; c += group) {
        float xv[32];
#pragma unroll
        for (int i = 0; i < 32; ++i) xv[i] = xs[c * 33 + i];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          float v[32];
          F::dequant(rp[r], c0 + c, v);
          float s = 0.f;
#pragma unroll
          for (int i = 0; i < 32; ++i) s = fmaf(v[i], xv[i], s);
          acc[r] += s;
        }
      }
    }
  }
  // Every thread reaches the barriers (no early return): wave sums, then one thread per group adds
  // its group's waves.
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = rf_wave_sum(acc[r]);
    if (lane == 0) part[r][wave] = s;
  }
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float s = 0.f;
      for (int i = 0; i < per_group; ++i) s += part[r][wave + i];
      if (row0 + r < rows) y[row0 + r] = s;
    }
  }
}

// Decode fast path for formats with dot8 (quant_formats.h): four consecutive threads share a chunk,
// thread p of the four taking its elements 8p .. 8p + 7, so a wave reads x as contiguous float4s
// straight from global memory (L1 hits after the first block) and the weights of consecutive chunks.
// Groups of `group` threads own kRows rows as in matvec_kernel; x (8 floats and their sum) is loaded
// once per step for all kRows rows.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec8_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                         const float* __restrict__ x, float* __restrict__ y,
                                                         int rows, int cols, int group) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  __shared__ float part[kRows][kRfMaxWavesPerBlock];
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int row0 = (blockIdx.x * groups + g) * kRows;
  const int n_chunks = cols / 32;
  const int p = gl & 3, step = group >> 2;
  float acc[kRows] = {};
  if (row0 < rows) {
    const uint8_t* rp[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
#pragma unroll 4
    for (int c = gl >> 2; c < n_chunks; c += step) {
      const float4* xp = reinterpret_cast<const float4*>(x + 32 * c + 8 * p);
      const float4 a = xp[0], b = xp[1];
      const float x8[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
      const float xsum = ((a.x + a.y) + (a.z + a.w)) + ((b.x + b.y) + (b.z + b.w));
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[r] += F::dot8(rp[r], c, p, x8, xsum);
    }
  }
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = rf_wave_sum(acc[r]);
    if (lane == 0) part[r][wave] = s;
  }
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float s = 0.f;
      for (int i = 0; i < per_group; ++i) s += part[r][wave + i];
      if (row0 + r < rows) y[row0 + r] = s;
    }
  }
}

// x -> int8: per 32 elements d = max|x| / 127, q = round(x / d). One thread per element; the 32
// lanes of a chunk reduce with xor-shuffles of offset < 32, which stay inside an aligned 32-lane
// group on both wave widths. xq layout: int8 q[n], then float d[n / 32].
__global__ void quantize_q8_kernel(const float* __restrict__ x, int n, int8_t* __restrict__ q, float* __restrict__ d) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;  // n is a multiple of 32, blocks of 256
  const float v = i < n ? x[i] : 0.f;
  float amax = fabsf(v);
  for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
  const float dq = amax / 127.f;
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  if (i < n) {
    q[i] = static_cast<int8_t>(rintf(v * inv));
    if ((i & 31) == 0) d[i >> 5] = dq;
  }
}

// As matvec8_kernel, against x quantized to int8 (quantize_q8_kernel): four lanes per item of
// F::kItemChunks chunks (quant_formats.h), each lane loading its activations once for all R rows.
// One row block: `groups` thread groups of `group` threads, R consecutive rows each, rows
// (rb * groups + g) * R ..; `part` is the block's shared scratch.
template <class F, int R, class Store>
__device__ inline void matvec8q_rows(const uint8_t* __restrict__ w, size_t stride, const int8_t* __restrict__ xq,
                                     const float* __restrict__ xd, const Store& store, int rows, int cols, int group,
                                     int rb, float (*part)[kRfMaxWavesPerBlock]) {
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int n_chunks = cols / 32;
  const int n_items = F::items(n_chunks);
  const int p = gl & 3, step = group >> 2;
  const int row0 = (rb * groups + g) * R;
  float acc[R] = {};
  if (row0 < rows) {
    const uint8_t* rp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
    // All R rows' weight words are requested before any arithmetic. (An explicit two-item software
    // pipeline on top of this measured 0-7% slower on an H200, 8B shapes.)
#pragma unroll 2
    for (int it = gl >> 2; it < n_items; it += step) {
      typename F::Raw raw[R];
#pragma unroll
      for (int r = 0; r < R; ++r) F::load_raw(rp[r], it, p, n_chunks, raw[r]);
      typename F::Xq xv;
      F::load_xq(xq, xd, it, p, n_chunks, xv);
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r] += F::dot_raw(raw[r], it, p, n_chunks, xv);
    }
  }
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  if (group == warpSize) {
    // One wave per row group: its shuffles finish the sums, and with no barrier a wave goes on to its
    // next row block (and that block's loads) while the block's other waves still compute.
    float sum[R];
#pragma unroll
    for (int r = 0; r < R; ++r) sum[r] = rf_wave_sum(acc[r]);
    if (lane == 0 && row0 < rows) store(row0, sum, min(R, rows - row0));
    return;
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = rf_wave_sum(acc[r]);
    if (lane == 0) part[r][wave] = s;
  }
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
    float sum[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      sum[r] = 0.f;
      for (int i = 0; i < per_group; ++i) sum[r] += part[r][wave + i];
    }
    store(row0, sum, min(R, rows - row0));
  }
  __syncthreads();  // part is rewritten by the next row block
}

template <class F, int R, int MinBlocks = 1>
__global__ void __launch_bounds__(kBlock, MinBlocks) matvec8q_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                          const int8_t* __restrict__ xq, const float* __restrict__ xd,
                                                          float* __restrict__ y, int rows, int cols, int group,
                                                          int prefetch) {
  __shared__ float part[R][kRfMaxWavesPerBlock];
  const int groups = blockDim.x / group;
  // Row blocks of groups * R rows; a grid smaller than their count walks them (persistent blocks).
  const int n_row_blocks = (rows + groups * R - 1) / (groups * R);
  // Weights are never written: pull this block's first rows towards L2 while the kernels before this
  // one (PDL, hip_compat.h) still run, then wait for them before reading x.
  const int row0 = (blockIdx.x * groups + threadIdx.x / group) * R;
  if (prefetch && row0 < rows) {
    const int row_bytes = cols / F::kBlockElems * F::kBlockBytes;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const uint8_t* base = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
      for (int off = (threadIdx.x % group) * 128; off < row_bytes; off += group * 128) rf_prefetch_l2(base + off);
    }
  }
  rf_grid_wait();
  rf_grid_trigger();
  for (int rb = blockIdx.x; rb < n_row_blocks; rb += gridDim.x)
    matvec8q_rows<F, R>(w, stride, xq, xd, PlainStore{y}, rows, cols, group, rb, part);
}

// Up to two matrices of one int8 x in one launch: the decode step's [q | k] and v when v has another
// format (Q4_K_M keeps v in Q6_K), saving a launch and its drain; with Rope, the rotation and the KV
// store ride along (no rope_kv_store launch). Row blocks of A come first, then B's; y_b = y + rows_a.
template <class FA, class FB, int R, int MinBlocks, bool Rope>
__global__ void __launch_bounds__(kBlock, MinBlocks)
    matvec8q_qkv_kernel(const uint8_t* __restrict__ wa, size_t stride_a, int rows_a, int group_a,
                        const uint8_t* __restrict__ wb, size_t stride_b, int rows_b, int group_b,
                        const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ y, int cols,
                        rf_qkv_rope rope) {
  __shared__ float part[R][kRfMaxWavesPerBlock];
  const int per_a = blockDim.x / group_a * R, per_b = blockDim.x / group_b * R;
  const int n_a = (rows_a + per_a - 1) / per_a, n_b = rows_b > 0 ? (rows_b + per_b - 1) / per_b : 0;
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  for (int rb = blockIdx.x; rb < n_a + n_b; rb += gridDim.x) {
    const bool in_a = rb < n_a;
    float* yb = in_a ? y : y + rows_a;
    if constexpr (Rope) {
      const QkvRopeStore st{yb, in_a ? 0 : rows_a, rope};
      if (in_a) matvec8q_rows<FA, R>(wa, stride_a, xq, xd, st, rows_a, cols, group_a, rb, part);
      else matvec8q_rows<FB, R>(wb, stride_b, xq, xd, st, rows_b, cols, group_b, rb - n_a, part);
    } else {
      if (in_a) matvec8q_rows<FA, R>(wa, stride_a, xq, xd, PlainStore{yb}, rows_a, cols, group_a, rb, part);
      else matvec8q_rows<FB, R>(wb, stride_b, xq, xd, PlainStore{yb}, rows_b, cols, group_b, rb - n_a, part);
    }
  }
}

// Decode of a few sequences at once (one token each): R rows per thread group, as matvec8q_rows, each
// weight word loaded once for all n_tok <= NT tokens (the loop over tokens is uniform: n_tok is the
// same for the whole grid). x: n_tok rows of int8 from one quantize_q8 over n_tok * cols; y: [n_tok][rows].
template <class F, int R, int NT, bool UsePrep>
__global__ void __launch_bounds__(kBlock) matvec8q_multi_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                                const int8_t* __restrict__ xq,
                                                                const float* __restrict__ xd, float* __restrict__ y,
                                                                int rows, int cols, int group, int n_tok) {
  __shared__ float part[R * NT][kRfMaxWavesPerBlock];
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int groups = blockDim.x / group;
  const int g = threadIdx.x / group, gl = threadIdx.x % group;
  const int n_chunks = cols / 32, n_items = F::items(n_chunks);
  const int p = gl & 3, step = group >> 2;
  const int row0 = (blockIdx.x * groups + g) * R;
  float acc[R][NT] = {};
  if (row0 < rows) {
    const uint8_t* rp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
    for (int it = gl >> 2; it < n_items; it += step) {
      typename F::Raw raw[R];
#pragma unroll
      for (int r = 0; r < R; ++r) F::load_raw(rp[r], it, p, n_chunks, raw[r]);
      if constexpr (UsePrep && HasPrep<F>::value) {
        // The weights' half of the dot product once, then only the activations' half per token.
        typename F::Prep w[R];
#pragma unroll
        for (int r = 0; r < R; ++r) F::prep(raw[r], it, p, n_chunks, w[r]);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t < n_tok) {
            typename F::Xq xv;
            F::load_xq(xq + static_cast<size_t>(t) * cols, xd + static_cast<size_t>(t) * n_chunks, it, p, n_chunks, xv);
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r][t] += F::dot_prep(w[r], xv);
          }
        }
      } else {
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          if (t < n_tok) {
            typename F::Xq xv;
            F::load_xq(xq + static_cast<size_t>(t) * cols, xd + static_cast<size_t>(t) * n_chunks, it, p, n_chunks, xv);
#pragma unroll
            for (int r = 0; r < R; ++r) acc[r][t] += F::dot_raw(raw[r], it, p, n_chunks, xv);
          }
        }
      }
    }
  }
  const int lane = threadIdx.x % warpSize, wave = threadIdx.x / warpSize;
  const int m = min(R, rows - row0);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[r][t] = rf_wave_sum(acc[r][t]);
  if (group == warpSize) {
    if (lane == 0 && row0 < rows)
      for (int t = 0; t < n_tok; ++t)
        for (int r = 0; r < m; ++r) y[static_cast<size_t>(t) * rows + row0 + r] = acc[r][t];
    return;
  }
  if (lane == 0)
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int t = 0; t < NT; ++t) part[r * NT + t][wave] = acc[r][t];
  __syncthreads();
  if (gl == 0 && row0 < rows) {
    const int per_group = group / warpSize;
    for (int t = 0; t < n_tok; ++t)
      for (int r = 0; r < m; ++r) {
        float sum = 0.f;
        for (int i = 0; i < per_group; ++i) sum += part[r * NT + t][wave + i];
        y[static_cast<size_t>(t) * rows + row0 + r] = sum;
      }
  }
}

// Mixture of experts: slot s = blockIdx.y multiplies expert ids[s] of a stacked [n_expert][rows][cols]
// tensor (expert e at w + e * expert_stride) with int8 x row s / x_div: gate/up pass x_div = k (each
// of a token's k slots reads the token's input), the down projection 1 (each slot its own).
template <class F, int R>
__global__ void __launch_bounds__(kBlock) matvec8q_experts_kernel(const uint8_t* __restrict__ w, size_t expert_stride,
                                                                  size_t stride, int n_expert,
                                                                  const int32_t* __restrict__ ids, int x_div,
                                                                  const int8_t* __restrict__ xq,
                                                                  const float* __restrict__ xd, float* __restrict__ y,
                                                                  int rows, int cols, int group) {
  __shared__ float part[R][kRfMaxWavesPerBlock];
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int slot = blockIdx.y, e = ids[slot], xr = slot / x_div;
  float* ys = y + static_cast<size_t>(slot) * rows;
  const int per_block = blockDim.x / group * R;
  if (e < 0 || e >= n_expert) {  // never from moe_route: a bad id gives NaN rows, not a stray read
    for (int i = threadIdx.x; i < per_block; i += blockDim.x)
      if (blockIdx.x * per_block + i < rows) ys[blockIdx.x * per_block + i] = __int_as_float(0x7fc00000);
    return;
  }
  matvec8q_rows<F, R>(w + static_cast<size_t>(e) * expert_stride, stride, xq + static_cast<size_t>(xr) * cols,
                      xd + static_cast<size_t>(xr) * (cols / 32), PlainStore{ys}, rows, cols, group, blockIdx.x, part);
}

// As matvec8q_experts_kernel for the formats without an int8 path (F32/F16/BF16), on float x: one
// wave per row, as matvec_plain_kernel.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_experts_plain_kernel(const uint8_t* __restrict__ w,
                                                                      size_t expert_stride, size_t stride,
                                                                      int n_expert, const int32_t* __restrict__ ids,
                                                                      int x_div, const float* __restrict__ x,
                                                                      float* __restrict__ y, int rows, int cols) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int slot = blockIdx.y, e = ids[slot];
  const int lane = threadIdx.x % warpSize;
  const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
  if (row >= rows) return;
  float* ys = y + static_cast<size_t>(slot) * rows;
  if (e < 0 || e >= n_expert) {
    if (lane == 0) ys[row] = __int_as_float(0x7fc00000);
    return;
  }
  const uint8_t* rp = w + static_cast<size_t>(e) * expert_stride + static_cast<size_t>(row) * stride;
  const float* xs = x + static_cast<size_t>(slot / x_div) * cols;
  float acc = 0.f;
  for (int i = lane; i < cols; i += warpSize) acc = fmaf(F::elem(rp, i), xs[i], acc);
  acc = rf_wave_sum(acc);
  if (lane == 0) ys[row] = acc;
}

// Plain F32/F16/BF16 rows of any length or alignment: one wave per row, one element per lane step.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_plain_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                              const float* __restrict__ x, float* __restrict__ y,
                                                              int rows, int cols) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int lane = threadIdx.x % warpSize;
  const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
  if (row >= rows) return;
  const uint8_t* rp = w + static_cast<size_t>(row) * stride;
  float acc = 0.f;
  for (int i = lane; i < cols; i += warpSize) acc = fmaf(F::elem(rp, i), x[i], acc);
  acc = rf_wave_sum(acc);
  if (lane == 0) y[row] = acc;
}

// out[t][:] = row tokens[t] of the table; one block per token, one 32-element chunk per thread step.
template <class F>
__global__ void embed_kernel(const uint8_t* __restrict__ table, size_t stride, int cols,
                             const int32_t* __restrict__ tokens, float* __restrict__ out, int vector_ok) {
  rf_grid_wait();  // PDL: earlier kernels done (hip_compat.h)
  rf_grid_trigger();
  const int t = blockIdx.x;
  const uint8_t* rp = table + static_cast<size_t>(tokens[t]) * stride;
  float* o = out + static_cast<size_t>(t) * cols;
  if constexpr (F::kBlockElems == 1) {
    if (!vector_ok) {
      for (int i = threadIdx.x; i < cols; i += blockDim.x) o[i] = F::elem(rp, i);
      return;
    }
  }
  for (int c = threadIdx.x; c < cols / 32; c += blockDim.x) {
    float v[32];
    F::dequant(rp, c, v);
#pragma unroll
    for (int i = 0; i < 32; ++i) o[32 * c + i] = v[i];
  }
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// Launch shape of the int8 decode path: rows per thread group (1, 2, 4) and the largest group, per
// format from sweeps over the 8B decode matrices on an H200 (ROCFORGE_MV_ROWS x ROCFORGE_MV_STEPS x
// ROCFORGE_MV_GROUP with `gpu_bench --matvec-only`, 2026-11-26, after the PDL and layout changes;
// e.g. q4_k 4 rows 1.89, 2 rows 1.73, 1 row 1.95 ms/token); the variables override every format.
struct Tuning {
  int rows = 2;
  int max_group = kBlock;
  // L2 prefetch of the rows before waiting on the previous kernel (PDL), ROCFORGE_MV_PREFETCH=1:
  // off by default, measured -2.6% on 8B Q8_0, -0.8% on 8B Q4_K_M, +0.7% on 1B Q4_K_M (H200).
  int prefetch = 0;
  int min_steps = 2;  // items per lane and row at least (ROCFORGE_MV_STEPS)
  int persist = 0;    // grid capped at one device-full of blocks that walk the rows (ROCFORGE_MV_PERSIST)
  // Resident blocks per SM the 2-row kernel is compiled for (__launch_bounds__; ROCFORGE_MV_MINBLOCKS
  // = 1 or 4): unbounded (1), the K-quant kernels took 72-79 registers (3 blocks of 256 threads per
  // SM). H200, 8B matvecs only: q4_k 1.88 -> 1.79 ms/token at 4 (64 registers; at 6 they spill:
  // 2.38), q6_k 2.32 -> 2.21; 8B Q4_K_M tg128 338 -> 352; 5 blocks: 417 -> 390. Q4_0 (4 rows)
  // stays unbounded; the Q8_0 planes take 4 (tuning() below).
  int min_blocks = 1;
};
Tuning tuning(uint32_t type) {
  // Environment overrides, read once; 0 / -1: not set (or out of range).
  struct Overrides {
    int rows, max_group, prefetch, min_steps, persist, min_blocks;
  };
  static const Overrides env = [] {
    Overrides o;
    o.rows = env_int("ROCFORGE_MV_ROWS", 0);
    if (o.rows != 1 && o.rows != 2 && o.rows != 4) o.rows = 0;
    o.max_group = env_int("ROCFORGE_MV_GROUP", 0);
    if (o.max_group < 32 || o.max_group > kBlock) o.max_group = 0;
    o.prefetch = env_int("ROCFORGE_MV_PREFETCH", 0) == 1 ? 1 : 0;
    o.min_steps = env_int("ROCFORGE_MV_STEPS", 0);
    if (o.min_steps < 1 || o.min_steps > 8) o.min_steps = 0;
    o.persist = env_int("ROCFORGE_MV_PERSIST", -1);
    if (o.persist >= 0) o.persist = o.persist == 1 ? 1 : 0;
    o.min_blocks = env_int("ROCFORGE_MV_MINBLOCKS", 0);
    if (o.min_blocks != 1 && o.min_blocks != 4) o.min_blocks = 0;
    return o;
  }();
  Tuning t;
  const bool k_quant = type == 12 || type == 14 || type == 1014;
  switch (type) {
    case 2: t = {1, 256}; break;    // Q4_0
    case 8: t = {1, 256}; break;    // Q8_0
    case 12: t = {2, 256}; break;  // Q4_K
    case 14: t = {2, 256}; break;  // Q6_K
    case 1014: t = {2, 256}; break;  // Q6_K, group-of-8 planes (repack.h)
    // Q4_0 / Q8_0 planes: re-swept end to end after the PDL / attention / fusion changes (H200,
    // `rocforge bench -n 128`, 2026-11-26): Q4_0 4 rows persistent: 8B 396.6 -> 426.1 tok/s, 1B
    // 1336 -> 1407; Q8_0 persistent at 4 blocks per SM: 1B 1071 -> 1144.
    case 1002: t = {4, 256}; t.persist = 1; break;   // Q4_0, group-of-8 planes
    case 1008: t = {2, 256}; t.persist = 1; t.min_blocks = 4; break;  // Q8_0, group-of-8 planes
    // The other int8 paths, from one sweep over rows x group x persist x min_blocks (H200, 8B shapes,
    // gpu_bench --matvec-only, 2026-11-26); ms/token at the {2, 256} default -> here:
    case 13: t = {2, 64}; t.min_blocks = 4; break;  // Q5_K    2.68 -> 2.05
    case 3: t = {4, 64}; break;                     // Q4_1    2.19 -> 1.85
    case 6: t = {2, 64}; break;                     // Q5_0    3.24 -> 2.70
    case 7: t = {4, 64}; break;                     // Q5_1    2.61 -> 2.10
    case 20: t = {2, 64}; break;                    // IQ4_NL  3.18 -> 2.68
    case 23: t = {2, 64}; t.min_blocks = 4; break;  // IQ4_XS  2.53 -> 2.31
    case 10: t = {4, 256}; break;                   // Q2_K    2.05 -> 1.70
    case 11: t = {2, 64}; t.min_blocks = 4; break;  // Q3_K    3.06 -> 2.28
    case 39: t = {2, 64}; break;                    // MXFP4   3.43 -> 2.91
    default: break;
  }
  // Persistent blocks: +2-3% on 8B Q4_K_M decode (H200).
  if (k_quant) {
    t.persist = 1;
    t.min_blocks = 4;
  }
  t.prefetch = env.prefetch;
  if (env.rows) t.rows = env.rows;
  if (env.max_group) t.max_group = env.max_group;
  if (env.min_steps) t.min_steps = env.min_steps;
  if (env.persist >= 0) t.persist = env.persist;
  if (env.min_blocks) t.min_blocks = env.min_blocks;
  return t;
}

// Threads per row group of the int8 path: the fewest (from one wave) that still give the device
// about kTargetWaves waves per multiprocessor in all, within kBlock, the tuning cap, and at least
// tu.min_steps items per lane. One wave per group needs no barrier between row blocks (matvec8q_rows),
// which wins wherever the rows alone fill the device (H200, gpu_bench --matvec-only: 8B gate/up and
// the output matrix 10-20% faster than at 64 threads), while a few long rows need wide groups (1B
// ffn_down, 2048 x 8192: 128 threads 5.6 us, 32 threads 7.3 us).
constexpr int kTargetWaves = 22;
template <class F>
int q8_group(const Tuning& tu, int rows, int cols, int rows_per_group) {
  const int n_items = (cols / 32 + F::kItemChunks - 1) / F::kItemChunks;
  const long target = static_cast<long>(kTargetWaves) * multiprocessors();
  const long groups = (rows + rows_per_group - 1) / rows_per_group;
  int group = wave_size();
  while (group < kBlock && group * 2 <= tu.max_group && group * 2 <= 4 * n_items / tu.min_steps &&
         groups * (group / wave_size()) < target)
    group *= 2;
  return group;
}

// min(want, the blocks of `kernel` that fit on the device at once): persistent grids.
template <class K>
int resident_grid(K kernel, int want) {
  static thread_local std::unordered_map<const void*, int> fits;  // per kernel instantiation
  int& fit = fits[reinterpret_cast<const void*>(kernel)];
  if (!fit && hipOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kBlock, 0) != hipSuccess) fit = 1;
  return std::min(want, std::max(1, fit) * multiprocessors());
}

// Validates a weight matrix; sets *vector_ok when the 32-element chunk path may read it.
template <class F>
int check_matrix(const char* what, const void* w, size_t stride, int rows, int cols, bool* vector_ok) {
  if (!w || rows <= 0 || cols <= 0) return fail("%s: empty matrix (rows %d, cols %d)", what, rows, cols);
  if (cols % F::kBlockElems != 0)
    return fail("%s: row length %d is not a multiple of the block size %d", what, cols, F::kBlockElems);
  const size_t row_bytes = static_cast<size_t>(cols) / F::kBlockElems * F::kBlockBytes;
  if (stride < row_bytes) return fail("%s: row stride %zu < row bytes %zu", what, stride, row_bytes);
  if (F::kBlockElems == 1) {
    *vector_ok = cols % 32 == 0 && stride % 16 == 0 && aligned(w, 16);
    if (!aligned(w, F::kBlockBytes) || stride % F::kBlockBytes != 0)
      return fail("%s: weights not aligned to their element size", what);
    return 0;
  }
  *vector_ok = true;
  // Blocks are decoded with loads as wide as their size allows; rows must keep that alignment.
  const size_t need = F::kBlockBytes % 16 == 0 ? 16 : F::kBlockBytes % 8 == 0 ? 8 : F::kBlockBytes % 4 == 0 ? 4
                                                 : F::kBlockBytes % 2 == 0 ? 2 : 1;
  if (!aligned(w, need) || stride % need != 0)
    return fail("%s: weights or row stride (%zu) not %zu-byte aligned", what, stride, need);
  return 0;
}

}  // namespace

int matvec(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
           hipStream_t s) {
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    bool vec = false;
    if ((rc = check_matrix<F>("matvec", w, row_stride, rows, cols, &vec)) != 0) return;
    const auto* wb = static_cast<const uint8_t*>(w);
    const int waves = kBlock / wave_size();
    if constexpr (F::kBlockElems == 1) {
      if (!vec) {
        (void)rf_launch(matvec_plain_kernel<F>, (rows + waves - 1) / waves, kBlock, 0, s, wb, row_stride, x, y, rows, cols);
        rc = check(hipGetLastError(), "matvec");
        return;
      }
    }
    const int n_chunks = cols / 32;
    if constexpr (HasDot8<F>::value) {
      if (aligned(x, 16)) {
        // Threads per row group: 4 per chunk, at least 4 steps each, within [wave, kBlock].
        int group = wave_size();
        while (group < kBlock && group * 2 <= n_chunks) group *= 2;
        const int per_block = kBlock / group * kRows;
        (void)rf_launch(matvec8_kernel<F>, (rows + per_block - 1) / per_block, kBlock, 0, s, wb, row_stride, x, y, rows, cols,
                                                                                 group);
        rc = check(hipGetLastError(), "matvec");
        return;
      }
    }
    // Threads per row group: about half the chunk count, within [wave, kXChunks / 2].
    int group = wave_size();
    while (group < kXChunks / 2 && group * 2 <= n_chunks) group *= 2;
    const int per_block = kBlock / group * kRows;
    (void)rf_launch(matvec_kernel<F>, (rows + per_block - 1) / per_block, kBlock, 0, s, wb, row_stride, x, y, rows, cols, group);
    rc = check(hipGetLastError(), "matvec");
  });
  if (!known) return fail("matvec: unsupported weight type %u", type);
  return rc;
}

int embed(uint32_t type, const void* table, size_t row_stride, int cols, const int32_t* tokens, int n_tok,
          float* out, hipStream_t s) {
  if (n_tok <= 0) return n_tok == 0 ? 0 : fail("embed: negative token count %d", n_tok);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    bool vec = false;
    if ((rc = check_matrix<F>("embed", table, row_stride, 1, cols, &vec)) != 0) return;
    // Token ids are not range-checked here (that would need a sync): callers validate them.
    (void)rf_launch(embed_kernel<F>, n_tok, 128, 0, s, static_cast<const uint8_t*>(table), row_stride, cols, tokens, out,
                                          vec ? 1 : 0);
    rc = check(hipGetLastError(), "embed");
  });
  if (!known) return fail("embed: unsupported weight type %u", type);
  return rc;
}

size_t q8_bytes(int n) {
  if (n <= 0 || n % 32 != 0) return 0;
  const size_t qb = (static_cast<size_t>(n) + 15) / 16 * 16;
  return qb + static_cast<size_t>(n / 32) * sizeof(float);
}

int quantize_q8(const float* x, int n, void* xq, hipStream_t s) {
  if (n <= 0 || n % 32 != 0) return fail("quantize_q8: length %d must be a positive multiple of 32", n);
  if (!aligned(xq, 16)) return fail("quantize_q8: workspace must be 16-byte aligned");
  auto* q = static_cast<int8_t*>(xq);
  auto* d = reinterpret_cast<float*>(q + (static_cast<size_t>(n) + 15) / 16 * 16);
  (void)rf_launch(quantize_q8_kernel, (n + 255) / 256, 256, 0, s, x, n, q, d);
  return check(hipGetLastError(), "quantize_q8");
}

int has_matvec_q8(uint32_t type) {
  int has = 0;
  dispatch_type(type, [&](auto f) { has = HasDot8q<decltype(f)>::value ? 1 : 0; });
  return has;
}

int matvec_q8(uint32_t type, const void* w, size_t row_stride, const void* xq, float* y, int rows, int cols,
              hipStream_t s) {
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (!HasDot8q<F>::value) {
      rc = fail("matvec_q8: no int8-activation path for weight type %u (use matvec)", type);
    } else {
      bool vec = false;
      if ((rc = check_matrix<F>("matvec_q8", w, row_stride, rows, cols, &vec)) != 0) return;
      if (!aligned(xq, 16)) {
        rc = fail("matvec_q8: quantized x must be 16-byte aligned");
        return;
      }
      const int st = matvec_q8_staged(type, w, row_stride, rows, 0, nullptr, 0, 0, cols, xq, y, nullptr, s);
      if (st >= 0) {
        rc = st;
        return;
      }
      const Tuning tu = tuning(type);
      const int group = q8_group<F>(tu, rows, cols, tu.rows);
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(cols) + 15) / 16 * 16);
      const auto* wb = static_cast<const uint8_t*>(w);
      auto launch = [&](auto kernel, int R) {
        const int per_block = kBlock / group * R;
        int grid = (rows + per_block - 1) / per_block;
        if (tu.persist) grid = resident_grid(kernel, grid);  // at most the blocks that fit at once
        (void)rf_launch(kernel, grid, kBlock, 0, s, wb, row_stride, q, d, y, rows, cols, group, tu.prefetch);
      };
      if (tu.rows == 4) launch(matvec8q_kernel<F, 4>, 4);
      else if (tu.rows == 1) launch(matvec8q_kernel<F, 1>, 1);
      else if (tu.min_blocks == 4) launch(matvec8q_kernel<F, 2, 4>, 2);
      else launch(matvec8q_kernel<F, 2, 1>, 2);
      rc = check(hipGetLastError(), "matvec_q8");
    }
  });
  if (!known) return fail("matvec_q8: unsupported weight type %u", type);
  return rc;
}

int matvec_q8_multi(uint32_t type, const void* w, size_t row_stride, const void* xq, float* y, int rows, int cols,
                    int n_tok, hipStream_t s) {
  if (n_tok < 1 || n_tok > kMultiMaxTokens)
    return fail("matvec_q8_multi: token count %d out of range 1..%d", n_tok, kMultiMaxTokens);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if constexpr (!HasDot8q<F>::value) {
      rc = fail("matvec_q8_multi: no int8-activation path for weight type %u", type);
    } else {
      bool vec = false;
      if ((rc = check_matrix<F>("matvec_q8_multi", w, row_stride, rows, cols, &vec)) != 0) return;
      if (!aligned(xq, 16)) {
        rc = fail("matvec_q8_multi: quantized x must be 16-byte aligned");
        return;
      }
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(n_tok) * cols + 15) / 16 * 16);
      const auto* wb = static_cast<const uint8_t*>(w);
      // Two rows per group share each x load up to 8 tokens; 9-16: one row, for registers. The
      // weights' half of the dot product is hoisted out of the token loop from 5 tokens on (H100, 8B
      // Q4_K_M prompt steps: with it at 4 tokens 589 -> 556 tok/s, at 8 tokens 835 -> 867; this
      // split: 2 / 4 / 8 tokens 361 / 592 / 838 -> 384 / 621 / 865).
      auto launch = [&](auto kernel, int R) {
        const int group = q8_group<F>(tuning(type), rows, cols, R);
        const int per_block = kBlock / group * R;
        (void)rf_launch(kernel, (rows + per_block - 1) / per_block, kBlock, 0, s, wb, row_stride, q, d, y, rows, cols,
                        group, n_tok);
      };
      if (n_tok <= 4) launch(matvec8q_multi_kernel<F, 2, 4, false>, 2);
      else if (n_tok <= 8) launch(matvec8q_multi_kernel<F, 2, 8, true>, 2);
      else launch(matvec8q_multi_kernel<F, 1, kMultiMaxTokens, true>, 1);
      rc = check(hipGetLastError(), "matvec_q8_multi");
    }
  });
  if (!known) return fail("matvec_q8_multi: unsupported weight type %u", type);
  return rc;
}

int matvec_experts(uint32_t type, const void* w, size_t expert_stride, size_t row_stride, int n_expert, int rows,
                   int cols, const int32_t* ids, int n_slots, int x_div, const float* x, const void* xq, float* y,
                   hipStream_t s) {
  if (n_slots < 0 || n_slots > 65535) return fail("matvec_experts: slot count %d out of range 0..65535", n_slots);
  if (n_expert <= 0 || x_div <= 0) return fail("matvec_experts: bad routing (%d experts, x_div %d)", n_expert, x_div);
  if (!ids || !y) return fail("matvec_experts: missing ids or output");
  if (expert_stride < row_stride * static_cast<size_t>(rows))
    return fail("matvec_experts: expert stride %zu < %d rows of %zu bytes", expert_stride, rows, row_stride);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    bool vec = false;
    if ((rc = check_matrix<F>("matvec_experts", w, row_stride, rows, cols, &vec)) != 0 || n_slots == 0) return;
    const auto* wb = static_cast<const uint8_t*>(w);
    if constexpr (HasDot8q<F>::value) {
      if (!xq || !aligned(xq, 16)) {
        rc = fail("matvec_experts: the int8 path needs quantized x, 16-byte aligned");
        return;
      }
      // Quantized x of n_x rows (quantize_q8 over n_x * cols): the scales follow all the int8 rows.
      const int n_x = (n_slots + x_div - 1) / x_div;
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(n_x) * cols + 15) / 16 * 16);
      const int group = q8_group<F>(tuning(type), rows * n_slots, cols, 2);
      const int per_block = kBlock / group * 2;
      (void)rf_launch(matvec8q_experts_kernel<F, 2>, dim3((rows + per_block - 1) / per_block, n_slots), kBlock, 0, s,
                      wb, expert_stride, row_stride, n_expert, ids, x_div, q, d, y, rows, cols, group);
      rc = check(hipGetLastError(), "matvec_experts");
    } else if constexpr (F::kBlockElems == 1) {
      if (!x) {
        rc = fail("matvec_experts: weight type %u takes float x", type);
        return;
      }
      const int waves = kBlock / wave_size();
      (void)rf_launch(matvec_experts_plain_kernel<F>, dim3((rows + waves - 1) / waves, n_slots), kBlock, 0, s, wb,
                      expert_stride, row_stride, n_expert, ids, x_div, x, y, rows, cols);
      rc = check(hipGetLastError(), "matvec_experts");
    } else {
      rc = fail("matvec_experts: no kernel for weight type %u", type);
    }
  });
  if (!known) return fail("matvec_experts: unsupported weight type %u", type);
  return rc;
}

int has_matvec_q8_qkv(uint32_t type_a, uint32_t type_b) {
  bool ok = false;
  dispatch_qkv(type_a, type_b, [&](auto a, auto b) { ok = HasDot8q<decltype(a)>::value && HasDot8q<decltype(b)>::value; });
  return ok ? 1 : 0;
}

namespace {
// Launches [A | B] with `norm` fused (rf_norm_in), or with x from xq: validation shared by both.
int matvec_q8_pair(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                   size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                   const rf_norm_in* norm, hipStream_t s);
}  // namespace

int matvec_q8_qkv(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                  size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                  hipStream_t s) {
  if (!aligned(xq, 16)) return fail("matvec_q8_qkv: quantized x must be 16-byte aligned");
  return matvec_q8_pair(type_a, wa, stride_a, rows_a, type_b, wb, stride_b, rows_b, cols, xq, y, rope, nullptr, s);
}

int matvec_q8_norm(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                   size_t stride_b, int rows_b, int cols, const rf_norm_in* norm, float* y, const rf_qkv_rope* rope,
                   hipStream_t s) {
  if (!norm || !norm->d_x || !norm->d_w) return fail("matvec_q8_norm: missing norm input or weight");
  if (!has_matvec_q8_qkv(type_a, type_b)) return -1;  // not a layout the fused kernel takes
  if (norm->d_x_out && (norm->d_x_out == norm->d_x || norm->d_x_out == norm->d_add))
    return fail("matvec_q8_norm: the residual output must not alias its inputs (other blocks still read them)");
  return matvec_q8_pair(type_a, wa, stride_a, rows_a, type_b, wb, stride_b, rows_b, cols, nullptr, y, rope, norm, s);
}

namespace {
int matvec_q8_pair(uint32_t type_a, const void* wa, size_t stride_a, int rows_a, uint32_t type_b, const void* wb,
                   size_t stride_b, int rows_b, int cols, const void* xq, float* y, const rf_qkv_rope* rope,
                   const rf_norm_in* norm, hipStream_t s) {
  if (!has_matvec_q8_qkv(type_a, type_b)) return fail("matvec_q8_qkv: no fused path for types %u + %u", type_a, type_b);
  if (type_b == 0) rows_b = 0;
  if (rope) {
    const rf_qkv_rope& r = *rope;
    if (r.head_dim <= 0 || r.head_dim % 2 != 0 || r.n_rot <= 0 || r.n_rot % 2 != 0 || r.n_rot > r.head_dim ||
        r.q_rows <= 0 || r.k_rows <= 0 || r.q_rows % r.head_dim != 0 || r.k_rows % r.head_dim != 0 ||
        r.q_rows + 2 * r.k_rows != rows_a + rows_b || r.k_rows != r.n_kv_head * r.head_dim || r.block_size <= 0 ||
        !r.d_pos || !r.d_block_table || !r.d_k_pool || !r.d_v_pool)
      return fail("matvec_q8_qkv: rope layout (q %d, k %d rows, head_dim %d, n_rot %d, %d kv heads) does not match "
                  "%d + %d rows", r.q_rows, r.k_rows, r.head_dim, r.n_rot, r.n_kv_head, rows_a, rows_b);
  }
  int rc = 0;
  dispatch_qkv(type_a, type_b, [&](auto a, auto b) {
    using FA = decltype(a);
    using FB = decltype(b);
    if constexpr (HasDot8q<FA>::value && HasDot8q<FB>::value) {
      bool vec = false;
      if ((rc = check_matrix<FA>("matvec_q8_qkv (a)", wa, stride_a, rows_a, cols, &vec)) != 0) return;
      if (rows_b > 0 && (rc = check_matrix<FB>("matvec_q8_qkv (b)", wb, stride_b, rows_b, cols, &vec)) != 0) return;
      const int st =
          matvec_q8_staged(type_a, wa, stride_a, rows_a, type_b, wb, stride_b, rows_b, cols, xq, y, rope, s, norm);
      if (st >= 0 || norm) {
        rc = st;  // with norm: -1 (no fused kernel here) tells the caller to norm and project apart
        return;
      }
      // Two rows per group (rope pairs), A's tuning for the group sizes and resident blocks.
      const Tuning ta = tuning(type_a);
      const int ga = q8_group<FA>(ta, rows_a, cols, 2), gb = rows_b > 0 ? q8_group<FB>(tuning(type_b), rows_b, cols, 2) : ga;
      const int n_blocks = (rows_a + kBlock / ga * 2 - 1) / (kBlock / ga * 2) +
                           (rows_b > 0 ? (rows_b + kBlock / gb * 2 - 1) / (kBlock / gb * 2) : 0);
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(cols) + 15) / 16 * 16);
      const rf_qkv_rope rp = rope ? *rope : rf_qkv_rope{};
      auto launch = [&](auto kernel) {
        (void)rf_launch(kernel, ta.persist ? resident_grid(kernel, n_blocks) : n_blocks, kBlock, 0, s,
                        static_cast<const uint8_t*>(wa), stride_a, rows_a, ga, static_cast<const uint8_t*>(wb),
                        stride_b, rows_b, gb, q, d, y, cols, rp);
      };
      if (ta.min_blocks == 4) {
        if (rope) launch(matvec8q_qkv_kernel<FA, FB, 2, 4, true>);
        else launch(matvec8q_qkv_kernel<FA, FB, 2, 4, false>);
      } else {
        if (rope) launch(matvec8q_qkv_kernel<FA, FB, 2, 1, true>);
        else launch(matvec8q_qkv_kernel<FA, FB, 2, 1, false>);
      }
      rc = check(hipGetLastError(), "matvec_q8_qkv");
    }
  });
  return rc;
}
}  // namespace

}  // namespace rocforge::gpu
