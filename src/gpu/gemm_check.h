// gemm_check.h - the check a GEMM path passes on a device before it serves there: it multiplies a
// fixed problem whose every product and partial sum is exact in f16 and f32, and must agree exactly
// with matmul.hip's fp32 tile kernel. Used for the paths this machine cannot run or see inside:
// matmul_mc's AMD fragment layouts and the vendor BLAS that matmul_f16 loads at run time (a wrong
// layout or a misread ABI then costs speed, never answers).
#pragma once

#include <cstdio>
#include <vector>

#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {

// F32 weights and activations that are multiples of 1/64 in [-2, 2) (exact in f16; every product a
// multiple of 2^-12 below 4, every sum of 160 of them exact in f32), 150 rows x 70 tokens x 160
// columns: partial tiles in every dimension and several k steps for the kernels here. `gemm` is
// called as gemm(type, w, row_stride, x, y, rows, cols, n_tok, stream) and returns 0 on success.
// `spoil` (a test hook) adds 1 to one of its products. 0: agreed; 1: differed (where, in `why`);
// -1: could not run it (allocation, copy or launch failed).
template <class Gemm>
int gemm_exact_check(hipStream_t s, Gemm&& gemm, bool spoil, char* why, size_t why_len) {
  constexpr int R = 150, T = 70, K = 160;
  std::vector<float> hw(static_cast<size_t>(R) * K), hx(static_cast<size_t>(T) * K);
  uint32_t st = 0x9e3779b9u;
  auto next = [&] {
    st = st * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<int>(st >> 24) - 128) / 64.f;  // k / 64, k in [-128, 127]
  };
  for (float& v : hw) v = next();
  for (float& v : hx) v = next();
  void* buf = nullptr;
  const size_t wb = hw.size() * 4, xb = hx.size() * 4, yb = static_cast<size_t>(T) * R * 4;
  if (hipMalloc(&buf, wb + xb + 2 * yb) != hipSuccess) {
    (void)hipGetLastError();
    return -1;
  }
  auto* dw = static_cast<float*>(buf);
  float* dx = dw + hw.size();
  float* y_new = dx + hx.size();
  float* y_ref = y_new + static_cast<size_t>(T) * R;
  std::vector<float> a(static_cast<size_t>(T) * R), b(a.size());
  int rc = -1;
  if (hipMemcpyAsync(dw, hw.data(), wb, hipMemcpyHostToDevice, s) == hipSuccess &&
      hipMemcpyAsync(dx, hx.data(), xb, hipMemcpyHostToDevice, s) == hipSuccess &&
      gemm(kF32, dw, size_t(K) * 4, dx, y_new, R, K, T, s) == 0 &&
      matmul(kF32, dw, size_t(K) * 4, dx, y_ref, R, K, T, s) == 0 &&
      hipMemcpyAsync(a.data(), y_new, yb, hipMemcpyDeviceToHost, s) == hipSuccess &&
      hipMemcpyAsync(b.data(), y_ref, yb, hipMemcpyDeviceToHost, s) == hipSuccess &&
      hipStreamSynchronize(s) == hipSuccess) {
    rc = 0;
    if (spoil) a[a.size() / 2] += 1.f;
    for (size_t i = 0; i < a.size() && rc == 0; ++i)
      if (a[i] != b[i]) {  // == holds +0 and -0 equal: an exact zero may come out with either sign
        std::snprintf(why, why_len, "token %d row %d: %g, the fp32 kernel %g", static_cast<int>(i / R),
                      static_cast<int>(i % R), a[i], b[i]);
        rc = 1;
      }
  }
  (void)hipGetLastError();
  (void)hipFree(buf);
  return rc;
}

}  // namespace rocforge::gpu
