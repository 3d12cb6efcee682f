// x_slot.hip - per-stream slots of static device memory for the small-batch GEMMs' X, prepared once
// per call as f16 (matmul_mma's A fragments, matmul_small's runs).
//
// Static memory, not an allocation: a graph capture may record a call's first use, and two streams
// never share a slot (a stream's calls run in order, so one slot a stream suffices). Four slots of
// kXSlotTokens x kXSlotMaxCols halves a device (16 MiB); a fifth stream gets none and its products
// read X's fp32 rows themselves.
#include <algorithm>
#include <mutex>
#include <vector>

#include "gpu/kernels.h"

namespace rocforge::gpu {
namespace {

constexpr int kXSlots = 4;
constexpr size_t kXSlotWords = kXSlotBytes / sizeof(uint4);
__device__ uint4 g_x_slots[kXSlots][kXSlotWords];

struct XSlotOwner {
  int dev, slot;
  hipStream_t stream;
};
std::mutex g_mu;
std::vector<XSlotOwner> g_owners;

}  // namespace

uint4* x_slot(hipStream_t s) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess || dev < 0 || dev >= 64) return nullptr;
  std::lock_guard<std::mutex> lock(g_mu);
  int slot = -1;
  unsigned taken = 0;
  for (const XSlotOwner& o : g_owners) {
    if (o.dev != dev) continue;
    if (o.stream == s) slot = o.slot;
    taken |= 1u << o.slot;
  }
  if (slot < 0) {
    for (int i = 0; i < kXSlots && slot < 0; ++i)
      if (!(taken & (1u << i))) slot = i;
    if (slot < 0) return nullptr;
    g_owners.push_back({dev, slot, s});
  }
  static void* base[64] = {};
  if (!base[dev] && rf_symbol_address(&base[dev], g_x_slots) != hipSuccess) {
    (void)hipGetLastError();
    base[dev] = nullptr;
    return nullptr;
  }
  return static_cast<uint4*>(base[dev]) + static_cast<size_t>(slot) * kXSlotWords;
}

// The stream is being destroyed: its slot is free for the next one (a new stream may reuse the
// handle's value).
void x_slot_release(hipStream_t s) {
  int dev = 0;
  if (hipGetDevice(&dev) != hipSuccess) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_owners.erase(std::remove_if(g_owners.begin(), g_owners.end(),
                                [&](const XSlotOwner& o) { return o.dev == dev && o.stream == s; }),
                 g_owners.end());
}

}  // namespace rocforge::gpu
