// matvec.hip - fused dequantize + matrix-vector product (decode) and the embedding lookup, for every
// weight format of quant_formats.h.
//
// Decode reads every weight byte once per token, so this kernel is bound by memory bandwidth. Layout
// of the work: one wave per kRows consecutive rows; lane l takes chunks l, l + wave, l + 2*wave, ... of
// the row, so the lanes of a wave read consecutive blocks (coalesced), and each x chunk a lane loads
// (float4s, from L1/L2) serves all kRows rows. A final wave reduction (width from warpSize) gives y.
#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kBlock = 256;  // threads per block: 8 waves of 32 or 4 waves of 64
constexpr int kRows = 2;     // rows per wave, sharing each loaded x chunk

__device__ inline void load_x32(const float* x, int c, float xv[32]) {
  const float4* p = reinterpret_cast<const float4*>(x + 32 * c);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float4 f = p[i];
    xv[4 * i] = f.x; xv[4 * i + 1] = f.y; xv[4 * i + 2] = f.z; xv[4 * i + 3] = f.w;
  }
}

// W: rows x cols in format F (cols a multiple of 32), x: [cols], y: [rows].
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                        const float* __restrict__ x, float* __restrict__ y,
                                                        int rows, int cols) {
  const int lane = threadIdx.x % warpSize;
  const int wave = threadIdx.x / warpSize;
  const int waves = blockDim.x / warpSize;
  const int row0 = (blockIdx.x * waves + wave) * kRows;
  if (row0 >= rows) return;  // whole wave leaves together: no shuffle is skipped by part of it
  const int n_chunks = cols / 32;
  const uint8_t* rp[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) rp[r] = w + static_cast<size_t>(min(row0 + r, rows - 1)) * stride;
  float acc[kRows] = {};
  for (int c = lane; c < n_chunks; c += warpSize) {
    float xv[32];
    load_x32(x, c, xv);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float v[32];
      F::dequant(rp[r], c, v);
      float s = 0.f;
#pragma unroll
      for (int i = 0; i < 32; ++i) s = fmaf(v[i], xv[i], s);
      acc[r] += s;
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float s = rf_wave_sum(acc[r]);
    if (lane == 0 && row0 + r < rows) y[row0 + r] = s;
  }
}

// Plain F32/F16/BF16 rows of any length or alignment: one wave per row, one element per lane step.
template <class F>
__global__ void __launch_bounds__(kBlock) matvec_plain_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                              const float* __restrict__ x, float* __restrict__ y,
                                                              int rows, int cols) {
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
    if (!aligned(x, 16)) vec = F::kBlockElems == 1 ? false : vec;
    const auto* wb = static_cast<const uint8_t*>(w);
    const int waves = kBlock / wave_size();
    if constexpr (F::kBlockElems == 1) {
      if (!vec) {
        matvec_plain_kernel<F><<<(rows + waves - 1) / waves, kBlock, 0, s>>>(wb, row_stride, x, y, rows, cols);
        rc = check(hipGetLastError(), "matvec");
        return;
      }
    }
    if (!aligned(x, 16)) {
      rc = fail("matvec: x must be 16-byte aligned");
      return;
    }
    const int per_block = waves * kRows;
    matvec_kernel<F><<<(rows + per_block - 1) / per_block, kBlock, 0, s>>>(wb, row_stride, x, y, rows, cols);
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
    embed_kernel<F><<<n_tok, 128, 0, s>>>(static_cast<const uint8_t*>(table), row_stride, cols, tokens, out,
                                          vec ? 1 : 0);
    rc = check(hipGetLastError(), "embed");
  });
  if (!known) return fail("embed: unsupported weight type %u", type);
  return rc;
}

}  // namespace rocforge::gpu
