// mma_parts.h - what the two small-batch GEMMs share (matmul_mma.hip, NVIDIA's tensor-core kernel with
// the codes turned into fragments in registers, and matmul_small.hip, the one for every matrix unit):
// where a fused buffer's rows go, and a row's elements eight at a time.
#pragma once

#include "gpu/quant_formats.h"

namespace rocforge::gpu {

constexpr int kMmaParts = 3;  // row ranges of one launch with their own outputs (q / k / v)

// Where the rows of Y go: up to kMmaParts consecutive row ranges (the matrices of a fused weight
// buffer: q / k / v, gate / up), each its own [n_tok][rows of the part] array.
struct MmaOut {
  float* y[kMmaParts];
  int end[kMmaParts];  // the part's last row + 1, ascending; unused parts end at the last row
  __device__ float* at(int tok, int row) const {
    int p = 0;
#pragma unroll
    for (int i = 0; i < kMmaParts - 1; ++i) p += row >= end[i];
    const int begin = p ? end[p - 1] : 0;
    return y[p] + static_cast<size_t>(tok) * (end[p] - begin) + (row - begin);
  }
};

// The outputs of n_parts (1..kMmaParts) parts of part_rows[i] rows each into `out`, their sum in
// `rows`; false where a part is empty or n_parts is out of range.
inline bool mma_out_of_parts(int n_parts, const int* part_rows, float* const* y, MmaOut& out, int& rows) {
  if (n_parts < 1 || n_parts > kMmaParts) return false;
  out = MmaOut{};
  rows = 0;
  for (int i = 0; i < kMmaParts; ++i) {
    if (i < n_parts) {
      if (part_rows[i] < 1) return false;
      rows += part_rows[i];
    }
    out.y[i] = y[i < n_parts ? i : n_parts - 1];
    out.end[i] = rows;
  }
  return true;
}

// Elements 32c + 8p .. +8 of a row: the format's dequant8, else its 32-element dequant (correct for
// every format; the lanes that share a chunk then each decode all of it).
template <class F>
__device__ inline void dequant8(const uint8_t* row, int c, int p, float v[8]) {
  if constexpr (HasDequant8<F>::value) {
    F::dequant8(row, c, p, v);
  } else {
    float a[32];
    F::dequant(row, c, a);
#pragma unroll
    for (int q = 0; q < 4; ++q)
      if (q == p)
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = a[8 * q + i];
  }
}

}  // namespace rocforge::gpu
