// kv_layout.h - where a position's K/V row lives in the paged F16 cache, shared by the attention
// kernels and the q/k/v matvec epilogue that stores the decode token's K/V (matvec.hip).
//   pool: [n_blocks][n_kv_head][block_size][head_dim] half; position p of a sequence is slot
//   p % block_size of block table[p / block_size].
#pragma once

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

__device__ inline size_t pool_index(const int32_t* table, int p, int block_size, int n_kv_head, int kvh,
                                    int head_dim) {
  const int blk = table[p / block_size];
  return ((static_cast<size_t>(blk) * n_kv_head + kvh) * block_size + p % block_size) * head_dim;
}

}  // namespace rocforge::gpu
