// matmul_mc.hip - the prompt GEMM on the matrix units where no vendor BLAS serves: Y[t][r] = sum_c
// W[r][c] * X[t][c] with W and X rounded to f16 and fp32 accumulation (matmul_f16's arithmetic), for
// every weight format, on NVIDIA tensor cores, AMD CDNA MFMA and RDNA WMMA from one kernel (the
// per-family fragment layouts are in mma_frag.h).
//
// Why: the HIP build has no BLAS here, so prompt processing on AMD ran the fp32 tile kernel of
// matmul.hip, a small fraction of what the matrix units do (MI300X: ~1300 f16 TFLOP/s on MFMA against
// ~160 fp32 on the vector units). matmul.hip's structure is kept - each block dequantizes a weight
// tile once into shared memory for all its tokens - with f16 tiles and the product on the matrix
// unit.
//
// A block is 256 threads on a 128-token x 128-row tile of Y, stepping along c by 64: each thread
// decodes one 32-element chunk of the weight tile (128 rows x 2 chunks) and converts 32 activations
// into registers a step ahead (after the barrier that publishes the current tiles, so waves still
// waiting on loads overlap the others' products); the output tile is sixteen 32 x 32 regions, two per
// wave of 32 lanes or four per wave of 64, each four 16 x 16 x 16 products per 16 k.
//
// Nothing AMD runs here, so before its first product on a device the launcher passes
// gemm_exact_check (gemm_check.h: a small exact problem against matmul.hip's fp32 kernel); on a
// mismatch the device keeps the fp32 kernel and stderr says why (a wrong fragment layout then costs
// speed, never answers).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gpu/gemm_check.h"
#include "gpu/kernels.h"
#include "gpu/mma_frag.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {
namespace {

constexpr int kTileT = 128, kTileR = 128, kTileK = 64, kThreads = 256;
// Halves per shared row: 16-byte aligned runs, consecutive rows on different banks.
[[maybe_unused]] constexpr int kLd = kTileK + 8;

[[maybe_unused]] __device__ inline uint32_t pack_halves(float lo, float hi) {
  return static_cast<uint32_t>(rf_float_to_half(lo)) | (static_cast<uint32_t>(rf_float_to_half(hi)) << 16);
}

// A step's inputs in registers as f16 pairs, fetched one step ahead: the thread's weight chunk (row
// tid / 2, chunk tid % 2 of the step) in wp and 32 activations in xp. Activations: float4 q of the
// thread is float4 e = 256 q + tid of the 128 x 64 tile (token e / 16, columns 4 (e % 16) ..),
// consecutive threads on consecutive 16 bytes; without 16-byte alignment, element e = 256 q + tid
// (token e / 64, column e % 64), one at a time.
template <class F>
__device__ inline void fetch_step(const uint8_t* __restrict__ w, size_t stride, const float* __restrict__ x, int rows,
                                  int cols, int n_tok, int r0, int t0, int k0, int vector_w, int vector_x,
                                  uint32_t wp[16], uint32_t xp[16]) {
  const int tid = threadIdx.x;
  if (vector_w) {
    const int r = tid / 2, c = k0 / 32 + tid % 2;
    float v[32];
    if (r0 + r < rows && 32 * c < cols) {
      F::dequant(w + static_cast<size_t>(r0 + r) * stride, c, v);
    } else {
#pragma unroll
      for (int i = 0; i < 32; ++i) v[i] = 0.f;
    }
#pragma unroll
    for (int i = 0; i < 16; ++i) wp[i] = pack_halves(v[2 * i], v[2 * i + 1]);
  }
  if (vector_x) {
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int e = 256 * q + tid, t = e / 16, k = k0 + 4 * (e % 16);
      float4 f = make_float4(0.f, 0.f, 0.f, 0.f);
      if (t0 + t < n_tok && k < cols) f = *reinterpret_cast<const float4*>(x + static_cast<size_t>(t0 + t) * cols + k);
      xp[2 * q] = pack_halves(f.x, f.y);
      xp[2 * q + 1] = pack_halves(f.z, f.w);
    }
  } else {
    // (A few elements at a time: with all 32 loads in flight the RDNA builds ran out of registers.)
    auto at = [&](int q) {
      const int e = 256 * q + tid, t = e / 64, k = k0 + e % 64;
      return t0 + t < n_tok && k < cols ? x[static_cast<size_t>(t0 + t) * cols + k] : 0.f;
    };
#pragma unroll 2
    for (int i = 0; i < 16; ++i) xp[i] = pack_halves(at(2 * i), at(2 * i + 1));
  }
}

template <class F>
__global__ void __launch_bounds__(kThreads, 1) matmul_mc_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                                const float* __restrict__ x, float* __restrict__ y,
                                                                int rows, int cols, int n_tok, int vector_w,
                                                                int vector_x) {
#if RF_MMA_KIND != 0
  using M = MmaFrag;
  constexpr int kWaves = kThreads / M::kWave;  // 8, or 4 on CDNA
  constexpr int kRegions = 16 / kWaves;        // 32 x 32 output regions per wave
  __shared__ __align__(16) uint16_t ws[kTileR][kLd];  // ws[r][k] = W[r0 + r][k0 + k] as f16
  __shared__ __align__(16) uint16_t xs[kTileT][kLd];  // xs[t][k] = X[t0 + t][k0 + k] as f16
  const int r0 = blockIdx.x * kTileR, t0 = blockIdx.y * kTileT;
  const int tid = threadIdx.x, lane = tid % M::kWave, wave = tid / M::kWave;
  typename M::C acc[kRegions][2][2];
  uint32_t wp[16], xp[16];
  fetch_step<F>(w, stride, x, rows, cols, n_tok, r0, t0, 0, vector_w, vector_x, wp, xp);

  for (int k0 = 0; k0 < cols; k0 += kTileK) {
    // ---- the step's tiles into shared memory as f16
    if (vector_w) {
      uint4* dst = reinterpret_cast<uint4*>(&ws[tid / 2][32 * (tid % 2)]);
#pragma unroll
      for (int q = 0; q < 4; ++q) dst[q] = make_uint4(wp[4 * q], wp[4 * q + 1], wp[4 * q + 2], wp[4 * q + 3]);
    } else {
      if constexpr (F::kBlockElems == 1) {  // plain rows of other widths or alignments: element-wise
        for (int e = tid; e < kTileR * kTileK; e += kThreads) {
          const int r = e / kTileK, k = e % kTileK;
          const float f =
              r0 + r < rows && k0 + k < cols ? F::elem(w + static_cast<size_t>(r0 + r) * stride, k0 + k) : 0.f;
          ws[r][k] = rf_float_to_half(f);
        }
      }
    }
    if (vector_x) {
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        const int e = 256 * q + tid;
        *reinterpret_cast<uint2*>(&xs[e / 16][4 * (e % 16)]) = make_uint2(xp[2 * q], xp[2 * q + 1]);
      }
    } else {
#pragma unroll
      for (int q = 0; q < 32; ++q) {
        const int e = 256 * q + tid;
        xs[e / 64][e % 64] = static_cast<uint16_t>(xp[q / 2] >> (16 * (q % 2)));
      }
    }
    __syncthreads();
    // ---- the next step's loads go out before the products
    if (k0 + kTileK < cols)
      fetch_step<F>(w, stride, x, rows, cols, n_tok, r0, t0, k0 + kTileK, vector_w, vector_x, wp, xp);
    // ---- products: region g of this wave covers tokens tm .. tm + 31, rows rn .. rn + 31. (RDNA's
    // 16-half fragments: unrolled over kk, the compiler hoists every step's fragments and spills.)
#if RF_MMA_KIND >= 3
#pragma unroll 1
#else
#pragma unroll
#endif
    for (int kk = 0; kk < kTileK; kk += 16) {
#pragma unroll
      for (int g = 0; g < kRegions; ++g) {
        const int region = wave + g * kWaves;
        const int tm = (region % 4) * 32, rn = (region / 4) * 32;
        typename M::A a[2];
        typename M::B b[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) M::load_a(a[i], &xs[tm + 16 * i][kk], kLd, lane);
#pragma unroll
        for (int j = 0; j < 2; ++j) M::load_b(b[j], &ws[rn + 16 * j][kk], kLd, lane);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) M::mma(acc[g][i][j], a[i], b[j]);
      }
    }
    __syncthreads();
  }
  // ---- Y: element e of a 16 x 16 accumulator is token c_row, row c_col of its sub-tile
#pragma unroll
  for (int g = 0; g < kRegions; ++g) {
    const int region = wave + g * kWaves;
    const int tm = (region % 4) * 32, rn = (region / 4) * 32;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < M::kC; ++e) {
          const int t = t0 + tm + 16 * i + M::c_row(lane, e), r = r0 + rn + 16 * j + M::c_col(lane, e);
          if (t < n_tok && r < rows) y[static_cast<size_t>(t) * rows + r] = acc[g][i][j].v[e];
        }
  }
#else
  (void)w, (void)stride, (void)x, (void)y, (void)rows, (void)cols, (void)n_tok, (void)vector_w, (void)vector_x;
#endif
}

int launch(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols, int n_tok,
           hipStream_t s) {
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if (cols % F::kBlockElems != 0) {
      rc = fail("matmul_mc: row length %d is not a multiple of the block size %d", cols, F::kBlockElems);
      return;
    }
    const size_t row_bytes = static_cast<size_t>(cols) / F::kBlockElems * F::kBlockBytes;
    if (row_stride < row_bytes) {
      rc = fail("matmul_mc: row stride %zu < row bytes %zu", row_stride, row_bytes);
      return;
    }
    int vec = 1;
    if (F::kBlockElems == 1) vec = cols % 32 == 0 && row_stride % 16 == 0 && aligned16(w);
    else if (!aligned16(w) && F::kBlockBytes % 16 == 0) {
      rc = fail("matmul_mc: weights must be 16-byte aligned");
      return;
    }
    const int vec_x = cols % 4 == 0 && aligned16(x);
    const dim3 grid((rows + kTileR - 1) / kTileR, (n_tok + kTileT - 1) / kTileT);
    matmul_mc_kernel<F><<<grid, kThreads, 0, s>>>(static_cast<const uint8_t*>(w), row_stride, x, y, rows, cols, n_tok,
                                                  vec, vec_x);
    rc = check(hipGetLastError(), "matmul_mc");
  });
  if (!known) return fail("matmul_mc: unsupported weight type %u", type);
  return rc;
}

// Per device: 0 not checked yet, 1 serving, -1 not served (no matrix unit, switched off, or the
// self-check failed).
std::atomic<int> g_state[64];

}  // namespace

bool device_has_matrix_unit() {
  int dev = 0;
  hipDeviceProp_t p;
  if (hipGetDevice(&dev) != hipSuccess || hipGetDeviceProperties(&p, dev) != hipSuccess) return false;
#if defined(__HIP__) || defined(__HIPCC__)
  const char* a = p.gcnArchName;
  for (const char* pre : {"gfx90a", "gfx940", "gfx941", "gfx942", "gfx950", "gfx1100", "gfx1101", "gfx1102",
                          "gfx1103", "gfx1150", "gfx1151", "gfx1200", "gfx1201"})
    if (std::strncmp(a, pre, std::strlen(pre)) == 0) return true;
  return false;
#else
  return p.major >= 8;
#endif
}

int matmul_mc_ready(hipStream_t s) {
  // While `s` is captured the fp32 kernel serves the capture, and a later uncaptured call checks.
  return decide_once(g_state, s, [&] {
    if (env_int("ROCFORGE_GPU_MC", 1) == 0 || !device_has_matrix_unit()) return -1;
    // The backend has no logger: a device that fails the check says so once on stderr (it then
    // runs the fp32 kernel, so its prompts are slower, not wrong).
    // Test hook: ROCFORGE_GPU_MC_FAULT=1 spoils one product of the check, so the fallback runs
    // where the kernel is right (ctest gpu_matmul_mc_fault).
    char why[160] = "";
    const int r = gemm_exact_check(s, launch, env_int("ROCFORGE_GPU_MC_FAULT", 0) != 0, why, sizeof why);
    if (r == 1)
      std::fprintf(stderr, "rocforge: the matrix-unit GEMM disagrees with the fp32 kernel (%s); not used\n", why);
    if (r < 0) std::fprintf(stderr, "rocforge: the matrix-unit GEMM's self-check could not run; not used\n");
    return r == 0 ? 1 : -1;
  });
}

int matmul_mc(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols, int n_tok,
              hipStream_t s) {
  if (matmul_mc_ready(s) <= 0) return -1;
  if (n_tok <= 0) return n_tok == 0 ? 0 : fail("matmul_mc: negative token count %d", n_tok);
  if (!w || rows <= 0 || cols <= 0) return fail("matmul_mc: empty matrix (rows %d, cols %d)", rows, cols);
  return launch(type, w, row_stride, x, y, rows, cols, n_tok, s);
}

}  // namespace rocforge::gpu
