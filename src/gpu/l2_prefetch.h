// l2_prefetch.h - the next projection's weights pulled into L2 by the end of the current one.
//
// Why: a decode step alternates memory-bound projections with short latency-bound kernels (attention,
// norms, SwiGLU) during which DRAM idles. A projection launched after matvec_prefetch_next(w, n)
// (backend_api.h) has each of its blocks, once done with its own rows, ask the copy engine for a
// slice of those n bytes (rf_prefetch_l2_range: one instruction, nothing waits), so the next
// projection starts on L2 hits. The request is taken by the next int8 decode matvec launch on the
// calling thread (a captured graph keeps it in the kernel's arguments).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

struct L2Prefetch {
  const uint8_t* p = nullptr;
  uint32_t bytes = 0;  // a multiple of 16; 0: none
};

// Block b of the grid requests its 16-byte aligned share of the range. One thread per block.
__device__ inline void prefetch_block_share(const L2Prefetch& pf) {
  if (!pf.bytes) return;
  const uint32_t units = pf.bytes / 16;
  const uint32_t lo = static_cast<uint32_t>(static_cast<uint64_t>(units) * blockIdx.x / gridDim.x);
  const uint32_t hi = static_cast<uint32_t>(static_cast<uint64_t>(units) * (blockIdx.x + 1) / gridDim.x);
  if (hi > lo) rf_prefetch_l2_range(pf.p + static_cast<size_t>(lo) * 16, (hi - lo) * 16);
}

// The pending request of this thread (set by matvec_prefetch_next, taken by a launch).
inline L2Prefetch& pending_l2_prefetch() {
  static thread_local L2Prefetch pending;
  return pending;
}
inline L2Prefetch take_l2_prefetch() {
  const L2Prefetch p = pending_l2_prefetch();
  pending_l2_prefetch() = L2Prefetch{};
  return p;
}

}  // namespace rocforge::gpu
