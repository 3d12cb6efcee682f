// kv_layout.h - where a position's K/V row lives in the paged F16 cache, shared by the attention
// kernels and the q/k/v matvec epilogue that stores the decode token's K/V (matvec.hip).
//   pool: [n_blocks][n_kv_head][block_size][head_dim] half; position p of a sequence is slot
//   p % block_size of block table[p / block_size].
#pragma once

#include "gpu/kernels.h"

namespace rocforge::gpu {

constexpr int kMaxHeadDim = 256;  // attention kernels' largest head
constexpr int kMaxGroup = 16;     // query heads per KV head

// Validates the head layout an attention launcher is given (0, or 1 after recording the error).
inline int check_heads(const char* what, int n_head, int n_kv_head, int head_dim, int block_size) {
  if (n_head <= 0 || n_kv_head <= 0 || n_head % n_kv_head != 0)
    return fail("%s: n_head %d must be a positive multiple of n_kv_head %d", what, n_head, n_kv_head);
  if (n_head / n_kv_head > kMaxGroup)
    return fail("%s: %d query heads per KV head (max %d)", what, n_head / n_kv_head, kMaxGroup);
  if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > kMaxHeadDim)
    return fail("%s: head_dim %d must be even and <= %d", what, head_dim, kMaxHeadDim);
  if (block_size <= 0) return fail("%s: bad KV block size %d", what, block_size);
  return 0;
}

__device__ inline size_t pool_index(const int32_t* table, int p, int block_size, int n_kv_head, int kvh,
                                    int head_dim) {
  const int blk = table[p / block_size];
  return ((static_cast<size_t>(blk) * n_kv_head + kvh) * block_size + p % block_size) * head_dim;
}

}  // namespace rocforge::gpu
