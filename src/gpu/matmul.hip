// matmul.hip - tiled matrix multiply on quantized weights for prompt processing (a batch of tokens).
//
// Y[t][r] = sum_c W[r][c] * X[t][c]. A block computes a 64 (weight rows) x 64 (tokens) tile of Y,
// stepping along c by 64: it dequantizes the 64 x 64 weight tile once into shared memory (128 chunk
// decodes, so every weight byte is read once per token tile instead of once per token), stages the
// matching X tile, and each of the 256 threads accumulates a 4 x 4 sub-tile in registers (fp32).
// Rows and tokens at the edges are masked; plain F32/F16/BF16 rows of any length take an element-wise
// tile load. This is the portable path; tensor-core variants are future work.
#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kTileR = 64, kTileT = 64, kTileK = 64, kThreads = 256;
constexpr int kPad = 1;  // one float per shared row: column reads by consecutive threads hit distinct banks

template <class F>
__global__ void __launch_bounds__(kThreads) matmul_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                          const float* __restrict__ x, float* __restrict__ y,
                                                          int rows, int cols, int n_tok, int vector_ok) {
  __shared__ float ws[kTileK][kTileR + kPad];  // ws[k][r] = W[r0 + r][k0 + k]
  __shared__ float xs[kTileK][kTileT + kPad];  // xs[k][t] = X[t0 + t][k0 + k]
  const int r0 = blockIdx.x * kTileR, t0 = blockIdx.y * kTileT;
  const int tid = threadIdx.x;
  const int tr = tid % 16, tt = tid / 16;  // this thread's outputs: rows tr + 16i, tokens tt + 16j
  float acc[4][4] = {};
  const int n_chunks = cols / 32;

  for (int k0 = 0; k0 < cols; k0 += kTileK) {
    // ---- weight tile: 64 rows x 2 chunks = 128 chunk decodes
    if (vector_ok) {
      if (tid < kTileR * 2) {
        const int r = tid / 2, kc = tid % 2;
        const int c = k0 / 32 + kc;
        float v[32];
        if (r0 + r < rows && c < n_chunks) {
          F::dequant(w + static_cast<size_t>(r0 + r) * stride, c, v);
        } else {
#pragma unroll
          for (int i = 0; i < 32; ++i) v[i] = 0.f;
        }
#pragma unroll
        for (int i = 0; i < 32; ++i) ws[kc * 32 + i][r] = v[i];
      }
    } else {
      if constexpr (F::kBlockElems == 1) {
        for (int e = tid; e < kTileR * kTileK; e += kThreads) {
          const int r = e / kTileK, k = e % kTileK;
          ws[k][r] = (r0 + r < rows && k0 + k < cols) ? F::elem(w + static_cast<size_t>(r0 + r) * stride, k0 + k)
                                                      : 0.f;
        }
      }
    }
    // ---- activation tile: consecutive threads read consecutive c of one token row (coalesced)
    for (int e = tid; e < kTileT * kTileK; e += kThreads) {
      const int t = e / kTileK, k = e % kTileK;
      xs[k][t] = (t0 + t < n_tok && k0 + k < cols) ? x[static_cast<size_t>(t0 + t) * cols + k0 + k] : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kTileK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = ws[k][tr + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = xs[k][tt + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int t = t0 + tt + 16 * j;
    if (t >= n_tok) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + tr + 16 * i;
      if (r < rows) y[static_cast<size_t>(t) * rows + r] = acc[i][j];
    }
  }
}

}  // namespace

int matmul(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols, int n_tok,
           hipStream_t s) {
  if (n_tok <= 0) return n_tok == 0 ? 0 : fail("matmul: negative token count %d", n_tok);
  if (!w || rows <= 0 || cols <= 0) return fail("matmul: empty matrix (rows %d, cols %d)", rows, cols);
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if (cols % F::kBlockElems != 0) {
      rc = fail("matmul: row length %d is not a multiple of the block size %d", cols, F::kBlockElems);
      return;
    }
    const size_t row_bytes = static_cast<size_t>(cols) / F::kBlockElems * F::kBlockBytes;
    if (row_stride < row_bytes) {
      rc = fail("matmul: row stride %zu < row bytes %zu", row_stride, row_bytes);
      return;
    }
    int vec = 1;
    if (F::kBlockElems == 1) vec = cols % 32 == 0 && row_stride % 16 == 0 && aligned16(w);
    else if (!aligned16(w) && F::kBlockBytes % 16 == 0) {
      rc = fail("matmul: weights must be 16-byte aligned");
      return;
    }
    const dim3 grid((rows + kTileR - 1) / kTileR, (n_tok + kTileT - 1) / kTileT);
    matmul_kernel<F><<<grid, kThreads, 0, s>>>(static_cast<const uint8_t*>(w), row_stride, x, y, rows, cols, n_tok,
                                               vec);
    rc = check(hipGetLastError(), "matmul");
  });
  if (!known) return fail("matmul: unsupported weight type %u", type);
  return rc;
}

}  // namespace rocforge::gpu
