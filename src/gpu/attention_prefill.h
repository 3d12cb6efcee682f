// attention_prefill.h - what the prefill attention files share: the f16 tile words K/V rows are
// staged as, the tiled fp32 kernel's launch (attention_prefill.hip), which the matrix-unit kernel's
// first-use check compares against, and that kernel's entry points (attention_prefill_mma.hip), whose
// check also gates the matrix-unit decode kernel.
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

// The tiled fp32 kernel (head_dim 64 / 128, 16-byte aligned pools); -1 for other shapes.
int launch_prefill_tiled(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                         int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                         float* out, hipStream_t s);
// Whether the matrix-unit attention kernels (this prefill kernel, attention_decode_mma.hip's long
// decode contexts) serve on the current device: 1 yes, -1 no, 0 not decided (the check synchronises
// s, which cannot happen while s is captured). Runs the check on first use: the prefill kernel
// against the tiled fp32 one, which exercises every fragment operation both kernels use.
int attention_mma_ready(hipStream_t s);
// The matrix-unit kernel (head_dim 64 / 128); -1 for other shapes.
int launch_prefill_mma(const float* q, const void* k_pool, const void* v_pool, const int32_t* table, int pos0,
                       int n_tok, int n_head, int n_kv_head, int head_dim, int block_size, int kv_type, float scale,
                       float* out, hipStream_t s);

}  // namespace rocforge::gpu
