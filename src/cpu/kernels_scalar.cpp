// kernels_scalar.cpp - portable reference kernels and the activation quantizer.
//
// gemm_q handles every quantized format through quant::decode_block (one block unpacked to int8
// codes + per-group scale/min), then integer dot products against the int8 activations. It is the
// ROCFORGE_CPU=scalar path and the fallback for formats a SIMD table does not cover.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "cpu/kernels.h"
#include "quant/decode.h"

namespace rocforge::cpu {
namespace {

bool is_float_type(GgmlType t) { return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16; }

bool scalar_gemm_q(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QActView& a,
                   float* y, int64_t ldy) {
  if (is_float_type(t)) return false;
  const auto& tr = ggml_type_traits(t);
  const int64_t be = tr.block_elems, nblk = a.n / be;
  if (be != 32 && be != 256) return false;
  quant::AffineBlock blk;
  // acc[t] per row; decoded blocks are reused for all T tokens.
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t t = 0; t < a.T; ++t) y[t * ldy + r] = 0.0f;
    for (int64_t b = 0; b < nblk; ++b) {
      if (!quant::decode_block(t, row + b * tr.block_bytes, blk)) return false;
      const int ng = blk.n / blk.group;
      for (int64_t tt = 0; tt < a.T; ++tt) {
        const int8_t* xq = a.q + tt * a.n + b * be;
        double acc = 0;
        for (int g = 0; g < ng; ++g) {
          const int64_t e0 = b * be + g * blk.group;  // first element of the group in the row
          int32_t idot = 0, isum = 0;
          for (int i = 0; i < blk.group; ++i) {
            idot += int32_t(blk.code[g * blk.group + i]) * xq[g * blk.group + i];
            isum += xq[g * blk.group + i];
          }
          const double dx = a.d[tt * (a.n / a.block) + e0 / a.block];
          acc += double(blk.scale[g]) * dx * idot;
          if (blk.has_min) acc += double(blk.min[g]) * dx * isum;
        }
        y[tt * ldy + r] += static_cast<float>(acc);
      }
    }
  }
  return true;
}

float load_elem(GgmlType t, const uint8_t* row, int64_t i) {
  switch (t) {
    case GgmlType::F32: { float f; std::memcpy(&f, row + 4 * i, 4); return f; }
    case GgmlType::F16: { uint16_t h; std::memcpy(&h, row + 2 * i, 2); return fp16_to_f32(h); }
    default: { uint16_t h; std::memcpy(&h, row + 2 * i, 2); return bf16_to_f32(h); }
  }
}

bool scalar_gemm_f(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t n, int64_t r0, int64_t r1, const float* x,
                   int64_t T, float* y, int64_t ldy) {
  if (!is_float_type(t)) return false;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + r * row_bytes;
    for (int64_t tt = 0; tt < T; ++tt) {
      // Eight partial sums, as the SIMD lanes do, so the scalar path rounds similarly.
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const float* xr = x + tt * n;
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += load_elem(t, row, i + k) * xr[i + k];
      float tail = 0;
      for (; i < n; ++i) tail += load_elem(t, row, i) * xr[i];
      y[tt * ldy + r] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
    }
  }
  return true;
}

}  // namespace

int act_block_for(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: return 0;
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
    case GgmlType::IQ4_XS:
      return 256;
    default: return 32;
  }
}

void quantize_act_row(const float* x, int64_t n, int block, int8_t* q, float* d, int16_t* s16, int32_t* lanes,
                      float* ds) {
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    float amax = 0;
    for (int i = 0; i < block; ++i) amax = std::max(amax, std::fabs(x[b0 + i]));
    const float dd = amax / 127.0f;
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    d[b0 / block] = dd;
    for (int i = 0; i < block; ++i) q[b0 + i] = static_cast<int8_t>(std::nearbyint(x[b0 + i] * id));
    for (int g = 0; g < block; g += 32) {
      int32_t s32 = 0;
      for (int h = 0; h < 32; h += 16) {
        int32_t s = 0;
        for (int i = 0; i < 16; ++i) s += q[b0 + g + h + i];
        s16[(b0 + g + h) / 16] = static_cast<int16_t>(s);
        s32 += s;
      }
      ds[(b0 + g) / 32] = dd * static_cast<float>(s32);
    }
  }
  for (int64_t k = 0; k < n / 4; ++k) lanes[k] = q[4 * k] + q[4 * k + 1] + q[4 * k + 2] + q[4 * k + 3];
}

const KernelTable& scalar_kernels() {
  static const KernelTable table{"scalar", scalar_gemm_q, scalar_gemm_f, quantize_act_row, nullptr, attend_scalar};
  return table;
}

#if !defined(__x86_64__)
const KernelTable* avx2_kernels() { return nullptr; }
const KernelTable* avx512_kernels() { return nullptr; }
#endif

}  // namespace rocforge::cpu
