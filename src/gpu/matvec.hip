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

#include "gpu/kernels.h"
#include "gpu/l2_prefetch.h"
#include "gpu/matvec_common.h"
#include "gpu/matvec_staged.h"
#include "gpu/matvec_stores.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kRows = 2;     // rows per thread group, sharing each loaded x chunk
constexpr int kXChunks = 128;  // x chunks staged in shared memory per step (16.5 KB)

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

template <class F, int R, int MinBlocks = 1>
__global__ void __launch_bounds__(kBlock, MinBlocks) matvec8q_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                          const int8_t* __restrict__ xq, const float* __restrict__ xd,
                                                          float* __restrict__ y, int rows, int cols, int group,
                                                          int prefetch, const L2Prefetch next) {
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
  if (threadIdx.x == 0) prefetch_block_share(next);  // the next projection's weights (l2_prefetch.h)
}

// Decode's [gate | up] product with SwiGLU in its epilogue, on the register kernels (AMD; NVIDIA
// without the staged kernel): a block owns whole 64-row groups of the walk gate rows 32k .. 32k + 31,
// then the same up rows, their sums meeting in shared memory; the group's 32 outputs are swiglu_q8's
// math and rounding, and with the same thread-group width as matvec_q8's launch every sum is too, so
// the result is bit-identical to that product followed by swiglu_q8 - one launch (and one drain) a
// layer less.
template <class F, int R, int MinBlocks = 1>
__global__ void __launch_bounds__(kBlock, MinBlocks)
    matvec8q_swiglu_kernel(const uint8_t* __restrict__ w, size_t stride, const int8_t* __restrict__ xq,
                           const float* __restrict__ xd, int n_ff, int cols, int group, float* __restrict__ sy,
                           int8_t* __restrict__ sq, float* __restrict__ sd, const L2Prefetch next) {
  __shared__ float part[R][kRfMaxWavesPerBlock];
  __shared__ float vals[64];  // the group's gate sums, then its up sums
  const int per_rb = blockDim.x / group * R;
  const int n_rb = (32 + per_rb - 1) / per_rb;  // row blocks of a 32-row half
  rf_grid_wait();  // PDL: x is written by the kernel before this one (hip_compat.h)
  rf_grid_trigger();
  for (int grp = blockIdx.x; grp < n_ff / 32; grp += gridDim.x) {
    for (int half = 0; half < 2; ++half) {
      const uint8_t* rows = w + (static_cast<size_t>(half) * n_ff + static_cast<size_t>(grp) * 32) * stride;
      for (int rb = 0; rb < n_rb; ++rb)
        matvec8q_rows<F, R>(rows, stride, xq, xd, PlainStore{vals + 32 * half}, 32, cols, group, rb, part);
    }
    __syncthreads();
    if (threadIdx.x < warpSize) {
      // The first wave's lanes 0 .. 31 make the outputs (on 64-wide waves lanes 32 .. 63 mirror them
      // for the shuffles, which stay inside aligned 32-lane groups, and store nothing).
      const int i = threadIdx.x & 31;
      const float g = vals[i], u = vals[32 + i];
      const float v = g / (1.f + expf(-g)) * u;
      float amax = fabsf(v);
      for (int off = 16; off > 0; off /= 2) amax = fmaxf(amax, rf_shfl_xor(amax, off));
      if (threadIdx.x < 32) {
        const int o = grp * 32 + i;
        if (sy) sy[o] = v;
        const float inv = amax > 0.f ? 127.f / amax : 0.f;  // rf_quantize_q8_lane's rounding
        sq[o] = static_cast<int8_t>(rintf(v * inv));
        if (i == 0) sd[grp] = amax / 127.f;
      }
    }
    __syncthreads();  // vals is rewritten by the block's next group
  }
  if (threadIdx.x == 0) prefetch_block_share(next);  // the next projection's weights (l2_prefetch.h)
}

// Up to two matrices of one int8 x in one launch: the decode step's [q | k] and v when v has another
// format (Q4_K_M keeps v in Q6_K), saving a launch and its drain; with Rope, the rotation and the KV
// store ride along (no rope_kv_store launch). Row blocks of A come first, then B's; y_b = y + rows_a.
template <class FA, class FB, int R, int MinBlocks, bool Rope>
__global__ void __launch_bounds__(kBlock, MinBlocks)
    matvec8q_qkv_kernel(const uint8_t* __restrict__ wa, size_t stride_a, int rows_a, int group_a,
                        const uint8_t* __restrict__ wb, size_t stride_b, int rows_b, int group_b,
                        const int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ y, int cols,
                        rf_qkv_rope rope, const L2Prefetch next) {
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
  if (threadIdx.x == 0) prefetch_block_share(next);  // the next projection's weights (l2_prefetch.h)
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
        (void)rf_launch(kernel, grid, kBlock, 0, s, wb, row_stride, q, d, y, rows, cols, group, tu.prefetch,
                        take_l2_prefetch());
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

int matvec_q8_swiglu(uint32_t type, const void* w, size_t stride, int n_ff, int cols, const void* xq,
                     const rf_norm_in* norm, float* y, void* yq, hipStream_t s) {
  if (n_ff <= 0 || cols <= 0 || !yq) return fail("matvec_q8_swiglu: n_ff %d, cols %d, output %p", n_ff, cols, yq);
  if (!has_matvec_q8_qkv(type, 0)) return -1;  // not a format the fused kernel takes
  if (norm ? !norm->d_x || !norm->d_w : !xq) return fail("matvec_q8_swiglu: missing input (x or norm)");
  if (norm && norm->d_x_out && (norm->d_x_out == norm->d_x || norm->d_x_out == norm->d_add))
    return fail("matvec_q8_swiglu: the residual output must not alias its inputs (other blocks still read them)");
  if (yq == xq) return fail("matvec_q8_swiglu: the int8 output must not alias x (other blocks still read it)");
  if ((xq && !aligned(xq, 16)) || !aligned(yq, 16) || (y && !aligned(y, 4)))
    return fail("matvec_q8_swiglu: x, y and the int8 output must be aligned (16, 4, 16 bytes)");
  int rc = 0;
  dispatch_qkv(type, 0, [&](auto f, auto) {
    using F = decltype(f);
    bool vec = false;
    if constexpr (HasDot8q<F>::value) rc = check_matrix<F>("matvec_q8_swiglu", w, stride, 2 * n_ff, cols, &vec);
  });
  if (rc != 0) return rc;
  const int st = matvec_q8_swiglu_staged(type, w, stride, n_ff, cols, xq, norm, y, yq, s);
  if (st >= 0 || norm || n_ff % 32 != 0 || !aligned(xq, 16)) return st;
  // Else the register kernel above (ROCFORGE_MV_SWIGLU_REG: 0 never; 1, the default, where the device
  // has no staged kernel (AMD) or it is switched off, or the format's tuning asks for it on this
  // device (Tuning::swiglu_reg); 2 also where the staged one declined, every format), where
  // the 64-row groups give the device kTargetWaves waves a multiprocessor and each group a resident
  // block of its own: a block walks whole groups, so fewer groups leave it less parallel than the
  // plain matvec, and more than the resident blocks leave some walking two. The norm is never fused
  // here (a per-block norm cost more than its launch: fourteenth pass). Fifteenth pass, tg128, with
  // every matvec on the register kernels (H100, ROCFORGE_MV_STAGED=0): 8B Q4_K_M 411.0 / 410.3 ->
  // 422.7 / 423.5 (448 groups); the 8B's Q4_0 and Q8_0 and the 1B declined. In place of the staged
  // gate/up: see Tuning::swiglu_reg.
  static const int reg_env = env_int("ROCFORGE_MV_SWIGLU_REG", 1);
  const double bw = memory_bandwidth();
  const bool tuned = tuning(type).swiglu_reg && bw > 0 && bw / multiprocessors() <= kSwigluRegMaxBwPerSm;
  if (reg_env == 0 || (reg_env == 1 && matvec_q8_staged_enabled() && !tuned)) return st;
  const long groups = n_ff / 32;
  if (groups * (kBlock / wave_size()) < static_cast<long>(kTargetWaves) * multiprocessors()) return st;
  rc = -1;
  dispatch_qkv(type, 0, [&](auto f, auto) {
    using F = decltype(f);
    if constexpr (HasDot8q<F>::value && kSwigluEpilogue<F, false>) {  // where it pays (matvec_staged.h)
      const Tuning tu = tuning(type);
      const int group = q8_group<F>(tu, 2 * n_ff, cols, tu.rows);  // matvec_q8's width: the same sums
      const auto* q = static_cast<const int8_t*>(xq);
      const auto* d = reinterpret_cast<const float*>(q + (static_cast<size_t>(cols) + 15) / 16 * 16);
      auto* oq = static_cast<int8_t*>(yq);
      auto* od = reinterpret_cast<float*>(oq + (static_cast<size_t>(n_ff) + 15) / 16 * 16);
      auto launch = [&](auto kernel) {
        const int grid = resident_grid(kernel, static_cast<int>(groups));
        if (grid < groups) return;  // some block would walk two groups
        (void)rf_launch(kernel, grid, kBlock, 0, s, static_cast<const uint8_t*>(w), stride, q, d, n_ff, cols, group, y,
                        oq, od, take_l2_prefetch());
        rc = check(hipGetLastError(), "matvec_q8_swiglu");
      };
      if (tu.rows == 4) launch(matvec8q_swiglu_kernel<F, 4>);
      else if (tu.rows == 1) launch(matvec8q_swiglu_kernel<F, 1>);
      else if (tu.min_blocks == 4) launch(matvec8q_swiglu_kernel<F, 2, 4>);
      else launch(matvec8q_swiglu_kernel<F, 2, 1>);
    }
  });
  return rc;
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
        !r.d_pos || !r.d_block_table || (r.d_k_pool == nullptr) != (r.d_v_pool == nullptr))
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
      if constexpr (!kQkvOnRegisters<FA> || !kQkvOnRegisters<FB>) {
        rc = -1;  // the register kernels' fused launch does not pay for this format: declined
        return;
      } else {
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
                          stride_b, rows_b, gb, q, d, y, cols, rp, take_l2_prefetch());
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
    }
  });
  return rc;
}
}  // namespace

}  // namespace rocforge::gpu
