// gemm_check.h - the check a GEMM path passes on a device before it serves there: it multiplies a
// fixed problem whose every product and partial sum is exact in f16 and f32, and must agree exactly
// with matmul.hip's fp32 tile kernel. Used for the paths this machine cannot run or see inside:
// matmul_mc's AMD fragment layouts and the vendor BLAS that matmul_f16 loads at run time (a wrong
// layout or a misread ABI then costs speed, never answers).
#pragma once

#include <atomic>
#include <cstdio>
#include <cstring>
#include <vector>

#include "gpu/kernels.h"
#include "gpu/quant_formats.h"

namespace rocforge::gpu {

// Weights and activations that are multiples of 1/64 in [-2, 2) (exact in f16; every product a
// multiple of 2^-12 below 4, every sum of 160 of them exact in f32), 150 rows x 70 tokens x 160
// columns: partial tiles in every dimension and several k steps for the kernels here. The weights
// are F32 (the layouts), or `type` kQ8_0 (codes k, d = 1/64) or kQ4_1 (codes 0..15, d = 1/64, m =
// -8/64), whose decode in f16 arithmetic is exact too, so a kernel that decodes the codes itself is
// held to the same equality. `gemm` is called as gemm(type, w, row_stride, x, y, rows, cols, n_tok,
// stream) and returns 0 on success. `spoil` (a test hook) adds 1 to one of its products. 0: agreed;
// 1: differed (where, in `why`); -1: could not run it (allocation, copy or launch failed).
template <class Gemm>
int gemm_exact_check(hipStream_t s, Gemm&& gemm, bool spoil, char* why, size_t why_len, uint32_t type = kF32) {
  constexpr int R = 150, T = 70, K = 160;
  uint32_t st = 0x9e3779b9u;
  auto next_code = [&] {  // k in [-128, 127]
    st = st * 1664525u + 1013904223u;
    return static_cast<int>(st >> 24) - 128;
  };
  // The weights as the format's bytes, row after row.
  size_t row_bytes = size_t(K) * 4;
  if (type == kQ8_0) row_bytes = size_t(K) / 32 * 34;  // {half d; int8 q[32]}
  else if (type == kQ4_1) row_bytes = size_t(K) / 32 * 20;  // {half d, m; u8 qs[16]}
  else if (type != kF32) return -1;
  std::vector<uint8_t> hw(row_bytes * R);
  for (int r = 0; r < R; ++r) {
    uint8_t* row = hw.data() + row_bytes * r;
    for (int b = 0; b < K / 32; ++b) {
      if (type == kF32) {
        for (int i = 0; i < 32; ++i) {
          const float v = static_cast<float>(next_code()) / 64.f;
          std::memcpy(row + 4 * (32 * b + i), &v, 4);
        }
      } else if (type == kQ8_0) {
        uint8_t* blk = row + 34 * b;
        blk[0] = 0x00, blk[1] = 0x24;  // 1/64 as f16, little-endian
        for (int i = 0; i < 32; ++i) blk[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(next_code()));
      } else {
        uint8_t* blk = row + 20 * b;
        blk[0] = 0x00, blk[1] = 0x24, blk[2] = 0x00, blk[3] = 0xb0;  // d = 1/64, m = -1/8
        for (int i = 0; i < 16; ++i) blk[4 + i] = static_cast<uint8_t>(next_code() & 0xff);
      }
    }
  }
  std::vector<float> hx(static_cast<size_t>(T) * K);
  for (float& v : hx) v = static_cast<float>(next_code()) / 64.f;
  void* buf = nullptr;
  const size_t wb = (hw.size() + 15) / 16 * 16, xb = hx.size() * 4, yb = static_cast<size_t>(T) * R * 4;
  if (hipMalloc(&buf, wb + xb + 2 * yb) != hipSuccess) {
    (void)hipGetLastError();
    return -1;
  }
  auto* dw = static_cast<uint8_t*>(buf);
  auto* dx = reinterpret_cast<float*>(dw + wb);
  float* y_new = dx + hx.size();
  float* y_ref = y_new + static_cast<size_t>(T) * R;
  std::vector<float> a(static_cast<size_t>(T) * R), b(a.size());
  int rc = -1;
  if (hipMemcpyAsync(dw, hw.data(), hw.size(), hipMemcpyHostToDevice, s) == hipSuccess &&
      hipMemcpyAsync(dx, hx.data(), xb, hipMemcpyHostToDevice, s) == hipSuccess &&
      gemm(type, dw, row_bytes, dx, y_new, R, K, T, s) == 0 && matmul(type, dw, row_bytes, dx, y_ref, R, K, T, s) == 0 &&
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

// A checked path's decision on the current device, made once: states[dev] is 0 (not decided yet), 1
// (serves) or -1 (does not). Undecided, `decide()` (returning 1 or -1) runs now - unless `s` is being
// captured into a graph, which the check's synchronisation would break: then 0, and another path
// serves the capture; a later uncaptured call decides. states holds 64 devices.
template <class Decide>
int decide_once(std::atomic<int>* states, hipStream_t s, Decide&& decide) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return -1;
  int state = states[dev].load(std::memory_order_acquire);
  if (state != 0) return state;
  hipStreamCaptureStatus cs = hipStreamCaptureStatusNone;
  if (hipStreamIsCapturing(s, &cs) != hipSuccess || cs != hipStreamCaptureStatusNone) return 0;
  state = decide();
  states[dev].store(state, std::memory_order_release);
  return state;
}

}  // namespace rocforge::gpu
