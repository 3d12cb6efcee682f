// stream_slots.h - a device's few slots of something, each held by one stream until that stream is
// destroyed: x_slot.hip's X buffers, and the right to run sampling_whole.hip's launch whose blocks
// wait for each other. A stream's calls run in order, so one slot a stream is enough, and a slot is
// never shared by two streams whose work could run side by side.
#pragma once

#include <algorithm>
#include <mutex>
#include <vector>

#include "gpu/hip_compat.h"

namespace rocforge::gpu {

class StreamSlots {
 public:
  explicit StreamSlots(int n_slots) : n_slots_(n_slots) {}

  // The slot stream `s` holds on the current device, claiming a free one first; -1 where none is free.
  int claim(hipStream_t s) {
    int dev = 0;
    if (hipGetDevice(&dev) != hipSuccess) return -1;
    std::lock_guard<std::mutex> lock(mu_);
    unsigned long long taken = 0;
    for (const Owner& o : owners_) {
      if (o.dev != dev) continue;
      if (o.stream == s) return o.slot;
      taken |= 1ull << o.slot;
    }
    for (int i = 0; i < n_slots_; ++i)
      if (!(taken & (1ull << i))) {
        owners_.push_back({dev, i, s});
        return i;
      }
    return -1;
  }

  // The stream is being destroyed: its slot on the current device is free again (a new stream may
  // reuse the handle's value).
  void release(hipStream_t s) {
    int dev = 0;
    if (hipGetDevice(&dev) != hipSuccess) return;
    std::lock_guard<std::mutex> lock(mu_);
    owners_.erase(std::remove_if(owners_.begin(), owners_.end(),
                                 [&](const Owner& o) { return o.dev == dev && o.stream == s; }),
                  owners_.end());
  }

 private:
  struct Owner {
    int dev, slot;
    hipStream_t stream;
  };
  const int n_slots_;  // at most 64
  std::mutex mu_;
  std::vector<Owner> owners_;
};

}  // namespace rocforge::gpu
