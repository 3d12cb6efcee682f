// matmul_f16.hip - prompt-processing GEMM on the tensor cores: Y[t][r] = sum_c W[r][c] * X[t][c] with W
// and X rounded to f16 and fp32 accumulation.
//
// With a vendor BLAS (cuBLAS on the CUDA build, rocBLAS on the HIP build, each dlopen()ed on first
// use, so the backend library links no BLAS and loads where none is installed): the weights are
// dequantized to f16 in row slices of at most kSliceElems elements into a per-device scratch buffer,
// X is converted to f16 once, and each slice is one f16 x f16 -> f32 GEMM. Dequantizing a slice
// costs one read of its quantized bytes and one f16 write, small beside the GEMM at prompt lengths
// (hundreds of tokens). Before a BLAS serves on a device it passes gemm_exact_check (gemm_check.h):
// nothing here can run rocBLAS, whose ABI is declared by hand below. Without one (or with
// ROCFORGE_GPU_BLAS=0) the slices go to hgemm.hip's own f16 GEMM on the matrix units, after the same
// check; where that cannot serve (no matrix unit, ROCFORGE_GPU_HGEMM=0, no room for the scratch),
// matmul_mc.hip's kernel dequantizes inside the GEMM, and matmul.hip's fp32 tile kernel is the last
// resort.
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/gemm_check.h"
#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

#if !(defined(__HIP__) || defined(__HIPCC__))
#include <cublas_api.h>  // types and enums only: the library itself is dlopen()ed
#endif

namespace rocforge::gpu {
namespace {

// Without a vendor BLAS: the matrix units where the device has them (matmul_mc.hip), else the fp32
// tile kernel (within f16 tolerance, so either serves matmul_f16's contract).
int matmul_portable(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
                    int n_tok, hipStream_t s) {
  const int rc = matmul_mc(type, w, row_stride, x, y, rows, cols, n_tok, s);
  return rc >= 0 ? rc : matmul(type, w, row_stride, x, y, rows, cols, n_tok, s);
}

// 128 MB of f16 weights a slice: an 8B's ffn_down (4096 x 14336) in one GEMM, its [gate | up] in two.
// (From 64 MB, H100 pp512 8B Q4_K_M: cuBLAS 13633 -> 16177 tok/s, hgemm 8678 -> 10091, the 1B
// within 1%; 256 MB: no further change.)
constexpr size_t kSliceElems = size_t(64) << 20;

// W rows [0, rows) of a slice -> f16 [rows][cols]; one thread per 32-element chunk. With cols a
// multiple of 32, chunk i lands at elements [32 i, 32 i + 32): a block's 256 chunks are one contiguous
// 16 KB run, staged in shared memory and stored with consecutive threads on consecutive 16-byte words
// (with each thread storing its own 64 bytes, 8B Q4_K_M pp512 ran 12.9k tok/s on an H200, staged 14.1k).
constexpr int kDequantThreads = 256;

template <class F>
__global__ void __launch_bounds__(kDequantThreads) dequant_f16_kernel(const uint8_t* __restrict__ w, size_t stride,
                                                                      int rows, int cols, int vector_ok,
                                                                      uint16_t* __restrict__ out) {
  const int n_chunks = (cols + 31) / 32;
  const size_t total = static_cast<size_t>(rows) * n_chunks;
  const size_t i0 = static_cast<size_t>(blockIdx.x) * kDequantThreads;
  const size_t i = i0 + threadIdx.x;
  if constexpr (F::kBlockElems == 1) {
    if (!vector_ok) {  // plain rows of other widths: element by element, in place
      if (i >= total) return;
      const int r = static_cast<int>(i / n_chunks), c = static_cast<int>(i % n_chunks);
      const uint8_t* row = w + static_cast<size_t>(r) * stride;
      uint16_t* o = out + static_cast<size_t>(r) * cols + 32 * c;
      for (int k = 0; k < 32 && 32 * c + k < cols; ++k) o[k] = rf_float_to_half(F::elem(row, 32 * c + k));
      return;
    }
  }
  __shared__ uint4 buf[kDequantThreads * 4];
  if (i < total) {
    const int r = static_cast<int>(i / n_chunks), c = static_cast<int>(i % n_chunks);
    float v[32];
    F::dequant(w + static_cast<size_t>(r) * stride, c, v);
    uint32_t packed[16];
#pragma unroll
    for (int k = 0; k < 16; ++k)
      packed[k] = static_cast<uint32_t>(rf_float_to_half(v[2 * k])) |
                  (static_cast<uint32_t>(rf_float_to_half(v[2 * k + 1])) << 16);
#pragma unroll
    for (int k = 0; k < 4; ++k)
      buf[threadIdx.x * 4 + k] = make_uint4(packed[4 * k], packed[4 * k + 1], packed[4 * k + 2], packed[4 * k + 3]);
  }
  __syncthreads();
  const size_t n_words = (total - i0 < kDequantThreads ? total - i0 : kDequantThreads) * 4;
  uint4* o4 = reinterpret_cast<uint4*>(out) + i0 * 4;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const size_t j = static_cast<size_t>(k) * kDequantThreads + threadIdx.x;
    if (j < n_words) o4[j] = buf[j];
  }
}

__global__ void f32_to_f16_kernel(const float* __restrict__ x, size_t n, uint16_t* __restrict__ out) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = rf_float_to_half(x[i]);
}

// The vendor GEMM both builds call: C [m x n] = A^T B, column-major, A [k x m] (lda) and B [k x n]
// (ldb) in f16, C in f32 (ldc), fp32 accumulation; the handle's stream set per call.
#if !(defined(__HIP__) || defined(__HIPCC__))
using BlasHandle = cublasHandle_t;
using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
using GemmExFn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                    const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                    cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
constexpr const char* kBlasName = "cuBLAS";
constexpr const char* kBlasLibs[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                                     "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"};
constexpr const char* kBlasSyms[] = {"cublasCreate_v2", "cublasSetStream_v2", "cublasGemmEx"};
int blas_gemm_t_n(GemmExFn gemm, BlasHandle h, int m, int n, int k, const uint16_t* a, int lda, const uint16_t* b,
                  int ldb, float* c, int ldc) {
  const float one = 1.f, zero = 0.f;
  return static_cast<int>(gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_16F, lda, b, CUDA_R_16F, ldb,
                               &zero, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
#else
// rocBLAS's C ABI, the part used here (library/include/internal/rocblas-types.h of ROCm; enums are
// C ints): no rocBLAS headers exist on the machines that build this.
using BlasHandle = void*;  // rocblas_handle
using CreateFn = int (*)(BlasHandle*);
using SetStreamFn = int (*)(BlasHandle, hipStream_t);
using GemmExFn = int (*)(BlasHandle, int, int, int, int, int, const void*, const void*, int, int, const void*, int,
                         int, const void*, const void*, int, int, void*, int, int, int, int, int32_t, uint32_t);
constexpr int kRbOpNone = 111, kRbOpTranspose = 112, kRbF16 = 150, kRbF32 = 151, kRbAlgoStandard = 0;
constexpr const char* kBlasName = "rocBLAS";
// Only the rocBLAS installed beside the HIP runtime this library runs on: one from another ROCm
// release would bring a second runtime into the process, to which our streams mean nothing.
constexpr const char* kBlasLibs[] = {"librocblas.so.5", "librocblas.so.4", "librocblas.so.3", "librocblas.so.0",
                                     "librocblas.so"};
constexpr const char* kBlasSyms[] = {"rocblas_create_handle", "rocblas_set_stream", "rocblas_gemm_ex"};
int blas_gemm_t_n(GemmExFn gemm, BlasHandle h, int m, int n, int k, const uint16_t* a, int lda, const uint16_t* b,
                  int ldb, float* c, int ldc) {
  const float one = 1.f, zero = 0.f;  // rocBLAS's default pointer mode: scalars on the host
  return gemm(h, kRbOpTranspose, kRbOpNone, m, n, k, &one, a, kRbF16, lda, b, kRbF16, ldb, &zero, c, kRbF32, ldc, c,
              kRbF32, ldc, kRbF32, kRbAlgoStandard, 0, 0);
}
#endif

struct Blas {
  bool ok = false;
  CreateFn create = nullptr;
  SetStreamFn set_stream = nullptr;
  GemmExFn gemm = nullptr;
};

// The library, once per process; ROCFORGE_GPU_BLAS=0 turns it off (matmul_portable then serves).
const Blas& blas() {
  static Blas b;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("ROCFORGE_GPU_BLAS");
    if (env && std::strcmp(env, "0") == 0) return;
    void* lib = nullptr;
#if defined(__HIP__) || defined(__HIPCC__)
    // (This library is loaded RTLD_LOCAL, so the runtime is found from a function it links, not by name.)
    Dl_info runtime{};
    const auto malloc_fn = static_cast<hipError_t (*)(void**, size_t)>(&hipMalloc);
    if (!dladdr(reinterpret_cast<void*>(malloc_fn), &runtime) || !runtime.dli_fname) return;
    std::string dir = runtime.dli_fname;
    dir.resize(dir.rfind('/') + 1);  // the runtime's folder, with its slash ("" where none: then none)
    if (dir.empty()) return;
    for (const char* name : kBlasLibs)
      if ((lib = dlopen((dir + name).c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
#else
    for (const char* name : kBlasLibs)
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
#endif
    if (!lib) return;
    b.create = reinterpret_cast<CreateFn>(dlsym(lib, kBlasSyms[0]));
    b.set_stream = reinterpret_cast<SetStreamFn>(dlsym(lib, kBlasSyms[1]));
    b.gemm = reinterpret_cast<GemmExFn>(dlsym(lib, kBlasSyms[2]));
    b.ok = b.create && b.set_stream && b.gemm;
  });
  return b;
}

// Per device: a BLAS handle, the f16 scratch (weights slice, then X), whether the BLAS passed its
// check there and whether hgemm.hip's kernel did (each 0 not yet, 1 passed, -1 failed or off).
// Callers of one device serialise on its mutex: the scratch is shared.
struct DeviceBlas {
  std::mutex mu;
  BlasHandle handle = nullptr;
  void* scratch = nullptr;
  size_t bytes = 0;
  std::vector<void*> retired;  // outgrown scratches: a captured graph may still use them
  int state = 0;
  int own = 0;
};
constexpr int kMaxDevices = 64;
DeviceBlas g_dev[kMaxDevices];

// The f16 GEMM a sliced product ends in, C [m x n] = A^T B as blas_gemm_t_n: the vendor BLAS on the
// device's handle, or (blas null) hgemm.hip's kernel.
struct SliceGemm {
  const Blas* blas;
  BlasHandle handle;
  int operator()(int m, int n, int k, const uint16_t* a, int lda, const uint16_t* b, int ldb, float* c, int ldc,
                 hipStream_t s) const {
    if (!blas) return hgemm_tn(m, n, k, a, lda, b, ldb, c, ldc, s);
    if (blas->set_stream(handle, s) != 0) return fail("matmul_f16: %s could not take the stream", kBlasName);
    const int st = blas_gemm_t_n(blas->gemm, handle, m, n, k, a, lda, b, ldb, c, ldc);
    return st == 0 ? 0 : fail("matmul_f16: %s GEMM failed (status %d, %d x %d x %d)", kBlasName, st, m, n, k);
  }
};

// The product on dequantized f16 slices through `gemm` (device d's mutex held): 0, an error code, or
// -1 where the scratch cannot be had (the caller then takes another path).
int sliced_product(DeviceBlas& d, const SliceGemm& gemm, uint32_t type, const void* w, size_t row_stride,
                   const float* x, float* y, int rows, int cols, int n_tok, hipStream_t s) {
  int rc = 0;
  const bool known = dispatch_type(type, [&](auto f) {
    using F = decltype(f);
    if (cols % F::kBlockElems != 0) {
      rc = fail("matmul_f16: row length %d is not a multiple of the block size %d", cols, F::kBlockElems);
      return;
    }
    bool vec = true;
    if constexpr (F::kBlockElems == 1)
      vec = cols % 32 == 0 && row_stride % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
    // F16 weights are already the GEMM's operand: no slices (hgemm also wants 16-byte rows).
    const bool direct = type == kF16 && row_stride % 2 == 0 && (gemm.blas || (row_stride % 16 == 0 && aligned16(w)));
    // Quantized rows decode in whole 32-element chunks; plain rows of other widths go element-wise.
    const int slice_rows = static_cast<int>(std::max<size_t>(64, std::min<size_t>(rows, kSliceElems / cols)));
    const size_t x_elems = static_cast<size_t>(n_tok) * cols;
    const size_t w_elems = direct ? 0 : static_cast<size_t>(slice_rows) * cols;
    const size_t need = ((w_elems + 127) / 128 * 128 + x_elems) * sizeof(uint16_t) + 256;
    if (d.bytes < need) {
      // A decode step of more sequences than matmul_mma takes runs here inside a captured graph, which
      // keeps the scratch's address: a smaller scratch is never freed (it only grows, at warm-up for
      // the largest batch), and none is allocated while capturing (the caller's fallback serves).
      hipStreamCaptureStatus cs = hipStreamCaptureStatusNone;
      if (hipStreamIsCapturing(s, &cs) != hipSuccess || cs != hipStreamCaptureStatusNone) {
        (void)hipGetLastError();
        rc = -1;
        return;
      }
      void* grown = nullptr;
      if (hipMalloc(&grown, need) != hipSuccess) {
        (void)hipGetLastError();
        rc = -1;  // no room for the f16 copy
        return;
      }
      if (d.scratch) d.retired.push_back(d.scratch);
      d.scratch = grown;
      d.bytes = need;
    }
    auto* wh = static_cast<uint16_t*>(d.scratch);
    auto* xh = wh + (w_elems + 127) / 128 * 128;
    f32_to_f16_kernel<<<static_cast<unsigned>((x_elems + 255) / 256), 256, 0, s>>>(x, x_elems, xh);
    if ((rc = check(hipGetLastError(), "matmul_f16 (x to f16)")) != 0) return;
    if (direct) {
      rc = gemm(rows, n_tok, cols, static_cast<const uint16_t*>(w), static_cast<int>(row_stride / 2), xh, cols, y,
                rows, s);
      return;
    }
    const int n_chunks = (cols + 31) / 32;
    for (int r0 = 0; r0 < rows; r0 += slice_rows) {
      const int nr = std::min(slice_rows, rows - r0);
      const size_t threads = static_cast<size_t>(nr) * n_chunks;
      dequant_f16_kernel<F><<<static_cast<unsigned>((threads + kDequantThreads - 1) / kDequantThreads), kDequantThreads, 0, s>>>(
          static_cast<const uint8_t*>(w) + static_cast<size_t>(r0) * row_stride, row_stride, nr, cols, vec ? 1 : 0, wh);
      if ((rc = check(hipGetLastError(), "matmul_f16 (dequantize)")) != 0) return;
      // Column-major view: C[nr x n_tok] (ldc = rows, at y + r0) = Wslice^T[nr x cols] * X^T[cols x n_tok].
      if ((rc = gemm(nr, n_tok, cols, wh, cols, xh, cols, y + r0, rows, s)) != 0) return;
    }
  });
  if (!known) return fail("matmul_f16: unsupported weight type %u", type);
  return rc;
}

}  // namespace

namespace {

// Runs a sliced path's first-use check on device d (mutex held): 1 it serves, -1 it does not (stderr
// says why), 0 not decided (the check synchronises the stream, which a graph being captured cannot:
// another path serves the capture, and a later uncaptured call checks). `fault_env` is the test hook
// that spoils one product of the check (ctests gpu_blas_fault, gpu_hgemm_fault).
int run_check(DeviceBlas& d, const SliceGemm& g, const char* name, const char* fault_env, hipStream_t s) {
  hipStreamCaptureStatus cs = hipStreamCaptureStatusNone;
  if (hipStreamIsCapturing(s, &cs) != hipSuccess || cs != hipStreamCaptureStatusNone) return 0;
  char why[160] = "";
  auto gemm = [&](uint32_t t, const void* cw, size_t stride, const float* cx, float* cy, int r, int c, int n,
                  hipStream_t q) { return sliced_product(d, g, t, cw, stride, cx, cy, r, c, n, q); };
  const int r = gemm_exact_check(s, gemm, env_int(fault_env, 0) != 0, why, sizeof why);
  if (r == 1) std::fprintf(stderr, "rocforge: %s disagrees with the fp32 kernel (%s); not used\n", name, why);
  if (r < 0) std::fprintf(stderr, "rocforge: the check of %s could not run; not used\n", name);
  return r == 0 ? 1 : -1;
}

// Whether the BLAS serves on device d (mutex held): 1 yes, -1 no, 0 not decided. Makes the handle and
// runs the check on first use.
int blas_ready(DeviceBlas& d, const Blas& b, hipStream_t s) {
  if (d.state != 0) return d.state;
  if (!d.handle && b.create(&d.handle) != 0) {
    d.handle = nullptr;
    return d.state = -1;
  }
  return d.state = run_check(d, SliceGemm{&b, d.handle}, kBlasName, "ROCFORGE_GPU_BLAS_FAULT", s);
}

// The same for hgemm.hip's kernel on dequantized slices, which serves where no BLAS does:
// ROCFORGE_GPU_HGEMM=0 turns it off, and it never serves a device without a matrix unit.
int own_ready(DeviceBlas& d, hipStream_t s) {
  if (d.own != 0) return d.own;
  if (env_int("ROCFORGE_GPU_HGEMM", 1) == 0 || !device_has_matrix_unit()) return d.own = -1;
  return d.own = run_check(d, SliceGemm{nullptr, nullptr}, "the f16 GEMM (hgemm)", "ROCFORGE_GPU_HGEMM_FAULT", s);
}

}  // namespace

int matmul_f16(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
               int n_tok, hipStream_t s) {
  // Small batches: the weights dequantized in registers for the tensor cores, no f16 copy of them.
  if (const int rc = matmul_mma(type, w, row_stride, x, y, rows, cols, n_tok, s); rc >= 0) return rc;
  int dev = 0;
  if (n_tok <= 0 || cols % 8 != 0 || hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= kMaxDevices)
    return matmul_portable(type, w, row_stride, x, y, rows, cols, n_tok, s);
  DeviceBlas& d = g_dev[dev];
  std::lock_guard<std::mutex> lock(d.mu);
  const Blas& b = blas();
  if (b.ok && blas_ready(d, b, s) > 0) {
    const int rc = sliced_product(d, SliceGemm{&b, d.handle}, type, w, row_stride, x, y, rows, cols, n_tok, s);
    if (rc >= 0) return rc;
  }
  if (own_ready(d, s) > 0) {
    const int rc = sliced_product(d, SliceGemm{nullptr, nullptr}, type, w, row_stride, x, y, rows, cols, n_tok, s);
    if (rc >= 0) return rc;
  }
  return matmul_portable(type, w, row_stride, x, y, rows, cols, n_tok, s);
}

int matmul_hgemm(uint32_t type, const void* w, size_t row_stride, const float* x, float* y, int rows, int cols,
                 int n_tok, hipStream_t s) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= kMaxDevices) return -1;
  if (n_tok < 0) return fail("matmul_hgemm: negative token count %d", n_tok);
  if (!w || rows <= 0 || cols <= 0) return fail("matmul_hgemm: empty matrix (rows %d, cols %d)", rows, cols);
  if (cols % 8 != 0) return -1;
  if (n_tok == 0) return 0;
  DeviceBlas& d = g_dev[dev];
  std::lock_guard<std::mutex> lock(d.mu);
  if (own_ready(d, s) <= 0) return -1;
  return sliced_product(d, SliceGemm{nullptr, nullptr}, type, w, row_stride, x, y, rows, cols, n_tok, s);
}

const char* prompt_gemm(hipStream_t s) {
  const Blas& b = blas();
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= kMaxDevices) return "undecided";
  {
    DeviceBlas& d = g_dev[dev];
    std::lock_guard<std::mutex> lock(d.mu);
    if (b.ok) {
      const int state = blas_ready(d, b, s);
      if (state > 0) return kBlasName;
      if (state == 0) return "undecided";
    }
    const int own = own_ready(d, s);
    if (own > 0) return "matrix units (hgemm on f16 slices)";
    if (own == 0) return "undecided";
  }
  const int mc = matmul_mc_ready(s);
  return mc > 0 ? "matrix units (matmul_mc)" : mc < 0 ? "fp32 tiles" : "undecided";
}

}  // namespace rocforge::gpu
