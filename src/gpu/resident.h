// resident.h - how many blocks of a kernel the current device holds at once (occupancy x
// multiprocessors), for launches that must not exceed it: persistent grids (matvec) and blocks that
// wait for each other (sampling_whole.hip).
#pragma once

#include <unordered_map>
#include <utility>

#include "gpu/kernels.h"

namespace rocforge::gpu {

// Blocks of `kernel` launched with `threads` threads and no dynamic shared memory that fit on the
// current device at once; 0 where the occupancy query fails. Cached per kernel and device.
template <class K>
int resident_blocks(K kernel, int threads) {
  static thread_local std::unordered_map<const void*, std::unordered_map<int, int>> cache;
  int dev = 0;
  (void)hipGetDevice(&dev);
  auto& per_dev = cache[reinterpret_cast<const void*>(kernel)];
  if (auto it = per_dev.find(dev); it != per_dev.end()) return it->second;
  int per_mp = 0;
  if (hipOccupancyMaxActiveBlocksPerMultiprocessor(&per_mp, kernel, threads, 0) != hipSuccess) per_mp = 0;
  (void)hipGetLastError();
  return per_dev[dev] = per_mp * multiprocessors();
}

}  // namespace rocforge::gpu
