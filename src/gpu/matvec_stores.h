// matvec_stores.h - what the int8 decode matvecs (matvec.hip, matvec_staged.hip) do with a thread
// group's finished row sums: store them, or for the decode token's [q | k | v] also rotate q and k and
// write k and v into the KV cache (the rope + KV-store epilogue of matvec_q8_qkv).
#pragma once

#include "gpu/backend_api.h"
#include "gpu/hip_compat.h"
#include "gpu/kv_layout.h"
#include "gpu/rope_math.h"

namespace rocforge::gpu {

// Writes a row group's R sums: y[row + r] = s[r] for the n valid rows.
struct PlainStore {
  float* y;
  template <int R>
  __device__ void operator()(int row, float (&s)[R], int n) const {
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < n) y[row + r] = s[r];
  }
};

// The decode token's [q | k | v] row sums with rope and the KV store applied (rf_qkv_rope): rows
// come in (2i, 2i + 1) pairs (R even, row groups start on even rows), i.e. whole rotation pairs.
struct QkvRopeStore {
  float* y;
  int base_row;  // this matrix's first row in [q | k | v]
  rf_qkv_rope rp;
  template <int R>
  __device__ void operator()(int row, float (&s)[R], int n) const {
    static_assert(R % 2 == 0, "rotation pairs must stay in one thread");
    const int pos = *rp.d_pos, qk = rp.q_rows + rp.k_rows;
#pragma unroll
    for (int r = 0; r < R; r += 2) {
      if (r >= n) break;
      const int g = base_row + row + r;  // even
      if (g < qk && r + 1 < n) {
        const int d = (g < rp.q_rows ? g : g - rp.q_rows) % rp.head_dim;
        if (d < rp.n_rot) rope_rotate(s[r], s[r + 1], d / 2, pos, rp.n_rot, rp.base, rp.freq_scale, rp.d_freq_factors);
      }
      for (int e = r; e < r + 2 && e < n; ++e) {
        y[row + e] = s[e];
        const int ge = base_row + row + e;
        if (ge < rp.q_rows || !rp.d_k_pool) continue;  // no pools: rotation only (a Q8_0 cache: attn_decode stores)
        const bool is_k = ge < qk;
        const int o = is_k ? ge - rp.q_rows : ge - qk;  // row within k or v
        const size_t at = pool_index(rp.d_block_table, pos, rp.block_size, rp.n_kv_head, o / rp.head_dim,
                                     rp.head_dim) + o % rp.head_dim;
        (is_k ? rp.d_k_pool : rp.d_v_pool)[at] = rf_float_to_half(s[e]);
      }
    }
  }
};

}  // namespace rocforge::gpu
