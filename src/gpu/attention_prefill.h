// attention_prefill.h - what the two prefill attention files share: the f16 tile words K/V rows are
// staged as, the tiled fp32 kernel's launch (attention_prefill.hip), which the matrix-unit kernel's
// first-use check compares against, and that kernel's entry points (attention_prefill_mma.hip).
#pragma once

#include "gpu/kernels.h"
#include "gpu/kv_layout.h"

namespace rocforge::gpu {

// 8 values as 8 halves in one 16-byte word (the tiles' f16 layout).
__device__ inline uint4 halves8(const float (&f)[8]) {
  uint32_t w[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) w[j] = rf_float_to_half(f[2 * j]) | static_cast<uint32_t>(rf_float_to_half(f[2 * j + 1])) << 16;
  return make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ inline uint4 tile_word(const KvF16::Raw8& r) { return r.w; }
__device__ inline uint4 tile_word(const KvQ8::Raw8& r) {
  float f[8];
  KvQ8::unpack8(r, f);
  return halves8(f);
}

// Reduces v[e] over each row of a C fragment: across the lanes that share the row (the low
// log2(kRowLanes) bits of the lane), then across a lane's elements of the same row (mma_frag.h).
template <class M, class Op>
__device__ inline void row_reduce(float (&v)[M::kC], Op op) {
#pragma unroll
  for (int e = 0; e < M::kC; ++e)
    for (int mask = 1; mask < M::kRowLanes; mask *= 2) v[e] = op(v[e], rf_shfl_xor(v[e], mask));
  float r[M::kC];
#pragma unroll
  for (int e = 0; e < M::kC; ++e) {
    r[e] = v[e];
#pragma unroll
    for (int e2 = 0; e2 < M::kC; ++e2)
      if (e2 != e && M::c_row(0, e2) == M::c_row(0, e)) r[e] = op(r[e], v[e2]);
  }
#pragma unroll
  for (int e = 0; e < M::kC; ++e) v[e] = r[e];
}

// The tiled fp32 kernel (head_dim 64 / 128, 16-byte aligned pools); -1 for other shapes.
int launch_prefill_tiled(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                         int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                         float* out, hipStream_t s);
// Whether the matrix-unit kernel serves on the current device: 1 yes, -1 no, 0 not decided (its check
// synchronises s, which cannot happen while s is captured). Runs the check on first use.
int prefill_mma_ready(hipStream_t s);
// The matrix-unit kernel (head_dim 64 / 128); -1 for other shapes.
int launch_prefill_mma(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                       int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                       float* out, hipStream_t s);

}  // namespace rocforge::gpu
